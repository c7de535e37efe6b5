"""Automatic retries: `autoretry_for`, `retry_backoff`, `retry_backoff_max`, `retry_jitter`.

The retry itself is `Task.retry`: it republishes the task with a broker-side delay and
raises `Retry`; past `max_retries` it re-raises the task's error, which ends in FAILURE.
As middleware (`Retries`), a FAILURE that `autoretry_for` covers becomes a RETRY before
it is stored.
"""

from __future__ import annotations

import random

from conveyor.app import states
from conveyor.app.context import Context
from conveyor.app.exceptions import Retry
from conveyor.app.task import Task
from conveyor.core.errors import ConveyorError
from conveyor.worker.middleware import ExceptionInfo, Middleware, Outcome


def backoff_delay(task: Task, retries: int) -> float | None:
    """The countdown before retry number `retries + 1`, or None for the task's default."""
    if not task.retry_backoff:
        return None
    base = 1.0 if task.retry_backoff is True else float(task.retry_backoff)
    delay = min(task.retry_backoff_max, base * (2**retries))
    return random.uniform(0, delay) if task.retry_jitter else delay


def wants_autoretry(task: Task, exc: BaseException) -> bool:
    return bool(task.autoretry_for) and (
        isinstance(exc, task.autoretry_for) and not isinstance(exc, task.dont_autoretry_for)
    )


def autoretry(task: Task, exc: BaseException, retries: int) -> None:
    """Retry `task` because of `exc`: raises Retry, or `exc` once retries are exhausted."""
    options = dict(task.retry_kwargs)
    countdown = backoff_delay(task, retries)
    if countdown is not None:
        options.setdefault("countdown", countdown)
    task.retry(exc=exc, **options)


class Retries(Middleware):
    def after_task(self, task: Task, request: Context, outcome: Outcome) -> None:
        exc = outcome.retval
        if outcome.state != states.FAILURE or not wants_autoretry(task, exc):
            return
        try:
            autoretry(task, exc, request.retries)
        except Retry as retry:
            outcome.state, outcome.retval = states.RETRY, retry
            outcome.einfo = ExceptionInfo.of(retry.exc or retry)
        except ConveyorError:
            raise  # the retry could not be sent: the message goes back to the broker
        except Exception as final:  # retries exhausted: the task's error (or its own)
            if final is not exc:
                outcome.retval, outcome.einfo = final, ExceptionInfo.of(final)
