"""The raw redis-py baseline for transport_bench.py: the same work, no conveyor.

Publish: one LPUSH of `batch` values per round trip (what conveyor's publish_many sends).
Consume: the reliable-queue pattern with the same guarantees' core: a pipeline of `batch`
LMOVEs from the queue into an in-flight list (atomic take, one round trip), then a pipeline
of LREMs to acknowledge them (one round trip); BLMOVE when the queue is empty.
"""

from __future__ import annotations

import redis


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, protocol=2)


def publish(url: str, queue: str, bodies: list[bytes], batch: int) -> None:
    client = _client(url)
    for start in range(0, len(bodies), batch):
        client.lpush(queue, *bodies[start : start + batch])
    client.close()


def consume(url: str, queue: str, n: int, batch: int) -> None:
    client = _client(url)
    in_flight = f"{queue}:in-flight"
    received = 0
    while received < n:
        take = client.pipeline(transaction=False)
        for _ in range(min(batch, n - received)):
            take.lmove(queue, in_flight, "RIGHT", "LEFT")
        items = [item for item in take.execute() if item is not None]
        if not items:
            item = client.blmove(queue, in_flight, 1, "RIGHT", "LEFT")
            items = [] if item is None else [item]
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
