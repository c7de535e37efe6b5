"""The task commands of the `conveyor` CLI against a live worker process."""

from __future__ import annotations

import subprocess
import uuid

from conveyor import Conveyor
from conveyor.testing.waiting import wait_until
from tests.e2e import e2e_tasks
from tests.e2e.conftest import CONVEYOR, ROOT, Urls, WorkerProcess, worker_env


def cli(urls: Urls, *args: str, ok: bool = True) -> str:
    done = subprocess.run(
        [*CONVEYOR, "-A", "tests.e2e.e2e_tasks", *args],
        cwd=ROOT,
        env=worker_env(urls),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_call_then_result(worker: WorkerProcess, urls: Urls) -> None:
    task_id = cli(
        urls, "call", "tests.e2e.e2e_tasks.add", "--args", "[4, 4]", "--queue", worker.queue
    ).strip()
    assert cli(urls, "result", task_id, "--wait", "--timeout", "20").split() == ["SUCCESS", "8"]
    failed = cli(
        urls, "call", "tests.e2e.e2e_tasks.explode", "--args", '["cli"]', "--queue", worker.queue
    ).strip()
    out = cli(urls, "result", failed, "--wait", "--timeout", "20")
    assert out.startswith("FAILURE") and "Boom" in out and "Traceback" in out
    assert cli(urls, "result", "no-such-id").strip() == "UNKNOWN"


def test_call_rejects_bad_json(urls: Urls) -> None:
    assert "not JSON" in cli(urls, "call", "x", "--args", "[1,", ok=False)


def test_dead_list_and_replay(app: Conveyor, worker: WorkerProcess, urls: Urls) -> None:
    result = app.send_task("e2e.missing")
    result.get(timeout=20, propagate=False)
    listing = cli(urls, "dead", "list", "-Q", worker.queue)
    assert f"task={result.id}" in listing and "NotRegistered" in listing
    queues = cli(urls, "queues", "-Q", worker.queue).splitlines()
    dead_count = int(queues[1].split()[2])
    assert dead_count >= 1
    assert cli(urls, "dead", "replay", "-Q", worker.queue).strip() == f"{dead_count} replayed"

    # The replayed message is dead-lettered again by the worker (still unknown).
    def dead_again() -> bool:
        return len(app.transport.dead_letters(worker.queue)) == dead_count

    assert wait_until(dead_again, 20), [
        (d.message.id, d.reason) for d in app.transport.dead_letters(worker.queue)
    ]


def test_purge(urls: Urls, app: Conveyor) -> None:
    queue = f"e2e_purge_{uuid.uuid4().hex[:8]}"
    for n in range(3):
        app.send_task("tests.e2e.e2e_tasks.add", [n, n], queue=queue)
    try:
        assert cli(urls, "purge", "-Q", queue, "-f").strip() == f"{queue}: 3 removed"
        assert app.transport.size(queue) == 0
    finally:
        app.transport.delete(queue)


def test_inspect(worker: WorkerProcess, urls: Urls, app: Conveyor) -> None:
    if not app.transport.capabilities.broadcast:
        out = cli(urls, "inspect", "ping", ok=False)
        assert "no broadcast capability" in out
        return
    hostname = f"conveyor.{worker.process.pid}@"
    pong = cli(urls, "inspect", "ping")
    assert hostname in pong and '"pong"' in pong
    assert "tests.e2e.e2e_tasks.add" in cli(urls, "inspect", "registered")
    # Held until released, so it is still running however long the CLI takes on a loaded box.
    running = app.send_task("tests.e2e.e2e_tasks.held")
    assert wait_until(lambda: app.AsyncResult(f"started-{running.id}").exists(), 20)
    active = cli(urls, "inspect", "active")
    e2e_tasks.release(running.id)
    assert running.id in active
    assert running.get(timeout=30) == "released"
