"""The SQL transport's one table, and the database clock every time column is measured by.

One row per message. `state` says where it is: READY (deliverable once `due` has passed, so
delayed messages are READY rows with a future `due`), HELD (claimed by consumer `owner`,
whose lease runs until `lease_until`) or DEAD (dead-lettered with `reason` at `dead_at`).
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


def messages_table(prefix: str) -> Table:
    """The messages table named `<prefix>messages`, in a MetaData of its own."""
    validate_prefix(prefix)
    # Queue names are ASCII by rule; on MySQL compare them byte-wise, not case-insensitively.
    queue_type = String(MAX_LENGTH).with_variant(
        mysql.VARCHAR(MAX_LENGTH, charset="ascii", collation="ascii_bin"), *_MYSQL
    )
    table = Table(
        f"{prefix}messages",
        MetaData(),
        Column(
            "id",
            BigInteger().with_variant(Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("queue", queue_type, nullable=False),
        Column("state", SmallInteger, nullable=False),
        Column("priority", Integer, nullable=False),
        Column("due", Double, nullable=False),
        Column("deliveries", Integer, nullable=False),
        Column("owner", String(OWNER_LENGTH), nullable=True),
        Column("lease_until", Double, nullable=True),
        Column("reason", Text, nullable=True),
        Column("dead_at", Double, nullable=True),
        Column("body", LargeBinary().with_variant(mysql.LONGBLOB(), *_MYSQL), nullable=False),
        # Ids only grow (SQLite would otherwise reuse the id of a deleted last row), so a
        # delivery's (id, owner, deliveries) tag can never match a different message.
        sqlite_autoincrement=True,
    )
    c = table.c
    # Serves fetch (ready rows in delivery order), the reaper, size, purge and listings.
    Index(f"{prefix}messages_fetch", c.queue, c.state, c.priority.desc(), c.due, c.id)
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
