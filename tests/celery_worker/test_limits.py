"""Rate limits and per-call time limits, enforced by the worker's own middleware."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.app.exceptions import SoftTimeLimitExceeded
from conveyor.testing.waiting import wait_until
from conveyor.worker.rate_limits import RateLimits
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


def test_rate_limit_spaces_runs_without_returning_messages(
    app: Conveyor, start_worker: StartWorker
) -> None:
    starts: list[float] = []

    @app.task(bind=True, rate_limit="4/s")
    def limited(self: Any) -> int:
        starts.append(time.monotonic())
        return int(self.request.delivery_count)

    results = [limited.delay() for _ in range(8)]
    start_worker(concurrency=4)
    assert [r.get(timeout=10) for r in results] == [1] * 8  # held, never bounced
    starts.sort()
    # A burst of 4, then one every 0.25 s: the 8th starts at least ~1 s after the first.
    assert starts[-1] - starts[0] >= 0.9


def test_rate_limit_changed_at_run_time(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task(rate_limit="1/h")
    def slow() -> str:
        return "ran"

    worker = start_worker()
    first, second = slow.delay(), slow.delay()
    assert first.get(timeout=5) == "ran"  # the bucket starts with one token
    limits = worker.stack.find(RateLimits)
    assert wait_until(lambda: len(worker.holding) == 1, 5)  # the second waits an hour
    limits.set_rate(slow.name, None)  # no limit from now on
    limits.set_rate(slow.name, "100/s")
    third = slow.delay()
    assert third.get(timeout=5) == "ran"
    worker.stop()  # the held one goes back to the broker unstarted
    assert app.transport.size("default") == 1 and second.state == "PENDING"


def test_per_call_soft_time_limit_overrides_the_tasks(
    app: Conveyor, start_worker: StartWorker
) -> None:
    @app.task(soft_time_limit=60)
    def sleepy(seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "woke"

    start_worker()
    with pytest.raises(SoftTimeLimitExceeded):
        sleepy.apply_async((5.0,), soft_time_limit=0.2).get(timeout=10)
    assert sleepy.apply_async((0.05,)).get(timeout=10) == "woke"


def test_worker_disable_rate_limits(app: Conveyor, start_worker: StartWorker) -> None:
    app.conf.worker_disable_rate_limits = True

    @app.task(rate_limit="1/h")
    def limited() -> str:
        return "free"

    start_worker()
    assert [limited.delay().get(timeout=5) for _ in range(3)] == ["free"] * 3
