"""What a failure does to the rest of a workflow: the steps that will never run are marked,
and the errbacks are called.

A step that cannot run because an earlier one failed is stored as FAILURE with the earlier
error (so `.get()` on a chain's result raises the first error instead of waiting forever),
and ``meta={"not_run": True, "failed": <id of the task that failed>}`` saying why.

Errbacks follow Celery: an errback is sent as a task with the failed task's id as its first
argument, unless its function has three positional parameters left after the signature's
own args: then it is called here, in the worker, as ``errback(request, exc, traceback)``
(`request` is the failed task's context, which cannot travel). Celery's test is "more than
one parameter", which misreads an old-style errback with a partial argument.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from conveyor.app import states
from conveyor.app.context import Context
from conveyor.backends.base import ResultRecord, now
from conveyor.backends.errors import describe_exception
from conveyor.canvas.signature import CHORD_JOIN, Signature

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.protocol import TaskMessage
    from conveyor.app.task import Task

log = logging.getLogger("conveyor.canvas")


def not_run_records(
    ids: Iterable[str], exc: BaseException, traceback: str | None, failed: str
) -> list[ResultRecord]:
    """FAILURE records (with `exc`) for the tasks `ids`, which will never be sent because
    task `failed` failed."""
    done = now()
    return [
        ResultRecord(
            task_id,
            states.FAILURE,
            result=describe_exception(exc),
            traceback=traceback,
            meta={"not_run": True, "failed": failed},
            date_done=done,
        )
        for task_id in ids
    ]


def mark_not_run(
    app: Conveyor, ids: Iterable[str], exc: BaseException, traceback: str | None, failed: str
) -> None:
    """Store FAILURE (with `exc`) for every id in `ids`, whose tasks will never be sent."""
    records = not_run_records(ids, exc, traceback, failed)
    if records:
        app.backend.store_many(records)


def rest_not_run(
    app: Conveyor, msg: TaskMessage, exc: BaseException, traceback: str | None
) -> list[ResultRecord]:
    """The records marking the chain steps after the failed task `msg` (its callbacks
    other than chord joins, and what follows them) as never to run.

    The worker stores them in one batch with the task's own FAILURE (worker/results.py):
    `get()` on a chain's last result follows a failed parent at once, so whoever sees the
    failure must see the rest failed too. Where the backend stores a batch atomically
    (memory, Redis, SQL) both appear at once; elsewhere the rest is stored first.
    """
    ids = [
        task_id
        for data in msg.callbacks
        if CHORD_JOIN not in data
        for task_id in Signature.from_dict(data, app).frozen_ids()
    ]
    return not_run_records(ids, exc, traceback, msg.id)


def _takes_request(task: Task, errback: Signature) -> bool:
    """Whether an errback's function takes (request, exc, traceback) rather than a task id:
    whether three positional arguments are left after the signature's own."""
    try:
        params = inspect.signature(task.run).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) - len(errback.args) >= 3


def call_errbacks(
    app: Conveyor,
    errbacks: Iterable[dict[str, Any]],
    request: Context,
    exc: BaseException,
    traceback: str | None,
) -> None:
    """Call or send every errback for the failed task of `request`; errors are logged."""
    for data in errbacks:
        try:
            errback = Signature.from_dict(data, app)
            task = app.tasks.get(errback.task)
            if task is not None and errback.subtask_type is None and _takes_request(task, errback):
                errback(request, exc, traceback)
            else:
                errback.apply_async(
                    (request.id,), parent_id=request.id, root_id=request.root_id or request.id
                )
        except Exception:
            log.exception("errback %r of task %s failed", data.get("task"), request.id)
