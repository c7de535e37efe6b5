"""The worker's middleware: one interface for everything that happens around a task run.

The worker's own steps are middleware (worker/stack.py lists them in order): the
revoked/duplicate check, signals, the task's hooks and links, time limits, result storage,
automatic retries and rate limits. A user adds theirs the same way, with the
``worker_middleware`` setting (instances, classes or "module:attr" strings; a process-pool
child loads the app, so it gets them too). See docs/worker.md.

Order: "before" hooks run in the stack's order and "after" hooks in reverse, so a middleware
listed earlier wraps those after it. User middleware sits after the signals and task hooks
and before time limits and result storage: its `before_task` runs once the task is known to
run, its `after_task` once the outcome is stored (or queued to be stored in a batch).

Errors: a hook that raises a ConveyorError (broker or backend trouble) stops the run and
the message goes back to the broker, as when the worker's own result store fails; any
other exception from a hook is logged and the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.app.context import Context
from conveyor.app.einfo import ExceptionInfo
from conveyor.backends.base import ResultRecord
from conveyor.core.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.app.task import Task
    from conveyor.worker.request import Work

log = logging.getLogger("conveyor.worker")


def traceback_text(exc: BaseException) -> str:
    return ExceptionInfo.of(exc).traceback


@dataclass
class Request(Context):
    """`task.request` in the worker: the Context plus what the worker read about it."""

    #: The stored state read for the delivery's batch (results.Checked), if any.
    checked: Any = field(default=None, repr=False)
    #: The task message as received (conveyor.app.protocol.TaskMessage).
    message: Any = field(default=None, repr=False)
    #: Where a middleware may keep what it needs from before_task to after_task.
    scratch: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Stored:
    """A success whose record the pool stores in a batch with others, then calls `after`
    for what follows the store (the remaining after_task hooks); `after` returns the state."""

    record: ResultRecord
    after: Callable[[], str]


@dataclass
class Outcome:
    """How a run ended; `after_task` hooks may change it (autoretry turns a FAILURE into a
    RETRY, a result that cannot be stored turns a SUCCESS into a FAILURE)."""

    state: str
    #: The return value; for FAILURE the exception; for RETRY the Retry.
    retval: Any = None
    einfo: ExceptionInfo | None = None
    #: May the SUCCESS record be stored later, in a batch with others (the thread pools)?
    defer: bool = False
    #: A SUCCESS record the result middleware left for the batch to store; the hooks after
    #: it run once it is stored.
    record: ResultRecord | None = None
    #: Were a FAILURE's not-run chain steps stored with it (worker/results.py)?
    rest_stored: bool = False


class Middleware:
    """No-op hooks; override the ones you need. Runs in the worker's slot threads and in
    process-pool children, possibly in many threads at once: keep state thread-safe."""

    def worker_start(self, worker: Any) -> None:
        """The worker is starting (called in the worker process, not in pool children)."""

    def worker_stop(self, worker: Any) -> None:
        """The worker has stopped."""

    def before_submit(self, worker: Any, work: Work) -> float:
        """In the consumer thread, before `work` goes to the pool: seconds to hold it in
        the worker first (rate limits), 0 to run it as soon as a slot is free."""
        return 0.0

    def before_task(self, task: Task, request: Context) -> str | None:
        """Before the task runs, in its thread, with `task.request` set: return a state
        (e.g. REVOKED) to not run it at all."""
        return None

    def task_skipped(self, task: Task, request: Context, state: str) -> None:
        """A `before_task` returned `state`; the task did not run."""

    def around_task(self, task: Task, request: Context, call: Callable[[], Any]) -> Any:
        """Wraps the task body: return `call()` (its value) or raise."""
        return call()

    def after_task(self, task: Task, request: Context, outcome: Outcome) -> None:
        """After the run; `outcome` says how it ended."""


def overrides(middleware: Middleware, hook: str) -> bool:
    """Whether `middleware` has its own `hook` (the stack calls only those: each no-op
    hook skipped is a call saved on the hot path)."""
    return getattr(type(middleware), hook) is not getattr(Middleware, hook)


def call_hook(hook: Callable[..., Any], *args: Any) -> Any:
    """Call one bound hook: a ConveyorError propagates, anything else is logged (returns
    None)."""
    try:
        return hook(*args)
    except ConveyorError:
        raise
    except Exception:
        owner = type(getattr(hook, "__self__", hook)).__name__
        log.exception("middleware %s.%s raised", owner, getattr(hook, "__name__", hook))
        return None
