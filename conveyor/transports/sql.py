"""The SQL transport (SQLAlchemy Core): SQLite, PostgreSQL and MySQL/MariaDB.

SQLite is conveyor's embedded default: one database file shared by producers and workers in
separate processes, with no server. The schema (sql_schema.py) is one table of messages, a
row per message, created on first use.

* Claiming is one short transaction: pick the first due READY rows in (priority desc, due,
  id) order and mark them HELD by this transport with a lease. PostgreSQL and MySQL pick
  with ``FOR UPDATE SKIP LOCKED``, so competing consumers never wait on or take each other's
  rows; SQLite serialises claimers with ``BEGIN IMMEDIATE``.
* Leases follow liveness: a daemon thread renews this transport's leases every
  lease_timeout/3. Rows whose lease ran out (the consumer died) are returned by a reaper that
  runs during fetch, dead-lettered instead once they have been delivered max_deliveries times.
* fetch is a bounded poll: a cheap read-only probe every few milliseconds, backing off to
  `poll_interval` while the queue stays idle; a publish through the same transport wakes it.
* Every operation is its own transaction on a pooled connection, so ack/nack work from any
  thread. A transaction that meets a dropped connection or a deadlock runs again, unless it
  already reached COMMIT: then the outcome is unknown and ConnectionLost says so.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import case, delete, exists, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from conveyor.core import envelope
from conveyor.core.errors import (
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    ConveyorError,
    LeaseLost,
)
from conveyor.core.message import DeadLetter, Delivery, Message
from conveyor.core.names import validate_queue_name
from conveyor.core.url import URL
from conveyor.transports.base import (
    MAX_DELIVERIES_REASON,
    Capabilities,
    Transport,
    TransportOptions,
)
from conveyor.transports.sql_engine import READ_ONLY, build_engine, dialect_of, retryable, translate
from conveyor.transports.sql_schema import (
    DEAD,
    HELD,
    READY,
    DatabaseNow,
    messages_table,
    validate_prefix,
)

T = TypeVar("T")
log = logging.getLogger("conveyor.transports.sql")

_ATTEMPTS = 3
_ROWS_PER_STATEMENT = 500
_BYTES_PER_STATEMENT = 4 * 1024 * 1024
_FIRST_POLL = 0.005
_MiB = 1024 * 1024


class _Claimed(NamedTuple):
    id: int
    priority: int
    due: float
    deliveries: int
    body: bytes


@dataclass
class SQLOptions(TransportOptions):
    """Options of the SQL transport, on top of the common ones.

    table_prefix: the messages table is ``<prefix>messages``; a plain identifier.
    poll_interval: the longest pause between two looks at an idle queue, in seconds.
    busy_timeout: SQLite only: how long a writer waits for the file lock, in seconds.
    """

    table_prefix: str = "conveyor_"
    poll_interval: float = 0.05
    busy_timeout: float = 30.0

    def validate(self) -> None:
        super().validate()
        validate_prefix(self.table_prefix)
        if self.poll_interval <= 0:
            raise ConfigurationError("poll_interval must be positive")
        if self.busy_timeout <= 0:
            raise ConfigurationError("busy_timeout must be positive")


class SQLTransport(Transport):
    """Queues in an SQL database. Constructing it picks the subclass for the URL's dialect."""

    Options = SQLOptions
    capabilities = Capabilities(max_message_size=16 * _MiB, priorities=True)
    options: SQLOptions

    def __new__(cls, url: URL, options: TransportOptions) -> SQLTransport:
        if cls is SQLTransport:
            cls = _BY_DIALECT[dialect_of(url)]
        return super().__new__(cls)

    def __init__(self, url: URL, options: TransportOptions) -> None:
        if not isinstance(options, SQLOptions):
            options = SQLOptions(**vars(options))
            options.validate()
        super().__init__(url, options)
        self._engine = build_engine(
            url, connect_timeout=options.connect_timeout, busy_timeout=options.busy_timeout
        )
        self._table = messages_table(options.table_prefix)
        self._owner = uuid.uuid4().hex
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._held: set[int] = set()
        self._held_lock = threading.Lock()
        self._next_reap: dict[str, float] = {}
        self._published = threading.Condition()
        self._generation = 0
        self._closed = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # -- transactions ------------------------------------------------------------------

    def _run(self, work: Callable[[Connection], T], *, read_only: bool = False) -> T:
        """Run `work` in its own transaction, creating the schema first if needed."""
        if not self._schema_ready:
            self._create_schema()
        return self._transaction(work, read_only=read_only)

    def _transaction(self, work: Callable[[Connection], T], *, read_only: bool = False) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                connection = self._engine.connect()
            except sa_exc.SQLAlchemyError as exc:
                raise translate(exc, self.url, connecting=True, committing=False) from exc
            committing = False
            try:
                with connection:
                    if read_only:
                        connection.execution_options(**{READ_ONLY: True})
                    with connection.begin():
                        result = work(connection)
                        committing = True
                return result
            except sa_exc.SQLAlchemyError as exc:
                if committing or attempt == _ATTEMPTS or not retryable(exc):
                    raise translate(exc, self.url, connecting=False, committing=committing) from exc
                log.info("retrying a transaction on %s after: %s", self.url, type(exc).__name__)
        raise AssertionError("unreachable")

    def _create_schema(self) -> None:
        """Create the table and index if missing; safe when several processes race to it."""
        metadata = self._table.metadata
        with self._schema_lock:
            for attempt in range(1, _ATTEMPTS + 1):
                if self._schema_ready:
                    return
                try:
                    self._transaction(lambda connection: metadata.create_all(connection))
                    self._schema_ready = True
                except BrokerUnavailable:
                    raise
                except BrokerError:
                    # Another process created it between our check and our CREATE.
                    if attempt == _ATTEMPTS:
                        raise

    # -- producing ---------------------------------------------------------------------

    def publish_many(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        packed = self.check_publish(queue, messages)
        if not packed:
            return
        due = DatabaseNow() + float(max(delay, 0.0))
        rows = [
            {
                "queue": queue,
                "state": READY,
                "priority": message.priority,
                "due": due,
                "deliveries": 0,
                "body": data,
            }
            for message, data in zip(messages, packed, strict=True)
        ]

        def work(connection: Connection) -> None:
            for chunk in _statement_chunks(rows, packed):
                connection.execute(insert(self._table).values(chunk))

        self._run(work)
        self._wake_local_fetchers()

    # -- consuming ---------------------------------------------------------------------

    def fetch(self, queue: str, *, max_messages: int = 1, timeout: float = 1.0) -> list[Delivery]:
        validate_queue_name(queue)
        if max_messages < 1:
            return []
        deadline = time.monotonic() + timeout
        pause = min(_FIRST_POLL, self.options.poll_interval)
        generation = self._generation
        rows = self._claim(queue, max_messages, reap=self._reap_due(queue))
        while not rows:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._wait_for_publish(generation, min(pause, remaining))
            pause = min(pause * 2, self.options.poll_interval)
            generation = self._generation
            ready, expired = self._probe(queue)
            if ready or expired:
                rows = self._claim(queue, max_messages, reap=expired or self._reap_due(queue))
        with self._held_lock:
            self._held.update(row.id for row in rows)
        self._start_heartbeat()
        return [
            Delivery(
                self, queue, envelope.unpack(row.body), row.deliveries, (row.id, row.deliveries)
            )
            for row in rows
        ]

    def _probe(self, queue: str) -> tuple[bool, bool]:
        """Whether `queue` has due ready rows, and rows whose lease ran out. Takes no locks."""
        c, now = self._table.c, DatabaseNow()
        ready = exists().where(c.queue == queue, c.state == READY, c.due <= now)
        expired = exists().where(c.queue == queue, c.state == HELD, c.lease_until < now)
        row = self._run(lambda conn: conn.execute(select(ready, expired)).one(), read_only=True)
        return bool(row[0]), bool(row[1])

    def _claim(self, queue: str, limit: int, *, reap: bool) -> list[_Claimed]:
        """Take up to `limit` due rows of `queue` for this transport, in delivery order."""
        table = self._table
        c, now = table.c, DatabaseNow()
        wanted = (c.id, c.priority, c.due, c.deliveries, c.body)
        picked = (
            select(*wanted)
            .where(c.queue == queue, c.state == READY, c.due <= now)
            .order_by(c.priority.desc(), c.due, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        taken = {
            "state": HELD,
            "owner": self._owner,
            "lease_until": now + self.options.lease_timeout,
            "deliveries": c.deliveries + 1,
        }

        def work(connection: Connection) -> list[_Claimed]:
            if reap:
                expired = (c.queue == queue, c.state == HELD, c.lease_until < now)
                connection.execute(update(table).where(*expired).values(self._released()))
            if connection.dialect.update_returning:
                chosen = picked.with_only_columns(c.id).cte("picked")
                claim = update(table).where(c.id == chosen.c.id).values(taken).returning(*wanted)
                rows = [_Claimed(*row) for row in connection.execute(claim)]
                rows.sort(key=lambda row: (-row.priority, row.due, row.id))
                return rows
            rows = [_Claimed(*row) for row in connection.execute(picked)]
            if rows:
                ids = [row.id for row in rows]
                connection.execute(update(table).where(c.id.in_(ids)).values(taken))
            return [row._replace(deliveries=row.deliveries + 1) for row in rows]

        return self._run(work)

    def _released(self) -> dict[str, Any]:
        """SET clause for HELD rows whose holder is gone: back to READY, due as before, or
        to the dead letters once delivered max_deliveries times."""
        c, now = self._table.c, DatabaseNow()
        spent = c.deliveries >= self.options.max_deliveries
        return {
            "state": case((spent, DEAD), else_=READY),
            "reason": case((spent, MAX_DELIVERIES_REASON), else_=None),
            "dead_at": case((spent, now), else_=None),
            "owner": None,
            "lease_until": None,
        }

    def _reap_due(self, queue: str) -> bool:
        """Whether this fetch should also look for expired leases (a few times per lease)."""
        now = time.monotonic()
        if now < self._next_reap.get(queue, 0.0):
            return False
        self._next_reap[queue] = now + self.options.lease_timeout / 4
        return True

    def _wake_local_fetchers(self) -> None:
        with self._published:
            self._generation += 1
            self._published.notify_all()

    def _wait_for_publish(self, generation: int, timeout: float) -> None:
        with self._published:
            if self._generation == generation:
                self._published.wait(timeout)

    # -- settling ----------------------------------------------------------------------

    def ack(self, delivery: Delivery) -> None:
        self._settle(delivery, None)

    def nack(self, delivery: Delivery, *, requeue: bool, delay: float, reason: str) -> None:
        now = DatabaseNow()
        values: dict[str, Any] = {"owner": None, "lease_until": None}
        if requeue and delivery.delivery_count >= self.options.max_deliveries:
            values.update(state=DEAD, reason=MAX_DELIVERIES_REASON, dead_at=now)
        elif requeue:
            # With no delay the message keeps its place in the queue, ahead of later ones.
            values.update(state=READY, **({"due": now + float(delay)} if delay > 0 else {}))
        else:
            values.update(state=DEAD, reason=reason, dead_at=now)
        self._settle(delivery, values)

    def _settle(self, delivery: Delivery, values: dict[str, Any] | None) -> None:
        """Delete the row (values None) or update it, if this claim still holds it."""
        row_id, count = delivery.tag
        c = self._table.c
        mine = (c.id == row_id, c.owner == self._owner, c.deliveries == count, c.state == HELD)
        statement = (
            delete(self._table).where(*mine)
            if values is None
            else update(self._table).where(*mine).values(values)
        )
        try:
            changed = self._run(lambda connection: connection.execute(statement).rowcount)
        finally:
            # Settled or not, stop renewing: if the outcome was lost the lease runs out and
            # the message comes back, which is at-least-once.
            with self._held_lock:
                self._held.discard(row_id)
        if not changed:
            raise LeaseLost(
                f"message {delivery.message.id} on {delivery.queue!r} is no longer held by this "
                "consumer (its lease ran out and it was returned to the queue)"
            )
        if values is not None and values["state"] == READY:
            self._wake_local_fetchers()

    # -- leases ------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._heartbeat is not None or self._closed.is_set():
            return
        with self._held_lock:
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(
                    target=self._renew_leases, name="conveyor-sql-leases", daemon=True
                )
                self._heartbeat.start()

    def _renew_leases(self) -> None:
        renewed = {"lease_until": DatabaseNow() + self.options.lease_timeout}
        while not self._closed.wait(self.options.lease_timeout / 3):
            with self._held_lock:
                ids = sorted(self._held)
            try:
                self._update_held(ids, renewed)
            except ConveyorError as exc:
                log.warning("could not renew %d leases on %s: %s", len(ids), self.url, exc)

    def _update_held(self, ids: list[int], values: dict[str, Any]) -> None:
        """Update the rows among `ids` that this transport still holds."""
        if not ids:
            return
        c = self._table.c

        def work(connection: Connection) -> None:
            for chunk in _chunks(ids, _ROWS_PER_STATEMENT):
                mine = (c.id.in_(chunk), c.owner == self._owner, c.state == HELD)
                connection.execute(update(self._table).where(*mine).values(values))

        self._run(work)

    # -- administration ----------------------------------------------------------------

    def size(self, queue: str) -> int:
        validate_queue_name(queue)
        c = self._table.c
        count = select(func.count()).where(
            c.queue == queue, c.state == READY, c.due <= DatabaseNow()
        )
        return int(self._run(lambda conn: conn.execute(count).scalar_one(), read_only=True))

    def purge(self, queue: str) -> int:
        validate_queue_name(queue)
        c = self._table.c
        ready = delete(self._table).where(
            c.queue == queue, c.state == READY, c.due <= DatabaseNow()
        )
        return int(self._run(lambda connection: connection.execute(ready).rowcount))

    def delete(self, queue: str) -> None:
        validate_queue_name(queue)
        c = self._table.c
        # Held rows stay until their holder settles them, as they would on any broker.
        unheld = delete(self._table).where(c.queue == queue, c.state.in_((READY, DEAD)))
        self._run(lambda connection: connection.execute(unheld))

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        validate_queue_name(queue)
        c = self._table.c
        query = (
            select(c.body, c.reason, c.dead_at, c.deliveries)
            .where(c.queue == queue, c.state == DEAD)
            .order_by(c.dead_at, c.id)
            .limit(limit)
        )
        rows = self._run(lambda conn: list(conn.execute(query)), read_only=True)
        return [
            DeadLetter(envelope.unpack(row.body), queue, row.reason, row.dead_at, row.deliveries)
            for row in rows
        ]

    def replay_dead_letters(self, queue: str, *, ids: Iterable[str] | None = None) -> int:
        validate_queue_name(queue)
        table, c = self._table, self._table.c
        dead = (c.queue == queue, c.state == DEAD)
        revived = {
            "state": READY,
            "deliveries": 0,
            "due": DatabaseNow(),
            "reason": None,
            "dead_at": None,
        }
        wanted = None if ids is None else set(ids)

        def work(connection: Connection) -> int:
            if wanted is None:
                return int(connection.execute(update(table).where(*dead).values(revived)).rowcount)
            # Message ids live inside the packed envelope, so pick the rows here.
            found = connection.execute(select(c.id, c.body).where(*dead))
            rows = [row.id for row in found if envelope.unpack(row.body).id in wanted]
            replay = update(table).where(*dead)
            return sum(
                int(connection.execute(replay.where(c.id.in_(chunk)).values(revived)).rowcount)
                for chunk in _chunks(rows, _ROWS_PER_STATEMENT)
            )

        count = self._run(work)
        self._wake_local_fetchers()
        return count

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Return this transport's unacked deliveries to their queues, then disconnect."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=self.options.connect_timeout)
        with self._held_lock:
            ids, self._held = sorted(self._held), set()
        try:
            self._update_held(ids, self._released())
        except ConveyorError as exc:
            log.warning("could not return %d messages to %s: %s", len(ids), self.url, exc)
        finally:
            self._engine.dispose()


class SQLiteTransport(SQLTransport):
    """A database file shared by processes on one host; no server, no network."""

    capabilities = Capabilities(max_message_size=16 * _MiB, priorities=True, networked=False)


class PostgreSQLTransport(SQLTransport):
    capabilities = Capabilities(max_message_size=16 * _MiB, priorities=True)


class MySQLTransport(SQLTransport):
    """MySQL 8 or MariaDB 10.6+ (SKIP LOCKED). A body is sent escaped, up to twice its size,
    in one statement, so the limit keeps it within the default 16 MiB max_allowed_packet."""

    capabilities = Capabilities(max_message_size=4 * _MiB, priorities=True)


_BY_DIALECT: dict[str, type[SQLTransport]] = {
    "sqlite": SQLiteTransport,
    "postgresql": PostgreSQLTransport,
    "mysql": MySQLTransport,
}


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _statement_chunks(rows: list[dict[str, Any]], packed: list[bytes]) -> Iterator[list[Any]]:
    """Split a batch into INSERT statements of bounded row count and byte size."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for row, data in zip(rows, packed, strict=True):
        if chunk and (len(chunk) == _ROWS_PER_STATEMENT or size + len(data) > _BYTES_PER_STATEMENT):
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += len(data)
    if chunk:
        yield chunk
