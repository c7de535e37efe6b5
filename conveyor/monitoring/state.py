"""The cluster as the live events tell it: workers, per-task rates, recent failures.

Outcome events (task-succeeded, task-failed) carry only the task id, as Celery's do, so the
names seen in task-sent and task-received are remembered (the newest NAMES_KEPT ids).
A worker is alive while its last event is worker-online or worker-heartbeat and is younger
than ALIVE_FACTOR heartbeat periods.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conveyor.backends.events import Event

RATE_WINDOW = 60.0
NAMES_KEPT = 10_000
FAILURES_KEPT = 10
ALIVE_FACTOR = 2.5


def worker_alive(event: Event, now: float | None = None) -> bool:
    """Whether a worker whose last event is `event` is up."""
    if event.get("type") == "worker-offline":
        return False
    freq = float(event.get("freq") or 2.0)
    return (now or time.time()) - float(event.get("timestamp") or 0.0) <= freq * ALIVE_FACTOR


@dataclass
class Failure:
    timestamp: float
    name: str
    uuid: str
    exception: str


class ClusterState:
    """Thread-safe: one thread applies events, others read snapshots."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.workers: dict[str, Event] = {}
        self.totals: Counter[str] = Counter()  # event type -> count since start
        self._names: OrderedDict[str, str] = OrderedDict()
        self._done: deque[tuple[float, str, str]] = deque()  # (time, name, type)
        self.failures: deque[Failure] = deque(maxlen=FAILURES_KEPT)

    def name_of(self, task_id: str) -> str:
        return self._names.get(task_id, "?")

    def apply(self, events: Iterable[Event]) -> None:
        with self._lock:
            for event in events:
                self._apply(event)

    def _apply(self, event: Event) -> None:
        kind = str(event.get("type", ""))
        self.totals[kind] += 1
        if kind.startswith("worker-") and event.get("hostname"):
            self.workers[str(event["hostname"])] = event
            return
        task_id = event.get("uuid")
        if not isinstance(task_id, str):
            return
        if event.get("name"):
            self._names[task_id] = str(event["name"])
            self._names.move_to_end(task_id)
            while len(self._names) > NAMES_KEPT:
                self._names.popitem(last=False)
        stamp = float(event.get("timestamp") or time.time())
        if kind in ("task-succeeded", "task-failed"):
            self._done.append((stamp, self.name_of(task_id), kind))
        if kind == "task-failed":
            exception = str(event.get("exception") or "")
            self.failures.appendleft(Failure(stamp, self.name_of(task_id), task_id, exception))

    def rates(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """Per task name over the last RATE_WINDOW seconds: succeeded, failed, per minute."""
        now = now or time.time()
        with self._lock:
            while self._done and self._done[0][0] < now - RATE_WINDOW:
                self._done.popleft()
            done = list(self._done)
        rates: dict[str, dict[str, Any]] = {}
        for _, name, kind in done:
            entry = rates.setdefault(name, {"succeeded": 0, "failed": 0})
            entry["succeeded" if kind == "task-succeeded" else "failed"] += 1
        for entry in rates.values():
            entry["per_minute"] = (entry["succeeded"] + entry["failed"]) * 60.0 / RATE_WINDOW
        return rates

    def snapshot(self) -> tuple[dict[str, Event], list[Failure]]:
        with self._lock:
            return dict(self.workers), list(self.failures)
