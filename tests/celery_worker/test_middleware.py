"""The worker's middleware interface: user middleware runs where the docs say it does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor, states
from conveyor.app.context import Context
from conveyor.core.errors import BackendUnavailable, ConfigurationError
from conveyor.testing.waiting import wait_until
from conveyor.worker.middleware import Middleware, Outcome
from conveyor.worker.stack import build
from conveyor.worker.worker import Worker
from tests.celery_worker import mw_sample

StartWorker = Callable[..., Worker]


class Tracing(Middleware):
    """Records each hook with what it could see of the stored state."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def worker_start(self, worker: Any) -> None:
        self.events.append(("start", worker.hostname))

    def before_task(self, task: Any, request: Context) -> None:
        self.events.append(("before", task.app.AsyncResult(request.id).state))

    def around_task(self, task: Any, request: Context, call: Callable[[], Any]) -> Any:
        self.events.append(("around", request.args))
        return call() * 10

    def after_task(self, task: Any, request: Context, outcome: Outcome) -> None:
        self.events.append(("after", outcome.state, outcome.retval))

    def worker_stop(self, worker: Any) -> None:
        self.events.append(("stop", worker.hostname))


def test_user_middleware_wraps_the_task_and_sees_the_outcome(
    app: Conveyor, start_worker: StartWorker
) -> None:
    tracing = Tracing()
    app.conf.worker_middleware = [tracing]

    @app.task
    def double(x: int) -> int:
        return 2 * x

    worker = start_worker(pool="solo")
    result = double.delay(4)
    assert result.get(timeout=5) == 80  # the around hook changed the return value
    worker.stop()
    assert tracing.events == [
        ("start", worker.hostname),
        ("before", states.PENDING),
        ("around", (4,)),
        ("after", states.SUCCESS, 80),
        ("stop", worker.hostname),
    ]


def test_middleware_by_module_path_and_a_raising_hook_is_only_logged(
    app: Conveyor, start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Middleware):
        def before_task(self, task: Any, request: Context) -> None:
            raise RuntimeError("middleware bug")

    app.conf.worker_middleware = ["tests.celery_worker.mw_sample:Audit", Broken]
    mw_sample.CALLS.clear()

    @app.task
    def hello() -> str:
        return "hi"

    start_worker()
    result = hello.delay()
    assert result.get(timeout=5) == "hi"
    assert wait_until(lambda: len(mw_sample.CALLS) == 2, 5)
    assert [("before", result.id), ("after", states.SUCCESS)] == mw_sample.CALLS
    assert "Broken.before_task raised" in caplog.text and "middleware bug" in caplog.text


def test_a_conveyor_error_from_a_hook_returns_the_message(
    app: Conveyor, start_worker: StartWorker
) -> None:
    class Flaky(Middleware):
        def __init__(self) -> None:
            self.failures = 1

        def before_task(self, task: Any, request: Context) -> None:
            if self.failures:
                self.failures -= 1
                raise BackendUnavailable("audit store down")

    app.conf.worker_middleware = [Flaky()]

    @app.task(bind=True)
    def count(self: Any) -> int:
        return int(self.request.delivery_count)

    start_worker()
    assert count.delay().get(timeout=10) == 2  # returned once, then run


def test_bad_middleware_entries_are_refused_by_name(app: Conveyor) -> None:
    app.conf.worker_middleware = ["tests.celery_worker.mw_sample:Nope"]
    with pytest.raises(ConfigurationError, match=r"mw_sample:Nope.*cannot be loaded"):
        build(app)
    app.conf.worker_middleware = [object]
    with pytest.raises(ConfigurationError, match=r"not a conveyor\.worker\.middleware\.Middleware"):
        build(app)
