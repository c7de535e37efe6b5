"""worker_processes: a command-line worker starts siblings that share its slots and its
fate (a warm shutdown of all, and none outlives a killed parent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from conveyor import Conveyor
from conveyor.testing.waiting import wait_until

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


def test_the_first_process_consumes_once_its_siblings_are(redis_url: str) -> None:
    """Its ready line (logged when its consumer starts) comes after the sibling's."""
    queue, hostname = f"siblings-{uuid.uuid4().hex[:8]}", f"sib-{uuid.uuid4().hex[:6]}"
    parent = _start(redis_url, queue, hostname, "info", stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(parent.stderr or ()), daemon=True)
    reader.start()

    def ready_order() -> list[str]:
        ready = [line.split("] ", 1)[-1].split(" ready:")[0] for line in lines if " ready:" in line]
        return ready

    try:
        assert wait_until(lambda: len(ready_order()) == 2, 30)
        assert ready_order() == [f"{hostname}-1", hostname]
    finally:
        parent.send_signal(signal.SIGTERM)
        parent.wait(30)
        reader.join(10)
