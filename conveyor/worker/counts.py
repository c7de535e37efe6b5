"""How many tasks of each name this worker ran (`inspect stats`' "total", as Celery's)."""

from __future__ import annotations

import threading
from collections import Counter

from conveyor.app.context import Context
from conveyor.app.task import Task
from conveyor.worker.middleware import Middleware, Outcome


class TaskCounts(Middleware):
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def after_task(self, task: Task, request: Context, outcome: Outcome) -> None:
        with self._lock:
            self._counts[task.name] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
