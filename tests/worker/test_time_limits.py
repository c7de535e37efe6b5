from __future__ import annotations

import threading
import time

import pytest

from conveyor.app.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from conveyor.worker.time_limits import limits


def _in_thread(body: object) -> list[BaseException | None]:
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            body()  # type: ignore[operator]
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return outcome


def _spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.005)


def test_soft_limit_in_the_main_thread_interrupts_a_blocking_call() -> None:
    started = time.monotonic()
    with pytest.raises(SoftTimeLimitExceeded), limits(0.1, None, hard_enforced_outside=True):
        time.sleep(5)
    assert time.monotonic() - started < 2


def test_soft_and_hard_limits_in_a_pool_thread() -> None:
    def soft() -> None:
        with limits(0.1, None, hard_enforced_outside=False):
            _spin(5)

    def hard() -> None:
        with limits(None, 0.1, hard_enforced_outside=False):
            _spin(5)

    assert isinstance(_in_thread(soft)[0], SoftTimeLimitExceeded)
    assert isinstance(_in_thread(hard)[0], TimeLimitExceeded)


def test_a_limit_never_outlives_its_run() -> None:
    def quick_then_idle() -> None:
        with limits(0.05, 0.1, hard_enforced_outside=False):
            pass
        _spin(0.3)

    assert _in_thread(quick_then_idle) == [None]


def test_interrupt_reaches_only_a_running_task() -> None:
    from conveyor.app.exceptions import TaskRevokedError
    from conveyor.worker.time_limits import interrupt

    inside = threading.Event()
    outcome: list[str] = []

    def body() -> None:
        try:
            with limits(None, None, hard_enforced_outside=False):
                inside.set()
                _spin(5)
        except TaskRevokedError:
            outcome.append("revoked")
        assert not interrupt(threading.get_ident(), TaskRevokedError), "no task runs now"
        _spin(0.1)
        outcome.append("idle survived")

    thread = threading.Thread(target=body)
    thread.start()
    assert inside.wait(5)
    assert interrupt(thread.ident or 0, TaskRevokedError)
    thread.join(10)
    assert outcome == ["revoked", "idle survived"]
