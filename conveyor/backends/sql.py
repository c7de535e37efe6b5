"""The SQL result backend (SQLAlchemy Core): SQLite, PostgreSQL (psycopg 3), MariaDB (PyMySQL).

Two tables, created on first use: ``conveyor_results`` (one row per task id, the record as
JSON bytes) and ``conveyor_counters``. Engines and error classification come from
conveyor.transports.sql_engine (SQLite in WAL mode with a busy timeout and BEGIN IMMEDIATE
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
minute per backend. Each operation is one transaction, run again whole when the connection
drops or the database reports a deadlock; a counter increment is not run again once its
commit was sent, since a repeat could count twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
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
    case,
    delete,
    or_,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from conveyor.backends.base import (
    BackendOptions,
    OnMessage,
    ResultBackend,
    ResultRecord,
    bounded_key,
)
from conveyor.core.errors import (
    AuthenticationFailed,
    BackendError,
    BackendUnavailable,
    BrokerUnavailable,
    ConveyorError,
)
from conveyor.core.url import URL
from conveyor.transports.sql_engine import build_engines, dialect_of, retryable, translate

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


METADATA = MetaData()
RESULTS = Table(
    "conveyor_results",
    METADATA,
    Column("task_id", Key(), primary_key=True),
    Column("state", String(MAX_KEY), nullable=False),
    Column("data", LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL), nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("expires_at", Double, nullable=True, index=True),
    Column("ready_until", Double, nullable=False),
    Column("writer", String(32), nullable=False),
)
COUNTERS = Table(
    "conveyor_counters",
    METADATA,
    Column("name", Key(), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("expires_at", Double, nullable=True, index=True),
)
_RECORD_COLUMNS = ("state", "data", "updated_at", "expires_at", "writer")


def _live(column: Any, now: float) -> ColumnElement[bool]:
    return or_(column.is_(None), column > now)


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

    # -- transactions ------------------------------------------------------------------

    def _error(
        self, exc: sa_exc.SQLAlchemyError, *, connecting: bool, committing: bool
    ) -> ConveyorError:
        """The conveyor backend error for `exc` (the shared classification, backend classes)."""
        error: ConveyorError = translate(
            exc, self.url, connecting=connecting, outcome_unknown=committing
        )
        if isinstance(error, AuthenticationFailed):
            return error
        if isinstance(error, BrokerUnavailable):
            return BackendUnavailable(str(error))
        return BackendError(str(error))

    def _transaction(
        self, work: Callable[[Connection], T], *, kind: str = "atomic", repeatable: bool = True
    ) -> T:
        """Run `work` in one transaction, again on a dropped connection or a deadlock.

        `kind` names the engine (see sql_engine.Engines): "atomic" for several statements,
        "single" for one statement that writes, "read". When the commit itself fails (or,
        in autocommit, the statement) the outcome is unknown: only a `repeatable` operation
        is run again then.
        """
        engine = getattr(self._engines, kind)
        unknown_from_start = kind != "atomic" and self._engines.autocommit_writes
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                connection = engine.connect()
            except sa_exc.SQLAlchemyError as exc:
                raise self._error(exc, connecting=True, committing=False) from exc
            committing = unknown_from_start
            try:
                with connection, connection.begin():
                    result = work(connection)
                    committing = True
                return result
            except sa_exc.SQLAlchemyError as exc:
                again = retryable(exc) and (repeatable or not committing)
                if not again or attempt == _ATTEMPTS:
                    raise self._error(exc, connecting=False, committing=committing) from exc
                log.info("running a transaction on %s again after %s", self.url, exc)
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

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
                    self._transaction(METADATA.create_all)
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
        self._prepare()
        record, data = self.encode(record)
        now = time.time()
        expires = self.expires_at()
        row = {
            "task_id": bounded_key("", record.task_id, MAX_KEY),
            "state": record.state,
            "data": data,
            "updated_at": now,
            "expires_at": expires,
            "ready_until": (expires or FOREVER) if record.ready else 0.0,
            "writer": uuid.uuid4().hex,
        }
        # MySQL upserts and reads back (two statements); the others upsert in one.
        kind = "atomic" if self._dialect == "mysql" else "single"
        stored = self._run(lambda c: self._upsert(c, row, now), kind=kind)
        self._sweep(now)
        return stored

    def _upsert(self, connection: Connection, row: dict[str, Any], now: float) -> bool:
        table = RESULTS
        if self._dialect == "mysql":
            stmt = mysql.insert(table).values(**row)
            keep = table.c.ready_until > now
            changes = [
                (name, case((keep, table.c[name]), else_=stmt.inserted[name]))
                for name in (*_RECORD_COLUMNS, "ready_until")  # ready_until last: `keep` reads it
            ]
            connection.execute(stmt.on_duplicate_key_update(changes))
            writer = select(table.c.writer).where(table.c.task_id == row["task_id"])
            return connection.execute(writer).scalar_one() == row["writer"]
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt_ = insert(table).values(**row)
        upsert = stmt_.on_conflict_do_update(
            index_elements=[table.c.task_id],
            set_={name: stmt_.excluded[name] for name in (*_RECORD_COLUMNS, "ready_until")},
            where=table.c.ready_until <= now,
        ).returning(table.c.task_id)
        return connection.execute(upsert).first() is not None

    def _sweep(self, now: float) -> None:
        """Delete expired rows, at most once a minute; a failure only delays the next try."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY

        def work(connection: Connection) -> None:
            for table in (RESULTS, COUNTERS):
                connection.execute(delete(table).where(table.c.expires_at <= now))

        try:
            self._run(work, kind="single")
        except BackendError as exc:
            log.info("deleting expired results on %s failed, will try later: %s", self.url, exc)

    def get(self, task_id: str) -> ResultRecord | None:
        key = bounded_key("", task_id, MAX_KEY)
        query = select(RESULTS.c.data).where(
            RESULTS.c.task_id == key, _live(RESULTS.c.expires_at, time.time())
        )
        data = self._run(lambda c: c.execute(query).scalar_one_or_none(), kind="read")
        return None if data is None else ResultRecord.from_bytes(data)

    def get_many(self, task_ids: Iterable[str]) -> dict[str, ResultRecord | None]:
        keys = {task_id: bounded_key("", task_id, MAX_KEY) for task_id in task_ids}
        wanted = list(dict.fromkeys(keys.values()))
        now = time.time()

        def work(connection: Connection) -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            for start in range(0, len(wanted), _CHUNK):
                query = select(RESULTS.c.task_id, RESULTS.c.data).where(
                    RESULTS.c.task_id.in_(wanted[start : start + _CHUNK]),
                    _live(RESULTS.c.expires_at, now),
                )
                found.update((key, data) for key, data in connection.execute(query))
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
        key = bounded_key("", task_id, MAX_KEY)
        forget = delete(RESULTS).where(RESULTS.c.task_id == key)
        self._run(lambda c: c.execute(forget), kind="single")

    def incr(self, key: str, amount: int = 1) -> int:
        name = bounded_key("", key, MAX_KEY)
        now = time.time()
        row = {"name": name, "value": amount, "expires_at": self.expires_at()}
        table = COUNTERS
        expired = and_(table.c.expires_at.is_not(None), table.c.expires_at <= now)

        def work(connection: Connection) -> int:
            if self._dialect == "mysql":
                stmt = mysql.insert(table).values(**row)
                counted = case((expired, stmt.inserted.value), else_=table.c.value + amount)
                # value first: it reads the old expires_at.
                changes = [("value", counted), ("expires_at", stmt.inserted.expires_at)]
                connection.execute(stmt.on_duplicate_key_update(changes))
                value = select(table.c.value).where(table.c.name == name)
                return int(connection.execute(value).scalar_one())
            insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
            stmt_ = insert(table).values(**row)
            upsert = stmt_.on_conflict_do_update(
                index_elements=[table.c.name],
                set_={
                    "value": case((expired, stmt_.excluded.value), else_=table.c.value + amount),
                    "expires_at": stmt_.excluded.expires_at,
                },
            ).returning(table.c.value)
            return int(connection.execute(upsert).scalar_one())

        # In a transaction even where one statement would do: a connection lost before the
        # commit was sent then rolls back for sure, so the increment can run again.
        return self._run(work, repeatable=False)

    def close(self) -> None:
        self._engines.dispose()
