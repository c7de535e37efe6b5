"""The task signals (conveyor.signals), sent from the worker's middleware stack.

task_prerun once the task is known to run; task_success / task_failure / task_retry after
the outcome is stored and the task's own hooks ran; task_postrun last; task_revoked when
the stored state says REVOKED. Argument names are Celery's (conveyor.app.task_signals).
"""

from __future__ import annotations

from conveyor import signals
from conveyor.app import states, task_signals
from conveyor.app.context import Context
from conveyor.app.task import Task
from conveyor.worker.middleware import Middleware, Outcome


class Signals(Middleware):
    def before_task(self, task: Task, request: Context) -> None:
        task_signals.prerun(task, request)

    def task_skipped(self, task: Task, request: Context, state: str) -> None:
        if state == states.REVOKED:
            signals.task_revoked.send(
                sender=task, request=request, terminated=False, signum=None, expired=False
            )

    def after_task(self, task: Task, request: Context, outcome: Outcome) -> None:
        task_signals.outcome(task, request, outcome.state, outcome.retval, outcome.einfo)
