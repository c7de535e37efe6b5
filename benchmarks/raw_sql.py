"""The raw DB-API baseline for transport_bench.py: the SQL transport's work, no conveyor.

Drivers as conveyor uses them (sqlite3 in WAL mode, psycopg 3, PyMySQL), hand-written SQL on
a table shaped like conveyor's (``conveyor_rawbench``, created if missing, same index):

* publish: one multi-row INSERT of `batch` rows per transaction (what publish_many sends).
* consume: claim up to `batch` due rows in (priority, due, id) order, marking them held with
  an owner and a lease, in one transaction (PostgreSQL: one UPDATE ... SKIP LOCKED ...
  RETURNING in autocommit; MySQL: SELECT ... FOR UPDATE SKIP LOCKED then UPDATE; SQLite:
  BEGIN IMMEDIATE, UPDATE ... RETURNING), then one DELETE of the batch to acknowledge it.
  On PostgreSQL the consumer's session commits without waiting for the WAL flush
  (synchronous_commit off), as conveyor's claims and acks do; publishes wait for it.

Times are the client's clock here (conveyor reads the server's), a small saving in its favour.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from conveyor.core.url import URL, parse_url

TABLE = "conveyor_rawbench"
OWNER = "rawbench"
LEASE = 30.0
_COLUMNS = "queue, state, priority, due, deliveries, body"
_PICK = (
    f"SELECT {{}} FROM {TABLE} WHERE queue = %s AND state = 0 AND due <= %s "
    "ORDER BY priority DESC, due, id LIMIT %s"
)
_TAKE = f"UPDATE {TABLE} SET state = 1, owner = %s, lease_until = %s, deliveries = deliveries + 1"


def _schema(dialect: str) -> list[str]:
    key, body, queue = {
        "sqlite": ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", "VARCHAR(200)"),
        "postgresql": ("BIGSERIAL PRIMARY KEY", "BYTEA", "VARCHAR(200)"),
        "mysql": (
            "BIGINT AUTO_INCREMENT PRIMARY KEY",
            "LONGBLOB",
            "VARCHAR(200) CHARACTER SET ascii COLLATE ascii_bin",
        ),
    }[dialect]
    exists = "" if dialect == "mysql" else "IF NOT EXISTS "
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id {key}, queue {queue} NOT NULL, "
        "state SMALLINT NOT NULL, priority INTEGER NOT NULL, due DOUBLE PRECISION NOT NULL, "
        "deliveries INTEGER NOT NULL, owner VARCHAR(32), lease_until DOUBLE PRECISION, "
        f"body {body} NOT NULL)",
        f"CREATE INDEX {exists}{TABLE}_fetch ON {TABLE} (queue, state, priority DESC, due, id)",
    ]


class _Connection:
    """One driver connection with `%s` placeholders."""

    def __init__(self, url: URL) -> None:
        self.dialect = {"sqlite": "sqlite", "sql+sqlite": "sqlite"}.get(
            url.scheme, url.scheme.removeprefix("sql+")
        )
        host = url.host
        if self.dialect == "sqlite":
            self.db: Any = sqlite3.connect(url.path[1:], timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
        elif self.dialect == "postgresql":
            import psycopg

            assert host is not None
            self.db = psycopg.connect(
                host=host.name,
                port=host.port or 5432,
                user=url.username,
                password=url.password,
                dbname=url.path.lstrip("/"),
                autocommit=True,
            )
        else:
            import pymysql

            assert host is not None
            self.db = pymysql.connect(
                host=host.name,
                port=host.port or 3306,
                user=url.username or "root",
                password=url.password or "",
                database=url.path.lstrip("/"),
            )
            self.run("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        for statement in _schema(self.dialect):
            try:
                self.run(statement)
            except Exception as exc:  # MySQL has no CREATE INDEX IF NOT EXISTS
                if "Duplicate key name" not in str(exc):
                    raise
        self.commit()

    def run(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        if self.dialect == "sqlite":
            sql = sql.replace("%s", "?")
        cursor = self.db.cursor()
        cursor.execute(sql, params)
        rows = list(cursor.fetchall()) if cursor.description else []
        cursor.close()
        return rows

    def begin(self) -> None:
        """PostgreSQL runs in autocommit (every statement here stands alone); MySQL's
        transactions begin by themselves."""
        if self.dialect == "sqlite":
            self.run("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.dialect == "sqlite":
            if self.db.in_transaction:
                self.run("COMMIT")
        elif self.dialect == "mysql":
            self.db.commit()

    def close(self) -> None:
        self.db.close()


def publish(url: str, queue: str, bodies: list[bytes], batch: int) -> None:
    db = _Connection(parse_url(url))
    for start in range(0, len(bodies), batch):
        chunk = bodies[start : start + batch]
        now = time.time()
        params: list[Any] = []
        for body in chunk:
            params += [queue, 0, 0, now, 0, body]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
        db.begin()
        db.run(f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES {values}", params)
        db.commit()
    db.close()


def _claim(db: _Connection, queue: str, limit: int) -> list[int]:
    now = time.time()
    if db.dialect == "postgresql":
        rows = db.run(
            f"{_TAKE} WHERE id IN ({_PICK.format('id')} FOR UPDATE SKIP LOCKED) RETURNING id, body",
            (OWNER, now + LEASE, queue, now, limit),
        )
    elif db.dialect == "sqlite":
        db.begin()
        rows = db.run(
            f"{_TAKE} WHERE id IN ({_PICK.format('id')}) RETURNING id, body",
            (OWNER, now + LEASE, queue, now, limit),
        )
        db.commit()
    else:
        rows = db.run(f"{_PICK.format('id, body')} FOR UPDATE SKIP LOCKED", (queue, now, limit))
        if rows:
            marks = ", ".join(["%s"] * len(rows))
            db.run(f"{_TAKE} WHERE id IN ({marks})", [OWNER, now + LEASE, *(r[0] for r in rows)])
        db.commit()
    return [row[0] for row in rows]


def consume(url: str, queue: str, n: int, batch: int) -> None:
    db = _Connection(parse_url(url))
    if db.dialect == "postgresql":
        db.run("SET synchronous_commit = off")
    received = 0
    while received < n:
        ids = _claim(db, queue, min(batch, n - received))
        if not ids:
            time.sleep(0.001)
            continue
        db.begin()
        marks = ", ".join(["%s"] * len(ids))
        db.run(f"DELETE FROM {TABLE} WHERE id IN ({marks}) AND owner = %s", [*ids, OWNER])
        db.commit()
        received += len(ids)
    db.close()


def cleanup(url: str, queue: str) -> None:
    db = _Connection(parse_url(url))
    db.begin()
    db.run(f"DELETE FROM {TABLE} WHERE queue = %s", (queue,))
    db.commit()
    db.close()
