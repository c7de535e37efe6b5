"""The SQL transport (SQLAlchemy Core): SQLite, PostgreSQL and MySQL/MariaDB.

SQLite is conveyor's embedded default: one database file shared by producers and workers in
separate processes, with no server. The schema (schema.py) is one table of messages, a
row per message, created on first use.

* Claiming is one short transaction: pick the first due READY rows in (priority desc, due,
  id) order and mark them HELD by this transport with a lease. PostgreSQL and MySQL pick
  with ``FOR UPDATE SKIP LOCKED``, so competing consumers never wait on or take each other's
  rows; SQLite serialises claimers with ``BEGIN IMMEDIATE``.
* Leases follow liveness: a daemon thread renews this transport's leases every
  lease_timeout/3. Rows whose lease ran out (the consumer died) are returned by a reaper that
  runs during fetch, dead-lettered instead once they have been delivered max_deliveries times.
* fetch is a bounded poll: a cheap read-only probe every few milliseconds, backing off to
  `poll_interval` while the queue stays idle; a publish through the same transport wakes it,
  and on PostgreSQL so does any publish, through LISTEN/NOTIFY (notify.py).
* Broadcast: a table of recent broadcasts that subscribers read forward (broadcast.py).
* Every operation is its own transaction on a pooled connection, so ack/nack work from any
  thread. A transaction that meets a dropped connection or a deadlock runs again, unless it
  already reached COMMIT and is not safe to repeat (publish, ack, nack): then the outcome is
  unknown and ConnectionLost says so (conveyor.clients.sql.transact).
* Publishes commit durably. On PostgreSQL claims, acks, nacks and lease updates commit
  without waiting for the WAL flush (conveyor.clients.sql.Engines.relaxed): a server crash
  may forget the last fraction of a second of them, which brings those messages back to the queue,
  never loses one (at-least-once, like an ack lost on the way on any broker).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy.engine import Connection

from conveyor.clients.sql import ATTEMPTS, build_engines, dialect_of, transact
from conveyor.clients.sql_driver import Compiled, DriverTransaction
from conveyor.core import envelope
from conveyor.core.errors import (
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    ConnectionLost,
    ConveyorError,
    LeaseLost,
)
from conveyor.core.message import DeadLetter, Delivery, Message
from conveyor.core.names import validate_queue_name
from conveyor.core.transport import (
    MAX_DELIVERIES_REASON,
    Capabilities,
    QueueCounts,
    Subscription,
    Transport,
    TransportOptions,
)
from conveyor.core.url import URL
from conveyor.transports.sql.broadcast import KEEP, LocalSignal, SQLSubscription
from conveyor.transports.sql.notify import Listener, create_trigger
from conveyor.transports.sql.schema import tables, validate_prefix
from conveyor.transports.sql.statements import Statements

T = TypeVar("T")
log = logging.getLogger("conveyor.transports.sql")

_ROWS_PER_STATEMENT = 500
_BYTES_PER_STATEMENT = 4 * 1024 * 1024
_FIRST_POLL = 0.005
_POLL_WITH_PUSHES = 0.25
_MiB = 1024 * 1024
RELAXED = "relaxed"
"""The kind of work (conveyor.clients.sql.Engines) of claims, settlements and lease updates: a
server crash may forget the last of them, which only brings those messages back."""


class _Claimed(NamedTuple):
    id: int
    priority: int
    due: float
    deliveries: int
    body: bytes


@dataclass
class SQLOptions(TransportOptions):
    """Options of the SQL transport, on top of the common ones.

    table_prefix: the messages table is ``<prefix>messages``; a plain identifier. With a
        `namespace`, the tables are ``<namespace>_<prefix>messages`` and so on.
    poll_interval: the longest pause between two looks at an idle queue, in seconds.
    busy_timeout: SQLite only: how long a writer waits for the file lock, in seconds.
    """

    table_prefix: str = "conveyor_"
    poll_interval: float = 0.04
    busy_timeout: float = 30.0

    @property
    def tables_prefix(self) -> str:
        """What every table, index, trigger and notify channel name starts with."""
        return f"{self.namespace}_{self.table_prefix}" if self.namespace else self.table_prefix

    def validate(self) -> None:
        super().validate()
        validate_prefix(self.tables_prefix)
        if self.poll_interval <= 0:
            raise ConfigurationError("poll_interval must be positive")
        if self.busy_timeout <= 0:
            raise ConfigurationError("busy_timeout must be positive")


CAPABILITIES = {
    # A database file shared by processes on one host; no server, no network.
    "sqlite": Capabilities(
        max_message_size=16 * _MiB, priorities=True, broadcast=True, networked=False
    ),
    # Wakes idle fetches with LISTEN/NOTIFY (notify.py) on PostgreSQL 14 and later.
    "postgresql": Capabilities(
        max_message_size=16 * _MiB, priorities=True, broadcast=True, connection_cut=True
    ),
    # MySQL 8 or MariaDB 10.6+ (SKIP LOCKED). A body is sent escaped, up to twice its size,
    # in one statement, so the limit keeps it within the default 16 MiB max_allowed_packet.
    "mysql": Capabilities(
        max_message_size=4 * _MiB, priorities=True, broadcast=True, connection_cut=True
    ),
}
"""What each dialect offers: the URL decides, so each instance sets its own."""


class SQLTransport(Transport):
    """Queues in an SQL database; the URL's dialect sets the capabilities, and PostgreSQL
    adds LISTEN/NOTIFY wake-ups."""

    Options = SQLOptions
    capabilities = Capabilities(max_message_size=4 * _MiB, priorities=True)  # the least
    options: SQLOptions

    def __init__(self, url: URL, options: TransportOptions) -> None:
        if not isinstance(options, SQLOptions):
            options = SQLOptions(**vars(options))
            options.validate()
        super().__init__(url, options)
        self._dialect = dialect_of(url)
        self.capabilities = CAPABILITIES[self._dialect]
        self._notifies = self._dialect == "postgresql"
        self._owner = uuid.uuid4().hex
        self._engines = build_engines(
            url,
            name=f"conveyor-{self._owner}",
            connect_timeout=options.connect_timeout,
            busy_timeout=options.busy_timeout,
        )
        self._sql = Statements(*tables(options.tables_prefix), options.max_deliveries)
        self._claim_in_one_statement = self._engines.atomic.dialect.update_returning
        self._schema_ready = False
        self._compiled_by_id: dict[int, Compiled] = {}
        self._next_reap: dict[str, float] = {}
        self._reset_process_state(closed=False)
        _live.add(self)

    def _reset_process_state(self, *, closed: bool) -> None:
        """Locks, threads and claims belong to one process; a forked child starts afresh."""
        self._closed = threading.Event()
        if closed:
            self._closed.set()
        self._schema_lock = threading.Lock()
        self._held: set[int] = set()
        self._held_lock = threading.Lock()
        self._short_claims: dict[str, int] = {}
        # Two signals, so that a busy queue does not make broadcast subscribers poll.
        self._signal = LocalSignal()
        """New ready messages: this process wrote some, or LISTEN/NOTIFY said so."""
        self._broadcast_signal = LocalSignal()
        self._heartbeat: threading.Thread | None = None
        self._listener: Listener | None = None

    def _after_fork_in_child(self) -> None:
        """Leave the parent's connections and claims to the parent (a worker's prefork
        pool forks after the app made its transport); take a consumer identity of its own."""
        self._engines.dispose(close=False)
        self._owner = uuid.uuid4().hex
        self._reset_process_state(closed=self._closed.is_set())

    # -- running statements ------------------------------------------------------------

    def _run(
        self,
        work: Callable[[DriverTransaction], T],
        *,
        kind: str = "single",
        repeatable: bool = True,
    ) -> T:
        """Run `work` on a DB-API connection (see conveyor.clients.sql.transact and sql_driver),
        creating the schema first if needed."""
        if not self._schema_ready:
            self._create_schema()
        return transact(
            self._engines, self.url, work, kind=kind, repeatable=repeatable, driver=True
        )

    def _execute(
        self, statement: Any, *, kind: str = "single", repeatable: bool = True, **params: Any
    ) -> Any:
        """Run one statement; return its rowcount (writes) or its rows as tuples (reads)."""
        return self._run(
            lambda transaction: transaction.execute(self._compiled(statement), params),
            kind=kind,
            repeatable=repeatable,
        )

    def _compiled(self, statement: Any) -> Compiled:
        """`statement` compiled for this database, once. Called with a connection open, so
        the dialect has met the server (MariaDB or MySQL, the server's version)."""
        compiled = self._compiled_by_id.get(id(statement))
        if compiled is None:
            compiled = Compiled(statement, self._engines.atomic.dialect)
            self._compiled_by_id[id(statement)] = compiled
        return compiled

    def _create_schema(self) -> None:
        """Create the tables and indexes if missing; safe when several processes race to it."""
        with self._schema_lock:
            for attempt in range(1, ATTEMPTS + 1):
                if self._schema_ready:
                    return
                try:
                    transact(self._engines, self.url, self._create_tables)
                    self._schema_ready = True
                except BrokerUnavailable:
                    raise
                except BrokerError:
                    # Another process created it between our check and our CREATE.
                    if attempt == ATTEMPTS:
                        raise

    def _create_tables(self, connection: Connection) -> None:
        self._sql.table.metadata.create_all(connection)
        if self._notifies:
            create_trigger(connection, self.options.tables_prefix)

    def _pushes(self) -> bool:
        """Start the database's own wake-ups if it has them; whether they are live now."""
        if not self._notifies:
            return False
        with self._held_lock:
            if self._listener is None and not self._closed.is_set():
                channel = self._sql.table.name
                self._listener = Listener(self._engines.single, channel, self._signal, self.url)
        return self._listener is not None and self._listener.listening

    # -- producing ---------------------------------------------------------------------

    def publish_many(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        packed = self.check_publish(queue, messages)
        if not packed:
            return
        delay_s = float(max(delay, 0.0))
        rows: list[dict[str, Any]] = [
            {"q": queue, "pri": message.priority, "delay_s": delay_s, "data": data}
            for message, data in zip(messages, packed, strict=True)
        ]
        # A publish sent twice is a duplicate: when the outcome is unknown, say so.
        if len(rows) == 1:
            self._execute(self._sql.insert, repeatable=False, **rows[0])
        else:
            self._insert_many(rows)
        self._signal.notify()

    def _insert_many(self, rows: list[dict[str, Any]]) -> None:
        """A batch through SQLAlchemy, which sends it as multi-row INSERTs."""
        chunks = list(_insert_chunks(rows))
        sql = self._sql

        def work(connection: Connection) -> None:
            insert = sql.insert_returning if connection.dialect.insert_returning else sql.insert
            for chunk in chunks:
                connection.execute(insert, chunk)

        if not self._schema_ready:
            self._create_schema()
        kind = "atomic" if len(chunks) > 1 else "single"
        transact(self._engines, self.url, work, kind=kind, repeatable=False)

    # -- consuming ---------------------------------------------------------------------

    def fetch(self, queue: str, *, max_messages: int = 1, timeout: float = 1.0) -> list[Delivery]:
        validate_queue_name(queue)
        if max_messages < 1:
            return []
        deadline = time.monotonic() + timeout
        pause = min(_FIRST_POLL, self.options.poll_interval)
        generation = self._signal.generation
        rows: list[_Claimed] = []
        if self._reap_due(queue):
            self._execute(self._sql.reap, kind=RELAXED, q=queue)
            rows = self._claim(queue, max_messages, generation)
        elif not self._nothing_new(queue, generation):
            rows = self._claim(queue, max_messages, generation)
        while not rows:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._signal.wait(generation, min(pause, remaining))
            woken = self._signal.generation != generation
            longest = self.options.poll_interval
            if self._pushes():  # a new message wakes us: poll only for due delayed ones
                longest = max(longest, _POLL_WITH_PUSHES)
            pause = min(pause * 2, longest)
            generation = self._signal.generation
            if not woken:  # a cheap read-only look first
                ((ready, expired),) = self._execute(self._sql.probe, kind="read", q=queue)
                if expired:
                    self._execute(self._sql.reap, kind=RELAXED, q=queue)
                if not (ready or expired):
                    continue
            rows = self._claim(queue, max_messages, generation)
        with self._held_lock:
            self._held.update(row.id for row in rows)
        self._start_heartbeat()
        return [
            Delivery(
                self, queue, envelope.unpack(row.body), row.deliveries, (row.id, row.deliveries)
            )
            for row in rows
        ]

    def _nothing_new(self, queue: str, generation: int) -> bool:
        """Whether the last claim on `queue` left it empty and, by the database's own
        wake-ups, nothing became ready since: then a claim now would find nothing either
        (delayed messages coming due are found by the poll, a few milliseconds later)."""
        return self._short_claims.get(queue) == generation and self._pushes()

    def _claim(self, queue: str, limit: int, generation: int) -> list[_Claimed]:
        """Take up to `limit` due rows of `queue`, noting whether it ran short at
        `generation` (the signal's, read before the claim began)."""
        rows = self._take(queue, limit)
        if len(rows) < limit:
            self._short_claims[queue] = generation
        else:
            self._short_claims.pop(queue, None)
        return rows

    def _take(self, queue: str, limit: int) -> list[_Claimed]:
        """Take up to `limit` due rows of `queue` for this transport, in delivery order."""
        sql = self._sql
        params: dict[str, Any] = {"q": queue, "lim": limit, "who": self._owner}
        params["lease_s"] = self.options.lease_timeout
        if self._claim_in_one_statement:
            rows = [_Claimed(*row) for row in self._execute(sql.claim, kind=RELAXED, **params)]
            rows.sort(key=lambda row: (-row.priority, row.due, row.id))
            return rows

        def pick_then_take(transaction: DriverTransaction) -> list[_Claimed]:
            picked = transaction.execute(self._compiled(sql.pick), params)
            rows = [_Claimed(*row) for row in picked]
            if rows:
                ids = [row.id for row in rows]
                transaction.execute(self._compiled(sql.take), {**params, "ids": ids})
            return [row._replace(deliveries=row.deliveries + 1) for row in rows]

        return self._run(pick_then_take, kind="atomic")

    def _reap_due(self, queue: str) -> bool:
        """Whether this fetch should also look for expired leases (a few times per lease)."""
        now = time.monotonic()
        if now < self._next_reap.get(queue, 0.0):
            return False
        self._next_reap[queue] = now + self.options.lease_timeout / 4
        return True

    # -- settling ----------------------------------------------------------------------

    def ack(self, delivery: Delivery) -> None:
        self._settle([delivery], self._sql.ack)

    def ack_batch(self, deliveries: list[Delivery]) -> None:
        """One statement per 500 deliveries."""
        for chunk in _chunks(deliveries, _ROWS_PER_STATEMENT):
            self._settle(chunk, self._sql.ack)

    def nack(self, delivery: Delivery, *, requeue: bool, delay: float, reason: str) -> None:
        sql, one = self._sql, [delivery]
        if requeue and delivery.delivery_count >= self.options.max_deliveries:
            self._settle(one, sql.dead_letter, why=MAX_DELIVERIES_REASON)
        elif requeue and delay > 0:
            self._settle(one, sql.requeue_later, delay_s=float(delay))
        elif requeue:
            # With no delay the message keeps its place in the queue, ahead of later ones.
            self._settle(one, sql.requeue)
        else:
            self._settle(one, sql.dead_letter, why=reason)
        if requeue:
            self._signal.notify()

    def _settle(self, deliveries: list[Delivery], statement: Any, **params: Any) -> None:
        """Delete or update the claimed rows, where these claims still hold them."""
        claims = [tuple(delivery.tag) for delivery in deliveries]
        params.update(ids=[row for row, _ in claims], claims=claims, who=self._owner)
        try:
            try:
                changed = self._execute(statement, kind=RELAXED, repeatable=False, **params)
            except ConnectionLost as lost:
                # Send it again: if it changes every row now, the first one never applied;
                # if not, the first one may have applied, and nobody can tell.
                changed = self._execute(statement, kind=RELAXED, **params)
                if changed < len(claims):
                    raise lost
        finally:
            # Settled or not, stop renewing: if the outcome was lost the lease runs out and
            # the message comes back, which is at-least-once.
            with self._held_lock:
                self._held.difference_update(params["ids"])
        if changed < len(claims):
            first = deliveries[0]
            raise LeaseLost(
                f"{len(claims) - changed} of {len(claims)} deliveries on {first.queue!r} (the "
                f"first: message {first.message.id}) were no longer held by this consumer: the "
                "lease ran out and the message went back to the queue"
            )

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
        while not self._closed.wait(self.options.lease_timeout / 3):
            with self._held_lock:
                ids = sorted(self._held)
            try:
                self._update_held(self._sql.renew, ids, lease_s=self.options.lease_timeout)
            except ConveyorError as exc:
                log.warning("could not renew %d leases on %s: %s", len(ids), self.url, exc)

    def _update_held(self, statement: Any, ids: list[int], **params: Any) -> None:
        """Run `statement` on the rows among `ids` that this transport still holds."""
        for chunk in _chunks(ids, _ROWS_PER_STATEMENT):
            self._execute(statement, kind=RELAXED, ids=chunk, who=self._owner, **params)

    # -- administration ----------------------------------------------------------------

    def size(self, queue: str) -> int:
        validate_queue_name(queue)
        ((count,),) = self._execute(self._sql.size, kind="read", q=queue)
        return int(count)

    def purge(self, queue: str) -> int:
        validate_queue_name(queue)
        return int(self._execute(self._sql.purge, q=queue))

    def counts(self, queue: str) -> QueueCounts:
        validate_queue_name(queue)
        ((ready, delayed, held, dead, age),) = self._execute(self._sql.counts, kind="read", q=queue)
        oldest = None if age is None else max(0.0, float(age))
        return QueueCounts(int(ready), int(delayed), int(held), int(dead), oldest)

    def purge_dead_letters(self, queue: str) -> int:
        validate_queue_name(queue)
        return int(self._execute(self._sql.purge_dead, q=queue))

    def delete(self, queue: str) -> None:
        validate_queue_name(queue)
        self._execute(self._sql.delete_queue, q=queue)

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        validate_queue_name(queue)
        rows = self._execute(self._sql.dead_letters, kind="read", q=queue, lim=limit)
        return [
            DeadLetter(envelope.unpack(body), queue, reason, dead_at, deliveries)
            for body, reason, dead_at, deliveries in rows
        ]

    def replay_dead_letters(self, queue: str, *, ids: Iterable[str] | None = None) -> int:
        validate_queue_name(queue)
        sql = self._sql
        if ids is None:
            count = int(self._execute(sql.replay_all, q=queue))
        else:
            # Message ids live inside the packed envelope, so pick the rows here.
            wanted = set(ids)
            dead = self._execute(sql.dead_bodies, kind="read", q=queue)
            rows = [row_id for row_id, body in dead if envelope.unpack(body).id in wanted]
            count = sum(
                int(self._execute(sql.replay_ids, q=queue, ids=chunk))
                for chunk in _chunks(rows, _ROWS_PER_STATEMENT)
            )
        self._signal.notify()
        return count

    # -- broadcast ---------------------------------------------------------------------

    def broadcast(self, channel: str, message: Message) -> None:
        data = self.check_publish(channel, (message,))[0]
        sql = self._sql

        def work(transaction: DriverTransaction) -> None:
            transaction.execute(self._compiled(sql.expire_broadcasts), {"keep_s": KEEP})
            transaction.execute(self._compiled(sql.broadcast), {"ch": channel, "data": data})

        self._run(work, kind="atomic", repeatable=False)
        self._broadcast_signal.notify()

    def subscribe(self, channel: str) -> Subscription:
        validate_queue_name(channel)
        read = functools.partial(self._execute, kind="read")
        return SQLSubscription(channel, self._sql, read, self._broadcast_signal)

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Return this transport's unacked deliveries to their queues, then disconnect."""
        if self._closed.is_set():
            return
        self._closed.set()
        _live.discard(self)
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=self.options.connect_timeout)
        if self._listener is not None:
            self._listener.stop()
        with self._held_lock:
            ids, self._held = sorted(self._held), set()
        try:
            self._update_held(self._sql.release, ids)
        except ConveyorError as exc:
            log.warning("could not return %d messages to %s: %s", len(ids), self.url, exc)
        finally:
            self._engines.dispose()


_live: weakref.WeakSet[SQLTransport] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for transport in list(_live):
        transport._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _insert_chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split a batch into INSERT statements of bounded row count and byte size."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        full = len(chunk) == _ROWS_PER_STATEMENT or size + len(row["data"]) > _BYTES_PER_STATEMENT
        if chunk and full:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += len(row["data"])
    if chunk:
        yield chunk
