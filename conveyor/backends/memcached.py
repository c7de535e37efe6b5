"""The Memcached result backend (pymemcache): ``memcached://host:port[;host2:port]``.

Every write waits for the server's reply (``noreply=False``): a lost write is an error, not
silence. A store is a gets/cas loop, so a ready record is never downgraded even by racing
writers; counters are ``incr`` (created by ``add`` when missing, then ``touch``-ed so they
expire after their last change). Memcached cannot push, so `wait` polls with a short backoff.

With several hosts a key goes to one host by rendezvous hashing (pymemcache's
RendezvousHash), each host behind its own connection pool. pymemcache's HashClient is not
used: while a host is in its retry window it returns default values (None), which would read
as "unknown id"; here a key whose host is down raises BackendUnavailable instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

from pymemcache.client.base import PooledClient
from pymemcache.client.rendezvous import RendezvousHash
from pymemcache.exceptions import (
    MemcacheError,
    MemcacheServerError,
    MemcacheUnexpectedCloseError,
)

from conveyor.backends.base import (
    READY_MARK,
    BackendOptions,
    OnMessage,
    ResultBackend,
    ResultRecord,
    bounded_key,
    call_idempotent,
    marked,
    namespaced,
    unmarked,
)
from conveyor.core.errors import BackendError, BackendUnavailable, ConfigurationError
from conveyor.core.url import URL

T = TypeVar("T")
log = logging.getLogger("conveyor.backends.memcached")
DEFAULT_PORT = 11211
RESULT_PREFIX = "conveyor-result:"
COUNTER_PREFIX = "conveyor-counter:"
_MAX_KEY = 250
_RELATIVE_EXPIRY_LIMIT = 30 * 24 * 3600  # memcached reads larger expiries as Unix times
_CAS_ATTEMPTS = 1000
_TRANSIENT = (OSError, MemcacheUnexpectedCloseError)


@contextmanager
def translated(what: str, url: URL) -> Iterator[None]:
    """pymemcache's errors as conveyor's: a lost connection is BackendUnavailable, the rest
    BackendError, each naming `what` was being done and where (the URL redacts passwords).
    Shared by the result backend and beat's Memcached store."""
    try:
        yield
    except _TRANSIENT as exc:
        raise BackendUnavailable(f"{what} on {url}: {exc!r}") from exc
    except MemcacheError as exc:
        raise BackendError(f"{what} on {url}: {exc!r}") from exc


def memcached_key(prefix: str, name: str) -> str:
    return bounded_key(prefix, name, _MAX_KEY, plain_ascii=True)


class MemcachedBackend(ResultBackend):
    """Results in one or several memcached servers; `wait` polls."""

    # The default item limit is 1 MiB including the item header and key: keep 1 KiB for them.
    max_value_size: int = 1024 * 1024 - 1024
    authenticates: bool = False

    def __init__(self, url: URL, options: BackendOptions) -> None:
        super().__init__(url, options)
        if url.username is not None or url.password is not None:
            raise ConfigurationError(
                f"{url}: memcached has no authentication; remove the user and password"
            )
        if not url.hosts:
            raise ConfigurationError(f"{url}: name at least one memcached host")
        self._clients = {
            str(host): PooledClient(
                (host.name, host.port or DEFAULT_PORT),
                connect_timeout=options.connect_timeout,
                timeout=options.timeout,
                no_delay=True,
                default_noreply=False,
            )
            for host in url.hosts
        }
        self._ring = RendezvousHash(list(self._clients))
        self._results = namespaced(options.namespace, RESULT_PREFIX)
        self._counters = namespaced(options.namespace, COUNTER_PREFIX)

    def _client(self, key: str) -> PooledClient:
        return self._clients[self._ring.get_node(key)]

    def _errors(self, what: str) -> AbstractContextManager[None]:
        return translated(what, self.url)

    def _idempotent(self, what: str, operation: Callable[[], T]) -> T:
        with self._errors(what):
            return call_idempotent(operation, _TRANSIENT)

    def _expire(self) -> int:
        """The expiry argument: whole seconds, or a Unix time past memcached's 30 days."""
        expires = self.options.result_expires
        if not expires:
            return 0
        if expires > _RELATIVE_EXPIRY_LIMIT:
            return math.ceil(time.time() + expires)
        return math.ceil(expires)

    # -- the contract ----------------------------------------------------------------

    def store(self, record: ResultRecord) -> bool:
        record, data = self.encode(record)
        key = memcached_key(self._results, record.task_id)
        try:
            return self._idempotent("store", lambda: self._store(key, marked(record, data)))
        except BackendError as exc:
            if not isinstance(exc.__cause__, MemcacheServerError) or "too large" not in str(exc):
                raise
        # The server's item limit is lower than declared (memcached -I): say so in the record.
        record, data = self.too_large(record, len(data), None)
        return self._idempotent("store", lambda: self._store(key, marked(record, data)))

    def _store(self, key: str, value: bytes) -> bool:
        client, expire = self._client(key), self._expire()
        for _ in range(_CAS_ATTEMPTS):
            current, token = client.gets(key)
            if current is None:
                if client.add(key, value, expire=expire, noreply=False):
                    return True
            elif current[:1] == READY_MARK:
                return False
            elif client.cas(key, value, token, expire=expire, noreply=False):
                return True
            # Someone wrote (or the key vanished) between gets and the write: read again.
        raise BackendError(f"store on {self.url}: key {key!r} changed {_CAS_ATTEMPTS} times")

    def get(self, task_id: str) -> ResultRecord | None:
        key = memcached_key(self._results, task_id)
        return unmarked(self._idempotent("get", lambda: self._client(key).get(key)))

    def get_many(self, task_ids: Iterable[str]) -> dict[str, ResultRecord | None]:
        keys = {task_id: memcached_key(self._results, task_id) for task_id in task_ids}
        by_host: dict[str, list[str]] = defaultdict(list)
        for key in keys.values():
            by_host[self._ring.get_node(key)].append(key)
        found: dict[str, bytes] = {}
        for host, host_keys in by_host.items():
            found.update(self._get_many(self._clients[host], host_keys))
        return {task_id: unmarked(found.get(key)) for task_id, key in keys.items()}

    def _get_many(self, client: PooledClient, keys: list[str]) -> dict[str, bytes]:
        return self._idempotent("get_many", lambda: client.get_many(keys))

    def wait(
        self, task_id: str, timeout: float | None, on_message: OnMessage | None = None
    ) -> ResultRecord:
        return self.poll_wait(task_id, timeout, on_message)

    def forget(self, task_id: str) -> None:
        key = memcached_key(self._results, task_id)
        self._idempotent("forget", lambda: self._client(key).delete(key, noreply=False))

    def incr(self, key: str, amount: int = 1) -> int:
        """incr (decr for a negative amount; memcached counters stop at 0), add when missing.

        Not retried on a dropped connection: a repeat could count twice.
        """
        name = memcached_key(self._counters, key)
        client, expire = self._client(name), self._expire()
        with self._errors("incr"):
            for _ in range(_CAS_ATTEMPTS):
                if amount >= 0:
                    value = client.incr(name, amount, noreply=False)
                else:
                    value = client.decr(name, -amount, noreply=False)
                if value is None and client.add(
                    name, str(max(amount, 0)).encode(), expire=expire, noreply=False
                ):
                    return max(amount, 0)
                if value is not None:
                    self._refresh(client, name, expire)
                    return int(value)
        raise BackendError(f"incr on {self.url}: counter {key!r} kept vanishing")

    def _refresh(self, client: PooledClient, name: str, expire: int) -> None:
        """Restart a counter's expiry. The increment is done by now, so a failure here is
        logged, not raised: raising would invite a retry that counts twice."""
        if not expire:
            return
        try:
            client.touch(name, expire=expire, noreply=False)
        except (MemcacheError, OSError) as exc:
            log.warning("counter %r on %s: its expiry was not refreshed: %r", name, self.url, exc)

    def close(self) -> None:
        for client in self._clients.values():
            with self._errors("close"):
                client.close()
