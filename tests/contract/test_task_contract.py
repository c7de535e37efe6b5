"""Defects 13-15 of issue 12: a task's own contract with its caller (memory broker)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor, Task, states
from conveyor.app.exceptions import InvalidTaskOption, ResultIgnored, TaskRevokedError
from conveyor.core.errors import EncodeError
from conveyor.core.message import Message
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


def test_expires_is_checked_again_when_the_task_starts(
    app: Conveyor, start_worker: StartWorker
) -> None:
    """Defect 13: a task that expired while it waited in the worker's prefetch window (its
    slot busy) is not run when the slot frees; it ends REVOKED."""
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    @app.task
    def blocker() -> None:
        started.set()
        release.wait(10)

    @app.task
    def short_lived() -> None:
        ran.append("ran")

    start_worker(concurrency=1)
    blocker.delay()
    assert started.wait(5)
    result = short_lived.apply_async(expires=0.5)
    assert wait_until(lambda: app.transport.size("default") == 0, 5), "not prefetched"
    expired_at = time.monotonic() + 0.6
    assert not wait_until(lambda: time.monotonic() > expired_at and bool(ran), 0.8)
    release.set()
    with pytest.raises(TaskRevokedError):
        result.get(timeout=5)
    assert result.state == states.REVOKED
    assert ran == []


def test_retry_keeps_the_options_of_the_original_call(
    app: Conveyor, start_worker: StartWorker
) -> None:
    """Defect 14: self.retry() sends the task again with the call's priority, queue,
    headers (which carry per-call options) and expiry."""
    seen: list[dict[str, Any]] = []

    @app.task(bind=True)
    def flaky(self: Task) -> str:
        request = self.request
        seen.append(
            {
                "priority": request.delivery_info.get("priority"),
                "queue": request.delivery_info.get("queue"),
                "header": (request.headers or {}).get("x-custom"),
                "time limits": (request.headers or {}).get("timelimit"),
                "expires": request.expires,
                "retries": request.retries,
            }
        )
        if request.retries == 0:
            raise self.retry(countdown=0.05)
        return "done"

    start_worker(queues=["special"])
    result = flaky.apply_async(
        priority=7,
        queue="special",
        headers={"x-custom": "kept"},
        expires=60,
        time_limit=30,
        soft_time_limit=20,
    )
    assert result.get(timeout=10) == "done"
    first, second = seen
    assert second["retries"] == 1
    for option in ("priority", "queue", "header", "expires", "time limits"):
        assert second[option] == first[option], option
    assert first["priority"] == 7 and first["queue"] == "special"
    assert first["time limits"] == [30, 20]


@pytest.mark.parametrize("body", ["text", 42, None, ["b"]])
def test_a_message_body_that_is_not_bytes_is_an_encode_error(body: Any) -> None:
    """Defect 15: the error names the body and its type, not a bare TypeError."""
    with pytest.raises(EncodeError, match="body") as info:
        Message(body)
    assert type(body).__name__ in str(info.value)


def test_a_bytes_like_body_is_accepted() -> None:
    assert Message(b"x").body == b"x"
    assert bytes(Message(bytearray(b"y")).body) == b"y"


def test_get_on_an_ignored_result_raises_at_once(app: Conveyor, start_worker: StartWorker) -> None:
    """Defect 15: get() on an ignore_result task says so at once instead of waiting."""

    @app.task(ignore_result=True)
    def quiet() -> int:
        return 1

    @app.task
    def loud() -> int:
        return 2

    start_worker()
    for result in (quiet.delay(), loud.apply_async(ignore_result=True)):
        assert result.ignored
        started = time.monotonic()
        with pytest.raises(ResultIgnored, match="ignore_result") as info:
            result.get(timeout=30)
        assert time.monotonic() - started < 1.0
        assert result.id in str(info.value)
    assert loud.delay().get(timeout=10) == 2


def test_a_retry_past_the_calls_expiry_fails_saying_so(
    app: Conveyor, start_worker: StartWorker
) -> None:
    """A retry whose delay ends after the call's `expires` would only expire unrun: the
    task ends in FAILURE with InvalidTaskOption naming expires, nothing is sent."""

    @app.task(bind=True)
    def slow_retry(self: Task) -> None:
        raise self.retry(countdown=60)

    start_worker()
    with pytest.raises(InvalidTaskOption, match="expires"):
        slow_retry.apply_async(expires=30).get(timeout=10)
    assert app.transport.size("default") == 0
