"""Exceptions of the task layer, with Celery's names."""

from __future__ import annotations

import builtins

from conveyor.core.errors import ConveyorError


class TaskError(ConveyorError):
    """Base class of task-layer errors."""


class NotRegistered(TaskError, KeyError):
    """A task name that the app does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "task not registered"


class Retry(TaskError):
    """Raised by `Task.retry` to end this run; the worker republishes the task.

    `when` is the broker-side delay in seconds; `exc` the error that caused the retry.
    """

    def __init__(self, message: str = "", exc: BaseException | None = None, when: float = 0.0):
        super().__init__(message or f"retry in {when:g} s")
        self.exc = exc
        self.when = when


class MaxRetriesExceededError(TaskError):
    """`retry` was called after `max_retries` retries and no exception was given."""


class SoftTimeLimitExceeded(TaskError):
    """Raised inside a task that ran past its soft time limit; it may clean up and return."""


class TimeLimitExceeded(TaskError):
    """A task ran past its hard time limit and its process was killed."""


class TaskRevokedError(TaskError):
    """The task was revoked (or expired) and did not run."""


class TimeoutError(TaskError, builtins.TimeoutError):
    """`AsyncResult.get` reached its timeout before the task was ready."""
