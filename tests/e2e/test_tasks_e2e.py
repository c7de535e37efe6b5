"""Tasks through real worker processes (started by the CLI) on real brokers and backends."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, states
from conveyor.app.exceptions import NotRegistered, TaskRevokedError, TimeLimitExceeded
from conveyor.core.errors import Unsupported
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import SIGNAL_REPEAT
from tests.e2e import e2e_tasks
from tests.e2e.conftest import Urls, WorkerProcess, client_app, start_worker

TIMEOUT = 20.0


def _hook(app: Conveyor, key: str) -> Any:
    assert wait_until(lambda: app.AsyncResult(key).exists(), TIMEOUT), f"no {key}"
    return app.AsyncResult(key).result


def test_add(app: Conveyor) -> None:
    result = e2e_tasks.add.delay(4, 4)
    assert result.get(timeout=TIMEOUT) == 8
    assert result.state == states.SUCCESS


def test_on_success_and_on_failure_hooks(app: Conveyor) -> None:
    ok = e2e_tasks.add.delay(2, 3)
    ok.get(timeout=TIMEOUT)
    assert _hook(app, f"hook-success-{ok.id}") == {"retval": 5, "args": [2, 3]}
    bad = e2e_tasks.explode.delay("kaboom")
    with pytest.raises(e2e_tasks.Boom):
        bad.get(timeout=TIMEOUT)
    hook = _hook(app, f"hook-failure-{bad.id}")
    assert hook["exc"] == "Boom" and "raise Boom(message)" in hook["tb"]


def test_bound_request_fields(app: Conveyor, worker: WorkerProcess) -> None:
    result = e2e_tasks.describe.apply_async((1, 2), {"k": "v"}, expires=60)
    info = result.get(timeout=TIMEOUT)
    assert info["id"] == result.id == info["root_id"]
    assert (info["args"], info["kwargs"], info["retries"]) == ([1, 2], {"k": "v"}, 0)
    assert info["queue"] == worker.queue and info["delivery_count"] == 1
    name = info["hostname"].partition("@")[0]
    assert name.startswith("conveyor.") and int(name.split(".")[1]) in worker.pids(), name
    assert info["parent_id"] is None and info["expires"] is not None


def test_progress_through_on_message(app: Conveyor) -> None:
    bodies: list[dict[str, Any]] = []
    assert e2e_tasks.progress.delay(3).get(timeout=TIMEOUT, on_message=bodies.append) == "done"
    steps = [b["result"]["step"] for b in bodies if b["status"] == "PROGRESS"]
    assert steps and steps == sorted(steps) and steps[-1] == 3
    assert bodies[-1]["status"] == states.SUCCESS


def test_then(app: Conveyor) -> None:
    fired = threading.Event()
    seen: list[Any] = []
    e2e_tasks.add.delay(20, 22).then(lambda r: (seen.append(r.result), fired.set()))
    assert fired.wait(TIMEOUT) and seen == [42]


def test_retry_with_countdown_then_success(app: Conveyor) -> None:
    sent = time.time()
    statuses: list[str] = []
    result = e2e_tasks.flaky.delay(2)
    value = result.get(timeout=TIMEOUT, on_message=lambda b: statuses.append(b["status"]))
    assert value["retries"] == 2
    assert value["at"] - sent >= 0.95, "two retries of 0.5 s wait in the broker"
    assert states.RETRY in statuses


def test_retries_exhausted(app: Conveyor) -> None:
    with pytest.raises(e2e_tasks.Boom, match="attempt 3"):
        e2e_tasks.flaky.delay(99).get(timeout=TIMEOUT)


def test_countdown_honoured(app: Conveyor) -> None:
    sent = time.time()
    ran_at = e2e_tasks.stamp.apply_async(countdown=1.5).get(timeout=TIMEOUT)
    assert ran_at - sent >= 1.45


def test_expires(app: Conveyor) -> None:
    # Already expired when sent (an expires before a countdown's eta is refused at the call).
    expired = datetime.now(timezone.utc) - timedelta(seconds=1)
    result = e2e_tasks.side_effect.apply_async(expires=expired)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=TIMEOUT)
    assert result.state == states.REVOKED
    assert not app.AsyncResult(f"ran-{result.id}").exists()


def test_revoke(app: Conveyor) -> None:
    result = e2e_tasks.side_effect.apply_async(countdown=1.0)
    result.revoke()
    after = e2e_tasks.stamp.apply_async(countdown=1.5)
    after.get(timeout=TIMEOUT)
    assert result.state == states.REVOKED
    assert not app.AsyncResult(f"ran-{result.id}").exists(), "a revoked task never runs"


def test_failure_propagation_with_traceback(app: Conveyor) -> None:
    result = e2e_tasks.explode.delay("bad input")
    with pytest.raises(e2e_tasks.Boom, match="bad input"):
        result.get(timeout=TIMEOUT)
    assert result.failed()
    assert "Traceback" in (result.traceback or "") and "raise Boom(message)" in (
        result.traceback or ""
    )


def test_unknown_task_name_is_dead_lettered(app: Conveyor, worker: WorkerProcess) -> None:
    result = app.send_task("e2e.no_such_task", [1])
    with pytest.raises(NotRegistered, match="no_such_task"):
        result.get(timeout=TIMEOUT)
    letters = app.transport.dead_letters(worker.queue)
    mine = [d for d in letters if d.message.correlation_id == result.id]
    assert mine and "NotRegistered" in mine[0].reason


def test_process_pool_add_and_time_limits(process_worker: WorkerProcess, urls: Urls) -> None:
    app = client_app(urls, process_worker.queue)
    try:
        assert e2e_tasks.add.delay(1, 2).get(timeout=TIMEOUT) == 3
        assert e2e_tasks.soft_limited.delay().get(timeout=TIMEOUT) == "soft limit handled"
        started = time.monotonic()
        with pytest.raises(TimeLimitExceeded):
            e2e_tasks.hard_limited.delay().get(timeout=TIMEOUT)
        assert time.monotonic() - started < 10, "the child was killed at its hard limit"
        assert e2e_tasks.add.delay(2, 2).get(timeout=TIMEOUT) == 4, "a fresh child took over"
    finally:
        app.close()


def test_sigterm_is_a_warm_shutdown(urls: Urls, tmp_path: Path) -> None:
    queue = f"e2e_warm_{uuid.uuid4().hex[:12]}"
    process = start_worker(urls, queue, tmp_path / "warm.log", "-c", "1")
    app = client_app(urls, queue)
    try:
        running = e2e_tasks.sleep.delay(1.0)
        waiting = [e2e_tasks.add.delay(n, n) for n in range(3)]
        assert wait_until(lambda: app.AsyncResult(f"started-{running.id}").exists(), TIMEOUT)
        assert process.stop() == 0, process.output()
        assert running.get(timeout=1) == 1.0, "the running task finished during warm shutdown"
        assert not any(r.ready() for r in waiting), "nothing new started after SIGTERM"
        assert app.transport.size(queue) == 3, "prefetched messages went back to the broker"
    finally:
        app.transport.delete(queue)
        app.close()


def test_second_sigterm_is_a_cold_shutdown(urls: Urls, tmp_path: Path) -> None:
    queue = f"e2e_cold_{uuid.uuid4().hex[:12]}"
    process = start_worker(urls, queue, tmp_path / "cold.log", "-c", "1")
    app = client_app(urls, queue)
    try:
        running = e2e_tasks.sleep.delay(60.0)
        assert wait_until(lambda: app.AsyncResult(f"started-{running.id}").exists(), TIMEOUT)
        process.process.send_signal(signal.SIGTERM)
        assert wait_until(lambda: "warm shutdown" in process.output(), TIMEOUT)
        # The worker took the first signal before logging; a repeat within SIGNAL_REPEAT of
        # it would be taken for an echo of the first.
        time.sleep(SIGNAL_REPEAT)
        process.process.send_signal(signal.SIGTERM)
        assert wait_until(lambda: process.process.poll() is not None, 10), process.output()
        assert process.process.returncode != 0, "a cold shutdown does not wait for the task"
        assert not running.ready()
        assert wait_until(lambda: app.transport.size(queue) == 1, TIMEOUT), (
            f"the unfinished message did not go back to the broker:\n{process.output()}"
        )
    finally:
        app.transport.delete(queue)
        app.close()


def test_revoke_terminate_kills_the_running_task(process_worker: WorkerProcess, urls: Urls) -> None:
    app = client_app(urls, process_worker.queue)
    try:
        if not app.transport.capabilities.broadcast:
            with pytest.raises(Unsupported):
                app.control.revoke("x", terminate=True)
            return
        running = e2e_tasks.sleep.delay(60.0)
        assert wait_until(lambda: app.AsyncResult(f"started-{running.id}").exists(), TIMEOUT)
        started = time.monotonic()
        running.revoke(terminate=True)
        assert e2e_tasks.add.delay(5, 5).get(timeout=TIMEOUT) == 10
        with pytest.raises(TaskRevokedError):
            running.get(timeout=1)
        assert time.monotonic() - started < TIMEOUT
        # The stored REVOKED alone satisfies get(): the running child must have been
        # stopped, so no worker reports the task as active any more.
        inspect = app.control.inspect(timeout=0.5)
        assert wait_until(
            lambda: (
                bool(replies := inspect.active())
                and all(
                    running.id not in {task["id"] for task in tasks} for tasks in replies.values()
                )
            ),
            TIMEOUT,
        ), "terminate did not stop the running task"
        assert wait_until(lambda: app.transport.size(process_worker.queue) == 0, TIMEOUT)
    finally:
        app.close()


def test_a_child_that_dies_mid_task_loses_nothing(
    process_worker: WorkerProcess, urls: Urls
) -> None:
    app = client_app(urls, process_worker.queue)
    try:
        assert e2e_tasks.crash_once.delay().get(timeout=TIMEOUT) == 2, "redelivered once"
        assert e2e_tasks.add.delay(3, 3).get(timeout=TIMEOUT) == 6
    finally:
        app.close()
