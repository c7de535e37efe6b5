"""The Redis schedule store: a lease key with a TTL (Redis's clock expires it) and a hash of
last fire times, each change one Lua script (acquire.lua, release.lua, claim.lua beside this
file). The connection (hosts, failover, TLS, error translation) is conveyor.clients.redis.

Keys: ``conveyor:beat:{<namespace>}:lease`` (holder, PX ttl) and
``conveyor:beat:{<namespace>}:runs`` (HASH entry -> last fire time), behind ``<prefix>:``
with a prefix; the hash tag keeps them in one cluster slot.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from conveyor.backends.base import namespaced
from conveyor.beat.store import ScheduleStore
from conveyor.clients.redis import RedisLink, RedisOptions
from conveyor.core.url import URL

SCRIPT_NAMES = ("acquire", "release", "claim")


def _load(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text()


class RedisScheduleStore(ScheduleStore):
    Options = RedisOptions

    def __init__(self, url: URL, namespace: str, options: RedisOptions, prefix: str = "") -> None:
        self._link = RedisLink(url, options, {name: _load(name) for name in SCRIPT_NAMES})
        start = namespaced(prefix, f"conveyor:beat:{{{namespace}}}")
        self._lease, self._runs = f"{start}:lease".encode(), f"{start}:runs".encode()

    def _run(self, name: str, keys: list[bytes], args: list[Any]) -> Any:
        return self._link.run(f"beat {name}", name, keys, args)

    def acquire(self, holder: str, ttl: float, now: float) -> bool:
        return bool(self._run("acquire", [self._lease], [holder, max(1, round(ttl * 1000))]))

    def release(self, holder: str) -> None:
        self._run("release", [self._lease], [holder])

    def leader(self, now: float) -> str | None:
        value = self._link.call("beat leader", lambda client: client.get(self._lease))
        return value.decode() if isinstance(value, bytes) else value

    def claim(self, entry: str, fire_time: float) -> bool:
        return bool(self._run("claim", [self._runs], [entry, repr(float(fire_time))]))

    def last_run(self, entry: str) -> float | None:
        value = self._link.call("beat last run", lambda client: client.hget(self._runs, entry))
        return float(value) if value is not None else None

    def close(self) -> None:
        self._link.close()
