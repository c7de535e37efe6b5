"""Errbacks: what a failed task calls, on a worker (canvas/advance.py, canvas/join.py) and
in an eager run (app/eager.py) alike.

Errbacks follow Celery: an errback is sent as a task with the failed task's id as its first
argument, unless its function has three positional parameters left after the signature's
own args: then it is called in the process where the task failed, as
``errback(request, exc, traceback)`` (`request` is the failed task's context, which cannot
travel). Celery's test is "more than one parameter", which misreads an old-style errback
with a partial argument.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from conveyor.app.context import Context
from conveyor.app.signature import Signature

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.task import Task

log = logging.getLogger("conveyor.canvas")


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
