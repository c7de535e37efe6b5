"""Running one task through the middleware stack (middleware.py, stack.py): the before
hooks, the body wrapped by the around hooks, then the after hooks, which store the
outcome and fire the task's hooks, links and signals. The same code runs in pool threads
and in process-pool children."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from conveyor.app import context, states
from conveyor.app.base import Conveyor
from conveyor.app.exceptions import Ignore, Reject, Retry
from conveyor.app.protocol import TaskMessage
from conveyor.app.task import Task
from conveyor.worker import results
from conveyor.worker.ended import Ended
from conveyor.worker.expiry import is_expired, mark_expired
from conveyor.worker.middleware import (
    ExceptionInfo,
    Outcome,
    Request,
    Stored,
    call_hook,
)
from conveyor.worker.stack import stack_for

log = logging.getLogger("conveyor.worker")
#: What `execute` returns for a task that raised ``Reject(requeue=True)``: its message goes
#: back to the queue (a plain REJECTED one is dead-lettered). Not a stored state.
REQUEUED = "REQUEUED"
__all__ = ["ExceptionInfo", "Job", "Stored", "execute", "make_context"]


@dataclass
class Job:
    """A decoded task plus what the worker knows about its delivery; picklable."""

    message: TaskMessage
    delivery_info: dict[str, Any] = field(default_factory=dict)
    delivery_count: int = 1
    headers: dict[str, Any] = field(default_factory=dict)
    #: The stored state read for a batch of deliveries (results.Checked), if any.
    checked: results.Checked | None = None


def make_context(job: Job, hostname: str) -> Request:
    msg = job.message
    return Request(
        id=msg.id,
        task=msg.task,
        args=tuple(msg.args),
        kwargs=msg.kwargs,
        retries=msg.retries,
        eta=msg.eta,
        expires=msg.expires,
        hostname=hostname,
        delivery_info=job.delivery_info,
        delivery_count=job.delivery_count,
        root_id=msg.root_id,
        parent_id=msg.parent_id,
        group_id=msg.group_id,
        callbacks=msg.callbacks,
        errbacks=msg.errbacks,
        headers=job.headers,
        ignore_result=msg.ignore_result,
        called_directly=False,
        checked=job.checked,
        message=msg,
    )


def _run(task: Task, request: Request, around: list[Callable[..., Any]]) -> Outcome:
    """The body inside the around hooks (the first listed outermost); task errors become
    the outcome, they never propagate."""
    call = partial(task.run, *request.args, **request.kwargs)
    for hook in reversed(around):
        call = partial(hook, task, request, call)
    try:
        return Outcome(states.SUCCESS, call())
    except Retry as retry:
        return Outcome(states.RETRY, retry, ExceptionInfo.of(retry.exc or retry))
    except Ignore as ignore:  # Celery's: no result, the message acked
        return Outcome(states.IGNORED, ignore)
    except Reject as reject:  # Celery's: no result, the message dead-lettered or requeued
        return Outcome(states.REJECTED, reject)
    except BaseException as exc:  # sys.exit() in a task too: it fails, its slot lives on
        return Outcome(states.FAILURE, exc, ExceptionInfo.of(exc))


def _after(
    hooks: list[Callable[..., Any]], start: int, task: Task, request: Request, outcome: Outcome
) -> str | Stored:
    """The after hooks from `start`; when one leaves a record for a batched store, the
    rest wait for it (they run in `Stored.after`)."""
    for index in range(start, len(hooks)):
        call_hook(hooks[index], task, request, outcome)
        if outcome.record is not None:
            record, outcome.record = outcome.record, None

            def rest(following: int = index + 1) -> str:
                with context.running(request):
                    state = _after(hooks, following, task, request, outcome)
                assert isinstance(state, str)  # the one deferrable store is done
                return state

            return Stored(record, rest)
    return outcome.state


def execute(
    app: Conveyor,
    job: Job,
    hostname: str,
    *,
    hard_limit_outside: bool = False,
    defer_success: bool = False,
) -> Ended:
    """Run `job`; how it ended (`Ended.at` its final state). Backend or broker errors
    propagate (the caller then returns the message to the queue); task errors never do.

    With `defer_success`, a success whose record encodes is not stored here: it comes back
    as `Ended.deferred`, and the caller stores the record, then calls its `after`.
    """
    task = app.get_task(job.message.task)
    if is_expired(job.message):  # it may have waited in the prefetch window since received
        return Ended.at(mark_expired(app, job.message))
    stack = stack_for(app, hard_enforced_outside=hard_limit_outside)
    request = make_context(job, hostname)
    with context.running(request):
        for before in stack.before:
            state = call_hook(before, task, request)
            if state is not None:
                log.info("task %s[%s] is %s already; not running it", task.name, request.id, state)
                for skipped in stack.skipped:
                    call_hook(skipped, task, request, state)
                return Ended.at(str(state))
        outcome = _run(task, request, stack.around)
        outcome.defer = defer_success
        state = _after(stack.after, 0, task, request, outcome)
        if isinstance(state, Stored):
            return Ended.deferred(state)
        if state == states.REJECTED and getattr(outcome.retval, "requeue", False):
            return Ended.at(REQUEUED)
        return Ended.at(state)
