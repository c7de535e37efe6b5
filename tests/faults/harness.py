"""Worker processes for the fault rows, and the loop that sends, faults, heals and counts.

Each worker is `conveyor -A tests.faults.ledger_tasks worker` in a session of its own, so a
SIGKILL reaches all of it; it is stopped by its PID, never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conveyor import Conveyor
from conveyor.testing.ledger import LEDGER_ENV, Counts, Ledger
from conveyor.testing.waiting import wait_until

ROOT = Path(__file__).parents[2]
READY_TIMEOUT = 30.0
STEP = "tests.faults.ledger_tasks.step"
KILL_WORKER = "tests.faults.ledger_tasks.kill_worker"
#: Every row's counts, printed at the end of the run (conftest.py).
RESULTS: list[tuple[str, Counts]] = []


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ready(self) -> bool:
        return self.output().count(" ready: queues ") >= 1

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the worker and everything in its session (a crash, the OOM killer)."""
        self.signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Row:
    """One fault row: its app (client side), its ledger and its worker processes."""

    name: str
    broker: str
    backend: str
    tmp: Path
    concurrency: int = 4
    queue: str = field(default_factory=lambda: f"faults-{uuid.uuid4().hex[:8]}")
    workers: list[WorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.tmp / f"{self.queue}.ledger")
        self.app = Conveyor("ledger-client", broker=self.broker, backend=self.backend)

    def start_worker(
        self, *, broker: str | None = None, pool: str = "threads", prefetch_multiplier: int = 4
    ) -> WorkerProcess:
        log = self.tmp / f"worker-{len(self.workers)}.log"
        env = {
            **os.environ,
            "CONVEYOR_BROKER_URL": broker or self.broker,
            "CONVEYOR_RESULT_BACKEND": self.backend,
            "CONVEYOR_WORKER_PROCESSES": "1",
            LEDGER_ENV: str(self.ledger.path),
            "PYTHONPATH": str(ROOT),
        }
        command = [sys.executable, "-m", "conveyor.cli", "-A", "tests.faults.ledger_tasks"]
        command += ["worker", "-c", str(self.concurrency), "-P", pool, "-Q", self.queue]
        command += ["--shutdown-timeout", "10", "--prefetch-multiplier", str(prefetch_multiplier)]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        worker = WorkerProcess(process, log)
        self.workers.append(worker)
        assert wait_until(worker.ready, READY_TIMEOUT), worker.output()
        return worker

    def send(
        self, count: int, seconds: float = 0.0, payload: str = "", result_size: int = 0
    ) -> None:
        for number in range(count):
            key = f"{self.name}-{number}"
            args = (key, seconds, payload, result_size)
            self.ledger.publish(
                key, lambda args=args: self.app.send_task(STEP, args, queue=self.queue)
            )

    def settle(self, timeout: float) -> Counts:
        """Wait until every accepted publish ran (or `timeout`), then count and record."""
        wait_until(self.ledger.finished, timeout, interval=0.1)
        counts = self.ledger.count()
        RESULTS.append((self.name, counts))
        print(f"ledger {self.name}: {counts}")
        return counts

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.app.close()  # the servers are the row's own: nothing to clean up in them


@contextmanager
def row(name: str, broker: str, backend: str, tmp: Path, **options: object) -> Iterator[Row]:
    made = Row(name, broker, backend, tmp, **options)  # type: ignore[arg-type]
    try:
        yield made
    finally:
        made.close()


def in_background(action: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def assert_passes(counts: Counts, *, duplicates_allowed: bool = True) -> None:
    assert counts.lost == 0, counts
    assert counts.unexpected == 0, counts
    if duplicates_allowed:
        assert counts.duplicated <= counts.in_flight, counts
    else:
        assert counts.duplicated == 0, counts


def pause(seconds: float) -> None:
    """A fault's own duration (an outage that lasts this long), not a wait for a result."""
    time.sleep(seconds)
