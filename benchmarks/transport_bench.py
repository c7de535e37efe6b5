"""Transport throughput: conveyor against the raw client library, same broker, same run.

    python benchmarks/transport_bench.py --broker redis://127.0.0.1:6379/0 [--messages 20000]

Two phases, each timed on its own: *publish* (``publish_many`` in batches of ``--batch``)
and *fetch+ack* (``fetch(max_messages=batch)`` then ``ack_many``). The inputs are built
before the clock starts on both sides (conveyor: Message objects; raw: body bytes), so
publish times the transport: envelope encoding, size checks and the broker round trips.
Each repetition uses a fresh queue; conveyor and raw alternate, and the medians of
``--repetitions`` (default 3) are printed with the ratio conveyor/raw.

The raw baseline is ``benchmarks/raw_<name>.py``, where <name> is the URL scheme without a
``+driver`` suffix or TLS ``s`` (redis, rediss -> raw_redis; amqp, amqps -> raw_amqp;
sql+postgresql, sqlite -> raw_sql; zookeeper -> raw_zookeeper). It does equivalent work with
the client library alone (durable batched enqueue; atomic take into an in-flight set and
batched acks) and exposes three functions:

    publish(url: str, queue: str, bodies: list[bytes], batch: int) -> None
        enqueue every body, `batch` per round trip, returning once the broker accepted all
    consume(url: str, queue: str, n: int, batch: int) -> None
        take and acknowledge `n` messages, up to `batch` per fetch, acks batched likewise
    cleanup(url: str, queue: str) -> None
        remove whatever the queue left behind

A missing raw module prints conveyor's numbers alone.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from conveyor.core.message import Message
from conveyor.core.registry import create_transport
from conveyor.core.url import parse_url

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # run as a script: the raw baselines are modules of `benchmarks`
    sys.path.insert(0, ROOT)
BODY = b'{"task":"tasks.add","args":[2,3],"kwargs":{},"id":"' + b"0" * 32 + b'"}'
_RAW_NAMES = {"rediss": "redis", "amqps": "amqp", "sqlite": "sql"}


def raw_module(url: str) -> ModuleType | None:
    scheme = parse_url(url).scheme.split("+")[0]
    name = _RAW_NAMES.get(scheme, scheme)
    try:
        return importlib.import_module(f"benchmarks.raw_{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"benchmarks.raw_{name}":
            raise
        return None


def conveyor_run(url: str, n: int, batch: int) -> tuple[float, float]:
    """Seconds to publish `n` messages and to fetch+ack them through conveyor."""
    queue = f"bench-{uuid.uuid4().hex[:12]}"
    transport = create_transport(url)
    batches = [[Message(BODY) for _ in range(min(batch, n - i))] for i in range(0, n, batch)]
    try:
        transport.size(queue)  # connect outside the measurement
        started = time.perf_counter()
        for messages in batches:
            transport.publish_many(queue, messages)
        published = time.perf_counter()
        received = 0
        while received < n:
            deliveries = transport.fetch(queue, max_messages=batch, timeout=1.0)
            transport.ack_many(deliveries)
            received += len(deliveries)
        consumed = time.perf_counter()
        return published - started, consumed - published
    finally:
        transport.delete(queue)
        transport.close()


def raw_run(module: ModuleType, url: str, n: int, batch: int) -> tuple[float, float]:
    """Seconds to publish and to consume `n` messages with the raw client."""
    queue = f"bench-raw-{uuid.uuid4().hex[:12]}"
    bodies = [BODY] * n
    try:
        started = time.perf_counter()
        module.publish(url, queue, bodies, batch)
        published = time.perf_counter()
        module.consume(url, queue, n, batch)
        consumed = time.perf_counter()
        return published - started, consumed - published
    finally:
        module.cleanup(url, queue)


def median_rates(runs: list[tuple[float, float]], n: int) -> tuple[float, float]:
    return (
        n / statistics.median(r[0] for r in runs),
        n / statistics.median(r[1] for r in runs),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True, help="transport URL")
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=100, help="publish and fetch batch size")
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args(argv)
    module = raw_module(args.broker)
    n, batch = args.messages, args.batch

    runs: dict[str, list[tuple[float, float]]] = {"conveyor": [], "raw": []}
    jobs: dict[str, Callable[[], tuple[float, float]]] = {
        "conveyor": lambda: conveyor_run(args.broker, n, batch)
    }
    if module is not None:
        jobs["raw"] = lambda: raw_run(module, args.broker, n, batch)
    for _ in range(args.repetitions):
        for name, job in jobs.items():  # alternate, so both meet the same machine load
            runs[name].append(job())

    print(
        f"broker {parse_url(args.broker)}  messages {n}  batch {batch}  "
        f"medians of {args.repetitions}"
    )
    conveyor = median_rates(runs["conveyor"], n)
    raw = median_rates(runs["raw"], n) if runs["raw"] else None
    print(f"{'phase':<10} {'conveyor msg/s':>15} {'raw msg/s':>12} {'conveyor/raw':>13}")
    for i, phase in enumerate(("publish", "fetch+ack")):
        if raw is None:
            print(f"{phase:<10} {conveyor[i]:>15,.0f} {'-':>12} {'-':>13}")
        else:
            print(
                f"{phase:<10} {conveyor[i]:>15,.0f} {raw[i]:>12,.0f} {conveyor[i] / raw[i]:>12.0%}"
            )


if __name__ == "__main__":
    main()
