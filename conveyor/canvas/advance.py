"""Worker-side orchestration: what follows a task's end in a workflow.

The worker calls `advance` once the task's final state is stored (from its TaskHooks
middleware, worker/hooks.py), again when a finished task's message comes back after a
worker crash (the crash may have come before its workflow moved on), and when a revoked
task is skipped (what follows it will not run either). On success the callbacks
are sent with the result as their first argument and chord joins are counted; on failure
the steps that will never run are marked, the chords it belongs to fail, and the
errbacks are called. Sending a step that was sent before is harmless: every step has a
frozen task id, and a finished task is not run again.
"""

from __future__ import annotations

import logging
from traceback import format_exc
from typing import TYPE_CHECKING, Any

from conveyor.app import states
from conveyor.app.context import Context
from conveyor.app.errbacks import call_errbacks
from conveyor.app.exceptions import TaskRevokedError
from conveyor.canvas import join
from conveyor.canvas.failures import mark_not_run, rest_not_run
from conveyor.canvas.signature import CHORD_JOIN, Signature

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.protocol import TaskMessage

log = logging.getLogger("conveyor.canvas")
_READ = object()


def advance(
    app: Conveyor,
    msg: TaskMessage,
    state: str,
    request: Context,
    value: Any = _READ,
    traceback: str | None = None,
    rest_stored: bool = False,
) -> None:
    """Move the workflows of task `msg` (running as `request`) on after it ended in
    `state` with `value` (its return value or exception; read from the backend when not
    given). `rest_stored`: a FAILURE's not-run steps were stored with it. Never raises."""
    if not msg.callbacks and not msg.errbacks:
        return
    try:
        recovering = value is _READ
        if recovering:
            record = app.backend.get(msg.id)
            if record is None or record.state != state:
                return
            traceback = record.traceback
            value = app.rebuild_exception(record) if state == states.FAILURE else record.result
        if state == states.SUCCESS:
            _succeeded(app, msg, value, recovering)
        elif state == states.FAILURE:
            _failed(app, msg, request, value, traceback, mark_rest=not rest_stored)
        elif state == states.REVOKED:  # the rest will not run either; no errbacks (Celery)
            revoked = TaskRevokedError(f"task {msg.id} was revoked")
            _failed(app, msg, request, revoked, None, errbacks=False)
    except Exception:
        log.exception("moving the workflow of task %s on failed", msg.id)


def children(request: Context) -> list[str]:
    """The ids of the tasks that `request`'s task started, stored with its success (the
    result's `children`): those it sent while running, then its callbacks."""
    if not request.callbacks:
        return request.children
    ids = list(request.children)
    for data in request.callbacks:
        task_id = (data.get("options") or {}).get("task_id")
        if task_id and CHORD_JOIN not in data:
            ids.append(task_id)
    return ids


def _succeeded(app: Conveyor, msg: TaskMessage, value: Any, recovering: bool) -> None:
    for data in msg.callbacks:
        try:
            if CHORD_JOIN in data:
                join.succeeded(app, data, msg, recovering)
                continue
            callback = Signature.from_dict(data, app)
            callback.apply_async((value,), parent_id=msg.id, root_id=msg.root_id or msg.id)
        except (TypeError, ValueError) as exc:
            # Arguments the callback's task does not take (the result passed on does not
            # fit), or a bad shape: it can never run, so it and what follows it fail with
            # that error instead of being waited on for ever.
            log.error("callback %r of task %s cannot run: %s", data.get("task"), msg.id, exc)
            ids = Signature.from_dict(data, app).frozen_ids()
            mark_not_run(app, ids, exc, format_exc(), msg.id)
        except Exception:
            log.exception("sending callback %r of task %s failed", data.get("task"), msg.id)


def _failed(
    app: Conveyor,
    msg: TaskMessage,
    request: Context,
    exc: BaseException,
    traceback: str | None,
    errbacks: bool = True,
    mark_rest: bool = True,
) -> None:
    if mark_rest:
        app.backend.store_many(rest_not_run(app, msg, exc, traceback))
    for data in msg.callbacks:
        if CHORD_JOIN in data:
            join.failed(app, data, request, exc, traceback)
    if errbacks:
        call_errbacks(app, msg.errbacks, request, exc, traceback)
