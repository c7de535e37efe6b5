"""`.then(callback, on_error)`, `get()` inside a task, and Celery's errback forms."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor, Task, group
from conveyor.app.exceptions import SyncSubtaskError
from conveyor.testing.waiting import wait_until
from tests.canvas.conftest import Boom, Tasks


def test_then_calls_back_or_calls_on_error(shared: Tasks) -> None:
    seen: dict[str, Any] = {}
    done = threading.Event()

    def record(name: str) -> Callable[[Any], None]:
        def call(value: Any) -> None:
            seen[name] = value
            if len(seen) == 3:
                done.set()

        return call

    shared.add.delay(1, 2).then(lambda r: record("ok")(r.result), record("ok-error"))
    shared.fail.delay(3).then(record("bad"), lambda exc: record("bad-error")(exc))
    group(shared.add.s(1, 1), shared.add.s(2, 2)).delay().then(lambda rs: record("group")(rs.get()))
    assert done.wait(10), seen
    assert seen["ok"] == 3 and "ok-error" not in seen
    assert isinstance(seen["bad-error"], Boom) and "bad" not in seen
    assert seen["group"] == [2, 4]


def test_get_inside_a_task_raises_unless_allowed(shared_app: Conveyor, shared: Tasks) -> None:
    @shared_app.task
    def waits(allow: bool) -> Any:
        return shared.add.delay(1, 1).get(timeout=5, disable_sync_subtasks=not allow)

    with pytest.raises(SyncSubtaskError, match=r"inside task .*waits"):
        waits.delay(False).get(timeout=10)
    assert waits.delay(True).get(timeout=10) == 2
    assert waits(True) == 2, "called directly, not in a worker: allowed"


def test_errback_forms(shared_app: Conveyor, shared: Tasks) -> None:
    """One that takes the task id is sent as a task; one taking (request, exc, traceback)
    is called in the failing worker."""
    seen: list[Any] = []

    @shared_app.task
    def by_id(task_id: str, tag: str) -> None:
        seen.append(("id", task_id, tag))

    @shared_app.task
    def by_request(request: Any, exc: BaseException, traceback: str) -> None:
        seen.append(("request", request.id, exc, traceback))

    result = shared.fail.apply_async((1,), link_error=[by_id.s("tag"), by_request.s()])
    with pytest.raises(Boom):
        result.get(timeout=10)
    assert wait_until(lambda: len(seen) == 2, timeout=10), seen
    by_kind = {entry[0]: entry for entry in seen}
    assert by_kind["id"] == ("id", result.id, "tag")
    _, request_id, exc, traceback = by_kind["request"]
    assert request_id == result.id and isinstance(exc, Boom) and "Boom" in traceback


def test_bound_errback_with_request_form(shared_app: Conveyor, shared: Tasks) -> None:
    seen: list[str] = []
    ran = threading.Event()

    @shared_app.task(bind=True)
    def on_error(self: Task, request: Any, exc: BaseException, traceback: str) -> None:
        seen.append(f"{self.name}:{request.task}:{type(exc).__name__}")
        ran.set()

    shared.fail.apply_async(link_error=on_error.s())
    assert ran.wait(10)
    assert seen == [f"{on_error.name}:{shared.fail.name}:Boom"]
