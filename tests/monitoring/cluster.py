"""A real cluster for the browser tests: a `conveyor worker` and a `conveyor dashboard`
process on a broker and backend of the test's choosing, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from conveyor import Conveyor
from conveyor.testing.waiting import STARTUP, wait_until
from tests.monitoring import dash_tasks

ROOT = Path(__file__).parents[2]
CONVEYOR = [sys.executable, "-m", "conveyor.cli", "-A", "tests.monitoring.dash_tasks"]
USER, PASSWORD = "admin", "dash-board-pass"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    broker: str
    backend: str
    workdir: Path
    queue: str = field(default_factory=lambda: f"dash_{uuid.uuid4().hex[:10]}")
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONVEYOR_BROKER_URL": self.broker,
            "CONVEYOR_RESULT_BACKEND": self.backend,
            "CONVEYOR_TEST_QUEUE": self.queue,
            "CONVEYOR_WORKER_PROCESSES": "1",
            "PYTHONPATH": str(ROOT),
        }

    def _start(self, name: str, *args: str) -> Path:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*CONVEYOR, *args],
                cwd=self.workdir,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return log

    def start(self) -> None:
        worker_log = self._start("worker", "worker", "-c", "2", "-n", f"w-{self.queue}@test")
        dash_log = self._start(
            "dashboard",
            "dashboard",
            "--port",
            str(self.port),
            "--basic-auth",
            f"{USER}:{PASSWORD}",
        )

        def answering() -> bool:
            try:
                return httpx2.get(self.url + "/static/dashboard.css", timeout=1).status_code == 200
            except httpx2.HTTPError:
                return False

        ready = wait_until(lambda: " ready: " in worker_log.read_text(errors="replace"), STARTUP)
        if not ready or not wait_until(answering, 30):
            self.stop()
            raise AssertionError(
                f"cluster did not start:\n{worker_log.read_text()}\n{dash_log.read_text()}"
            )

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.workdir.glob("*.log"))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def client_app(self) -> Conveyor:
        app = dash_tasks.app
        app.close()
        app.conf.broker_url = self.broker
        app.conf.result_backend = self.backend
        app.conf.task_default_queue = self.queue
        return app
