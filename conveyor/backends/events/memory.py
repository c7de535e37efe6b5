"""The in-memory event store: the reference implementation, shared per ``memory://name``."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from conveyor.backends.events.base import (
    SERIES_TYPES,
    Event,
    EventStore,
    TaskQuery,
    TaskRow,
    folded,
    merge,
    minute,
)
from conveyor.core.inprocess import PerName
from conveyor.core.url import URL


@dataclass
class _History:
    lock: threading.Lock = field(default_factory=threading.Lock)
    log: deque[tuple[int, Event]] = field(default_factory=deque)
    next_id: int = 1
    # Least recently updated first, so the oldest are dropped first.
    rows: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    timelines: dict[str, list[Event]] = field(default_factory=dict)
    workers: dict[str, Event] = field(default_factory=dict)
    minutes: dict[int, dict[str, int]] = field(default_factory=dict)


_histories: PerName[_History] = PerName(_History)


class MemoryEventStore(EventStore):
    def __init__(self, url: URL, *, expires: float, max_tasks: int, namespace: str = "") -> None:
        super().__init__(expires=expires, max_tasks=max_tasks)
        self._h = _histories(url, namespace)

    def add(self, events: Sequence[Event], lines: Sequence[str] | None = None) -> None:
        h = self._h
        with h.lock:
            for event in events:
                h.log.append((h.next_id, event))
                h.next_id += 1
                kind = event.get("type", "")
                if kind.startswith("worker-") and event.get("hostname"):
                    h.workers[event["hostname"]] = event
                if kind in SERIES_TYPES:
                    counts = h.minutes.setdefault(minute(event.get("timestamp") or 0.0), {})
                    counts[kind] = counts.get(kind, 0) + 1
                if event.get("uuid") and kind.startswith("task-"):
                    h.timelines.setdefault(event["uuid"], []).append(event)
            for task_id, update in folded(events).items():
                old = h.rows.pop(task_id, None)
                h.rows[task_id] = update if old is None else merge(old, update)
            self._trim(time.time())

    def _trim(self, now: float) -> None:
        h, horizon = self._h, now - self.expires
        while h.log and (len(h.log) > self.max_events or h.log[0][1]["timestamp"] < horizon):
            h.log.popleft()
        while h.rows:
            task_id, row = next(iter(h.rows.items()))
            if len(h.rows) <= self.max_tasks and row["updated_at"] >= horizon:
                break
            del h.rows[task_id]
            h.timelines.pop(task_id, None)
        for stamp in [m for m in h.minutes if m < horizon]:
            del h.minutes[stamp]
        for name in [n for n, e in h.workers.items() if e["timestamp"] < horizon]:
            del h.workers[name]

    def since(self, cursor: str | None, limit: int = 1000) -> tuple[list[Event], str | None]:
        h = self._h
        with h.lock:
            last = h.next_id - 1
            if cursor is None:
                return [], str(last)
            after = int(cursor)
            first = h.log[0][0] if h.log else h.next_id
            start = max(0, after + 1 - first)  # ids are consecutive within the log
            found = [e for _, e in islice(h.log, start, start + limit)]
            return found, str(max(after, first - 1) + len(found))

    def tasks(self, query: TaskQuery) -> list[TaskRow]:
        with self._h.lock:
            rows = [TaskRow.from_dict(r) for r in reversed(self._h.rows.values())]
        matching = (row for row in rows if query.matches(row))
        return list(islice(matching, query.offset, query.offset + query.limit))

    def task(self, task_id: str) -> TaskRow | None:
        with self._h.lock:
            row = self._h.rows.get(task_id)
        return None if row is None else TaskRow.from_dict(row)

    def timeline(self, task_id: str) -> list[Event]:
        with self._h.lock:
            return list(self._h.timelines.get(task_id, ()))

    def workers(self) -> dict[str, Event]:
        with self._h.lock:
            return dict(self._h.workers)

    def series(self, since: float) -> dict[int, dict[str, int]]:
        with self._h.lock:
            return {m: dict(c) for m, c in self._h.minutes.items() if m >= minute(since)}
