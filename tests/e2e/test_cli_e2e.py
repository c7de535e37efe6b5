"""The task commands of the `conveyor` CLI against a live worker process."""

from __future__ import annotations

import subprocess
import uuid

from conveyor import Conveyor
from conveyor.testing.waiting import wait_until
from tests.e2e.conftest import CONVEYOR, ROOT, WorkerProcess, worker_env


def cli(url: str, *args: str, ok: bool = True) -> str:
    done = subprocess.run(
        [*CONVEYOR, "-A", "tests.e2e.e2e_tasks", *args],
        cwd=ROOT,
        env=worker_env(url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_call_then_result(worker: WorkerProcess, e2e_url: str) -> None:
    task_id = cli(
        e2e_url, "call", "tests.e2e.e2e_tasks.add", "--args", "[4, 4]", "--queue", worker.queue
    ).strip()
    assert cli(e2e_url, "result", task_id, "--wait", "--timeout", "20").split() == ["SUCCESS", "8"]
    failed = cli(
        e2e_url, "call", "tests.e2e.e2e_tasks.explode", "--args", '["cli"]', "--queue", worker.queue
    ).strip()
    out = cli(e2e_url, "result", failed, "--wait", "--timeout", "20")
    assert out.startswith("FAILURE") and "Boom" in out and "Traceback" in out
    assert cli(e2e_url, "result", "no-such-id").strip() == "UNKNOWN"


def test_call_rejects_bad_json(e2e_url: str) -> None:
    assert "not JSON" in cli(e2e_url, "call", "x", "--args", "[1,", ok=False)


def test_dead_list_and_replay(app: Conveyor, worker: WorkerProcess, e2e_url: str) -> None:
    result = app.send_task("e2e.missing")
    result.get(timeout=20, propagate=False)
    listing = cli(e2e_url, "dead", "list", "-Q", worker.queue)
    assert f"task={result.id}" in listing and "NotRegistered" in listing
    queues = cli(e2e_url, "queues", "-Q", worker.queue).splitlines()
    dead_count = int(queues[1].split()[2])
    assert dead_count >= 1
    assert cli(e2e_url, "dead", "replay", "-Q", worker.queue).strip() == f"{dead_count} replayed"
    # The replayed message is dead-lettered again by the worker (still unknown).
    assert wait_until(lambda: len(app.transport.dead_letters(worker.queue)) == dead_count, 20)


def test_purge(e2e_url: str, app: Conveyor) -> None:
    queue = f"e2e_purge_{uuid.uuid4().hex[:8]}"
    for n in range(3):
        app.send_task("tests.e2e.e2e_tasks.add", [n, n], queue=queue)
    assert cli(e2e_url, "purge", "-Q", queue, "-f").strip() == f"{queue}: 3 removed"
    assert app.transport.size(queue) == 0


def test_inspect(worker: WorkerProcess, e2e_url: str, app: Conveyor) -> None:
    if not app.transport.capabilities.broadcast:
        out = cli(e2e_url, "inspect", "ping", ok=False)
        assert "no broadcast capability" in out
        return
    hostname = f"conveyor.{worker.process.pid}@"
    assert hostname in cli(e2e_url, "inspect", "ping") and '"pong"' in cli(
        e2e_url, "inspect", "ping"
    )
    assert "tests.e2e.e2e_tasks.add" in cli(e2e_url, "inspect", "registered")
    running = app.send_task("tests.e2e.e2e_tasks.sleep", [2.0])
    assert wait_until(lambda: app.AsyncResult(f"started-{running.id}").exists(), 20)
    assert running.id in cli(e2e_url, "inspect", "active")
    running.get(timeout=20)
