"""The AMQP transport's options and the pika connection parameters built from them."""

from __future__ import annotations

import math
import os
import ssl
from dataclasses import dataclass

import pika

from conveyor.clients.tls import TLSOptions
from conveyor.core.errors import ConfigurationError
from conveyor.core.url import URL


@dataclass
class AMQPOptions(TLSOptions):
    """AMQP options (URL query).

    queue_type: "classic" or "quorum".
    heartbeat: seconds; default half the lease timeout, so a dead peer is noticed in time.
    max_priority: x-max-priority of classic queues (0: no priority queues).
    blocked_connection_timeout: seconds a publish may wait on a blocked connection.
    confirm_timeout: seconds to wait for a broker reply before ConnectionLost.
    connection_name: shown in the management UI and rabbitmqctl (default conveyor-<pid>).
    ssl_*: TLS settings for ``amqps://`` (see `TLSOptions`).
    """

    queue_type: str = "classic"
    heartbeat: int | None = None
    max_priority: int = 10
    blocked_connection_timeout: float = 30.0
    confirm_timeout: float = 30.0
    connection_name: str = ""

    def validate(self) -> None:
        super().validate()
        if self.queue_type not in ("classic", "quorum"):
            raise ConfigurationError("queue_type must be 'classic' or 'quorum'")
        if not 0 <= self.max_priority <= 255:
            raise ConfigurationError("max_priority must be between 0 and 255")
        if self.blocked_connection_timeout <= 0 or self.confirm_timeout <= 0:
            raise ConfigurationError("timeouts must be positive")


def connection_parameters(
    url: URL, options: AMQPOptions, tls: ssl.SSLContext | None, kind: str
) -> list[pika.ConnectionParameters]:
    """One parameter set per host of `url`, tried in order (failover).

    The vhost is the URL path without its first slash (``//`` is ``/``, none is ``/``).
    `kind` names the connection (``<connection_name>:<kind>``) for rabbitmqctl.
    """
    vhost = url.path[1:] if url.path.startswith("/") else url.path
    heartbeat = options.heartbeat
    if heartbeat is None:
        heartbeat = max(1, math.ceil(options.lease_timeout / 2))
    name = options.connection_name or f"conveyor-{os.getpid()}"
    return [
        pika.ConnectionParameters(
            host=host.name,
            port=host.port or (5671 if tls else 5672),
            virtual_host=vhost or "/",
            credentials=pika.PlainCredentials(url.username or "guest", url.password or "guest"),
            heartbeat=heartbeat,
            blocked_connection_timeout=options.blocked_connection_timeout,
            socket_timeout=options.connect_timeout,
            stack_timeout=options.connect_timeout,
            connection_attempts=1,
            ssl_options=pika.SSLOptions(tls, host.name) if tls else None,
            client_properties={"connection_name": f"{name}:{kind}", "product": "conveyor"},
        )
        for host in url.hosts
    ]
