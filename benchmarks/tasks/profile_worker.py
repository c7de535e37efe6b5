"""Where a conveyor worker spends its CPU: py-spy on a worker draining a full queue.

    .venv/bin/pip install py-spy
    .venv/bin/python -m benchmarks.tasks.profile_worker --broker redis://127.0.0.1:6379/0

Fills a fresh queue with `-n` tasks through the batched path, starts one worker (the same
command line as the benchmark), samples it with py-spy for `--seconds` once it is busy,
and prints the functions by inclusive share of the samples, with the tasks done and the
worker CPU per task in that window. `--gil` samples only the thread holding the GIL, which
leaves out threads waiting on sockets and locks (the CPU view); the raw stacks are kept in
`--out` for a flame graph.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from importlib import import_module
from pathlib import Path

from benchmarks.tasks.counter import Ledger
from benchmarks.tasks.procs import WorkerProcess
from benchmarks.tasks.systems import worker_argv

ROOT = Path(__file__).resolve().parents[2]


def shares(raw: Path) -> tuple[int, Counter[str]]:
    """(samples, inclusive samples per 'function (file)') from py-spy's raw output."""
    total, inclusive = 0, Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        total += int(count)
        names = set()
        for frame in stack.split(";"):
            function, _, where = frame.partition(" (")
            names.add(f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]})")
        for name in names:
            inclusive[name] += int(count)
    return total, inclusive


def _py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="results and ledger")
    p.add_argument("-n", "--tasks", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--gil", action="store_true")
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--out", type=Path, default=None, help="keep py-spy's raw stacks here")
    args = p.parse_args()
    queue = f"bench_{uuid.uuid4().hex[:12]}"
    env = {
        "BENCH_BROKER_URL": args.broker,
        "BENCH_RESULT_URL": args.redis,
        "BENCH_QUEUE": queue,
        "BENCH_COUNTER_URL": args.redis,
        "BENCH_RUN_KEY": f"bench:{queue}",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    client = import_module("benchmarks.tasks.systems.conveyor_app").client()
    ledger = Ledger(args.redis, env["BENCH_RUN_KEY"])
    scratch = Path(tempfile.mkdtemp(prefix="conveyor-profile-"))
    raw = args.out or scratch / "stacks.txt"
    worker = None
    try:
        for start in range(0, args.tasks, 1000):
            client.send_batch(queue, list(range(start, min(args.tasks, start + 1000))))
        worker = WorkerProcess(worker_argv("conveyor", queue), env, ROOT, scratch / "worker.log")
        while ledger.count() == 0 and worker.alive():
            time.sleep(0.01)
        spy = [
            *(_py_spy(), "record", "--pid", str(worker.pid)),
            *("--format", "raw", "-o", str(raw), "-d", str(int(args.seconds))),
            *("-r", str(args.rate), *(["--gil"] if args.gil else [])),
        ]
        done, cpu, started = ledger.count(), worker.cpu(), time.monotonic()
        subprocess.run(spy, check=True, capture_output=True)
        done, cpu = ledger.count() - done, worker.cpu() - cpu
        elapsed = time.monotonic() - started
        if ledger.count() >= args.tasks:
            print("note: the queue ran dry while sampling; raise -n", file=sys.stderr)
    finally:
        if worker is not None:
            worker.stop()
        client.cleanup()
        ledger.delete()
    total, inclusive = shares(raw)
    print(
        f"{done} tasks in {elapsed:.1f} s ({done / elapsed:.0f}/s), worker CPU "
        f"{cpu / max(done, 1) * 1e6:.0f} µs/task, {total} samples; raw stacks: {raw}"
    )
    for name, count in inclusive.most_common(args.top):
        print(f"{count / total * 100:5.1f}%  {name}")


if __name__ == "__main__":
    main()
