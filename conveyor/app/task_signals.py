"""The task signals of one run, sent the same way by a worker (worker/signal_hooks.py)
and by an eager run (eager.py): Celery sends them in both, with these arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor import signals
from conveyor.app import states
from conveyor.app.context import Context
from conveyor.app.einfo import ExceptionInfo

if TYPE_CHECKING:
    from conveyor.app.task import Task


def prerun(task: Task, request: Context) -> None:
    signals.task_prerun.send(
        sender=task, task_id=request.id, task=task, args=request.args, kwargs=request.kwargs
    )


def outcome(
    task: Task, request: Context, state: str, retval: Any, einfo: ExceptionInfo | None
) -> None:
    """task_success / task_failure / task_retry for `state`, then task_postrun."""
    if state == states.SUCCESS:
        signals.task_success.send(sender=task, result=retval)
    elif state == states.FAILURE and einfo is not None:
        signals.task_failure.send(
            sender=task,
            task_id=request.id,
            exception=einfo.exception,
            args=request.args,
            kwargs=request.kwargs,
            traceback=einfo.exception.__traceback__,
            einfo=einfo,
        )
    elif state == states.RETRY and einfo is not None:
        signals.task_retry.send(sender=task, request=request, reason=einfo.exception, einfo=einfo)
    signals.task_postrun.send(
        sender=task,
        task_id=request.id,
        task=task,
        args=request.args,
        kwargs=request.kwargs,
        retval=retval,
        state=state,
    )
