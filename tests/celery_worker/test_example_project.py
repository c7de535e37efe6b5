"""examples/celery_project: a Celery project with the import renamed, run as its users do.

Its own tests (eager mode and the conveyor.contrib.pytest fixtures) pass under pytest, and
a worker started with a typical production command line (-D, --pidfile, -f, -n w@%h,
-P prefork, --max-tasks-per-child, time limits, -O fair, the --without-* flags, -E) runs
its tasks, fires its signals, and stops on SIGTERM, removing its pidfile.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.testing.waiting import wait_until

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "celery_project"
CONVEYOR = Path(sys.executable).with_name("conveyor")


def test_the_projects_own_tests_pass() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 passed" in done.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def project_env(redis_url: str) -> Iterator[dict[str, str]]:
    db = f"{redis_url.rsplit('/', 1)[0]}/9"  # a database of this test's own
    env = dict(os.environ)
    env.update(
        PROJ_BROKER_URL=db,
        PROJ_RESULT_BACKEND=db,
        PYTHONPATH=str(PROJECT),
    )
    env.pop("CONVEYOR_CLI_SETTINGS", None)
    yield env


def test_a_production_command_line_runs_the_project(
    project_env: dict[str, str], tmp_path: Path
) -> None:
    pidfile, logfile = tmp_path / "worker.pid", tmp_path / "worker.log"
    queue = f"default_{uuid.uuid4().hex[:8]}"
    command = [
        str(CONVEYOR),
        "-A",
        "proj",
        "worker",
        "-l",
        "info",
        "-n",
        "w1@%h",
        "-P",
        "prefork",
        "-c",
        "2",
        "-Q",
        f"{queue},reports",
        "--max-tasks-per-child",
        "2",
        "--time-limit",
        "60",
        "--soft-time-limit",
        "50",
        "-O",
        "fair",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-E",
        "-D",
        "--pidfile",
        str(pidfile),
        "-f",
        str(logfile),
    ]
    launched = subprocess.run(command, cwd=PROJECT, env=project_env, timeout=30)
    assert launched.returncode == 0  # -D: the launcher returns, the daemon runs on
    assert wait_until(pidfile.exists, 20), "no pidfile"
    pid = int(pidfile.read_text())
    try:
        assert wait_until(lambda: "worker ready" in logfile.read_text(), 30), logfile.read_text()
        # A client that shares nothing with the project but the URLs: importing proj here
        # would connect its signal receivers in this test process for good.
        app = Conveyor("client", broker=project_env["PROJ_BROKER_URL"])
        app.conf.result_backend = project_env["PROJ_RESULT_BACKEND"]
        results = [app.send_task("proj.tasks.add", (n, n), queue=queue) for n in range(5)]
        assert [r.get(timeout=30) for r in results] == [0, 2, 4, 6, 8]
        report = app.send_task("proj.tasks.send_report", ("ops",), queue="reports")
        assert report.get(timeout=30) == "report sent to ops"
        log = logfile.read_text()
        assert f"worker ready: w1@{socket.getfqdn()}" in log
        assert "prerun proj.tasks.add" in log and "postrun proj.tasks.add" in log
        assert "replacing pool child" in log  # --max-tasks-per-child 2, five tasks
        app.close()
    finally:
        os.kill(pid, signal.SIGTERM)
        assert wait_until(lambda: not _alive(pid), 30)
    assert not pidfile.exists()
