"""TLS options shared by the transports that speak TLS (``rediss://``, ``amqps://``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from conveyor.core.errors import ConfigurationError
from conveyor.core.transport import TransportOptions

_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


@dataclass
class TLSOptions(TransportOptions):
    """The common options plus TLS settings (URL query).

    ssl_cert_reqs: "required", "optional" or "none": how the server certificate is checked.
    ssl_ca_certs: the CA bundle (default: the system's).
    ssl_certfile, ssl_keyfile: a client certificate and its key.
    """

    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def validate(self) -> None:
        super().validate()
        if self.ssl_cert_reqs not in _CERT_REQS:
            raise ConfigurationError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")

    def tls_context(self) -> ssl.SSLContext:
        """The client TLS context; unreadable files fail here, before any I/O."""
        try:
            context = ssl.create_default_context(cafile=self.ssl_ca_certs)
            if self.ssl_certfile:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load the TLS files: {exc}") from None
        if self.ssl_cert_reqs != "required":
            context.check_hostname = False
            context.verify_mode = _CERT_REQS[self.ssl_cert_reqs]
        return context
