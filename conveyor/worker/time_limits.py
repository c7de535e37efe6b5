"""Time limits, and revoke-with-terminate, inside the thread that runs a task.

The soft limit raises SoftTimeLimitExceeded in the task so it can clean up. In a process
pool child (the main thread) it is a SIGALRM timer and interrupts blocking calls too; in
pool threads it is an asynchronous exception, raised at the task's next Python bytecode (a
blocking C call finishes first). The hard limit kills the child process in the process pool
(see processes.py); in threads, where nothing can be killed, it is raised like the soft one
as TimeLimitExceeded, with the same caveat, and so is TaskRevokedError by `interrupt`.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from conveyor.app.exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded


def raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    """Raise `exc_type` asynchronously in the thread with identifier `thread_id`."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
    )


def _alarm(_signum: int, _frame: object) -> None:
    raise SoftTimeLimitExceeded("soft time limit exceeded")


@contextmanager
def _alarm_limit(soft: float) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, soft)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Armed:
    """One task run in one thread; `over` is set (under `_firing`) when the body ended."""

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.over = False

    def fire(self, exc_type: type[BaseException]) -> None:
        with _firing:
            if not self.over:
                raise_in_thread(self.thread_id, exc_type)


_firing = threading.Lock()
_INTERRUPTS = (SoftTimeLimitExceeded, TimeLimitExceeded, TaskRevokedError)
_runs: dict[int, _Armed] = {}  # thread id -> the run in that thread now


def interrupt(thread_id: int, exc_type: type[BaseException]) -> bool:
    """Raise `exc_type` in the task running in thread `thread_id` (revoke with terminate);
    False when no task runs there. Never reaches the thread outside a task body."""
    armed = _runs.get(thread_id)
    if armed is None:
        return False
    armed.fire(exc_type)
    return True


def _described(exc: BaseException, soft: float | None, hard: float | None) -> BaseException:
    """An asynchronous exception arrives as a bare class (no message): name what it was."""
    if exc.args:
        return exc
    if isinstance(exc, TimeLimitExceeded):
        return TimeLimitExceeded(f"hard time limit{_seconds(hard)} exceeded")
    if isinstance(exc, SoftTimeLimitExceeded):
        return SoftTimeLimitExceeded(f"soft time limit{_seconds(soft)} exceeded")
    return TaskRevokedError("terminated by revoke")


def _seconds(limit: float | None) -> str:
    return f" ({limit:g} s)" if limit else ""


@contextmanager
def _thread_run(soft: float | None, hard: float | None) -> Iterator[None]:
    armed = _Armed(threading.get_ident())
    _runs[armed.thread_id] = armed
    timers = [
        threading.Timer(seconds, armed.fire, (exc_type,))
        for seconds, exc_type in ((soft, SoftTimeLimitExceeded), (hard, TimeLimitExceeded))
        if seconds
    ]
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        yield
    except _INTERRUPTS as exc:
        described = _described(exc, soft, hard)
        if described is exc:
            raise
        raise described.with_traceback(exc.__traceback__) from None
    finally:
        # An interrupt fired just as the body ended arrives here, asynchronously; catch it
        # until the run is marked over, so it can never reach the thread's next task.
        while True:
            try:
                with _firing:
                    armed.over = True
                    _runs.pop(armed.thread_id, None)
                for timer in timers:
                    timer.cancel()
                break
            except _INTERRUPTS:
                continue


@contextmanager
def limits(
    soft: float | None, hard: float | None, *, hard_enforced_outside: bool
) -> Iterator[None]:
    """Run the body under its limits, interruptible by `interrupt`.

    `hard_enforced_outside` when a parent process kills on `hard` (process pool); there a
    soft-only limit in the child's main thread is a SIGALRM timer.
    """
    if hard_enforced_outside:
        hard = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and soft and not hard and hasattr(signal, "setitimer"):
        with _alarm_limit(soft):
            yield
    else:
        with _thread_run(soft, hard):
            yield
