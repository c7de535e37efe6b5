"""Optional message signing: HMAC-SHA256 over a canonical encoding, with key ids for rotation.

Off unless `message_signing_keys` is set. Then every task message the app sends carries
the header ``x-conveyor-signature``: the key id, the issue time, the expiry and the HMAC
of the canonical encoding below. A worker with keys configured refuses, before decoding
the body, a message that is unsigned, signed with an unknown key id, altered in any
signed part, issued in the future, or past its expiry (a captured message replayed
later): it is dead-lettered with the reason ``InvalidSignature: ...``.

Canonical encoding: a 4-byte big-endian length, then compact JSON with sorted keys of
``{"v", "kid", "iat", "exp", "id", "content_type", "content_encoding", "correlation_id",
"reply_to", "headers"}`` (the headers without the signature header), then the body bytes.
The broker's own routing data (queue, priority, timestamp) is not signed.

Rotation: sign with `message_signing_key_id`, verify with every key in
`message_signing_keys`. Add the new key to every worker first, then switch producers to
its id, then drop the old key once no message signed with it can still be unexpired.

Within its lifetime a signed message is valid wherever it is delivered: redeliveries and
a producer's retries reuse it. A task that already finished is not run again (the worker
checks the result backend), and the expiry bounds how late a captured copy is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from conveyor.core.errors import ConfigurationError, DecodeError
from conveyor.core.message import Message

HEADER = "x-conveyor-signature"
VERSION = 1
MIN_SECRET_BYTES = 16
CLOCK_SKEW = 30.0  # s: an issue time this far in the future is still accepted


class InvalidSignature(DecodeError):
    """A message whose signature is missing, unknown, wrong or expired."""


def canonical(message: Message, kid: str, iat: float, exp: float) -> bytes:
    """The bytes the signature covers (see the module docstring)."""
    headers = {k: v for k, v in message.headers.items() if k != HEADER}
    head = {
        "v": VERSION,
        "kid": kid,
        "iat": iat,
        "exp": exp,
        "id": message.id,
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "correlation_id": message.correlation_id,
        "reply_to": message.reply_to,
        "headers": headers,
    }
    try:
        text = json.dumps(head, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidSignature(f"headers cannot be signed: {exc}") from None
    data = text.encode()
    return len(data).to_bytes(4, "big") + data + bytes(message.body)


@dataclass(frozen=True)
class Signer:
    """The app's signing keys. `sign` is a no-op and `verify` accepts all when none are set."""

    keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    key_id: str | None = None
    ttl: float = 3600.0

    def __repr__(self) -> str:  # key ids only, never a secret
        return f"Signer(key_ids={sorted(self.keys)}, key_id={self.key_id!r}, ttl={self.ttl})"

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    @classmethod
    def from_settings(cls, keys: Any, key_id: Any, ttl: Any) -> Signer:
        """Check the settings, naming the bad one (and never printing a secret)."""
        if not keys:
            return cls()
        if not isinstance(keys, Mapping):
            raise ConfigurationError("message_signing_keys must map key ids to secrets")
        secrets: dict[str, bytes] = {}
        for kid, secret in keys.items():
            raw = secret.encode() if isinstance(secret, str) else secret
            if not isinstance(kid, str) or not kid or not isinstance(raw, bytes):
                raise ConfigurationError(
                    f"message_signing_keys: key id {kid!r} must be a non-empty string "
                    "with a str or bytes secret"
                )
            if len(raw) < MIN_SECRET_BYTES:
                raise ConfigurationError(
                    f"message_signing_keys[{kid!r}]: the secret is shorter than "
                    f"{MIN_SECRET_BYTES} bytes"
                )
            secrets[kid] = raw
        if key_id is not None and key_id not in secrets:
            raise ConfigurationError(
                f"message_signing_key_id {key_id!r} is not in message_signing_keys "
                f"(key ids: {', '.join(sorted(secrets))})"
            )
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not 0 < ttl < 1e9:
            raise ConfigurationError(f"message_signing_ttl must be positive seconds, not {ttl!r}")
        return cls(secrets, key_id, float(ttl))

    def sign(self, message: Message, delay: float = 0.0, now: float | None = None) -> Message:
        """`message` with a signature header (unchanged when no signing key id is set),
        valid for `ttl` seconds after its `delay` ends."""
        if self.key_id is None:
            return message
        iat = round(time.time() if now is None else now, 3)
        exp = round(iat + max(delay, 0.0) + self.ttl, 3)
        mac = self._mac(self.key_id, canonical(message, self.key_id, iat, exp))
        signature = {"kid": self.key_id, "iat": iat, "exp": exp, "sig": mac}
        return replace(message, headers={**message.headers, HEADER: signature})

    def verify(self, message: Message, now: float | None = None) -> None:
        """Raise InvalidSignature unless `message` carries a valid, unexpired signature."""
        if not self.enabled:
            return
        signature = message.headers.get(HEADER)
        if not isinstance(signature, dict):
            raise InvalidSignature(f"message {message.id} is not signed")
        kid, mac = signature.get("kid"), signature.get("sig")
        if not isinstance(kid, str) or kid not in self.keys:
            raise InvalidSignature(f"message {message.id}: unknown signing key id {kid!r}")
        iat, exp = _seconds(signature.get("iat")), _seconds(signature.get("exp"))
        if iat is None or exp is None or not isinstance(mac, str):
            raise InvalidSignature(f"message {message.id}: malformed signature header")
        expected = self._mac(kid, canonical(message, kid, iat, exp))
        if not hmac.compare_digest(expected, mac):
            raise InvalidSignature(f"message {message.id}: the signature does not match")
        at = time.time() if now is None else now
        if iat > at + CLOCK_SKEW:
            raise InvalidSignature(f"message {message.id}: issued in the future ({iat})")
        if exp <= at:
            raise InvalidSignature(
                f"message {message.id}: the signature expired {at - exp:.0f} s ago "
                "(a replayed or long-delayed message)"
            )

    def _mac(self, kid: str, data: bytes) -> str:
        return hmac.new(self.keys[kid], data, hashlib.sha256).hexdigest()


def _seconds(value: Any) -> float | None:
    """A signature time (epoch seconds), or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
