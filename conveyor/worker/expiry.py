"""A task's `expires`: checked when its message reaches the worker and again when it starts.

A message can wait in the prefetch window (or a pool's queue) long after it was received,
so the first check alone would run a task its caller no longer wants (as Celery, the
worker checks again at start).
"""

from __future__ import annotations

import logging
import time

from conveyor import signals
from conveyor.app import states
from conveyor.app.base import Conveyor
from conveyor.app.context import Context
from conveyor.app.protocol import TaskMessage, parse_time
from conveyor.backends.base import ResultRecord, now
from conveyor.worker import events
from conveyor.worker.results import store

log = logging.getLogger("conveyor.worker")


def is_expired(msg: TaskMessage, at: float | None = None) -> bool:
    """Whether `msg` expired by `at` (epoch seconds; now by default)."""
    return msg.expires is not None and parse_time(msg.expires) <= (at or time.time())


def mark_expired(app: Conveyor, msg: TaskMessage) -> str:
    """Log, announce and store (unless results are ignored) that `msg` expired unrun."""
    log.info("task %s[%s] expired; not running it", msg.task, msg.id)
    events.expired(app, msg)
    if signals.task_revoked.receivers:
        request = Context(id=msg.id, task=msg.task, args=tuple(msg.args), kwargs=msg.kwargs)
        signals.task_revoked.send(
            sender=app.tasks.get(msg.task),
            request=request,
            terminated=False,
            signum=None,
            expired=True,
        )
    if not msg.ignore_result:
        store(app, ResultRecord(msg.id, states.REVOKED, result="expired", date_done=now()))
    return states.REVOKED
