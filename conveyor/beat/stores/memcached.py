"""The Memcached schedule store, for a RabbitMQ broker with a Memcached result backend.

The lease is a key added with a TTL (memcached expires it, in whole seconds: the TTL is the
lease rounded up, plus one second, since memcached's clock ticks once a second) and renewed
or released with a check-and-set on the value read; each entry's last fire time is a key
advanced by check-and-set, so two claims of one tick cannot both succeed. A released lease
is an empty value that expires at once.

One host of the URL holds a namespace's keys (rendezvous hashing on the namespace, the same in
every process). Memcached may evict keys under memory pressure: an evicted last fire time
makes the entry start again from when beat next sees it (nothing is sent twice for times
already claimed unless the key vanished between two claims of the same tick). Where that
matters, keep beat's state in Redis or SQL (`beat_store_url`).
"""

from __future__ import annotations

import contextlib
import math

from pymemcache.client.base import PooledClient
from pymemcache.client.rendezvous import RendezvousHash

from conveyor.backends.base import BackendOptions, namespaced
from conveyor.backends.memcached import DEFAULT_PORT, memcached_key, translated
from conveyor.beat.store import ScheduleStore
from conveyor.core.errors import BackendError, ConfigurationError
from conveyor.core.url import URL

_RACES = 100  # lost check-and-set races before a claim gives up


class MemcachedScheduleStore(ScheduleStore):
    Options = BackendOptions

    def __init__(self, url: URL, namespace: str, options: BackendOptions, prefix: str = "") -> None:
        if not url.hosts:
            raise ConfigurationError(f"{url}: name at least one memcached host")
        self.url = url
        hosts = {str(host): host for host in url.hosts}
        chosen = hosts[RendezvousHash(list(hosts)).get_node(namespace)]
        self._client = PooledClient(
            (chosen.name, chosen.port or DEFAULT_PORT),
            connect_timeout=options.connect_timeout,
            timeout=options.timeout,
            no_delay=True,
            default_noreply=False,
        )
        self._lease = memcached_key(namespaced(prefix, "conveyor-beat-lease:"), namespace)
        self._runs = namespaced(prefix, f"conveyor-beat-run:{namespace}:")

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return translated(what, self.url)

    def _expire(self, ttl: float) -> int:
        """The whole seconds given to memcached: the lease rounded up, plus the second its
        clock may be behind when the key is added, so the lease never ends early."""
        return math.ceil(ttl) + 1

    def longest_lease(self, ttl: float) -> float:
        """`_expire`, plus the second memcached's clock may be behind when it checks the key."""
        return float(self._expire(ttl) + 1)

    def acquire(self, holder: str, ttl: float, now: float) -> bool:
        expire = self._expire(ttl)
        with self._errors("taking the beat lease"):
            value, cas = self._client.gets(self._lease)
            if value is None:
                return bool(self._client.add(self._lease, holder.encode(), expire))
            if value not in (b"", holder.encode()):
                return False
            return self._client.cas(self._lease, holder.encode(), cas, expire) is True

    def release(self, holder: str) -> None:
        with self._errors("releasing the beat lease"):
            value, cas = self._client.gets(self._lease)
            if value == holder.encode():
                self._client.cas(self._lease, b"", cas, 1)

    def leader(self, now: float) -> str | None:
        with self._errors("reading the beat lease"):
            value = self._client.get(self._lease)
        return value.decode() if value else None

    def _key(self, entry: str) -> str:
        return memcached_key(self._runs, entry)

    def claim(self, entry: str, fire_time: float) -> bool:
        key, text = self._key(entry), repr(float(fire_time)).encode()
        with self._errors("claiming a beat tick"):
            for _ in range(_RACES):
                value, cas = self._client.gets(key)
                if value is None:
                    if self._client.add(key, text, 0):
                        return True
                    continue
                if float(value) >= fire_time:
                    return False
                if self._client.cas(key, text, cas, 0) is True:
                    return True
        raise BackendError(f"claiming {entry!r}: lost {_RACES} check-and-set races in a row")

    def last_run(self, entry: str) -> float | None:
        with self._errors("reading a beat entry's last run"):
            value = self._client.get(self._key(entry))
        return None if value is None else float(value)

    def close(self) -> None:
        self._client.close()
