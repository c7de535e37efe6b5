"""The event history contract: a bounded, durable, searchable record of task events.

Workers and clients append batches of events (dicts with Celery's event names and fields);
the store keeps three views of them, each bounded by age (`expires` seconds) and by size:

* the event log, in arrival order, with a cursor (`since`), so a live view that cannot use
  the broker's broadcast polls it, and a task's page shows its timeline (`timeline`);
* one row per task (`TaskRow`), the fold of its events (`fold`), searchable by name, state,
  id prefix, worker, time range and argument text (`tasks`);
* the last event of each worker (`workers`), and per-minute counts of task outcomes
  (`series`) for the dashboard's charts.

The fold is commutative enough for events that arrive out of order from several processes:
a field takes the value of the last event that carries it, and the state is the one with
the highest `state_key` (its timestamp, with a bonus for ready states), so a late
task-received never turns a SUCCESS back into RECEIVED.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from conveyor.core.errors import ConfigurationError

Event = dict[str, Any]

DEFAULT_EXPIRES = 7 * 86400.0
DEFAULT_MAX_TASKS = 200_000
EVENTS_PER_TASK = 8  # the event log holds max_tasks times this many events
READY_BONUS = 1e10  # added to a ready state's timestamp in `state_key`
SERIES_TYPES = ("task-succeeded", "task-failed", "task-retried", "task-received")

# Event type -> (task state, the TaskRow time field it sets).
TASK_STATES: dict[str, tuple[str, str | None]] = {
    "task-sent": ("PENDING", "sent_at"),
    "task-received": ("RECEIVED", "received_at"),
    "task-started": ("STARTED", "started_at"),
    "task-succeeded": ("SUCCESS", "done_at"),
    "task-failed": ("FAILURE", "done_at"),
    "task-retried": ("RETRY", None),
    "task-revoked": ("REVOKED", "done_at"),
    "task-rejected": ("REJECTED", "done_at"),
}
READY = frozenset({"SUCCESS", "FAILURE", "REVOKED", "REJECTED"})
STATES = ("PENDING", "RECEIVED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "REJECTED")
# Event field -> TaskRow field, for the fields copied as they are.
COPIED = {
    "name": "name",
    "args": "args",
    "kwargs": "kwargs",
    "queue": "queue",
    "root_id": "root_id",
    "parent_id": "parent_id",
    "eta": "eta",
    "result": "result",
    "runtime": "runtime",
    "exception": "exception",
    "traceback": "traceback",
}


@dataclass
class TaskRow:
    """What the history knows of one task: the fold of its events."""

    task_id: str
    name: str | None = None
    state: str | None = None
    state_key: float = 0.0
    hostname: str | None = None
    args: str | None = None
    kwargs: str | None = None
    queue: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    eta: str | None = None
    result: str | None = None
    runtime: float | None = None
    exception: str | None = None
    traceback: str | None = None
    retries: int | None = None
    sent_at: float | None = None
    received_at: float | None = None
    started_at: float | None = None
    done_at: float | None = None
    updated_at: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRow:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


ROW_FIELDS = tuple(f.name for f in fields(TaskRow))


def fold(event: Event) -> dict[str, Any] | None:
    """The TaskRow fields one task event sets (None for events that are not a task's)."""
    kind = event.get("type")
    task_id = event.get("uuid")
    if kind not in TASK_STATES or not isinstance(task_id, str) or not task_id:
        return None
    state, at_field = TASK_STATES[kind]
    at = float(event.get("timestamp") or time.time())
    update: dict[str, Any] = {
        "task_id": task_id,
        "state": state,
        "state_key": at + (READY_BONUS if state in READY else 0.0),
        "updated_at": at,
    }
    if at_field:
        update[at_field] = at
    for source, target in COPIED.items():
        value = event.get(source)
        if value is not None:
            update[target] = value
    if kind != "task-sent" and event.get("hostname"):
        update["hostname"] = event["hostname"]
    if kind == "task-received" and event.get("retries") is not None:
        update["retries"] = int(event["retries"])
    return update


def merge(row: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Apply a fold to a row (both dicts): fields given win, state by state_key."""
    merged = dict(row)
    for key, value in update.items():
        if key in ("state", "state_key", "updated_at"):
            continue
        if value is not None:
            merged[key] = value
    if update["state_key"] >= (merged.get("state_key") or 0.0):
        merged["state"], merged["state_key"] = update["state"], update["state_key"]
    merged["updated_at"] = max(merged.get("updated_at") or 0.0, update["updated_at"])
    return merged


def folded(events: Iterable[Event]) -> dict[str, dict[str, Any]]:
    """The folds of a batch merged per task, in order: one upsert per task."""
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        update = fold(event)
        if update is not None:
            task_id = update["task_id"]
            rows[task_id] = merge(rows[task_id], update) if task_id in rows else update
    return rows


@dataclass
class TaskQuery:
    """A search of the task rows; every given criterion must hold. Newest first.

    task_id matches as a prefix, text as a substring of the args or kwargs text, and
    since/until bound `updated_at`.
    """

    name: str | None = None
    state: str | None = None
    task_id: str | None = None
    hostname: str | None = None
    text: str | None = None
    since: float | None = None
    until: float | None = None
    offset: int = 0
    limit: int = 50

    def __post_init__(self) -> None:
        if self.state is not None and self.state not in STATES:
            raise ConfigurationError(
                f"unknown task state {self.state!r}; use one of {', '.join(STATES)}"
            )
        if self.limit < 1 or self.limit > 1000:
            raise ConfigurationError(f"limit must be 1 to 1000, not {self.limit}")
        if self.offset < 0:
            raise ConfigurationError(f"offset must not be negative, not {self.offset}")

    def matches(self, row: TaskRow) -> bool:
        """The criteria as a predicate, for stores that filter in Python."""
        if self.name and row.name != self.name:
            return False
        if self.state and row.state != self.state:
            return False
        if self.task_id and not row.task_id.startswith(self.task_id):
            return False
        if self.hostname and row.hostname != self.hostname:
            return False
        if self.since is not None and row.updated_at < self.since:
            return False
        if self.until is not None and row.updated_at > self.until:
            return False
        if self.text:
            return self.text in (row.args or "") or self.text in (row.kwargs or "")
        return True


class EventStore(ABC):
    """Where events are kept; thread-safe; errors are conveyor errors."""

    def __init__(self, *, expires: float, max_tasks: int) -> None:
        if expires <= 0:
            raise ConfigurationError(f"events_expires must be positive, not {expires}")
        if max_tasks < 1:
            raise ConfigurationError(f"events_max_tasks must be at least 1, not {max_tasks}")
        self.expires = expires
        self.max_tasks = max_tasks
        self.max_events = max_tasks * EVENTS_PER_TASK

    @abstractmethod
    def add(self, events: Sequence[Event], lines: Sequence[str] | None = None) -> None:
        """Append a batch: to the log, folded into task rows, worker events kept. `lines`:
        the events as compact JSON, when the caller has them already (see `encode`)."""

    @abstractmethod
    def since(self, cursor: str | None, limit: int = 1000) -> tuple[list[Event], str | None]:
        """Events after `cursor` (None: from now on) and the cursor to ask with next."""

    @abstractmethod
    def tasks(self, query: TaskQuery) -> list[TaskRow]:
        """The task rows that match, newest update first, one page of them."""

    @abstractmethod
    def task(self, task_id: str) -> TaskRow | None: ...

    @abstractmethod
    def timeline(self, task_id: str) -> list[Event]:
        """The task's events in the order they were stored."""

    @abstractmethod
    def workers(self) -> dict[str, Event]:
        """Each worker's last worker event (online, heartbeat or offline)."""

    @abstractmethod
    def series(self, since: float) -> dict[int, dict[str, int]]:
        """Per minute (epoch seconds of its start) from `since`: counts of SERIES_TYPES."""

    def close(self) -> None:
        """Release connections."""


# json.dumps with options builds an encoder per call, a fifth of encoding a small event.
_DUMPS = json.JSONEncoder(separators=(",", ":"), default=str).encode


def encode(events: Sequence[Event], lines: Sequence[str] | None = None) -> Sequence[str]:
    """Each event as compact JSON (the given `lines`, or made here)."""
    if lines is not None:
        return lines
    return [_DUMPS(e) for e in events]


def minute(timestamp: float) -> int:
    return int(timestamp // 60) * 60
