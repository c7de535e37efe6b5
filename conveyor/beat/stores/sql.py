"""The SQL schedule store (SQLite, PostgreSQL, MariaDB), on the broker's or backend's database.

Two small tables, created on first use (behind ``<prefix>_`` with a prefix):
``conveyor_beat_leases`` (one row per namespace: holder and expiry) and
``conveyor_beat_runs`` (one row per entry: its last fire time). Both writes are one
conditional UPDATE, then, when no row matched, an insert that does nothing on a duplicate
key, in one transaction: the database's row lock decides between racing beats (under READ
COMMITTED the loser's UPDATE re-reads the winner's row and matches nothing). Engines,
retries and error translation are conveyor.clients.sql's, shared with the transport, so the
SQLite file is opened in WAL mode with BEGIN IMMEDIATE like the broker's.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Column, Double, MetaData, String, Table, delete, or_, select, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from conveyor.backends.base import bounded_key
from conveyor.backends.sql import MAX_KEY, Key, table_name
from conveyor.beat.store import ScheduleStore
from conveyor.clients.sql import build_engines, dialect_of, transact
from conveyor.core.errors import AuthenticationFailed, BrokerError, BrokerUnavailable
from conveyor.core.url import URL
from conveyor.transports.base import TransportOptions

T = TypeVar("T")
_ATTEMPTS = 4


@dataclass(frozen=True)
class Tables:
    """The store's two tables, on a MetaData of their own (created together)."""

    metadata: MetaData
    leases: Table
    runs: Table


@functools.cache
def tables(prefix: str = "") -> Tables:
    """The tables, ``<prefix>_conveyor_beat_leases`` and so on with a prefix."""
    metadata = MetaData()
    leases = Table(
        table_name(prefix, "conveyor_beat_leases"),
        metadata,
        Column("name", Key(), primary_key=True),
        Column("holder", String(MAX_KEY), nullable=False),
        Column("expires_at", Double, nullable=False),
    )
    runs = Table(
        table_name(prefix, "conveyor_beat_runs"),
        metadata,
        Column("name", Key(), primary_key=True),
        Column("last_run", Double, nullable=False),
    )
    return Tables(metadata, leases, runs)


def _inserted(connection: Connection, table: Table, dialect: str, **values: Any) -> bool:
    """INSERT that leaves an existing row alone; True if it inserted. PostgreSQL reports no
    row count for ON CONFLICT DO NOTHING through SQLAlchemy, so there RETURNING tells."""
    if dialect == "mysql":
        ignore = mysql.insert(table).values(**values).prefix_with("IGNORE")
        return bool(connection.execute(ignore).rowcount)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(table.c.name)
    )
    return connection.execute(statement).first() is not None


class SQLScheduleStore(ScheduleStore):
    Options = TransportOptions
    expires_on_caller_clock = True

    def __init__(
        self, url: URL, namespace: str, options: TransportOptions, prefix: str = ""
    ) -> None:
        self.url = url
        self._tables = tables(prefix)
        self._dialect = dialect_of(url)
        self._engines = build_engines(
            url,
            name="conveyor-beat",
            connect_timeout=options.connect_timeout,
            busy_timeout=options.connect_timeout,
        )
        self._lease = bounded_key("beat-lease/", namespace, MAX_KEY)
        self._prefix = f"beat-run/{namespace}/"
        self._prepared = False
        self._prepare_lock = threading.Lock()

    def _run(self, work: Callable[[Connection], T], kind: str = "atomic") -> T:
        if not self._prepared:
            self._prepare()
        result: T = transact(self._engines, self.url, work, kind=kind)
        return result

    def _prepare(self) -> None:
        """Create the tables if missing; several processes may race to it."""
        with self._prepare_lock:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    transact(self._engines, self.url, self._tables.metadata.create_all)
                    break
                except (BrokerUnavailable, AuthenticationFailed):
                    raise
                except BrokerError:  # another process created a table first: look again
                    if attempt == _ATTEMPTS:
                        raise
            self._prepared = True

    def _run_key(self, entry: str) -> str:
        return bounded_key(self._prefix, entry, MAX_KEY)

    def acquire(self, holder: str, ttl: float, now: float) -> bool:
        name, expires_at = self._lease, now + ttl

        def work(connection: Connection) -> bool:
            renewed = connection.execute(
                update(self._tables.leases)
                .where(
                    self._tables.leases.c.name == name,
                    or_(
                        self._tables.leases.c.holder == holder,
                        self._tables.leases.c.expires_at <= now,
                    ),
                )
                .values(holder=holder, expires_at=expires_at)
            )
            if renewed.rowcount:
                return True
            return _inserted(
                connection,
                self._tables.leases,
                self._dialect,
                name=name,
                holder=holder,
                expires_at=expires_at,
            )

        return self._run(work)

    def release(self, holder: str) -> None:
        statement = delete(self._tables.leases).where(
            self._tables.leases.c.name == self._lease, self._tables.leases.c.holder == holder
        )
        self._run(lambda connection: connection.execute(statement))

    def leader(self, now: float) -> str | None:
        query = select(self._tables.leases.c.holder).where(
            self._tables.leases.c.name == self._lease, self._tables.leases.c.expires_at > now
        )
        found: str | None = self._run(lambda c: c.execute(query).scalar_one_or_none(), "read")
        return found

    def claim(self, entry: str, fire_time: float) -> bool:
        name = self._run_key(entry)

        def work(connection: Connection) -> bool:
            advanced = connection.execute(
                update(self._tables.runs)
                .where(self._tables.runs.c.name == name, self._tables.runs.c.last_run < fire_time)
                .values(last_run=fire_time)
            )
            if advanced.rowcount:
                return True
            return _inserted(
                connection, self._tables.runs, self._dialect, name=name, last_run=fire_time
            )

        return self._run(work)

    def last_run(self, entry: str) -> float | None:
        query = select(self._tables.runs.c.last_run).where(
            self._tables.runs.c.name == self._run_key(entry)
        )
        found: float | None = self._run(lambda c: c.execute(query).scalar_one_or_none(), "read")
        return found

    def close(self) -> None:
        self._engines.dispose()
