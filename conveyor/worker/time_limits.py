"""Time limits, and revoke-with-terminate, inside the thread that runs a task.

The soft limit raises SoftTimeLimitExceeded in the task so it can clean up. In a process
pool child (the main thread) it is a SIGALRM timer and interrupts blocking calls too; in
pool threads it is an asynchronous exception, raised at the task's next Python bytecode (a
blocking C call finishes first). The hard limit kills the child process in the process pool
(see processes.py); in threads, where nothing can be killed, it is raised like the soft one
as TimeLimitExceeded, with the same caveat, and so is TaskRevokedError by `interrupt`.

Which limits apply (`for_task`): the call's own (`apply_async(time_limit=...,
soft_time_limit=...)`, in the ``timelimit`` header as ``[hard, soft]``), else the
task's option, else the task_time_limit / task_soft_time_limit settings. `TimeLimits` is
the middleware that runs each task body under them.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from conveyor.app.call_options import TIME_LIMIT_HEADER
from conveyor.app.context import Context
from conveyor.app.exceptions import SoftTimeLimitExceeded, TaskRevokedError, TimeLimitExceeded
from conveyor.app.task import Task
from conveyor.worker.middleware import Middleware


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


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def for_task(task: Task, headers: dict[str, Any]) -> tuple[float | None, float | None]:
    """(soft, hard) for one run of `task` with message `headers`; a malformed header is
    ignored (the task's own limits apply)."""
    conf = task.app.conf
    soft = conf.task_soft_time_limit if task.soft_time_limit is None else task.soft_time_limit
    hard = conf.task_time_limit if task.time_limit is None else task.time_limit
    per_call = headers.get(TIME_LIMIT_HEADER)  # [hard, soft], Celery's shape
    if isinstance(per_call, (list, tuple)) and len(per_call) == 2:
        hard = _number(per_call[0]) or hard
        soft = _number(per_call[1]) or soft
    return soft, hard


class TimeLimits(Middleware):
    """Runs the body under its limits, interruptible by revoke-with-terminate."""

    def __init__(self, *, hard_enforced_outside: bool = False) -> None:
        self.hard_enforced_outside = hard_enforced_outside

    def around_task(self, task: Task, request: Context, call: Callable[[], Any]) -> Any:
        soft, hard = for_task(task, request.headers)
        with limits(soft, hard, hard_enforced_outside=self.hard_enforced_outside):
            return call()
