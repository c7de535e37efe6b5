"""worker_processes: a command-line worker starts siblings that share its slots and its
fate (a warm shutdown of all, and none outlives a killed parent)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from conveyor import Conveyor
from conveyor.testing.waiting import wait_until
from tests.worker.command import LoggedWorker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def client(redis_url: str) -> Iterator[Conveyor]:
    app = Conveyor("siblings-client", broker=redis_url, backend=redis_url)
    yield app
    app.close()


def _start(
    redis_url: str, queue: str, hostname: str, level: str = "warning", **popen: Any
) -> subprocess.Popen[Any]:
    env = dict(
        os.environ,
        CONVEYOR_BROKER_URL=redis_url,
        CONVEYOR_RESULT_BACKEND=redis_url,
        CONVEYOR_WORKER_PROCESSES="2",
    )
    command = [sys.executable, "-m", "conveyor.cli", "-A", "tests.e2e.e2e_tasks", "worker"]
    command += ["-Q", queue, "-c", "2", "-n", hostname, "-l", level]
    return subprocess.Popen(command, env=env, cwd=ROOT, **popen)


def _siblings(parent: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return psutil.Process(parent.pid).children()
    except psutil.NoSuchProcess:
        return []


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", ["warm", "killed"])
def test_two_processes_serve_the_queue_and_stop_together(
    client: Conveyor, redis_url: str, how: str
) -> None:
    queue, hostname = f"siblings-{uuid.uuid4().hex[:8]}", f"sib-{uuid.uuid4().hex[:6]}"
    parent = _start(redis_url, queue, hostname)
    siblings: list[psutil.Process] = []
    try:
        assert wait_until(lambda: len(_siblings(parent)) == 1, 20)
        siblings = _siblings(parent)
        names = {hostname, f"{hostname}-1"}
        assert wait_until(lambda: names <= set(client.control.inspect(timeout=0.5).ping()), 30)
        results = [
            client.send_task("tests.e2e.e2e_tasks.add", (i, i), queue=queue) for i in range(10)
        ]
        assert [r.get(timeout=20) for r in results] == [2 * i for i in range(10)]
        if how == "warm":
            parent.send_signal(signal.SIGTERM)
            assert parent.wait(30) == 0
        else:
            parent.kill()  # the kernel sends the sibling SIGTERM (PR_SET_PDEATHSIG)
            parent.wait(10)
        assert wait_until(lambda: all(_gone(p) for p in siblings), 30)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        for process in siblings:
            if not _gone(process):
                process.kill()
        client.transport.delete(queue)


class Logged(LoggedWorker):
    """A worker command started on tests/worker/startup_app.py, its log lines collected."""

    def __init__(self, redis_url: str, queue: str, hostname: str, **env: str) -> None:
        args = ["-Q", queue, "-c", "2", "-n", hostname, "-l", "info"]
        super().__init__(
            "tests.worker.startup_app", redis_url, args, CONVEYOR_WORKER_PROCESSES="2", **env
        )

    def ready(self) -> list[str]:
        """The hostnames that logged their ready line, in order."""
        marked = [line for line in self.lines if " ready:" in line]
        return [line.split("] ", 1)[-1].split(" ready:")[0] for line in marked]

    def started(self) -> str:
        """The log line that says how the siblings were started."""
        assert wait_until(lambda: any("sibling worker processes" in x for x in self.lines), 30)
        return next(line for line in self.lines if "sibling worker processes" in line)


def _imports(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize(
    ("thread", "how", "imports_of_the_app"),
    [("", "(forked)", 1), ("1", "(spawned: 2 threads run in this process (app-background))", 2)],
)
def test_siblings_are_forked_unless_a_thread_runs(
    client: Conveyor, redis_url: str, tmp_path: Path, thread: str, how: str, imports_of_the_app: int
) -> None:
    """A forked sibling imports nothing again. A fork copies only the calling thread, so
    with another one running (an app module that starts one at import) the siblings are
    spawned: fresh interpreters that import the app themselves. Both serve the queue."""
    queue, hostname = f"siblings-{uuid.uuid4().hex[:8]}", f"sib-{uuid.uuid4().hex[:6]}"
    imports = tmp_path / "imports"
    worker = Logged(redis_url, queue, hostname, STARTUP_IMPORTS=str(imports), STARTUP_THREAD=thread)
    try:
        line = worker.started()
        assert how in line, line
        assert wait_until(lambda: len(worker.ready()) == 2, 30), worker.lines
        pids = _imports(imports)
        assert len(pids) == imports_of_the_app and pids[0] == worker.process.pid, pids
        results = [client.send_task("startup.add", (i, i), queue=queue) for i in range(10)]
        assert [r.get(timeout=20) for r in results] == [2 * i for i in range(10)]
    finally:
        assert worker.stop() == 0
        client.transport.delete(queue)


def test_the_first_process_is_ready_without_waiting_for_its_siblings(
    client: Conveyor, redis_url: str, tmp_path: Path
) -> None:
    """The sibling is held short of consuming (its worker_init blocks on a FIFO): the first
    process logs ready and runs a task all the same; the sibling follows once let go."""
    queue, hostname = f"siblings-{uuid.uuid4().hex[:8]}", f"sib-{uuid.uuid4().hex[:6]}"
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    worker = Logged(redis_url, queue, hostname, STARTUP_GATE=str(gate))
    try:
        assert wait_until(lambda: worker.ready() == [hostname], 30), worker.lines
        assert client.send_task("startup.add", (2, 3), queue=queue).get(timeout=20) == 5
        assert worker.ready() == [hostname]  # the sibling is still held
        with open(gate, "wb"):
            pass
        assert wait_until(lambda: worker.ready() == [hostname, f"{hostname}-1"], 30)
    finally:
        if not worker.ready()[1:]:  # let a held sibling go, or it never reads its SIGTERM
            with contextlib.suppress(OSError):  # ENXIO: it is not at the gate
                os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))
        assert worker.stop() == 0
        client.transport.delete(queue)
