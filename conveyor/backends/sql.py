"""The SQL result backend (SQLAlchemy Core): SQLite, PostgreSQL (psycopg 3), MariaDB (PyMySQL).

Two tables, created on first use: ``conveyor_results`` (one row per task id, the record as
JSON bytes) and ``conveyor_counters``. Engines and error classification come from
conveyor.clients.sql (SQLite in WAL mode with a busy timeout and BEGIN IMMEDIATE
for writers; READ COMMITTED on MySQL; single statements in autocommit on PostgreSQL), so the
transport and the backend agree on them.

The no-downgrade rule lives in the upsert itself. A row's ``ready_until`` is 0 while its
state is not ready, and its expiry time (or "forever") once it is; a write applies only when
``ready_until <= now``:

* SQLite and PostgreSQL: ``INSERT ... ON CONFLICT (task_id) DO UPDATE ... WHERE`` with
  ``RETURNING``, which returns a row only when the write applied.
* MariaDB/MySQL: ``INSERT ... ON DUPLICATE KEY UPDATE col = CASE WHEN ready_until > now THEN
  col ELSE new END`` for each column, ``ready_until`` last (MySQL evaluates the assignments
  in order, each seeing the ones before it). Whether the write applied is read back from the
  row's ``writer`` token in the same transaction, because SQLAlchemy's FOUND_ROWS flag makes
  the row count unable to tell "inserted" from "kept".

Expired rows are filtered on every read and deleted lazily by the writers, at most once a
minute per backend. Each operation is one transaction (conveyor.clients.sql.transact), run again
whole when the connection drops or the database reports a deadlock; a counter increment is
not run again once its commit was sent, since a repeat could count twice.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Double,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    or_,
    select,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.expression import BindParameter, Executable
from sqlalchemy.types import TypeDecorator, TypeEngine

from conveyor.backends.base import (
    BackendOptions,
    OnMessage,
    ResultBackend,
    ResultRecord,
    bounded_key,
)
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
log = logging.getLogger("conveyor.backends.sql")

MAX_KEY = 255
FOREVER = 1e18  # ready_until of a ready record that never expires
_ATTEMPTS = 4
_SWEEP_EVERY = 60.0
_CHUNK = 500
_MYSQL = ("mysql", "mariadb")
# Default size limits: SQLite's SQLITE_MAX_LENGTH and PostgreSQL's 1 GiB field limit, less
# room for the other columns. MySQL's comes from the server's max_allowed_packet.
_LIMITS = {"sqlite": 10**9 - 4096, "postgresql": (1 << 30) - 4096, "mysql": 8 * 1024 * 1024}


class Key(TypeDecorator[str]):
    """Task ids and counter names, compared byte for byte on every database.

    MySQL/MariaDB string collations ignore case and trailing spaces, so there the column is
    VARBINARY and the text travels as UTF-8.
    """

    impl = String(MAX_KEY)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(MAX_KEY))
        return dialect.type_descriptor(String(MAX_KEY))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return value.encode() if value is not None and dialect.name in _MYSQL else value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return value.decode() if isinstance(value, bytes | bytearray) else value


@dataclass(frozen=True)
class Tables:
    """The backend's two tables, on a MetaData of their own (created together)."""

    metadata: MetaData
    results: Table
    counters: Table


def table_name(namespace: str, name: str) -> str:
    """A table's name behind ``<namespace>_`` when there is a namespace (results, event
    history, beat state: every SQL store's tables)."""
    return f"{namespace}_{name}" if namespace else name


@functools.cache
def tables(namespace: str = "") -> Tables:
    """The tables, ``<namespace>_conveyor_results`` and so on with a namespace (their
    indexes are named after them, so they carry it too)."""
    metadata = MetaData()
    results = Table(
        table_name(namespace, "conveyor_results"),
        metadata,
        Column("task_id", Key(), primary_key=True),
        Column("state", String(MAX_KEY), nullable=False),
        Column("data", LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL), nullable=False),
        Column("updated_at", Double, nullable=False),
        Column("expires_at", Double, nullable=True, index=True),
        Column("ready_until", Double, nullable=False),
        Column("writer", String(32), nullable=False),
    )
    counters = Table(
        table_name(namespace, "conveyor_counters"),
        metadata,
        Column("name", Key(), primary_key=True),
        Column("value", BigInteger, nullable=False),
        Column("expires_at", Double, nullable=True, index=True),
    )
    return Tables(metadata, results, counters)


_RECORD_COLUMNS = ("state", "data", "updated_at", "expires_at", "writer", "ready_until")


def _live(results: Table, now: Any) -> ColumnElement[bool]:
    return or_(results.c.expires_at.is_(None), results.c.expires_at > now)


@dataclass(frozen=True)
class Statements:
    """Every statement of one dialect, built once with bind parameters (building a statement
    costs more than running it on loopback).

    Parameters: ``now``; results ``p_task_id`` and ``p_<column>``; counters ``p_name``,
    ``p_value``, ``p_expires_at``; ``ids`` (a list) for `get_many`.
    """

    upsert: Executable  # returns a row when applied (read_back is None), else nothing
    read_back: Executable | None  # MySQL: the row's writer token after the upsert
    incr: Executable  # returns the new value (count_back is None)
    count_back: Executable | None  # MySQL: the counter's value after the increment
    get: Executable
    get_many: Executable
    forget: Executable
    sweep: tuple[Executable, ...]

    @classmethod
    def build(cls, dialect: str, namespace: str) -> Statements:
        made = tables(namespace)
        records, tally = made.results, made.counters
        now: BindParameter[float] = bindparam("now")
        row: dict[str, BindParameter[Any]] = {"task_id": bindparam("p_task_id")}
        row.update({name: bindparam(f"p_{name}") for name in _RECORD_COLUMNS})
        counter: dict[str, BindParameter[Any]] = {
            name: bindparam(f"p_{name}") for name in ("name", "value", "expires_at")
        }
        expired = and_(tally.c.expires_at.is_not(None), tally.c.expires_at <= now)
        read_back = count_back = None
        if dialect == "mysql":
            results = mysql.insert(records).values(row)
            keep = records.c.ready_until > now
            # MySQL assigns in order, each seeing the ones before: ready_until, which `keep`
            # reads, goes last.
            upsert: Executable = results.on_duplicate_key_update(
                [
                    (name, case((keep, records.c[name]), else_=results.inserted[name]))
                    for name in _RECORD_COLUMNS
                ]
            )
            read_back = select(records.c.writer).where(records.c.task_id == row["task_id"])
            counters = mysql.insert(tally).values(counter)
            incr: Executable = counters.on_duplicate_key_update(
                [  # value first: it reads the old expires_at
                    (
                        "value",
                        case(
                            (expired, counters.inserted.value),
                            else_=tally.c.value + counters.inserted.value,
                        ),
                    ),
                    ("expires_at", counters.inserted.expires_at),
                ]
            )
            count_back = select(tally.c.value).where(tally.c.name == counter["name"])
        else:
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            results_ = insert(records).values(row)
            upsert = results_.on_conflict_do_update(
                index_elements=[records.c.task_id],
                set_={name: results_.excluded[name] for name in _RECORD_COLUMNS},
                where=records.c.ready_until <= now,
            ).returning(records.c.task_id)
            counters_ = insert(tally).values(counter)
            incr = counters_.on_conflict_do_update(
                index_elements=[tally.c.name],
                set_={
                    "value": case(
                        (expired, counters_.excluded.value),
                        else_=tally.c.value + counters_.excluded.value,
                    ),
                    "expires_at": counters_.excluded.expires_at,
                },
            ).returning(tally.c.value)
        return cls(
            upsert=upsert,
            read_back=read_back,
            incr=incr,
            count_back=count_back,
            get=select(records.c.data).where(
                records.c.task_id == bindparam("p_task_id"), _live(records, now)
            ),
            get_many=select(records.c.task_id, records.c.data).where(
                records.c.task_id.in_(bindparam("ids", expanding=True)),
                _live(records, now),
            ),
            forget=delete(records).where(records.c.task_id == bindparam("p_task_id")),
            sweep=tuple(delete(t).where(t.c.expires_at <= now) for t in (records, tally)),
        )


_statements = functools.cache(Statements.build)


class SQLBackend(ResultBackend):
    """Results in an SQL database; `wait` polls."""

    def __init__(self, url: URL, options: BackendOptions) -> None:
        super().__init__(url, options)
        self._dialect = dialect_of(url)
        self._engines = build_engines(
            url,
            name="conveyor-results",
            connect_timeout=options.connect_timeout,
            busy_timeout=options.timeout,
        )
        self.networked = self.authenticates = self._dialect != "sqlite"
        self.max_value_size = _LIMITS[self._dialect]
        self._prepared = False
        self._prepare_lock = threading.Lock()
        self._next_sweep = 0.0
        self._sql = _statements(self._dialect, options.namespace)
        self._metadata = tables(options.namespace).metadata

    # -- transactions ------------------------------------------------------------------

    def _transaction(
        self, work: Callable[[Connection], T], *, kind: str = "atomic", repeatable: bool = True
    ) -> T:
        """conveyor.clients.sql.transact (retries included), raising the backend's error classes."""
        try:
            return transact(self._engines, self.url, work, kind=kind, repeatable=repeatable)
        except AuthenticationFailed:
            raise
        except BrokerUnavailable as exc:
            raise BackendUnavailable(str(exc)) from exc
        except ConveyorError as exc:
            raise BackendError(str(exc)) from exc

    def _run(
        self, work: Callable[[Connection], T], *, kind: str = "atomic", repeatable: bool = True
    ) -> T:
        self._prepare()
        return self._transaction(work, kind=kind, repeatable=repeatable)

    def _prepare(self) -> None:
        """Create the tables if missing (several processes may race to it); read the limits."""
        if self._prepared:
            return
        with self._prepare_lock:
            if self._prepared:
                return
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    self._transaction(self._metadata.create_all)
                    break
                except (BackendUnavailable, AuthenticationFailed):
                    raise
                except BackendError:  # another process created a table first: look again
                    if attempt == _ATTEMPTS:
                        raise
            if self._dialect == "mysql":
                packet = self._transaction(
                    lambda c: c.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one(),
                    kind="read",
                )
                # PyMySQL sends bytes escaped inside the statement: up to twice their size.
                self.max_value_size = (int(packet) - 4096) // 2
            self._prepared = True

    @property
    def value_limit(self) -> int:
        """The size limit in force; on MySQL it is read from the server on first use."""
        self._prepare()
        return super().value_limit

    # -- the contract ----------------------------------------------------------------

    def store(self, record: ResultRecord) -> bool:
        return self.store_many([record])[0]

    def store_many(self, records: Sequence[ResultRecord]) -> list[bool]:
        """Every record encoded first (an EncodeError stores nothing), then every upsert in
        one transaction: a reader sees the batch whole or not at all."""
        if not records:
            return []
        self._prepare()
        now = time.time()
        expires = self.expires_at()
        batch = []
        for record in records:
            record, data = self.encode(record)
            batch.append(
                {
                    "now": now,
                    "p_task_id": bounded_key("", record.task_id, MAX_KEY),
                    "p_state": record.state,
                    "p_data": data,
                    "p_updated_at": now,
                    "p_expires_at": expires,
                    "p_ready_until": (expires or FOREVER) if record.ready else 0.0,
                    "p_writer": uuid.uuid4().hex,
                }
            )
        sql = self._sql

        def upsert(connection: Connection) -> list[bool]:
            stored = []
            for params in batch:
                applied = connection.execute(sql.upsert, params)
                if sql.read_back is None:
                    stored.append(applied.first() is not None)
                else:
                    writer = connection.execute(sql.read_back, params).scalar_one()
                    stored.append(bool(writer == params["p_writer"]))
            return stored

        single = len(batch) == 1 and sql.read_back is None
        stored = self._run(upsert, kind="single" if single else "atomic")
        self._sweep(now)
        return stored

    def _sweep(self, now: float) -> None:
        """Delete expired rows, at most once a minute; a failure only delays the next try."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY

        def work(connection: Connection) -> None:
            for statement in self._sql.sweep:
                connection.execute(statement, {"now": now})

        try:
            self._run(work, kind="single")
        except BackendError as exc:
            log.info("deleting expired results on %s failed, will try later: %s", self.url, exc)

    def get(self, task_id: str) -> ResultRecord | None:
        params = {"p_task_id": bounded_key("", task_id, MAX_KEY), "now": time.time()}
        data = self._run(
            lambda c: c.execute(self._sql.get, params).scalar_one_or_none(), kind="read"
        )
        return None if data is None else ResultRecord.from_bytes(data)

    def get_many(self, task_ids: Iterable[str]) -> dict[str, ResultRecord | None]:
        keys = {task_id: bounded_key("", task_id, MAX_KEY) for task_id in task_ids}
        wanted = list(dict.fromkeys(keys.values()))
        now = time.time()

        def work(connection: Connection) -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            for start in range(0, len(wanted), _CHUNK):
                params = {"ids": wanted[start : start + _CHUNK], "now": now}
                found.update(
                    (key, data) for key, data in connection.execute(self._sql.get_many, params)
                )
            return found

        found = self._run(work, kind="read") if wanted else {}
        return {
            task_id: ResultRecord.from_bytes(found[key]) if key in found else None
            for task_id, key in keys.items()
        }

    def wait(
        self, task_id: str, timeout: float | None, on_message: OnMessage | None = None
    ) -> ResultRecord:
        return self.poll_wait(task_id, timeout, on_message)

    def forget(self, task_id: str) -> None:
        params = {"p_task_id": bounded_key("", task_id, MAX_KEY)}
        self._run(lambda c: c.execute(self._sql.forget, params), kind="single")

    def incr(self, key: str, amount: int = 1) -> int:
        params = {
            "now": time.time(),
            "p_name": bounded_key("", key, MAX_KEY),
            "p_value": amount,
            "p_expires_at": self.expires_at(),
        }
        sql = self._sql

        def work(connection: Connection) -> int:
            counted = connection.execute(sql.incr, params)
            if sql.count_back is not None:
                counted = connection.execute(sql.count_back, params)
            return int(counted.scalar_one())

        # In a transaction even where one statement would do: a connection lost before the
        # commit was sent then rolls back for sure, so the increment can run again.
        return self._run(work, repeatable=False)

    def close(self) -> None:
        self._engines.dispose()
