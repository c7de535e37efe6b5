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


class SyncSubtaskError(TaskError, RuntimeError):
    """`get()` on a result inside a running task: the worker slot would block on another
    task, which can deadlock a busy pool. Use a chain or a chord, or pass
    ``disable_sync_subtasks=False`` to wait anyway."""


class InvalidTaskOption(TaskError, ValueError):
    """A task or call option that cannot work (a negative countdown, expires before eta,
    a negative max_retries, ...); the message names it. Nothing was sent."""


class ResultIgnored(TaskError):
    """get() on a task sent with ignore_result=True: no result will ever be stored."""


class TimeoutError(TaskError, builtins.TimeoutError):
    """`AsyncResult.get` reached its timeout before the task was ready."""


class AlreadyRegistered(TaskError):
    """A task name registered twice with different code."""


class TaskPredicate(TaskError):
    """Base class of the exceptions a task raises to tell the worker what to do next."""


class Ignore(TaskPredicate):
    """Raised by a task to end its run with no result stored and its message acked."""


class Reject(TaskPredicate):
    """Raised by a task to refuse its message: dead-lettered, or with ``requeue=True``
    returned to the queue."""

    def __init__(self, reason: object = None, requeue: bool = False) -> None:
        super().__init__(reason, requeue)
        self.reason = reason
        self.requeue = requeue

    def __str__(self) -> str:
        return f"rejected: {self.reason}" if self.reason is not None else "rejected"


class WorkerLostError(TaskError):
    """The process running the task died (killed, out of memory) before it finished."""


class MaxDeliveriesExceeded(TaskError):
    """The task's message was dead-lettered as "max deliveries"; the message says what
    sent it back the last time."""


class InvalidTaskError(TaskError):
    """A task message that cannot be run (malformed, or its arguments do not fit)."""


class QueueNotFound(TaskError, KeyError):
    """A queue named in the routing that no configured queue matches."""


class WorkerShutdown(SystemExit):
    """Raised inside the worker to stop it warmly."""


class WorkerTerminate(SystemExit):
    """Raised inside the worker to stop it at once."""
