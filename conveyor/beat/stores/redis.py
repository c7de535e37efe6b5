"""The Redis schedule store: a lease key with a TTL (Redis's clock expires it) and a hash of
last fire times, each change one Lua script (acquire.lua, release.lua, claim.lua beside this
file). The connection (hosts, failover, TLS, error translation) is the transport's RedisLink.

Keys: ``conveyor:beat:{<namespace>}:lease`` (holder, PX ttl) and
``conveyor:beat:{<namespace>}:runs`` (HASH entry -> last fire time); the hash tag keeps
them in one cluster slot.
"""

from __future__ import annotations

import threading
from importlib import resources
from typing import Any

import redis

from conveyor.beat.store import ScheduleStore
from conveyor.core.url import URL
from conveyor.transports.redis_link import RedisLink, RedisOptions

SCRIPT_NAMES = ("acquire", "release", "claim")


def _load(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text()


class RedisScheduleStore(ScheduleStore):
    Options = RedisOptions

    def __init__(self, url: URL, namespace: str, options: RedisOptions) -> None:
        self._link = RedisLink(url, options)
        prefix = f"conveyor:beat:{{{namespace}}}"
        self._lease, self._runs = f"{prefix}:lease", f"{prefix}:runs"
        self._texts = {name: _load(name) for name in SCRIPT_NAMES}
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _script(self, name: str, client: redis.Redis) -> Any:
        with self._lock:
            script = self._scripts.get(name)
            if script is None:
                script = self._scripts[name] = client.register_script(self._texts[name])
            return script

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return self._link.call(
            f"beat {name}",
            lambda client: self._script(name, client)(keys=keys, args=args, client=client),
        )

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
