"""The raw redis-py baseline for transport_bench.py: the same work, no conveyor.

Publish: one LPUSH of `batch` values per round trip (what conveyor's publish_many sends).
Consume: the reliable-queue pattern with the same guarantees' core: a pipeline of `batch`
LMOVEs from the queue into an in-flight list (atomic take, one round trip), then a pipeline
of LREMs to acknowledge them (one round trip); BLMOVE when the queue is empty.

The task benchmark's floor worker (`benchmarks/tasks/systems/raw_worker.py`) runs the same
`consume` with a `Work` that executes each batch before it is acknowledged.
"""

from __future__ import annotations

import redis

from benchmarks.raw_work import TAKE_ONLY, Work


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, protocol=2)


def publish(url: str, queue: str, bodies: list[bytes], batch: int) -> None:
    client = _client(url)
    for start in range(0, len(bodies), batch):
        client.lpush(queue, *bodies[start : start + batch])
    client.close()


def consume(url: str, queue: str, n: int | None, batch: int, work: Work = TAKE_ONLY) -> None:
    """`n` messages (None: until `work.running()` is false); see raw_work."""
    client = _client(url)
    in_flight = f"{queue}:in-flight"
    received = 0
    while (n is None or received < n) and work.running():
        take = client.pipeline(transaction=False)
        for _ in range(batch if n is None else min(batch, n - received)):
            take.lmove(queue, in_flight, "RIGHT", "LEFT")
        items = [item for item in take.execute() if item is not None]
        if not items:
            item = client.blmove(queue, in_flight, 1, "RIGHT", "LEFT")
            items = [] if item is None else [item]
        if items:
            work.handle(items)
        ack = client.pipeline(transaction=False)
        for item in items:
            ack.lrem(in_flight, -1, item)
        ack.execute()
        received += len(items)
    client.close()


def cleanup(url: str, queue: str) -> None:
    client = _client(url)
    client.delete(queue, f"{queue}:in-flight")
    client.close()
