"""SQLAlchemy engines for conveyor's SQL URLs, and the translation of their errors.

``sqlite:///relative.db``, ``sqlite:////absolute.db`` (or ``sql+sqlite://``) use the
standard library's sqlite3 in WAL mode with a busy timeout; every SQLite transaction that
writes starts with ``BEGIN IMMEDIATE``, so two writers queue on the busy timeout instead of
failing with "database is locked" when a read lock cannot be upgraded.
``sql+postgresql://`` uses psycopg 3 and ``sql+mysql://`` uses PyMySQL, both in READ
COMMITTED so that claiming with SKIP LOCKED takes no gap locks.
"""

from __future__ import annotations

import importlib
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL as SAURL
from sqlalchemy.engine import Connection, Engine

from conveyor.clients.sql_driver import DriverTransaction
from conveyor.core.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ConnectionLost,
    ConveyorError,
    InvalidURL,
    MissingDependency,
)
from conveyor.core.url import URL, redact

DIALECTS = {
    "sqlite": "sqlite",
    "sql+sqlite": "sqlite",
    "sql+postgresql": "postgresql",
    "sql+mysql": "mysql",
}
READ_ONLY = "conveyor_read_only"
"""Execution option marking a connection whose SQLite transaction only reads."""

T = TypeVar("T")
log = logging.getLogger("conveyor.transports.sql")
ATTEMPTS = 3
PING_AFTER_IDLE = 1.0
"""Seconds a pooled connection may sit unused before it is pinged on checkout."""
_COMMON: dict[str, Any] = {"hide_parameters": True, "pool_size": 5, "max_overflow": 20}
_MYSQL_AUTH = {1044, 1045, 1698, 1862}
_MYSQL_RETRY = {1205, 1213}  # lock wait timeout, deadlock
_PG_RETRY = {"40001", "40P01"}  # serialization failure, deadlock
_SQLITE_BEGIN = "BEGIN IMMEDIATE"


def dialect_of(url: URL) -> str:
    try:
        return DIALECTS[url.scheme]
    except KeyError:
        raise InvalidURL(f"{url} is not an SQL URL ({', '.join(DIALECTS)})") from None


@dataclass(frozen=True)
class Engines:
    """Where each kind of work runs.

    atomic: transactions of several statements. single: one statement that writes.
    read: statements that only read. relaxed: one statement that writes and may be
    forgotten by a server that crashes right after its commit, because forgetting it only
    brings messages back (claims, acks, lease renewals): on PostgreSQL it commits without
    waiting for the WAL flush (synchronous_commit off), which takes it off the
    consumer's critical path; elsewhere it is `single`. On PostgreSQL `single`, `read` and
    `relaxed` run in autocommit, saving the BEGIN and COMMIT round trips around a statement
    that is atomic anyway; a statement lost with its connection there has an unknown
    outcome (`autocommit_writes`).
    """

    atomic: Engine
    single: Engine
    read: Engine
    relaxed: Engine
    begin: str | None = None
    """The statement that opens a writing transaction on a DB-API connection, where the
    driver does not open one itself (SQLite: BEGIN IMMEDIATE)."""

    @property
    def autocommit_writes(self) -> bool:
        return self.single is not self.atomic

    def dispose(self, *, close: bool = True) -> None:
        """Drop the pools; close=False leaves the connections alone (a forked child's copy)."""
        for engine in {self.atomic, self.single, self.relaxed}:
            engine.dispose(close=close)


def build_engines(url: URL, *, name: str, connect_timeout: float, busy_timeout: float) -> Engines:
    """Engines for `url`; nothing connects until the first statement.

    `name` labels the connections on the server (PostgreSQL's application_name, MySQL's
    program_name), so an operator can match them with the owner of held messages.
    """
    dialect = dialect_of(url)
    _require_driver(dialect)
    if dialect == "sqlite":
        engine = _sqlite_engine(url, busy_timeout)
        read_only = engine.execution_options(**{READ_ONLY: True})
        return Engines(engine, engine, read_only, engine, begin=_SQLITE_BEGIN)
    if len(url.hosts) != 1:
        raise InvalidURL(f"{url} must name exactly one database host")
    host = url.hosts[0]
    database = url.path.lstrip("/") or None
    if dialect == "postgresql":
        target = SAURL.create(
            "postgresql+psycopg", url.username, url.password, host.name, host.port, database
        )
        # libpq takes whole seconds and treats anything under 2 as 2.
        args = {
            "connect_timeout": max(2, math.ceil(connect_timeout)),
            "application_name": name,
            # Notice a server or network that went silent within about half a minute.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        transactional = _server_engine(target, args)
        autocommit = _server_engine(target, args, isolation_level="AUTOCOMMIT")
        unflushed = {**args, "options": "-c synchronous_commit=off"}
        relaxed = _server_engine(target, unflushed, isolation_level="AUTOCOMMIT")
        return Engines(transactional, autocommit, autocommit, relaxed)
    target = SAURL.create(
        "mysql+pymysql", url.username, url.password, host.name, host.port, database
    )
    engine = _server_engine(
        target,
        {
            "connect_timeout": connect_timeout,
            "program_name": name,
            # A silent server fails a statement after read_timeout instead of hanging it.
            "read_timeout": 60,
            # UNIX_TIMESTAMP(NOW(6)) reads the clock in the session's zone: in UTC it never
            # repeats an hour when daylight saving time ends.
            "init_command": "SET time_zone = '+00:00'",
        },
        isolation_level="READ COMMITTED",
    )
    return Engines(engine, engine, engine, engine)


_DRIVERS = {"postgresql": ("psycopg", "postgresql"), "mysql": ("pymysql", "mysql")}


def _require_driver(dialect: str) -> None:
    """Fail at construction, with the extra to install, when the dialect's DB-API driver
    is missing (SQLAlchemy would raise a bare ModuleNotFoundError at create_engine)."""
    if dialect not in _DRIVERS:
        return
    module, extra = _DRIVERS[dialect]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"the {dialect} dialect needs its driver, which is not installed ({module}): "
            f"pip install 'conveyor[{extra}]'"
        ) from exc


def _server_engine(target: SAURL, connect_args: dict[str, Any], **options: Any) -> Engine:
    # Every transaction ends in COMMIT or ROLLBACK before its connection goes back to the
    # pool (transact), so the pool's own "reset" is skipped: PyMySQL would spend one more
    # ROLLBACK round trip on it, psycopg CPU.
    engine = create_engine(
        target,
        connect_args=connect_args,
        pool_use_lifo=True,
        pool_reset_on_return=None,
        **_COMMON,
        **options,
    )

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # A connection that sat in the pool may have been closed by the server or cut on
        # the way; ping it (one round trip) rather than every checkout (pool_pre_ping).
        if time.monotonic() - record.info.get("idle_since", math.inf) < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure means: replace this connection
            raise sa_exc.DisconnectionError(str(exc)) from exc

    return engine


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    if url.hosts:
        raise InvalidURL(f"{url}: a SQLite URL has no host (sqlite:///relative or sqlite:////abs)")
    path = url.path[1:]
    if not path or path == ":memory:":
        raise InvalidURL(
            f"{url}: name a database file (sqlite:///relative.db or sqlite:////absolute.db); "
            "an in-memory database cannot be shared by producers and workers"
        )
    engine = create_engine(
        SAURL.create("sqlite+pysqlite", database=path),
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
        **_COMMON,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        # Switching a new file to WAL needs it to itself, and SQLite reports "locked" at
        # once rather than waiting when another process is switching it too.
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                dbapi_connection.execute("PRAGMA journal_mode=WAL").close()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A lone SELECT runs in autocommit; anything that may write takes the lock first.
        if not connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql(_SQLITE_BEGIN)

    return engine


def transact(
    engines: Engines,
    url: URL,
    work: Callable[[Any], T],
    *,
    kind: str = "atomic",
    repeatable: bool = True,
    driver: bool = False,
) -> T:
    """Run `work` in one transaction on `engines.<kind>`; errors become conveyor errors.

    kind: "atomic" for several statements, "single" for one statement that writes, "read".
    `work` gets a SQLAlchemy Connection, or with `driver` a sql_driver.DriverTransaction.
    A dropped connection or a deadlock runs the whole transaction again on a fresh
    connection. When the COMMIT itself fails (or, in autocommit, the statement) the outcome
    is unknown: only a `repeatable` operation runs again then; any other raises
    ConnectionLost saying the outcome is unknown.
    """
    engine: Engine = getattr(engines, kind)
    unknown_from_start = kind != "atomic" and engines.autocommit_writes
    for attempt in range(1, ATTEMPTS + 1):
        try:
            transaction = _open(engine, engines.begin if kind != "read" else None, driver)
        except sa_exc.SQLAlchemyError as exc:
            raise translate(exc, url, connecting=True, outcome_unknown=False) from exc
        committing = unknown_from_start
        try:
            with transaction as connection:
                result = work(connection)
                committing = True
            return result
        except sa_exc.SQLAlchemyError as exc:
            again = retryable(exc) and (repeatable or not committing)
            if not again or attempt == ATTEMPTS:
                raise translate(exc, url, connecting=False, outcome_unknown=committing) from exc
            log.info("running a transaction on %s again after %s", url, type(exc).__name__)
            time.sleep(0.02 * (attempt - 1))  # a deadlock's other party gets to finish
    raise AssertionError("unreachable")


def _open(engine: Engine, begin: str | None, driver: bool) -> AbstractContextManager[Any]:
    """A pooled connection, checked out now, that runs one transaction as a context."""
    if driver:
        return DriverTransaction(engine, begin)
    return _transaction(engine.connect())


@contextmanager
def _transaction(connection: Connection) -> Iterator[Connection]:
    with connection, connection.begin():
        yield connection


def retryable(exc: sa_exc.SQLAlchemyError) -> bool:
    """Worth running the whole transaction again: a dropped connection or a deadlock."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    code = _mysql_code(exc.orig)
    return code in _MYSQL_RETRY or getattr(exc.orig, "sqlstate", None) in _PG_RETRY


def translate(
    exc: sa_exc.SQLAlchemyError, url: URL, *, connecting: bool, outcome_unknown: bool
) -> ConveyorError:
    """The conveyor error for a failed operation on `url`; never leaks the password."""
    detail = _detail(exc)
    if _is_auth(exc):
        return AuthenticationFailed(f"{url} refused the credentials: {detail}")
    if connecting:
        return BrokerUnavailable(f"cannot connect to {url}: {detail}")
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        outcome = "; the outcome of the operation is unknown" if outcome_unknown else ""
        return ConnectionLost(f"lost the connection to {url}{outcome}: {detail}")
    if isinstance(exc, sa_exc.TimeoutError) or "database is locked" in detail:
        return BrokerUnavailable(f"{url} is busy: {detail}")
    return BrokerError(f"{url} failed: {detail}")


def _detail(exc: sa_exc.SQLAlchemyError) -> str:
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = " ".join(lines[:2]) or type(orig).__name__
    return redact(f"{type(orig).__name__}: {text}")


def _mysql_code(orig: BaseException | None) -> int | None:
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _is_auth(exc: sa_exc.SQLAlchemyError) -> bool:
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if _mysql_code(exc.orig) in _MYSQL_AUTH:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    text = str(exc.orig)
    # libpq reports connection-time failures without an SQLSTATE, so read the message.
    return sqlstate.startswith("28") or (
        "password authentication failed" in text
        or ("role" in text and "does not exist" in text)
        or "no pg_hba.conf entry" in text
    )
