"""The execution ledger every benchmark task writes to, whatever system runs it.

Each execution runs one Lua script on Redis: it increments the run's counter and stamps the
server time of the first and of the latest execution. One round trip per task, the same for
every system, so the ledger costs the same everywhere. The harness reads the counter to check
"exactly N executions" and the two stamps to time a drain without polling.

Workers find the ledger through the environment: BENCH_COUNTER_URL (a Redis URL) and
BENCH_RUN_KEY (the key prefix of this run).
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

_HIT = """
local n = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local stamp = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
if n == 1 then redis.call('SET', KEYS[2], stamp) end
redis.call('SET', KEYS[3], stamp)
redis.call('EXPIRE', KEYS[1], 3600)
return n
"""

# The worker's ready stamp (conveyor's worker_ready signal): the first process to say it.
_READY = """
local t = redis.call('TIME')
local stamp = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
return redis.call('SET', KEYS[1], stamp, 'NX', 'EX', 3600)
"""

_client: tuple[int, Any] | None = None


def keys(prefix: str) -> list[str]:
    return [f"{prefix}:count", f"{prefix}:first", f"{prefix}:last"]


def hit() -> None:
    """Record one execution (called by the `add` task of every system)."""
    global _client
    pid = os.getpid()
    if _client is None or _client[0] != pid:  # a forked pool child opens its own connection
        connection = redis.Redis.from_url(os.environ["BENCH_COUNTER_URL"])
        _client = (pid, connection.register_script(_HIT))
    _client[1](keys=keys(os.environ["BENCH_RUN_KEY"]))


def ready() -> None:
    """Stamp the server time at which a worker said ready, unless one did before."""
    connection = redis.Redis.from_url(os.environ["BENCH_COUNTER_URL"])
    try:
        connection.register_script(_READY)(keys=[f"{os.environ['BENCH_RUN_KEY']}:ready"])
    finally:
        connection.close()


class Ledger:
    """The harness's side: read and remove one run's counter and stamps."""

    def __init__(self, url: str, prefix: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.count_key, self.first_key, self.last_key = keys(prefix)
        self.ready_key = f"{prefix}:ready"

    def count(self) -> int:
        return int(self.redis.get(self.count_key) or 0)

    def now(self) -> float:
        """The server clock, the one the stamps are taken on."""
        seconds, micros = self.redis.time()
        return seconds + micros / 1e6

    def last(self) -> float:
        """Server time of the latest execution (0.0 before the first)."""
        stamp = self.redis.get(self.last_key)
        return float(stamp) if stamp is not None else 0.0

    def ready(self) -> float:
        """Server time of the first worker ready stamp (0.0 when none was stamped)."""
        stamp = self.redis.get(self.ready_key)
        return float(stamp) if stamp is not None else 0.0

    def span(self) -> float:
        """Seconds from the first to the latest execution (server clock)."""
        first, last = self.redis.mget(self.first_key, self.last_key)
        if first is None or last is None:
            return 0.0
        return float(last) - float(first)

    def cost_us(self, calls: int = 500) -> float:
        """CPU µs one ledger write costs its caller (every task pays it once), measured
        in this process against throwaway keys."""
        script = self.redis.register_script(_HIT)
        probe = keys(f"{self.count_key}:probe")
        script(keys=probe)  # load the script
        started = time.process_time()
        for _ in range(calls):
            script(keys=probe)
        spent = time.process_time() - started
        self.redis.delete(*probe)
        return spent / calls * 1e6

    def delete(self) -> None:
        self.redis.delete(self.count_key, self.first_key, self.last_key, self.ready_key)
        self.redis.close()
