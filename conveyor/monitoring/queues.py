"""Queue counts for the dashboard and the metrics: ready, delayed, held, dead per queue.

The transport answers through `Transport.counts`: memory, Redis and SQL count all four;
others know ready and dead, and delayed and held are unknown (None, shown as "-").
Which queues: the app's own (its default queue, the tasks' and the routes' queues) and
every queue seen in the event history and heartbeats.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from conveyor.app.base import Conveyor
from conveyor.backends.events import TaskQuery
from conveyor.core.errors import ConveyorError

log = logging.getLogger("conveyor.monitoring")


@dataclass
class QueueCounts:
    queue: str
    ready: int | None
    delayed: int | None
    held: int | None
    dead: int | None
    oldest_age: float | None = None  # seconds the oldest ready message has waited
    error: str | None = None


def known_queues(app: Conveyor) -> list[str]:
    found = {app.conf.task_default_queue}
    found.update(task.queue for task in app.tasks.values() if getattr(task, "queue", None))
    routes = app.conf.task_routes
    for route in routes if isinstance(routes, (list, tuple)) else [routes]:
        if isinstance(route, dict):
            for target in route.values():
                found.add(target if isinstance(target, str) else target.get("queue"))
    try:
        store = app.events.store
        for event in store.workers().values():
            found.update(event.get("queues") or [])
        found.update(row.queue for row in store.tasks(TaskQuery(limit=200)) if row.queue)
    except ConveyorError as exc:
        log.info("queues seen in the event history are unknown: %s", exc)
    return sorted(q for q in found if isinstance(q, str) and q)


def queue_counts(app: Conveyor, queue: str) -> QueueCounts:
    """The transport's counts (Transport.counts), or the error that kept them."""
    try:
        found = app.transport.counts(queue)
    except ConveyorError as exc:
        return QueueCounts(queue, None, None, None, None, error=str(exc))
    return QueueCounts(queue, found.ready, found.delayed, found.held, found.dead, found.oldest_age)
