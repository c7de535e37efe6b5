"""`.then(callback, on_error)`, `get()` inside a task, and Celery's errback forms."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor, Task, group
from conveyor.app.exceptions import SyncSubtaskError
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker
from tests.canvas.conftest import Boom, Tasks

StartWorker = Callable[..., Worker]


def test_then_calls_back_or_calls_on_error(tasks: Tasks, start_worker: StartWorker) -> None:
    start_worker()
    seen: dict[str, Any] = {}
    done = threading.Event()

    def record(name: str) -> Callable[[Any], None]:
        def call(value: Any) -> None:
            seen[name] = value
            if len(seen) == 3:
                done.set()

        return call

    tasks.add.delay(1, 2).then(lambda r: record("ok")(r.result), record("ok-error"))
    tasks.fail.delay(3).then(record("bad"), lambda exc: record("bad-error")(exc))
    group(tasks.add.s(1, 1), tasks.add.s(2, 2)).delay().then(lambda rs: record("group")(rs.get()))
    assert done.wait(10), seen
    assert seen["ok"] == 3 and "ok-error" not in seen
    assert isinstance(seen["bad-error"], Boom) and "bad" not in seen
    assert seen["group"] == [2, 4]


def test_get_inside_a_task_raises_unless_allowed(
    app: Conveyor, tasks: Tasks, start_worker: StartWorker
) -> None:
    @app.task
    def waits(allow: bool) -> Any:
        return tasks.add.delay(1, 1).get(timeout=5, disable_sync_subtasks=not allow)

    start_worker(concurrency=2)
    with pytest.raises(SyncSubtaskError, match=r"inside task .*waits"):
        waits.delay(False).get(timeout=10)
    assert waits.delay(True).get(timeout=10) == 2
    assert waits(True) == 2, "called directly, not in a worker: allowed"


def test_errback_forms(app: Conveyor, tasks: Tasks, start_worker: StartWorker) -> None:
    """One that takes the task id is sent as a task; one taking (request, exc, traceback)
    is called in the failing worker."""
    seen: list[Any] = []

    @app.task
    def by_id(task_id: str, tag: str) -> None:
        seen.append(("id", task_id, tag))

    @app.task
    def by_request(request: Any, exc: BaseException, traceback: str) -> None:
        seen.append(("request", request.id, exc, traceback))

    start_worker()
    result = tasks.fail.apply_async((1,), link_error=[by_id.s("tag"), by_request.s()])
    with pytest.raises(Boom):
        result.get(timeout=10)
    assert wait_until(lambda: len(seen) == 2, timeout=10), seen
    by_kind = {entry[0]: entry for entry in seen}
    assert by_kind["id"] == ("id", result.id, "tag")
    _, request_id, exc, traceback = by_kind["request"]
    assert request_id == result.id and isinstance(exc, Boom) and "Boom" in traceback


def test_bound_errback_with_request_form(
    app: Conveyor, tasks: Tasks, start_worker: StartWorker
) -> None:
    seen: list[str] = []
    ran = threading.Event()

    @app.task(bind=True)
    def on_error(self: Task, request: Any, exc: BaseException, traceback: str) -> None:
        seen.append(f"{self.name}:{request.task}:{type(exc).__name__}")
        ran.set()

    start_worker()
    tasks.fail.apply_async(link_error=on_error.s())
    assert ran.wait(10)
    assert seen == [f"{on_error.name}:{tasks.fail.name}:Boom"]
