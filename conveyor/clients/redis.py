"""A Redis connection as conveyor's Redis components hold it: hosts tried in order, one
pool, the caller's Lua scripts registered on it, and the translation of every redis-py error
into conveyor's own. The transport and the result backend share it from here.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conveyor.clients.redis_held import HeldConnection
from conveyor.clients.tls import TLSOptions
from conveyor.core.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    ConnectionLost,
    ConveyorError,
    InvalidURL,
)
from conveyor.core.url import URL, Host

T = TypeVar("T")
DEFAULT_PORT = 6379
MIN_SOCKET_TIMEOUT = 1.0  # must outlast the longest blocking read the transport issues
_AUTH_ERRORS = (
    redis.AuthenticationError,
    redis.exceptions.AuthorizationError,
    redis.exceptions.NoPermissionError,
)


@dataclass
class RedisOptions(TLSOptions):
    """Redis options on top of the common ones.

    socket_timeout: seconds a reply may take before the connection counts as lost.
    ssl_*: TLS settings for ``rediss://`` (see `TLSOptions`).
    """

    socket_timeout: float = 10.0

    def validate(self) -> None:
        super().validate()
        if self.socket_timeout < MIN_SOCKET_TIMEOUT:
            raise ConfigurationError(f"socket_timeout must be at least {MIN_SOCKET_TIMEOUT} s")


ENDPOINT_SETTINGS = ("host", "port", "path", "db", "username", "password")


def endpoint_of(client: redis.Redis) -> dict[str, Any]:
    """The settings of `client` that name a Redis database and who talks to it."""
    pool = client.connection_pool
    return _endpoint(pool.connection_kwargs, pool.connection_class)


def _endpoint(kwargs: dict[str, Any], connection_class: type) -> dict[str, Any]:
    return {**{name: kwargs.get(name) for name in ENDPOINT_SETTINGS}, "class": connection_class}


class RedisLink:
    """Connects lazily on first use; after a connection error with several hosts, the next
    call tries them in order again. `scripts` (name -> Lua source) are registered on the
    client when it connects and run by name (`run`)."""

    def __init__(
        self, url: URL, options: RedisOptions, scripts: Mapping[str, str] | None = None
    ) -> None:
        if url.scheme not in ("redis", "rediss"):
            raise InvalidURL(f"{url} is not a redis:// or rediss:// URL")
        db = url.path.strip("/") or "0"
        if not db.isdigit():
            raise InvalidURL(f"{url}: the path must be a database number, like /0")
        self.url, self.options, self._db = url, options, int(db)
        self._hosts = url.hosts or (Host("localhost", DEFAULT_PORT),)
        self._client: redis.Redis | None = None
        self._held = HeldConnection()
        self._sources = dict(scripts or {})
        self._digests = {
            name: hashlib.sha1(source.encode()).hexdigest()
            for name, source in self._sources.items()
        }
        self._lock = threading.Lock()

    def connection_kwargs(self, host: Host) -> dict[str, Any]:
        """The redis-py ConnectionPool arguments for `host` (no I/O)."""
        options, url = self.options, self.url
        kwargs: dict[str, Any] = {
            "host": host.name,
            "port": host.port or DEFAULT_PORT,
            "db": self._db,
            "username": url.username,
            "password": url.password,
            "socket_connect_timeout": options.connect_timeout,
            "socket_timeout": options.socket_timeout,
            "socket_keepalive": True,
            "retry": Retry(NoBackoff(), 0),  # a blind retry could run a script twice
            # RESP2: with RESP3, redis-py 8 skips its check for connections closed while idle
            # in the pool, so the first command after a cut connection would fail.
            "protocol": 2,
        }
        if url.scheme == "rediss":
            kwargs.update(
                connection_class=redis.SSLConnection,
                ssl_cert_reqs=options.ssl_cert_reqs,
                ssl_ca_certs=options.ssl_ca_certs,
                ssl_certfile=options.ssl_certfile,
                ssl_keyfile=options.ssl_keyfile,
            )
        return kwargs

    def endpoint(self) -> dict[str, Any] | None:
        """What `endpoint_of` says of the client this link will use (no I/O); None with
        several hosts, where that depends on which one answers."""
        if len(self._hosts) != 1:
            return None
        kwargs = self.connection_kwargs(self._hosts[0])
        return _endpoint(kwargs, kwargs.get("connection_class", redis.Connection))

    def _connect(self) -> redis.Redis:
        """Try the hosts in order; the first that answers PING becomes the connection."""
        with self._lock:
            if self._client is not None:
                return self._client
            failures = []
            for host in self._hosts:
                pool = redis.ConnectionPool(**self.connection_kwargs(host))
                client = redis.Redis(connection_pool=pool)
                try:
                    client.ping()
                except _AUTH_ERRORS as exc:
                    client.close()
                    raise AuthenticationFailed(
                        f"Redis at {host} refused the credentials of {self.url}: {exc}"
                    ) from exc
                except (redis.RedisError, OSError) as exc:
                    client.close()
                    failures.append(f"{host}: {exc}")
                    continue
                self._client = client
                return client
            raise BrokerUnavailable(f"cannot reach Redis for {self.url}: {'; '.join(failures)}")

    def call(self, what: str, operation: Callable[[redis.Redis], T]) -> T:
        """Run `operation` on the client; every redis-py error becomes a conveyor error."""
        client = self._client or self._connect()
        try:
            return operation(client)
        except (redis.RedisError, OSError) as exc:
            raise self.translate(exc, what) from exc

    def send_all(self, what: str, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send `commands` in one write and read every reply (HeldConnection.send_all),
        with redis-py's errors translated."""
        client = self._client or self._connect()
        try:
            return self._held.send_all(client, commands)
        except (redis.RedisError, OSError) as exc:
            raise self.translate(exc, what) from exc

    def run(self, what: str, script: str, keys: Sequence[bytes], args: Sequence[Any]) -> Any:
        """Run one of the scripts given at construction by name: EVALSHA, and EVAL with the
        source when the server does not know the script (first use, a restart, SCRIPT
        FLUSH). Both go through `send_all`, the held connection: every fetch and ack is a
        script, and redis-py's per-command path (pool checkout, argument checks, retry
        wrapper) cost more CPU than the round trip."""
        count = len(keys)
        (reply,) = self.send_all(what, [("EVALSHA", self._digests[script], count, *keys, *args)])
        if isinstance(reply, redis.exceptions.NoScriptError):
            (reply,) = self.send_all(what, [("EVAL", self._sources[script], count, *keys, *args)])
        if isinstance(reply, redis.RedisError):
            raise self.translate(reply, what) from reply
        return reply

    def translate(self, exc: BaseException, what: str) -> ConveyorError:
        if isinstance(exc, _AUTH_ERRORS):
            return AuthenticationFailed(f"{what}: Redis refused {self.url}: {exc}")
        refused = isinstance(exc, (redis.BusyLoadingError, redis.ReadOnlyError))  # not run
        lost = not refused and isinstance(exc, (redis.ConnectionError, redis.TimeoutError, OSError))
        if lost or refused:
            if len(self._hosts) > 1:
                self.close()  # the next call tries the hosts in order again
            kind = ConnectionLost if lost else BrokerUnavailable
            return kind(f"{what}: connection to Redis for {self.url} failed: {exc}")
        return BrokerError(f"{what}: Redis error: {exc}")

    @property
    def connected(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        self._held.close()
        if client is not None:
            client.close()
