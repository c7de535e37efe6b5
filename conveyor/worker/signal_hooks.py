"""The task signals (conveyor.signals), sent from the worker's middleware stack.

task_prerun once the task is known to run; task_success / task_failure / task_retry after
the outcome is stored and the task's own hooks ran; task_postrun last; task_revoked when
the stored state says REVOKED. Argument names are Celery's.
"""

from __future__ import annotations

from conveyor import signals
from conveyor.app import states
from conveyor.app.context import Context
from conveyor.app.task import Task
from conveyor.worker.middleware import Middleware, Outcome


class Signals(Middleware):
    def before_task(self, task: Task, request: Context) -> None:
        signals.task_prerun.send(
            sender=task, task_id=request.id, task=task, args=request.args, kwargs=request.kwargs
        )

    def task_skipped(self, task: Task, request: Context, state: str) -> None:
        if state == states.REVOKED:
            signals.task_revoked.send(
                sender=task, request=request, terminated=False, signum=None, expired=False
            )

    def after_task(self, task: Task, request: Context, outcome: Outcome) -> None:
        state, einfo = outcome.state, outcome.einfo
        if state == states.SUCCESS:
            signals.task_success.send(sender=task, result=outcome.retval)
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
            signals.task_retry.send(
                sender=task, request=request, reason=einfo.exception, einfo=einfo
            )
        signals.task_postrun.send(
            sender=task,
            task_id=request.id,
            task=task,
            args=request.args,
            kwargs=request.kwargs,
            retval=outcome.retval,
            state=state,
        )
