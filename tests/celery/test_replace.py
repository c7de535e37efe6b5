"""`self.replace(sig)`: the new signature takes the task's id, callbacks and errbacks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor import Conveyor, Task
from conveyor.app.exceptions import TaskError
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker


def _tasks(app: Conveyor) -> tuple[Task, Task, Task]:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(bind=True)
    def double(self: Task, x: int) -> int:
        return self.replace(add.s(x, x))  # type: ignore[no-any-return]

    @app.task(bind=True)
    def via_chain(self: Task, x: int) -> int:
        return self.replace(add.s(x, 1) | add.s(100))  # type: ignore[no-any-return]

    return add, double, via_chain


def test_replaced_task_result_is_the_new_signatures(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    _, double, via_chain = _tasks(app)
    got: list[int] = []

    @app.task
    def keep(value: int) -> None:
        got.append(value)

    result = double.apply_async((21,), link=keep.s())
    chained = via_chain.delay(1)
    start_worker()
    assert result.get(timeout=10) == 42
    assert chained.get(timeout=10) == 102
    assert wait_until(lambda: got == [42], 10), got


def test_replace_in_an_eager_run(app: Conveyor) -> None:
    _, double, via_chain = _tasks(app)
    got: list[int] = []

    @app.task
    def keep(value: int) -> None:
        got.append(value)

    assert double.apply((5,), link=keep.s()).get() == 10
    assert via_chain.apply((5,)).get() == 106
    assert got == [10]  # the callback ran once
    assert app.transport.size("default") == 0


def test_replace_outside_a_task_is_refused(app: Conveyor) -> None:
    _, double, _ = _tasks(app)
    with pytest.raises(TaskError, match="running task"):
        double(3)
