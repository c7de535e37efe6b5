"""A chord of N no-op tasks, end to end, with the bytes it writes to the result backend.

Broker and backend are two Redis servers of this run's own (started on free loopback ports
and stopped by PID), so the backend's `total_net_input_bytes` counts only this chord
(task events are off): every state record, counter and join write, plus the small
commands that read them. A worker
command (`conveyor -A benchmarks.chord worker`) runs the tasks. For each N the line gives
the time from sending the chord to the body's result, the backend bytes in, and bytes per
header task: constant per task when the join is linear, growing with N if it were O(n^2).

    .venv/bin/python -m benchmarks.chord                # N = 100 and 1000
    .venv/bin/python -m benchmarks.chord -n 1000 -n 5000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import redis

from benchmarks.tasks.procs import WorkerProcess
from conveyor import Conveyor, chord
from conveyor.testing.servers import LocalServer, start_local_server
from conveyor.testing.waiting import wait_until

ROOT = Path(__file__).parents[1]
# Task events off: they go to the same store and would hide what the chord itself writes.
app = Conveyor("benchmarks.chord", worker_send_task_events=False, task_send_sent_event=False)


@app.task
def noop(i: int) -> int:
    return i


@app.task
def count(values: list[int]) -> int:
    return len(values)


def _bytes_in(server: LocalServer) -> int:
    client = redis.Redis.from_url(server.url)
    try:
        return int(client.info("stats")["total_net_input_bytes"])
    finally:
        client.close()


def run(sizes: list[int]) -> list[str]:
    broker, backend = start_local_server("redis"), start_local_server("redis")
    log = Path(tempfile.mkdtemp(prefix="conveyor-chord-bench-")) / "worker.log"
    env = {"CONVEYOR_BROKER_URL": broker.url, "CONVEYOR_RESULT_BACKEND": backend.url}
    argv = [sys.executable, "-m", "conveyor.cli", "-A", "benchmarks.chord", "worker"]
    worker = WorkerProcess([*argv, "--loglevel=warning"], env, ROOT, log)
    app.conf.broker_url, app.conf.result_backend = broker.url, backend.url
    lines = []
    try:
        assert noop.delay(0).get(timeout=60) == 0, "the worker did not start"
        for size in sizes:
            before = _bytes_in(backend)
            started = time.perf_counter()
            result = chord(noop.s(i) for i in range(size))(count.s())
            assert result.get(timeout=600) == size
            seconds = time.perf_counter() - started
            # The last header tasks' acks and the body's record may land just after get().
            wait_until(lambda: False, 0.2)
            written = _bytes_in(backend) - before
            lines.append(
                f"chord of {size} no-op tasks (redis broker + redis backend): {seconds:.2f} s "
                f"end to end, {size / seconds:.0f} header tasks/s, backend bytes in "
                f"{written:,} ({written / size:.0f} per header task)"
            )
            print(lines[-1], flush=True)
    finally:
        app.close()
        worker.stop()
        broker.stop()
        backend.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--size", type=int, action="append", help="header sizes")
    args = parser.parse_args()
    run(args.size or [100, 1000])


if __name__ == "__main__":
    main()
