"""Ignore, Reject and before_start on a worker, as Celery's worker treats them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conveyor import Conveyor, Task, states
from conveyor.exceptions import Ignore, Reject
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


def test_ignore_stores_nothing_and_acks(app: Conveyor, start_worker: StartWorker) -> None:
    ran: list[str] = []

    @app.task(bind=True)
    def quiet(self: Any) -> None:
        ran.append(self.request.id)
        raise Ignore()

    result = quiet.delay()
    start_worker()
    assert wait_until(lambda: bool(ran) and app.transport.size("default") == 0, 5)
    assert result.state == states.PENDING  # nothing stored over the PENDING record
    assert app.transport.dead_letters("default") == []


def test_reject_dead_letters_or_requeues(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task(bind=True)
    def picky(self: Any, requeue: bool) -> str:
        if self.request.delivery_count == 1:
            raise Reject("not now", requeue=requeue)
        return "second time"

    dead = picky.delay(False)
    again = picky.delay(True)
    start_worker()
    assert again.get(timeout=10) == "second time"
    assert wait_until(lambda: len(app.transport.dead_letters("default")) == 1, 5)
    letter = app.transport.dead_letters("default")[0]
    assert letter.message.correlation_id == dead.id and "Reject" in (letter.reason or "")


def test_before_start_runs_before_the_body(app: Conveyor, start_worker: StartWorker) -> None:
    order: list[str] = []

    class Base(Task):
        def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
            order.append(f"before {args[0]}")

    @app.task(base=Base)
    def work(x: int) -> int:
        order.append(f"run {x}")
        return x

    start_worker()
    assert work.delay(7).get(timeout=5) == 7
    assert order == ["before 7", "run 7"]
