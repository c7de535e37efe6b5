"""The client side of each workload, run inside the driver subprocess against one system.

Each function returns metrics as {name: value}; names end in their unit. The harness
(run.py) owns the worker side: it starts workers, times the drain from the ledger's stamps
and reads the workers' CPU around `roundtrip`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from benchmarks import raw_amqp


class Client(Protocol):
    """What every `systems/*_app.py` offers the driver."""

    name: str

    def send(self, i: int) -> Any:
        """Enqueue add(i, i) the library's usual way (`delay`, `send`, a call)."""

    def wait(self, handle: Any, timeout: float) -> Any:
        """Block until the task's result is there and return it."""

    def pending(self) -> int:
        """Messages still in the run's queue (ready, delayed or unacked where visible)."""

    def problems(self) -> list[str]:
        """Anything the system parked aside, e.g. dead letters."""

    def cleanup(self) -> None:
        """Remove the run's queue and close connections."""


class BatchClient(Client, Protocol):
    """A system with a batched enqueue path (conveyor)."""

    def messages(self, values: list[int]) -> list[Any]: ...
    def publish_batch(self, queue: str, messages: list[Any]) -> None: ...
    def bodies(self, values: list[int]) -> list[bytes]: ...
    def size(self, queue: str) -> int: ...
    def delete(self, queue: str) -> None: ...


class Mismatch(AssertionError):
    """A task returned something other than x + y."""


def _timed(fn: Any) -> tuple[Any, float, float]:
    """(fn(), wall seconds, this process's CPU seconds)."""
    cpu, start = time.process_time(), time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start, time.process_time() - cpu


def _check(i: int, value: Any) -> None:
    if value != i + i:
        raise Mismatch(f"add({i}, {i}) returned {value!r}")


def enqueue(client: Client, n: int) -> dict[str, float]:
    """`n` single enqueues in a loop, no worker running; a client that pipelines its
    publishes (it has `flush`) is timed until every one is confirmed."""
    flush = getattr(client, "flush", lambda: None)
    _, wall, cpu = _timed(lambda: ([client.send(i) for i in range(n)], flush()))
    return {"enqueue_per_s": n / wall, "enqueue_client_cpu_us": cpu / n * 1e6}


def enqueue_batch(client: BatchClient, queue: str, n: int) -> dict[str, float]:
    """`n` tasks through the batched path into a side queue no worker reads, counted, removed:
    building the task messages and publishing them, and the publish alone."""
    messages, build, _ = _timed(lambda: client.messages(list(range(n))))
    _, publish, _ = _timed(lambda: client.publish_batch(queue, messages))
    try:
        size = client.size(queue)
        if size != n:
            raise AssertionError(f"batched enqueue left {size} messages, expected {n}")
    finally:
        client.delete(queue)
    return {
        "enqueue_batch_per_s": n / (build + publish),
        "enqueue_batch_publish_per_s": n / publish,
    }


def enqueue_raw_amqp(
    client: BatchClient, url: str, queue: str, n: int, timeout: float
) -> dict[str, float]:
    """The ceiling for the batched publish on RabbitMQ: `n` task bodies like its own, built
    before the clock starts, through a raw pika basic_publish loop without confirms into a
    side queue that is counted and removed."""
    bodies = client.bodies(list(range(n)))
    return {"enqueue_raw_unconfirmed_per_s": raw_amqp.unconfirmed_rate(url, queue, bodies, timeout)}


def roundtrip(client: Client, n: int, timeout: float) -> dict[str, float]:
    """Enqueue `n`, then wait for every result in order and check it."""

    def run() -> None:
        handles = [client.send(i) for i in range(n)]
        deadline = time.monotonic() + timeout
        for i, handle in enumerate(handles):
            _check(i, client.wait(handle, max(0.1, deadline - time.monotonic())))

    _, wall, cpu = _timed(run)
    return {"roundtrip_per_s": n / wall, "roundtrip_client_cpu_us": cpu / n * 1e6}


def latency(client: Client, samples: int, timeout: float, budget: float) -> dict[str, float]:
    """One task at a time on an idle worker: send, wait for its result. Stops early after
    `budget` seconds (a polling transport can take a second per task), so `latency_samples`
    says how many samples the percentiles stand on."""
    times: list[float] = []
    stop = time.monotonic() + budget
    for i in range(samples):
        if times and time.monotonic() > stop:
            break
        start = time.perf_counter()
        _check(i, client.wait(client.send(i), timeout))
        times.append(time.perf_counter() - start)
    return {
        "latency_p50_ms": percentile(times, 50) * 1e3,
        "latency_p99_ms": percentile(times, 99) * 1e3,
        "latency_samples": len(times),
    }


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(len * p / 100)
    return ordered[int(rank) - 1]


def warmup(client: Client, n: int, timeout: float) -> dict[str, float]:
    """A few round trips to prove the worker is up (when no drain did it)."""
    for i in range(n):
        _check(i, client.wait(client.send(i), timeout))
    return {}
