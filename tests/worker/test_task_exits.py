"""A task that raises a BaseException (sys.exit, KeyboardInterrupt-like) ends as a FAILURE
with its message settled, and its pool slot lives on (issue 12, defect 2)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from conveyor import Conveyor, states
from conveyor.backends.errors import RemoteError
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_sys_exit_in_a_task_is_a_failure_and_the_slot_lives_on(
    app: Conveyor, start_worker: StartWorker, pool: str
) -> None:
    @app.task
    def leave() -> None:
        sys.exit(3)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    start_worker(concurrency=1, pool=pool)
    exits = [leave.delay() for _ in range(2)]
    for result in exits:
        with pytest.raises(RemoteError, match="SystemExit: 3"):
            result.get(timeout=5)
        assert result.state == states.FAILURE
    assert add.delay(1, 2).get(timeout=5) == 3, "the only slot still runs tasks"
    assert wait_until(lambda: app.transport.size("default") == 0, 5)
