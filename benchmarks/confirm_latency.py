"""Publisher-confirm cost on RabbitMQ by queue type: raw pika beside conveyor's two modes.

``python -m benchmarks.confirm_latency [--url amqp://...] [-n 2000] [--rounds 3]``

Each round runs every row once, in order, so rows are interleaved against the machine's
noise; the report gives the median and the range over rounds. Rows:

* raw pika, confirm each: a BlockingChannel in confirm mode, persistent messages; each
  basic_publish waits for its confirm, so its wall time is the confirm latency.
* raw pika, unconfirmed: the same messages with no confirm mode (the ceiling of a write).
* Dramatiq's `send` loop, its default (unconfirmed) and with ``confirm_delivery=True``.
* conveyor `each`: ``send_task`` in a loop with ``broker_publish_confirm="each"``.
* conveyor `pipelined`: the same loop with ``"pipelined"``, then ``app.flush()``; the rate
  includes the flush.

Queue kinds: classic v1 and v2, each with and without priorities (``x-max-priority=10`` is
conveyor's default declaration), and quorum. conveyor declares no queue version, so its
"classic v2, priorities" row puts a policy (``queue-version: 2``, through rabbitmqctl) on the
benchmark's own queues, as a user would; its "classic v1" row is ``?max_priority=0`` and its
quorum row ``?queue_type=quorum``.
Client CPU is this process's CPU time per message (`time.process_time`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pika

from benchmarks.raw_amqp import PERSISTENT, connect
from conveyor import Conveyor
from conveyor.core.registry import create_transport

QUEUE_KINDS: dict[str, dict[str, Any]] = {
    "classic v1, priorities": {"x-queue-type": "classic", "x-max-priority": 10},
    "classic v1": {"x-queue-type": "classic"},
    "classic v2, priorities": {
        "x-queue-type": "classic",
        "x-queue-version": 2,
        "x-max-priority": 10,
    },
    "classic v2": {"x-queue-type": "classic", "x-queue-version": 2},
    "quorum": {"x-queue-type": "quorum"},
}
# conveyor's declarations for each kind: URL options, and a queue-name prefix that the
# policy set by `v2_policy` (queue-version 2) matches.
CONVEYOR_KINDS = {
    "classic v1, priorities": ("", "bench-confirm-"),
    "classic v1": ("?max_priority=0", "bench-confirm-"),
    "classic v2, priorities": ("", "bench-confirm-v2-"),
    "quorum": ("?queue_type=quorum", "bench-confirm-"),
}
V2_POLICY = "bench-confirm-v2"
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
    options, prefix = CONVEYOR_KINDS[kind]
    broker = url + options
    app = Conveyor(
        "bench",
        broker=broker,
        backend="memory://bench",
        broker_publish_confirm=mode,
        task_ignore_result=True,
        task_send_sent_event=False,
    )
    queue = f"{prefix}{uuid.uuid4().hex[:8]}"
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


def dramatiq_send(url: str, kind: str, n: int, confirm: bool) -> dict[str, float]:
    """Dramatiq's `send` loop on its own RabbitMQ broker (its default: `confirm_delivery`
    off; on, each send waits for its confirm). Needs the bench extra."""
    import dramatiq
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    del kind  # Dramatiq declares its own classic queues
    if url.endswith("//"):  # conveyor's spelling of the vhost "/"; pika's is %2F
        url = url[:-1] + "%2F"
    broker = RabbitmqBroker(url=url, confirm_delivery=confirm)
    queue = f"bench-confirm-{uuid.uuid4().hex[:8]}"

    def noop(i: int) -> None:
        del i

    actor = dramatiq.actor(noop, broker=broker, queue_name=queue)
    actor.send(0)  # connect and declare before the clock
    latencies = []
    cpu, start = time.process_time(), time.perf_counter()
    for i in range(n):
        began = time.perf_counter()
        actor.send(i)
        latencies.append(time.perf_counter() - began)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
        broker.channel.queue_delete(name)
    broker.close()
    return _row(n, wall, cpu, latencies)


def _row(n: int, wall: float, cpu: float, latencies: list[float]) -> dict[str, float]:
    latencies.sort()
    return {
        "rate": n / wall,
        "cpu_us": cpu / n * 1e6,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


RAW_CONFIRMED = [
    (kind, "raw pika, confirm each", lambda u, k, n: raw(u, k, n, True)) for kind in QUEUE_KINDS
]
ROWS: list[tuple[str, str, Callable[[str, str, int], dict[str, float]]]] = [
    *RAW_CONFIRMED,
    ("classic v1, priorities", "raw pika, unconfirmed", lambda u, k, n: raw(u, k, n, False)),
    ("classic v1 (Dramatiq's)", "dramatiq, default", lambda u, k, n: dramatiq_send(u, k, n, False)),
    (
        "classic v1 (Dramatiq's)",
        "dramatiq, confirm_delivery",
        lambda u, k, n: dramatiq_send(u, k, n, True),
    ),
    *[
        (kind, f"conveyor {mode}", lambda u, k, n, mode=mode: conveyor(u, k, n, mode))
        for kind in CONVEYOR_KINDS
        for mode in ("each", "pipelined")
    ],
]


@contextlib.contextmanager
def v2_policy() -> Iterator[None]:
    """A policy giving conveyor's queues named bench-confirm-v2-* queue version 2 (conveyor
    declares no version: the node's default or a policy decides)."""
    subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "set_policy",
            "--apply-to",
            "queues",
            V2_POLICY,
            "^bench-confirm-v2-",
            '{"queue-version": 2}',
        ],
        check=True,
        timeout=60,
    )
    try:
        yield
    finally:
        subprocess.run(["rabbitmqctl", "-q", "clear_policy", V2_POLICY], check=False, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("CONVEYOR_TEST_AMQP_URL", "amqp://"))
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with v2_policy():
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
