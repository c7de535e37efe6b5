"""Real worker processes started through the CLI against real broker/backend URLs.

`urls` is parametrized over `MATRIX`: every transport but memory:// (which cannot cross
processes) as the broker, and every result backend at least once. Each (URL, pool) gets its
own queue and its own worker process, stopped by PID with SIGTERM and a deadline; the queue
(with its dead letters) is deleted afterwards, since the servers are shared.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.core.registry import create_transport
from conveyor.testing.waiting import STARTUP, wait_until
from tests.e2e import e2e_tasks

ROOT = Path(__file__).parents[2]
CONVEYOR = [sys.executable, "-m", "conveyor.cli"]


@dataclass(frozen=True)
class Urls:
    broker: str
    backend: str

    def __str__(self) -> str:
        return f"{self.broker} + {self.backend}"


# The matrix: name -> (broker, backend), each a server fixture of conveyor.testing.plugin
# ("redis_url", "amqp_url", ...) or "sqlite" for a file in a temp dir. Every transport is a
# broker once; every result backend (redis, memcached, sqlite, postgresql, mysql) serves at
# least one row. Every row runs every scenario: the whole matrix takes about 3 to 4 minutes.
MATRIX = {
    "redis": ("redis_url", "redis_url"),
    "amqp": ("amqp_url", "memcached_url"),
    "zookeeper": ("zookeeper_url", "postgres_url"),
    "sqlite": ("sqlite", "sqlite"),
    "postgresql": ("postgres_url", "postgres_url"),
    "mysql": ("mysql_url", "mysql_url"),
}


@pytest.fixture(scope="module", params=sorted(MATRIX))
def urls(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Urls:
    return matrix_row(request, tmp_path_factory)


def matrix_row(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Urls:
    """The URLs of MATRIX row `request.param`, for a `urls` fixture."""

    def resolve(source: str) -> str:
        if source == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('e2e')}/conveyor.db"
        url: str = request.getfixturevalue(source)
        return url

    broker, backend = MATRIX[request.param]
    broker_url = resolve(broker)
    return Urls(broker_url, broker_url if backend == broker else resolve(backend))


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    queue: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> set[int]:
        """The worker's PID and its children's: the command starts `worker_processes` - 1
        sibling workers (one per CPU by default, at most one per slot), each its own
        hostname."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {pid, *map(int, children)}

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (warm shutdown) and wait; SIGKILL past the deadline (then fail)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError(f"worker did not stop in {timeout} s:\n{self.output()}") from None


def worker_env(urls: Urls) -> dict[str, str]:
    return {
        **os.environ,
        "CONVEYOR_BROKER_URL": urls.broker,
        "CONVEYOR_RESULT_BACKEND": urls.backend,
        "PYTHONPATH": str(ROOT),
    }


def start_worker(urls: Urls, queue: str, log: Path, *extra: str) -> WorkerProcess:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *CONVEYOR,
                "-A",
                "tests.e2e.e2e_tasks",
                "worker",
                "-Q",
                queue,
                "--loglevel=info",
                *extra,
            ],
            cwd=ROOT,
            env=worker_env(urls),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, queue, log)
    ready = wait_until(lambda: " ready: " in worker.output() or process.poll() is not None, STARTUP)
    if not ready or process.poll() is not None:
        worker.stop()
        raise AssertionError(f"worker did not start:\n{worker.output()}")
    return worker


def client_app(urls: Urls, queue: str) -> Conveyor:
    """The e2e app in this process, pointed at `urls` and `queue`."""
    app = e2e_tasks.app
    app.close()
    app.conf.broker_url = urls.broker
    app.conf.result_backend = urls.backend
    app.conf.task_default_queue = queue
    return app


def _module_worker(
    urls: Urls, tmp_path_factory: pytest.TempPathFactory, pool: str
) -> Iterator[WorkerProcess]:
    queue = f"e2e_{uuid.uuid4().hex[:12]}"
    log = tmp_path_factory.mktemp("logs") / f"{pool}.log"
    process = start_worker(urls, queue, log, "-P", pool, "-c", "2")
    yield process
    assert process.stop() == 0, process.output()
    transport = create_transport(urls.broker)
    try:
        transport.delete(queue)
    finally:
        transport.close()


@pytest.fixture(scope="module")
def worker(urls: Urls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """A thread-pool worker on its own queue, for the module."""
    yield from _module_worker(urls, tmp_path_factory, "threads")


@pytest.fixture(scope="module")
def process_worker(urls: Urls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """A process-pool worker on its own queue, for the module."""
    yield from _module_worker(urls, tmp_path_factory, "processes")


@pytest.fixture
def app(worker: WorkerProcess, urls: Urls) -> Iterator[Conveyor]:
    application = client_app(urls, worker.queue)
    yield application
    application.close()
