"""The SQL transport's tables, and the database clock every time column is measured by.

`<prefix>messages` holds one row per message. `state` says where it is: READY
(deliverable once `due` has passed, so delayed messages are READY rows with a future `due`),
HELD (claimed by consumer `owner`, whose lease runs until `lease_until`) or DEAD
(dead-lettered with `reason` at `dead_at`). `<prefix>broadcasts` keeps recent broadcasts.
All times are seconds since the epoch read from the database server's clock, so producers
and consumers on hosts with skewed clocks still agree on due times and lease expiry.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from conveyor.core.errors import ConfigurationError
from conveyor.core.names import MAX_LENGTH

READY, HELD, DEAD = 0, 1, 2
OWNER_LENGTH = 32
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_MYSQL = ("mysql", "mariadb")


def validate_prefix(prefix: str) -> str:
    """Table prefixes are spliced into DDL, so only plain identifiers are accepted."""
    if not _PREFIX.fullmatch(prefix):
        raise ConfigurationError(
            f"table_prefix {prefix!r} is not a plain SQL identifier: 1 to 40 characters, "
            "letters, digits and '_', not starting with a digit"
        )
    return prefix


def _name_type() -> String:
    # Queue names are ASCII by rule; on MySQL compare them byte-wise, not case-insensitively.
    return String(MAX_LENGTH).with_variant(
        mysql.VARCHAR(MAX_LENGTH, charset="ascii", collation="ascii_bin"), *_MYSQL
    )


def _id_column() -> Column[int]:
    return Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


def _body_column() -> Column[bytes]:
    return Column("body", LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL), nullable=False)


def tables(prefix: str) -> tuple[Table, Table]:
    """The tables `<prefix>messages` and `<prefix>broadcasts`, in a MetaData of their own."""
    validate_prefix(prefix)
    metadata = MetaData()
    return _messages(metadata, prefix), _broadcasts(metadata, prefix)


def _messages(metadata: MetaData, prefix: str) -> Table:
    table = Table(
        f"{prefix}messages",
        metadata,
        _id_column(),
        Column("queue", _name_type(), nullable=False),
        Column("state", SmallInteger, nullable=False),
        Column("priority", Integer, nullable=False),
        Column("due", Double, nullable=False),
        Column("deliveries", Integer, nullable=False),
        Column("owner", String(OWNER_LENGTH), nullable=True),
        Column("lease_until", Double, nullable=True),
        Column("reason", Text, nullable=True),
        Column("dead_at", Double, nullable=True),
        _body_column(),
        # Ids only grow (SQLite would otherwise reuse the id of a deleted last row), so a
        # delivery's (id, owner, deliveries) tag can never match a different message.
        sqlite_autoincrement=True,
    )
    c = table.c
    # Serves fetch (ready rows in delivery order), the reaper, size, purge and listings.
    Index(f"{prefix}messages_fetch", c.queue, c.state, c.priority.desc(), c.due, c.id)
    return table


def _broadcasts(metadata: MetaData, prefix: str) -> Table:
    """Recent broadcasts, each read by every subscriber of its channel (broadcast.py)."""
    table = Table(
        f"{prefix}broadcasts",
        metadata,
        _id_column(),
        Column("channel", _name_type(), nullable=False),
        Column("at", Double, nullable=False),
        _body_column(),
        sqlite_autoincrement=True,
    )
    c = table.c
    Index(f"{prefix}broadcasts_channel", c.channel, c.id)
    Index(f"{prefix}broadcasts_at", c.at)
    return table


class DatabaseNow(FunctionElement[float]):
    """The database server's current time in seconds since the epoch."""

    type = Double()
    inherit_cache = True


@compiles(DatabaseNow)
def _now_postgresql(element: DatabaseNow, compiler: Any, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@compiles(DatabaseNow, "sqlite")
def _now_sqlite(element: DatabaseNow, compiler: Any, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(DatabaseNow, "mysql")
@compiles(DatabaseNow, "mariadb")
def _now_mysql(element: DatabaseNow, compiler: Any, **kw: Any) -> str:
    return "UNIX_TIMESTAMP(NOW(6))"
