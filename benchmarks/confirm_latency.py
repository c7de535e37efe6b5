"""Publisher-confirm cost on RabbitMQ by queue type: raw pika beside conveyor's two modes.

``python -m benchmarks.confirm_latency [--url amqp://...] [-n 2000] [--rounds 3]``

Each round runs every row once, in order, so rows are interleaved against the machine's
noise; the report gives the median and the range over rounds. Rows:

* raw pika, confirm each: a BlockingChannel in confirm mode, persistent messages; each
  basic_publish waits for its confirm, so its wall time is the confirm latency.
* raw pika, unconfirmed: the same messages with no confirm mode (the ceiling of a write).
* conveyor `each`: ``send_task`` in a loop with ``broker_publish_confirm="each"``.
* conveyor `pipelined`: the same loop with ``"pipelined"``, then ``app.flush()``; the rate
  includes the flush.

Queue kinds: classic (conveyor declares ``x-max-priority=10``; raw pika declares the same),
classic v2 (``x-queue-version: 2``, raw pika only: conveyor takes the node's default
version, which a policy can set), and quorum (conveyor: ``?queue_type=quorum``).
Client CPU is this process's CPU time per message (`time.process_time`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika

from benchmarks.raw_amqp import PERSISTENT, connect
from conveyor import Conveyor
from conveyor.core.registry import create_transport

QUEUE_KINDS: dict[str, dict[str, Any]] = {
    "classic": {"x-queue-type": "classic", "x-max-priority": 10},
    "classic v2": {"x-queue-type": "classic", "x-queue-version": 2},
    "quorum": {"x-queue-type": "quorum"},
}
BODY = b'{"task": "bench.noop", "args": [1, 2]}' + b" " * 200


def raw(url: str, kind: str, n: int, confirm: bool) -> dict[str, float]:
    connection = connect(url)
    channel = connection.channel()
    queue = f"bench-confirm-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, durable=True, arguments=QUEUE_KINDS[kind])
    if confirm:
        channel.confirm_delivery()
    latencies = []
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(n):
        began = time.perf_counter()
        channel.basic_publish("", queue, BODY, PERSISTENT, mandatory=confirm)
        latencies.append(time.perf_counter() - began)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    channel.queue_delete(queue)
    connection.close()
    return _row(n, wall, cpu, latencies)


def conveyor(url: str, kind: str, n: int, mode: str) -> dict[str, float]:
    broker = url + ("?queue_type=quorum" if kind == "quorum" else "")
    app = Conveyor(
        "bench",
        broker=broker,
        backend="memory://bench",
        broker_publish_confirm=mode,
        task_ignore_result=True,
        task_send_sent_event=False,
    )
    queue = f"bench-confirm-{uuid.uuid4().hex[:8]}"
    app.send_task("bench.noop", (0,), queue=queue)  # connect and declare before the clock
    app.flush()
    latencies = []
    cpu, start = time.process_time(), time.perf_counter()
    for i in range(n):
        began = time.perf_counter()
        app.send_task("bench.noop", (i,), queue=queue)
        latencies.append(time.perf_counter() - began)
    app.flush()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    with create_transport(broker) as cleaner:
        cleaner.delete(queue)
    app.close()
    return _row(n, wall, cpu, latencies)


def _row(n: int, wall: float, cpu: float, latencies: list[float]) -> dict[str, float]:
    latencies.sort()
    return {
        "rate": n / wall,
        "cpu_us": cpu / n * 1e6,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


ROWS: list[tuple[str, str, Callable[[str, str, int], dict[str, float]]]] = [
    (kind, label, run)
    for kind in ("classic", "classic v2", "quorum")
    for label, run in (
        ("raw pika, confirm each", lambda u, k, n: raw(u, k, n, True)),
        ("raw pika, unconfirmed", lambda u, k, n: raw(u, k, n, False)),
        ("conveyor each", lambda u, k, n: conveyor(u, k, n, "each")),
        ("conveyor pipelined", lambda u, k, n: conveyor(u, k, n, "pipelined")),
    )
    if kind != "classic v2" or label.startswith("raw")
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("CONVEYOR_TEST_AMQP_URL", "amqp://"))
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for kind, label, run in ROWS:
            results.setdefault((kind, label), []).append(run(args.url, kind, args.n))
    print(f"n={args.n}, rounds={args.rounds}, pika {pika.__version__}; median (min-max)")
    print("| queue | publisher | msgs/s | confirm wait p50 (ms) | p99 (ms) | client CPU (µs/msg) |")
    print("|---|---|---:|---:|---:|---:|")
    for (kind, label), runs in results.items():
        cells = [_cell([r[key] for r in runs]) for key in ("rate", "p50_ms", "p99_ms", "cpu_us")]
        print(f"| {kind} | {label} | " + " | ".join(cells) + " |")


def _cell(values: list[float]) -> str:
    fmt = "{:,.0f}" if max(values) >= 100 else "{:.2f}"
    middle = fmt.format(statistics.median(values))
    return f"{middle} ({fmt.format(min(values))}-{fmt.format(max(values))})"


if __name__ == "__main__":
    main()
