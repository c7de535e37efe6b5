"""What a worker does with Celery's task API: Ignore, Reject, before_start, throws,
store_errors_even_if_ignored and result_extended (on an in-process worker)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor, Task, states
from conveyor.app.exceptions import Ignore, Reject, WorkerLostError
from conveyor.testing.waiting import wait_until
from conveyor.worker.lost import worker_lost
from conveyor.worker.request import Work, read
from conveyor.worker.worker import Worker


def test_ignore_stores_nothing_and_acks(app: Conveyor, start_worker: Callable[..., Worker]) -> None:
    ran: list[str] = []

    @app.task(bind=True)
    def skip(self: Task) -> None:
        ran.append(self.request.id or "")
        raise Ignore()

    result = skip.delay()
    worker = start_worker()
    assert wait_until(lambda: bool(ran), 10)
    worker.stop()  # an unsettled message would go back to the queue now
    assert app.transport.size("default") == 0
    assert result.state == states.PENDING  # no outcome stored, as in Celery
    assert app.transport.dead_letters("default") == []


def test_reject_dead_letters_or_requeues(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def refuse() -> None:
        raise Reject("bad input")

    @app.task(bind=True)
    def once_more(self: Task) -> int:
        if self.request.delivery_count == 1:
            raise Reject("not yet", requeue=True)
        return self.request.delivery_count

    refused = refuse.delay()
    again = once_more.delay()
    start_worker()
    assert again.get(timeout=10) == 2
    assert wait_until(lambda: len(app.transport.dead_letters("default")) == 1, 10)
    (dead,) = app.transport.dead_letters("default")
    assert dead.message.correlation_id == refused.id and "Reject" in dead.reason
    assert refused.state == states.PENDING


def test_before_start_runs_on_the_worker(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    seen: list[Any] = []

    class Hooked(Task):
        def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
            seen.append((task_id, args, kwargs))

    @app.task(base=Hooked)
    def work(x: int) -> int:
        return x

    result = work.delay(5)
    start_worker()
    assert result.get(timeout=10) == 5
    assert seen == [(result.id, (5,), {})]


def test_errors_of_ignored_results_can_be_kept(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    @app.task(ignore_result=True, store_errors_even_if_ignored=True)
    def kept() -> None:
        raise KeyError("kept")

    @app.task(ignore_result=True)
    def dropped() -> None:
        raise KeyError("dropped")

    @app.task(ignore_result=True, store_errors_even_if_ignored=True)
    def fine() -> int:
        return 1

    results = [kept.delay(), dropped.delay(), fine.delay()]
    worker = start_worker(concurrency=1)
    assert wait_until(lambda: app.backend.get(results[0].id) is not None, 10)
    with pytest.raises(KeyError):
        app.AsyncResult(results[0].id).get(timeout=1)
    assert wait_until(lambda: app.transport.size("default") == 0, 10)
    worker.stop()
    assert app.backend.get(results[1].id) is None
    assert app.backend.get(results[2].id) is None


def test_result_extended(app: Conveyor, start_worker: Callable[..., Worker]) -> None:
    app.conf.result_extended = True

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def boom(reason: str) -> None:
        raise ValueError(reason)

    ok, failed = add.apply_async((1, 2), queue="maths"), boom.delay("why")
    worker = start_worker(queues=["maths", "default"])
    assert ok.get(timeout=10) == 3
    assert (ok.name, ok.args, ok.kwargs, ok.retries, ok.queue) == (add.name, [1, 2], {}, 0, "maths")
    assert ok.worker == worker.hostname
    with pytest.raises(ValueError):
        failed.get(timeout=10)
    assert (failed.name, failed.args) == (boom.name, ["why"])


def test_throws_logs_an_expected_error_as_info(
    app: Conveyor, start_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    @app.task(throws=(KeyError,))
    def lookup() -> None:
        raise KeyError("absent")

    with caplog.at_level(logging.INFO, logger="conveyor.worker"):
        result = lookup.delay()
        start_worker()
        with pytest.raises(KeyError):
            result.get(timeout=10)
        assert wait_until(lambda: "failed: KeyError" in caplog.text, 5)
    (line,) = [r for r in caplog.records if "failed: KeyError" in r.getMessage()]
    assert line.levelno == logging.INFO


def test_task_default_rate_limit(app: Conveyor, start_worker: Callable[..., Worker]) -> None:
    app.conf.task_default_rate_limit = "1/h"

    @app.task
    def limited() -> str:
        return "ran"

    @app.task(rate_limit="100/s")
    def own() -> str:
        return "own"

    worker = start_worker()
    first, second = limited.delay(), limited.delay()
    assert first.get(timeout=5) == "ran"
    assert wait_until(lambda: len(worker.holding) == 1, 5)  # the second waits an hour
    assert [own.delay().get(timeout=5) for _ in range(3)] == ["own"] * 3
    worker.stop()
    assert second.state == states.PENDING


@pytest.mark.parametrize(
    ("setting", "own", "retried"), [(True, None, True), (True, False, False), (None, None, False)]
)
def test_task_reject_on_worker_lost_setting(
    app: Conveyor, setting: bool | None, own: bool | None, retried: bool
) -> None:
    app.conf.task_reject_on_worker_lost = setting

    @app.task(reject_on_worker_lost=own)
    def crashes() -> None: ...

    crashes.delay()
    (delivery,) = app.transport.fetch("default", max_messages=1, timeout=1.0)
    work = Work(read(app, delivery), delivery, acks_late=True, app=app)
    outcome = worker_lost(app, work, -9)
    assert isinstance(outcome.error, WorkerLostError) is retried
