"""Automatic retries: `autoretry_for`, `retry_backoff`, `retry_backoff_max`, `retry_jitter`.

The retry itself is `Task.retry`: it republishes the task with a broker-side delay and
raises `Retry`; past `max_retries` it re-raises the task's error, which ends in FAILURE.
"""

from __future__ import annotations

import random

from conveyor.app.task import Task


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
