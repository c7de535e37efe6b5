"""A task whose process died under it (os._exit, a segfault, the OOM killer).

Returning its message to the broker each time would run it again until "max deliveries"
dead-letters it, with nothing stored, so `get()` waits out its timeout. Instead the task
ends as a FAILURE (WorkerLostError naming the exit code or signal) and its message is
settled. A task that sets `reject_on_worker_lost = True` (Celery's option) opts into a
retry: its message goes back to the broker, until its last allowed delivery, which also
ends as the FAILURE.
"""

from __future__ import annotations

import logging
import signal

from conveyor.app import states
from conveyor.app.base import Conveyor
from conveyor.app.exceptions import WorkerLostError
from conveyor.worker.ended import Ended
from conveyor.worker.request import Work
from conveyor.worker.results import store_failure

log = logging.getLogger("conveyor.worker")


def describe_exit(exitcode: int | None) -> str:
    """'exit code 7', 'signal 9 (SIGKILL)' from a multiprocessing exit code."""
    if exitcode is None:
        return "an unknown exit status"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
        return f"signal {-exitcode} ({name})"
    return f"exit code {exitcode}"


def worker_lost(app: Conveyor, work: Work, exitcode: int | None) -> Ended:
    """The outcome for `Work.finish`: FAILURE (stored), or the error to requeue with."""
    message = work.job.message
    error = WorkerLostError(f"the process running the task ended with {describe_exit(exitcode)}")
    task = app.tasks[message.task]
    own = getattr(task, "reject_on_worker_lost", None)
    retry = bool(app.conf.task_reject_on_worker_lost if own is None else own)
    if retry and work.delivery.delivery_count < app.transport.options.max_deliveries:
        log.warning("task %s[%s]: %s; returning it to the queue", message.task, message.id, error)
        return Ended.failed(error)
    log.error("task %s[%s] failed: %s", message.task, message.id, error)
    if not message.ignore_result:
        store_failure(app, message.id, error, message.parent_id)
    return Ended.at(states.FAILURE)
