"""Eager runs: `task.apply()` runs a task in this process, now, and returns an EagerResult.

`task_always_eager` makes `apply_async`/`delay` do the same (tests and scripts without a
worker). The run goes through the task's hooks as on a worker (before_start, on_success,
on_failure, on_retry, after_return). A failure is kept in the result, or raised at once
with ``throw=True`` / the `task_eager_propagates` setting. `self.retry()` inside an eager
run runs the next attempt right away (no countdown) in place of publishing it, until
`max_retries`, as Celery does. With `task_store_eager_result` the outcome is also stored
in the result backend.

This is the one eager mechanism, workflows included. A workflow moves on as on a worker,
through callbacks: a chain links each step to the next and sends the first, and this run
calls the callbacks (`link`) eagerly when their task is known here, with the ids their
signatures were given. A failure marks what its callbacks would have run as not run (a
FAILURE with the same exception), as a worker does (canvas/failures.py), so a chain's
last step and any handle on a later step raise the first error. Every outcome is kept in
memory (eager_records.py); `outcome()` gives a workflow its last step's EagerResult.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from conveyor.app import context, eager_records, states, task_signals
from conveyor.app.arguments import check_arguments
from conveyor.app.einfo import ExceptionInfo
from conveyor.app.errbacks import call_errbacks
from conveyor.app.exceptions import Ignore, Reject, Retry
from conveyor.app.result import AsyncResult
from conveyor.app.signature import Signature, signature_dicts
from conveyor.backends.base import ResultRecord, now
from conveyor.backends.errors import describe_exception
from conveyor.core.message import new_task_id

if TYPE_CHECKING:
    from conveyor.app.task import Task


_local = threading.local()


def wanted(app: Any) -> bool:
    """Whether a send on this thread runs eagerly: `task_always_eager`, or inside
    `everything_eager()` (a replacement in an eager run)."""
    return bool(app.conf.task_always_eager or getattr(_local, "eager", False))


@contextmanager
def everything_eager() -> Iterator[None]:
    """Run every send on this thread eagerly until the block ends."""
    before = getattr(_local, "eager", False)
    _local.eager = True
    try:
        yield
    finally:
        _local.eager = before


class EagerResult(AsyncResult):
    """The outcome of an eager run: always ready, read from memory, never from a backend.

    A failure's `result` is the exception object itself (not a rebuilt copy).
    """

    def __init__(
        self, record: ResultRecord, value: Any, app: Any, request: context.Context | None = None
    ) -> None:
        super().__init__(record.task_id, app=app)
        self._value_now = value
        self._ready_record = record
        #: The run's request (None for a task marked as not run): what errbacks are given.
        self.request = request

    def _record(self) -> ResultRecord:
        assert self._ready_record is not None
        return self._ready_record

    def _value(self, record: ResultRecord) -> Any:
        return self._value_now

    def ready(self) -> bool:
        return True

    def exists(self) -> bool:
        return True

    def forget(self) -> None:
        """Nothing to forget: an eager result is kept in memory, never stored (unless
        `task_store_eager_result`, as Celery's, which forget() leaves alone too)."""

    def revoke(self, terminate: bool = False, **options: Any) -> None:
        """Too late to stop it; Celery marks an eager result REVOKED, and so does this."""
        record = self._record()
        record.state = states.REVOKED

    def __repr__(self) -> str:
        return f"<EagerResult: {self.id}>"


class EagerRetry(Retry):
    """`self.retry()` in an eager run: the next attempt has already run; its result."""

    def __init__(self, result: EagerResult) -> None:
        super().__init__("retried eagerly")
        self.result = result


def _hook(task: Task, name: str, *args: Any) -> None:
    getattr(task, name)(*args)


def _finish(
    task: Task, request: context.Context, state: str, value: Any, einfo: ExceptionInfo | None
) -> EagerResult:
    """The run's EagerResult, kept for handles made elsewhere, and for a success or a
    failure stored too when asked to."""
    assert request.id is not None
    meta = {
        "name": task.name,
        "args": list(request.args),
        "kwargs": request.kwargs,
        "retries": request.retries,
    }
    traceback = None if einfo is None else einfo.traceback
    record = ResultRecord(
        request.id, state, result=value, traceback=traceback, date_done=now(), meta=meta
    )
    result = EagerResult(record, value, task.app, request)
    if state in (states.SUCCESS, states.FAILURE):
        eager_records.keep(result)
        if task.app.conf.task_store_eager_result and not task.ignore_result:
            stored = value if state == states.SUCCESS else describe_exception(value)
            task.app.backend.store(
                ResultRecord(request.id, state, result=stored, traceback=traceback, date_done=now())
            )
    return result


def mark_not_run(app: Any, ids: Iterable[str], failed: AsyncResult) -> None:
    """Keep a FAILURE with the failed run's exception for every task id in `ids`, whose
    tasks will not run (a worker stores the same; canvas/failures.py)."""
    for task_id in ids:
        record = ResultRecord(
            task_id,
            states.FAILURE,
            result=failed.result,
            traceback=failed.traceback,
            date_done=now(),
            meta={"not_run": True, "failed": failed.id},
        )
        eager_records.keep(EagerResult(record, failed.result, app))


def failed(result: AsyncResult, errbacks: list[dict[str, Any]]) -> None:
    """Call `errbacks` for the failed eager run `result` (its own, or a chord body's when it
    was a header task), as a worker calls them (errbacks.py), running here."""
    request = getattr(result, "request", None)
    if request is None or not errbacks:
        return
    with everything_eager():
        call_errbacks(result.app, errbacks, request, result.result, result.traceback)


def outcome(result: Any) -> Any:
    """What an eager workflow hands back for the frozen handle `result` of its last step:
    the step's EagerResult (with the handle's `parent`), or `result` itself when it is
    not one task's (a group's) or no outcome was kept."""
    kept = eager_records.find(result.app, result.id) if isinstance(result, AsyncResult) else None
    if kept is None:
        return result
    kept.parent = result._parent
    return kept


def apply(
    task: Task,
    args: Any = None,
    kwargs: dict[str, Any] | None = None,
    *,
    task_id: str | None = None,
    retries: int = 0,
    throw: bool | None = None,
    link: Any = None,
    link_error: Any = None,
    headers: dict[str, Any] | None = None,
) -> EagerResult:
    """Run `task` here and now; see the module docstring."""
    args, kwargs = tuple(args or ()), dict(kwargs or {})
    check_arguments(task, args, kwargs)
    task_id = task_id or new_task_id()
    parent = context.current()
    request = context.Context(
        id=task_id,
        task=task.name,
        args=args,
        kwargs=kwargs,
        retries=retries,
        root_id=(parent.root_id or parent.id) if parent and parent.id else task_id,
        parent_id=parent.id if parent else None,
        callbacks=signature_dicts(link),
        errbacks=signature_dicts(link_error),
        headers=dict(headers or {}),
        delivery_info={"is_eager": True},
        called_directly=False,
        is_eager=True,
    )
    propagate = task.app.conf.task_eager_propagates if throw is None else throw
    einfo: ExceptionInfo | None = None
    with context.running(request):
        task_signals.prerun(task, request)
        _hook(task, "before_start", task_id, args, kwargs)
        try:
            value = task.run(*args, **kwargs)
        except EagerRetry as retried:
            einfo = ExceptionInfo.of(retried.exc or retried)
            _hook(task, "on_retry", retried.exc or retried, task_id, args, kwargs, einfo)
            task_signals.outcome(task, request, states.RETRY, retried, einfo)
            return retried.result
        except Ignore as exc:
            state, value = states.IGNORED, exc
            result = _finish(task, request, state, value, None)
        except Reject as exc:
            state, value = states.REJECTED, exc
            result = _finish(task, request, state, value, None)
        except Exception as exc:
            state, value, einfo = states.FAILURE, exc, ExceptionInfo.of(exc)
            result = _finish(task, request, state, exc, einfo)
            for data in request.callbacks:
                mark_not_run(task.app, Signature.from_dict(data, task.app).frozen_ids(), result)
            _hook(task, "on_failure", exc, task_id, args, kwargs, einfo)
            failed(result, request.errbacks)
            if propagate:
                _hook(task, "after_return", state, exc, task_id, args, kwargs, einfo)
                task_signals.outcome(task, request, state, exc, einfo)
                raise
        else:
            state = states.SUCCESS
            result = _finish(task, request, state, value, None)
            _hook(task, "on_success", value, task_id, args, kwargs)
            _run_links(task, request.callbacks, value)
        _hook(task, "after_return", state, value, task_id, args, kwargs, einfo)
        task_signals.outcome(task, request, state, value, einfo)
    return result


def _run_links(task: Task, links: list[dict[str, Any]], value: Any) -> None:
    """Run each callback eagerly with `value` when its task is registered here; send the
    others, as a worker would."""
    for data in links:
        sig = Signature.from_dict(data, task.app)
        target = task.app.tasks.get(sig.task)
        if target is None:
            sig.apply_async((value,))
            continue
        call_args = sig.args if sig.immutable else (value, *sig.args)
        options = sig.options
        apply(
            target,
            call_args,
            sig.kwargs,
            task_id=options.get("task_id"),
            link=options.get("link"),
            link_error=options.get("link_error"),
        )


def retry(
    task: Task,
    request: context.Context,
    args: Any,
    kwargs: Any,
    exc: BaseException | None,
) -> EagerRetry:
    """Run the next attempt of an eager task now; raise its result as EagerRetry."""
    result = apply(
        task,
        request.args if args is None else args,
        request.kwargs if kwargs is None else kwargs,
        task_id=request.id,
        retries=request.retries + 1,
        headers=request.headers,
    )
    retried = EagerRetry(result)
    retried.exc = exc
    return retried
