"""The SQL event store (SQLAlchemy Core): SQLite, PostgreSQL, MariaDB, beside the results.

Three tables, created on first use (behind ``<namespace>_`` with a namespace):
``conveyor_events`` (the log: one row per event, its JSON, an autoincrement id as the
cursor), ``conveyor_event_tasks`` (one row per task, the fold of its events, upserted once
per task per batch with COALESCE so that each event only sets the fields it carries, and
the state chosen by `state_key` in the statement itself, so two writers folding into one
row in either order agree) and ``conveyor_event_workers``. Engines, transactions and error
translation are the SQL backend's (conveyor.clients.sql).

Expired and surplus rows are deleted by the writers, at most every `_SWEEP_EVERY` seconds.
A poller of `since` on PostgreSQL may miss an event whose transaction committed after a
later id's: the live view can skip it, the history keeps it.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    cast,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from conveyor.backends.events.base import (
    ROW_FIELDS,
    SERIES_TYPES,
    Event,
    EventStore,
    TaskQuery,
    TaskRow,
    encode,
    folded,
    minute,
)
from conveyor.backends.sql import MAX_KEY, Key, table_name
from conveyor.clients.sql import build_engines, dialect_of, transact
from conveyor.core.errors import (
    AuthenticationFailed,
    BackendError,
    BackendUnavailable,
    BrokerUnavailable,
    ConveyorError,
)
from conveyor.core.url import URL

T = TypeVar("T")
_SWEEP_EVERY = 30.0
_MYSQL = ("mysql", "mariadb")
_LONG = Text().with_variant(mysql.MEDIUMTEXT(), *_MYSQL)

_TEXT_FIELDS = ("args", "kwargs", "result", "exception", "traceback")
_STRING_FIELDS = ("name", "hostname", "queue", "root_id", "parent_id", "eta")
_TIME_FIELDS = ("sent_at", "received_at", "started_at", "done_at")


@dataclass(frozen=True)
class Tables:
    """The store's three tables, on a MetaData of their own (created together)."""

    metadata: MetaData
    events: Table
    tasks: Table
    workers: Table


@functools.cache
def tables(namespace: str = "") -> Tables:
    """The tables, ``<namespace>_conveyor_events`` and so on with a namespace (their indexes
    are named after them, so they carry it too)."""
    metadata = MetaData()
    events = Table(
        table_name(namespace, "conveyor_events"),
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("task_id", Key(), nullable=True, index=True),
        Column("type", String(64), nullable=False),
        Column("timestamp", Double, nullable=False, index=True),
        Column("data", _LONG, nullable=False),
    )
    tasks = Table(
        table_name(namespace, "conveyor_event_tasks"),
        metadata,
        Column("task_id", Key(), primary_key=True),
        Column("state", String(16), nullable=False, index=True),
        Column("state_key", Double, nullable=False),
        Column("updated_at", Double, nullable=False, index=True),
        Column("runtime", Double),
        Column("retries", Integer),
        *(
            Column(name, String(MAX_KEY), index=name in ("name", "hostname"))
            for name in _STRING_FIELDS
        ),
        *(Column(name, _LONG) for name in _TEXT_FIELDS),
        *(Column(name, Double) for name in _TIME_FIELDS),
    )
    workers = Table(
        table_name(namespace, "conveyor_event_workers"),
        metadata,
        Column("hostname", Key(), primary_key=True),
        Column("timestamp", Double, nullable=False),
        Column("data", _LONG, nullable=False),
    )
    return Tables(metadata, events, tasks, workers)


_MERGED = tuple(name for name in ROW_FIELDS if name not in ("task_id", "state", "state_key"))


def _upsert(
    dialect: str, table: Table, assign: Callable[[Table, Any], list[tuple[str, Any]]]
) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE (ON DUPLICATE KEY UPDATE on MySQL, which assigns in
    the order given, each seeing the ones before); `assign` gets the new row's columns."""
    stmt: Any
    if dialect == "mysql":
        stmt = mysql.insert(table)
        return stmt.on_duplicate_key_update(assign(table, stmt.inserted))
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    keys = list(table.primary_key.columns)
    return stmt.on_conflict_do_update(index_elements=keys, set_=dict(assign(table, stmt.excluded)))


def _task_fold(tasks: Table, new: Any) -> list[tuple[str, Any]]:
    """Given fields win, the state by state_key (state_key last, for MySQL)."""
    newer = new.state_key >= tasks.c.state_key
    later = new.updated_at > tasks.c.updated_at
    merged = [(n, func.coalesce(new[n], tasks.c[n])) for n in _MERGED if n != "updated_at"]
    return [
        *merged,
        ("updated_at", case((later, new.updated_at), else_=tasks.c.updated_at)),
        ("state", case((newer, new.state), else_=tasks.c.state)),
        ("state_key", case((newer, new.state_key), else_=tasks.c.state_key)),
    ]


def _worker_latest(workers: Table, new: Any) -> list[tuple[str, Any]]:
    newer = new.timestamp >= workers.c.timestamp
    return [
        ("data", case((newer, new.data), else_=workers.c.data)),
        ("timestamp", case((newer, new.timestamp), else_=workers.c.timestamp)),
    ]


def _row(update: dict[str, Any]) -> dict[str, Any]:
    return {name: update.get(name) for name in ROW_FIELDS}


class SQLEventStore(EventStore):
    def __init__(
        self,
        url: URL,
        *,
        expires: float,
        max_tasks: int,
        namespace: str = "",
        timeout: float = 10.0,
    ) -> None:
        super().__init__(expires=expires, max_tasks=max_tasks)
        self._tables = tables(namespace)
        self.url = url
        self._dialect = dialect_of(url)
        self._engines = build_engines(
            url, name="conveyor-events", connect_timeout=timeout, busy_timeout=timeout
        )
        self._task_upsert = _upsert(self._dialect, self._tables.tasks, _task_fold)
        self._worker_upsert = _upsert(self._dialect, self._tables.workers, _worker_latest)
        self._prepared = False
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def _run(self, work: Callable[[Connection], T], *, kind: str = "atomic") -> T:
        if not self._prepared:
            with self._lock:
                if not self._prepared:
                    self._transact(self._tables.metadata.create_all, "atomic")
                    self._prepared = True
        return self._transact(work, kind)

    def _transact(self, work: Callable[[Connection], T], kind: str) -> T:
        try:
            return transact(self._engines, self.url, work, kind=kind)
        except AuthenticationFailed:
            raise
        except BrokerUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc
        except ConveyorError as exc:
            raise BackendError(str(exc)) from exc

    def add(self, events: Sequence[Event], lines: Sequence[str] | None = None) -> None:
        if not events:
            return
        log_rows: list[dict[str, Any]] = [
            {
                "task_id": e.get("uuid") if isinstance(e.get("uuid"), str) else None,
                "type": str(e.get("type", ""))[:64],
                "timestamp": float(e.get("timestamp") or time.time()),
                "data": data,
            }
            for e, data in zip(events, encode(events, lines), strict=True)
        ]
        tasks = [_row(update) for update in folded(events).values()]
        workers: dict[str, dict[str, Any]] = {}
        for event, logged in zip(events, log_rows, strict=True):
            if logged["type"].startswith("worker-") and event.get("hostname"):
                workers[event["hostname"]] = {
                    "hostname": event["hostname"],
                    "timestamp": logged["timestamp"],
                    "data": logged["data"],
                }

        def work(connection: Connection) -> None:
            connection.execute(self._tables.events.insert(), log_rows)
            # Executemany: folded() gave one row per task, so no statement meets its own row.
            if tasks:
                connection.execute(self._task_upsert, tasks)
            if workers:
                connection.execute(self._worker_upsert, list(workers.values()))

        self._run(work)
        self._sweep()

    def _sweep(self) -> None:
        now = time.time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY
        horizon = now - self.expires

        def work(connection: Connection) -> None:
            connection.execute(
                delete(self._tables.events).where(self._tables.events.c.timestamp < horizon)
            )
            top = connection.execute(select(func.max(self._tables.events.c.id))).scalar()
            if top is not None and top > self.max_events:
                connection.execute(
                    delete(self._tables.events).where(
                        self._tables.events.c.id <= top - self.max_events
                    )
                )
            connection.execute(
                delete(self._tables.tasks).where(self._tables.tasks.c.updated_at < horizon)
            )
            cut = connection.execute(
                select(self._tables.tasks.c.updated_at)
                .order_by(self._tables.tasks.c.updated_at.desc())
                .offset(self.max_tasks)
                .limit(1)
            ).scalar()
            if cut is not None:
                connection.execute(
                    delete(self._tables.tasks).where(self._tables.tasks.c.updated_at <= cut)
                )
            connection.execute(
                delete(self._tables.workers).where(self._tables.workers.c.timestamp < horizon)
            )

        self._run(work)

    def since(self, cursor: str | None, limit: int = 1000) -> tuple[list[Event], str | None]:
        if cursor is None:
            top = self._run(
                lambda c: c.execute(select(func.max(self._tables.events.c.id))).scalar(),
                kind="read",
            )
            return [], str(top or 0)
        after = int(cursor)
        statement = (
            select(self._tables.events.c.id, self._tables.events.c.data)
            .where(self._tables.events.c.id > after)
            .order_by(self._tables.events.c.id)
            .limit(limit)
        )
        rows = self._run(lambda c: c.execute(statement).all(), kind="read")
        return [json.loads(data) for _, data in rows], str(rows[-1][0] if rows else after)

    def tasks(self, query: TaskQuery) -> list[TaskRow]:
        statement = select(self._tables.tasks)
        conditions = []
        if query.name:
            conditions.append(self._tables.tasks.c.name == query.name)
        if query.state:
            conditions.append(self._tables.tasks.c.state == query.state)
        if query.task_id:
            conditions.append(
                self._tables.tasks.c.task_id.startswith(query.task_id, autoescape=True)
            )
        if query.hostname:
            conditions.append(self._tables.tasks.c.hostname == query.hostname)
        if query.since is not None:
            conditions.append(self._tables.tasks.c.updated_at >= query.since)
        if query.until is not None:
            conditions.append(self._tables.tasks.c.updated_at <= query.until)
        if query.text:
            conditions.append(
                or_(
                    self._tables.tasks.c.args.contains(query.text, autoescape=True),
                    self._tables.tasks.c.kwargs.contains(query.text, autoescape=True),
                )
            )
        statement = (
            statement.where(*conditions)
            .order_by(self._tables.tasks.c.updated_at.desc())
            .offset(query.offset)
            .limit(query.limit)
        )
        rows = self._run(lambda c: c.execute(statement).mappings().all(), kind="read")
        return [TaskRow.from_dict(dict(row)) for row in rows]

    def task(self, task_id: str) -> TaskRow | None:
        statement = select(self._tables.tasks).where(self._tables.tasks.c.task_id == task_id)
        row = self._run(lambda c: c.execute(statement).mappings().first(), kind="read")
        return None if row is None else TaskRow.from_dict(dict(row))

    def timeline(self, task_id: str) -> list[Event]:
        statement = (
            select(self._tables.events.c.data)
            .where(self._tables.events.c.task_id == task_id)
            .order_by(self._tables.events.c.id)
        )
        rows = self._run(lambda c: c.execute(statement).scalars().all(), kind="read")
        return [json.loads(data) for data in rows]

    def workers(self) -> dict[str, Event]:
        statement = select(self._tables.workers.c.hostname, self._tables.workers.c.data)
        rows = self._run(lambda c: c.execute(statement).all(), kind="read")
        return {hostname: json.loads(data) for hostname, data in rows}

    def series(self, since: float) -> dict[int, dict[str, int]]:
        # SQLite may lack floor(); its CAST truncates, which is floor for these positives.
        if self._dialect == "sqlite":
            bucket: Any = cast(self._tables.events.c.timestamp / 60, Integer)
        else:
            bucket = func.floor(self._tables.events.c.timestamp / 60)
        statement = (
            select(bucket, self._tables.events.c.type, func.count())
            .where(
                self._tables.events.c.timestamp >= minute(since),
                self._tables.events.c.type.in_(SERIES_TYPES),
            )
            .group_by(bucket, self._tables.events.c.type)
        )
        rows = self._run(lambda c: c.execute(statement).all(), kind="read")
        found: dict[int, dict[str, int]] = {}
        for number, kind, count in rows:
            found.setdefault(int(number) * 60, {})[kind] = int(count)
        return found

    def close(self) -> None:
        self._engines.dispose()
