"""Running one task: claim, run under its time limits, store the outcome, fire hooks and
callbacks. The same code runs in pool threads and in process-pool children."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor.app import context, states
from conveyor.app.base import Conveyor
from conveyor.app.exceptions import Retry
from conveyor.app.protocol import TaskMessage
from conveyor.app.task import Task
from conveyor.backends.base import ResultRecord
from conveyor.canvas.advance import advance
from conveyor.worker import events, results
from conveyor.worker.expiry import is_expired, mark_expired
from conveyor.worker.retries import autoretry, wants_autoretry
from conveyor.worker.time_limits import limits

log = logging.getLogger("conveyor.worker")


@dataclass
class Job:
    """A decoded task plus what the worker knows about its delivery; picklable."""

    message: TaskMessage
    delivery_info: dict[str, Any] = field(default_factory=dict)
    delivery_count: int = 1
    headers: dict[str, Any] = field(default_factory=dict)
    #: The stored state read for a batch of deliveries (results.Checked), if any.
    checked: results.Checked | None = None


@dataclass
class Stored:
    """A success whose record the caller stores (in a batch with others), then calls
    `after` for what follows the store: the log line, on_success, the links, after_return."""

    record: ResultRecord
    after: Callable[[], str]


@dataclass
class ExceptionInfo:
    """The `einfo` passed to on_failure/on_retry/after_return."""

    exception: BaseException
    traceback: str

    @property
    def type(self) -> type[BaseException]:
        return type(self.exception)


def _setting(task: Task, option: str, app: Conveyor, setting: str) -> Any:
    value = getattr(task, option)
    return app.conf[setting] if value is None else value


def _hook(task: Task, name: str, *args: Any) -> None:
    try:
        getattr(task, name)(*args)
    except Exception:
        log.exception("%s.%s hook raised", task.name, name)


def _failed(
    app: Conveyor,
    task: Task,
    msg: TaskMessage,
    request: context.Context,
    exc: BaseException,
    *,
    store: bool,
) -> ExceptionInfo:
    """FAILURE: store it (unless already stored or results are ignored), then on_failure
    and the workflow (errbacks, the steps that will not run)."""
    einfo = ExceptionInfo(exc, results.traceback_text(exc))
    if store:
        results.store_failure(app, msg.id, exc, msg.parent_id)
    log.error("task %s[%s] failed: %r", msg.task, msg.id, exc)
    _hook(task, "on_failure", exc, msg.id, request.args, msg.kwargs, einfo)
    advance(app, msg, states.FAILURE, request, exc, einfo.traceback)
    return einfo


def make_context(job: Job, hostname: str) -> context.Context:
    msg = job.message
    return context.Context(
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
    )


def execute(
    app: Conveyor,
    job: Job,
    hostname: str,
    *,
    hard_limit_outside: bool = False,
    defer_success: bool = False,
) -> str | Stored:
    """Run `job` and return its final state. Backend or broker errors propagate (the caller
    then returns the message to the queue); task errors never do.

    With `defer_success`, a success whose record encodes is not stored here: a `Stored`
    is returned and the caller stores the record, then calls its `after`.
    """
    msg = job.message
    task = app.get_task(msg.task)
    if is_expired(msg):  # it may have waited in the prefetch window since it was received
        return mark_expired(app, msg)
    keep = not msg.ignore_result
    if keep:
        track = bool(_setting(task, "track_started", app, "task_track_started"))
        meta = {"hostname": hostname, "pid": os.getpid()}
        forbidden = results.claim(app, msg.id, track, meta, job.checked)
        if forbidden is not None:
            log.info("task %s[%s] is %s already; not running it", msg.task, msg.id, forbidden)
            events.skipped(app, msg, hostname, forbidden)
            if job.delivery_count > 1:  # a crash may have come before its workflow moved on
                advance(app, msg, forbidden, make_context(job, hostname))
            return forbidden
    soft = _setting(task, "soft_time_limit", app, "task_soft_time_limit")
    hard = _setting(task, "time_limit", app, "task_time_limit")
    request = make_context(job, hostname)
    args, kwargs = request.args, msg.kwargs
    retval: Any = None
    einfo: ExceptionInfo | None = None
    run = events.Run(app, msg, hostname)
    try:
        with context.running(request), limits(soft, hard, hard_enforced_outside=hard_limit_outside):
            try:
                retval = task.run(*args, **kwargs)
            except Retry:
                raise
            except Exception as exc:
                if wants_autoretry(task, exc):
                    autoretry(task, exc, msg.retries)
                raise
    except Retry as retry:
        state = states.RETRY
        cause = retry.exc or retry
        einfo = ExceptionInfo(cause, results.traceback_text(cause))
        if keep:
            results.store_retry(app, msg.id, retry.exc, msg.parent_id)
        log.info("task %s[%s] retry in %.3g s: %s", msg.task, msg.id, retry.when, cause)
        _hook(task, "on_retry", cause, msg.id, args, kwargs, einfo)
    except BaseException as exc:  # sys.exit() in a task too: it fails, its slot lives on
        einfo = _failed(app, task, msg, request, exc, store=keep)
        state, retval = states.FAILURE, exc
    else:

        def succeeded() -> str:
            log.info("task %s[%s] succeeded", msg.task, msg.id)
            run.done(states.SUCCESS, retval, None)
            _hook(task, "on_success", retval, msg.id, args, kwargs)
            advance(app, msg, states.SUCCESS, request, retval)
            _hook(task, "after_return", states.SUCCESS, retval, msg.id, args, kwargs, None)
            return states.SUCCESS

        if not keep:
            return succeeded()
        record = results.success_record(msg.id, retval, msg.parent_id)
        if defer_success and results.encodes(record):
            return Stored(record, succeeded)
        problem = results.store_success(app, record)
        if problem is None:
            return succeeded()
        # Already stored as FAILURE by store_success.
        state, retval = states.FAILURE, problem
        einfo = _failed(app, task, msg, request, problem, store=False)
    run.done(state, retval, einfo)
    _hook(task, "after_return", state, retval, msg.id, args, kwargs, einfo)
    return state
