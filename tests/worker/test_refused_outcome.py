"""An outcome the backend refuses (a finished state is stored for the id already: a
duplicate that finished first) is dropped with a warning naming the id, for a failure as
for a success."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor, states
from conveyor.backends.base import ResultRecord
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker


def test_a_refused_failure_is_logged(
    app: Conveyor, start_worker: Callable[..., Worker], caplog: pytest.LogCaptureFixture
) -> None:
    @app.task(bind=True)
    def beaten(self: Any) -> None:
        # A copy of this task finished first: its SUCCESS stands.
        app.backend.store(ResultRecord(self.request.id, states.SUCCESS, result=1))
        raise ValueError("too late")

    beaten.apply_async(task_id="refused-failure")
    start_worker(concurrency=1)

    def warned() -> bool:
        return any(
            "refused-failure" in r.getMessage() and "not kept" in r.getMessage()
            for r in caplog.records
        )

    assert wait_until(warned, 10), [r.getMessage() for r in caplog.records]
    assert app.AsyncResult("refused-failure").get(timeout=5) == 1
