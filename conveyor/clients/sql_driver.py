"""Running the transport's statements on the DB-API connection, compiled once.

SQLAlchemy Core builds every statement (conveyor.transports.sql.statements) and compiles it for the
database's dialect; after that, a consumer or a producer that runs the same few statements
thousands of times a second does not need SQLAlchemy's per-execution work (a Connection,
an execution context, bind and result processing, re-expanding IN lists), which cost more
CPU than the database driver itself. So each statement is compiled once per transport,
its SQL text kept per shape (the lengths of its expanding IN lists), and run on a pooled
DB-API connection's cursor with plain values: str, int, float and bytes, which every driver
takes as they are, and rows come back as tuples.

Errors keep SQLAlchemy's form: a driver error becomes the `sqlalchemy.exc.DBAPIError` that
SQLAlchemy would raise, with the connection invalidated when the dialect calls it a
disconnect, so conveyor.clients.sql.transact retries and translates them as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import Select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Rows = list[tuple[Any, ...]]
_CURSOR = "conveyor_cursor"
"""Key of (DB-API connection, its cursor) in the pool's per-connection `info`."""


class _Shape(NamedTuple):
    sql: str
    expansion: Mapping[str, Sequence[str]]
    """Each expanding parameter's expanded names, one per value (per tuple member)."""
    order: Sequence[str] | None
    """Positional dialects: the parameter names in placeholder order."""


class Compiled:
    """A statement compiled for one dialect; `bind` gives the SQL text and driver values."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        self._compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self._defaults = dict(self._compiled.params)
        # Known here, not asked of the cursor: psycopg builds `description` on every call.
        returning = self._compiled.effective_returning
        self.returns_rows = isinstance(statement, Select) or bool(returning)
        names = self._compiled.bind_names.items()
        self._expanding = tuple(name for bind, name in names if bind.expanding)
        self._shapes: dict[tuple[int, ...], _Shape] = {}

    def bind(self, params: Mapping[str, Any]) -> tuple[str, Any]:
        values = {**self._defaults, **params}
        key = tuple(len(values[name]) for name in self._expanding)
        shape = self._shapes.get(key) or self._learn(key, values)
        for name in self._expanding:
            values.update(zip(shape.expansion[name], _flat(values.pop(name)), strict=True))
        if shape.order is None:
            return shape.sql, values
        return shape.sql, [values[name] for name in shape.order]

    def _learn(self, key: tuple[int, ...], values: Mapping[str, Any]) -> _Shape:
        """Expand the IN lists for this many values (SQLAlchemy's work, once per shape)."""
        compiled = self._compiled
        if self._expanding:
            state = compiled.construct_expanded_state(dict(values))
            sql, expansion, order = state.statement, state.parameter_expansion, state.positiontup
        else:
            sql, expansion, order = compiled.string, {}, compiled.positiontup
        shape = _Shape(sql, expansion, order if compiled.positional else None)
        self._shapes[key] = shape
        return shape


class DriverTransaction:
    """A DB-API connection from `engine`'s pool holding one transaction, as a context.

    `begin` is the statement that opens it where the driver does not (SQLite, whose
    connections run in autocommit so that conveyor chooses BEGIN IMMEDIATE), or None.
    Leaving the context commits, or rolls back after an error; a connection whose rollback
    fails is invalidated instead of going back to the pool.
    """

    def __init__(self, engine: Engine, begin: str | None) -> None:
        self._dialect = engine.dialect
        try:
            self._proxy = engine.raw_connection()
        except self._dialect.loaded_dbapi.Error as exc:  # SQLAlchemy's connect() wraps these
            raise self._wrapped(None, None, exc, lost=False) from exc
        self._connection: Any = self._proxy.dbapi_connection
        self._cursor: Any = None
        self._begin = begin

    def __enter__(self) -> DriverTransaction:
        try:
            self._cursor = self._kept_cursor()
            if self._begin is not None:
                self._guard(self._begin, None, self._cursor.execute, self._begin)
        except BaseException:
            self._finish(committed=False)
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self._finish(committed=False)
            return
        try:
            self._guard("COMMIT", None, self._connection.commit)
        except BaseException:
            self._finish(committed=False)
            raise
        self._finish(committed=True)

    def execute(self, statement: Compiled, params: Mapping[str, Any]) -> Any:
        """Run `statement`: its rows (a list of tuples) if it returns rows, else the number
        of rows it changed."""
        sql, values = statement.bind(params)
        cursor = self._cursor
        self._guard(sql, values, cursor.execute, sql, values)
        if not statement.returns_rows:
            return int(cursor.rowcount)
        rows: Rows = self._guard(sql, values, cursor.fetchall)
        return rows

    def _guard(self, sql: str, values: Any, call: Any, *args: Any) -> Any:
        """Call the driver; its errors come out as SQLAlchemy's, disconnects invalidated."""
        try:
            return call(*args)
        except self._dialect.loaded_dbapi.Error as exc:
            lost = self._dialect.is_disconnect(exc, self._connection, self._cursor)
            if lost:
                self._proxy.invalidate(exc)
            raise self._wrapped(sql, values, exc, lost=lost) from exc

    def _wrapped(self, sql: str | None, values: Any, exc: Exception, *, lost: bool) -> Any:
        return sa_exc.DBAPIError.instance(
            sql,
            values,
            exc,
            self._dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=self._dialect,
        )

    def _kept_cursor(self) -> Any:
        """The cursor kept with this DB-API connection, made on its first use: a new
        psycopg cursor costs more CPU than running a statement on an old one."""
        kept = self._proxy.info.get(_CURSOR)
        if kept is not None and kept[0] is self._connection:
            return kept[1]
        cursor = self._guard("cursor", None, self._connection.cursor)
        self._proxy.info[_CURSOR] = (self._connection, cursor)
        return cursor

    def _finish(self, *, committed: bool) -> None:
        try:
            if not committed and self._proxy.is_valid:
                self._connection.rollback()
        except Exception as exc:  # a connection in an unknown state never goes back
            self._proxy.invalidate(exc)
        finally:
            self._proxy.close()


def _flat(items: Sequence[Any]) -> Sequence[Any]:
    """An expanding parameter's values in placeholder order: tuples give their members."""
    if items and type(items[0]) is tuple:
        return [value for item in items for value in item]
    return items
