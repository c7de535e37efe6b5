"""The ZooKeeper transport (kazoo): ``zookeeper://[user:password@]host:port[,host:port]/root``.

Each message is a persistent sequential entry node; its name carries its priority and due
time (see layout.py). A consumer takes an entry with one transaction that creates an
ephemeral lock node and rewrites the entry with a versioned set, so the entry's version
counts deliveries and identifies the take. Ack deletes entry and lock in one transaction
conditioned on that version: if the consumer's session ended (and with it the lock) or the
entry was taken again, the ack is refused with `LeaseLost`.

Leases follow the ZooKeeper session: `lease_timeout` is the session timeout (the server
clamps it to [minSessionTimeout, maxSessionTimeout], by default 2 x and 20 x tickTime).
A consumer that dies loses its session; its locks vanish, watches wake the other consumers,
and the next take raises the count. Consumers learn of new entries and freed locks through
children watches, never by polling.

Costs and limits: a take rewrites the entry's data (up to MAX_MESSAGE_SIZE); a consumer
re-lists the whole queue when it changed, so fetch costs grow with queue depth (fine for
tens of thousands of waiting messages, not millions); due times are wall-clock, so hosts
need synchronised clocks; ZooKeeper's per-folder sequence counter is a signed 32-bit
number that advances twice per message, so one queue takes about a billion messages
before it must be deleted and recreated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kazoo.client import TransactionRequest
from kazoo.exceptions import NoNodeError, SessionExpiredError

from conveyor.core import envelope
from conveyor.core.errors import ConnectionLost, LeaseLost
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
from conveyor.transports.zookeeper.batch import OUTCOME_UNKNOWN, commit_each, committed
from conveyor.transports.zookeeper.broadcast import ZooKeeperSubscription, send_broadcast
from conveyor.transports.zookeeper.layout import (
    DEAD_PREFIX,
    EntryName,
    QueuePaths,
    pack_dead,
    sequence_of,
    unpack_dead,
)
from conveyor.transports.zookeeper.session import ZooKeeperSession, translate, translating
from conveyor.transports.zookeeper.view import QueueView, ensure_queue, now_ms, ready

# ZooKeeper refuses requests over jute.maxbuffer (1 MiB by default) by dropping the
# connection; this leaves room for paths, ACLs and the dead-letter header.
MAX_MESSAGE_SIZE = 1_000_000


@dataclass(frozen=True)
class _Tag:
    """What a consumer needs to settle its take: the entry, its version, the session."""

    paths: QueuePaths
    entry: EntryName
    version: int
    session: int
    data: bytes

    @property
    def count(self) -> int:
        return self.entry.base + self.version


_Build = Callable[[TransactionRequest, _Tag], None]


def _tag_size(tag: _Tag) -> int:
    return len(tag.data)


def _data_size(item: tuple[str, bytes]) -> int:
    return len(item[1])


def _create_ops(paths: QueuePaths) -> Callable[[TransactionRequest, tuple[str, bytes]], None]:
    def build(tx: TransactionRequest, item: tuple[str, bytes]) -> None:
        tx.create(paths.entry(item[0]), item[1], sequence=True)

    return build


def _take_ops(tx: TransactionRequest, tag: _Tag) -> None:
    """Lock the entry (fails if held) and bump its version (fails if taken since we read it)."""
    tx.create(tag.paths.lock(tag.entry.name), ephemeral=True)
    tx.set_data(tag.paths.entry(tag.entry.name), tag.data, version=tag.version)


def _ack_ops(tx: TransactionRequest, tag: _Tag) -> None:
    """Delete the entry, at the version our take gave it, and our lock, together."""
    tx.delete(tag.paths.entry(tag.entry.name), version=tag.version)
    tx.delete(tag.paths.lock(tag.entry.name))


def _dead_letter_ops(reason: str) -> _Build:
    """Remove the entry (at the tag's version) and its lock; add a dead letter with `reason`."""

    def build(tx: TransactionRequest, tag: _Tag) -> None:
        _ack_ops(tx, tag)
        dead = pack_dead(tag.data, reason, time.time(), tag.count)
        tx.create(f"{tag.paths.dead}/{DEAD_PREFIX}", dead, sequence=True)

    return build


def _exhausted_ops(tx: TransactionRequest, tag: _Tag) -> None:
    """Dead-letter an entry delivered max_deliveries times whose holder died.

    Taking the lock first keeps an entry someone holds from being dead-lettered under them.
    """
    tx.create(tag.paths.lock(tag.entry.name), ephemeral=True)
    _dead_letter_ops(MAX_DELIVERIES_REASON)(tx, tag)


def _lease_lost(deliveries: Sequence[Delivery]) -> LeaseLost:
    ids = ", ".join(d.message.id for d in deliveries)
    return LeaseLost(
        f"message(s) {ids} on {deliveries[0].queue!r} no longer held by this consumer: its "
        "ZooKeeper session ended or the message was taken again"
    )


class ZooKeeperTransport(Transport):
    """Queues as ZooKeeper nodes; leases are ZooKeeper sessions."""

    capabilities = Capabilities(
        max_message_size=MAX_MESSAGE_SIZE,
        priorities=True,
        broadcast=True,
        authenticates=False,
        connection_cut=True,
    )

    def __init__(self, url: URL, options: TransportOptions) -> None:
        super().__init__(url, options)
        if url.username is not None:
            # With user:password in the URL, nodes carry digest ACLs and the server checks
            # them. Without credentials there is nothing to check: ZooKeeper accepts any
            # digest identity at connect time, and nodes with an open ACL accept everyone.
            self.capabilities = replace(self.capabilities, authenticates=True)
        self._session = ZooKeeperSession(url, options)
        self._views: dict[str, QueueView] = {}
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self._session.on_state_change(self._on_state_change)

    def _paths(self, queue: str) -> QueuePaths:
        return QueuePaths.of(self._session.root, validate_queue_name(queue))

    def _ensure(self, queue: str, paths: QueuePaths) -> None:
        if queue not in self._known:
            ensure_queue(self._session, paths)
            self._known.add(queue)

    def _on_state_change(self) -> None:
        """After a disconnect or a new session, every cached listing may be out of date."""
        for view in list(self._views.values()):
            view.signal.mark()

    # -- producing -----------------------------------------------------------------------

    def publish_many(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        packed = self.check_publish(queue, messages)
        paths = self._paths(queue)
        due = now_ms() + int(max(delay, 0.0) * 1000)
        items = [
            (EntryName.prefix(m.priority, due, 0), data)
            for m, data in zip(messages, packed, strict=True)
        ]
        what = f"publish to {queue!r}"
        with translating(what):
            for _attempt in (1, 2):
                if not items:
                    return
                self._ensure(queue, paths)
                outcome = commit_each(self._session, items, _create_ops(paths), _data_size)
                if None in outcome:
                    raise ConnectionLost(f"{what}: the connection dropped; outcome unknown")
                # Lost only if the queue was deleted meanwhile: recreate it, send the rest.
                items = [item for item, won in zip(items, outcome, strict=True) if not won]
                if items:
                    self._known.discard(queue)
            raise translate(NoNodeError(), what)

    # -- consuming -----------------------------------------------------------------------

    def _view(self, queue: str, paths: QueuePaths) -> QueueView:
        with self._lock:
            view = self._views.get(queue)
            if view is None:
                view = self._views[queue] = QueueView(self._session, paths)
            return view

    def fetch(self, queue: str, *, max_messages: int = 1, timeout: float = 1.0) -> list[Delivery]:
        paths = self._paths(queue)
        if max_messages < 1:
            return []
        view = self._view(queue, paths)
        deadline = time.monotonic() + timeout
        with translating(f"fetch from {queue!r}"):
            while True:
                candidates = view.candidates(max_messages)
                if candidates:
                    taken = self._take(queue, view, view.choose(candidates, max_messages))
                    if taken:
                        return taken
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                due = view.next_due()
                view.signal.wait(remaining if due is None else min(remaining, due))

    def _take(self, queue: str, view: QueueView, chosen: list[EntryName]) -> list[Delivery]:
        """Try to take each chosen entry; return the deliveries of those that were won."""
        paths = view.paths
        view.note_tried(chosen)
        session = self._session
        client = session.client
        session_id = session.session_id()
        reads = [(entry, client.get_async(paths.entry(entry.name))) for entry in chosen]
        takes: list[_Tag] = []
        exhausted: list[_Tag] = []
        for entry, read in reads:
            try:
                data, stat = session.wait(read)
            except NoNodeError:
                continue
            tag = _Tag(paths, entry, stat.version, session_id or 0, data)
            over = tag.count >= self.options.max_deliveries
            (exhausted if over else takes).append(tag)
        if exhausted:  # won or lost: nothing to deliver
            commit_each(session, exhausted, _exhausted_ops, _tag_size)
        deliveries = []
        outcome = commit_each(session, takes, _take_ops, _tag_size)
        if len(takes) < len(chosen) or False in outcome:
            view.note_contention()
        for tag, won in zip(takes, outcome, strict=True):
            if won is None:  # the reply was lost: if it committed, our session holds the lock
                won = self._lock_owner(tag) == session.await_session()
            owner = session_id
            if won and session.session_id() != session_id:  # the session changed meanwhile
                owner = self._lock_owner(tag)
            if won and owner is not None:
                tag = replace(tag, version=tag.version + 1, session=owner)
                deliveries.append(Delivery(self, queue, envelope.unpack(tag.data), tag.count, tag))
        return deliveries

    def _lock_owner(self, tag: _Tag) -> int | None:
        """The session holding the entry's lock, if anyone does."""
        session = self._session
        stat = session.wait(session.client.exists_async(tag.paths.lock(tag.entry.name)))
        return None if stat is None else int(stat.ephemeralOwner)

    # -- settling ------------------------------------------------------------------------

    def _settle(self, delivery: Delivery, build: _Build, *, replied: bool = True) -> None:
        """Commit the settling transaction `build` makes, iff this consumer still holds it.

        A reply lost to a dropped connection is retried once in the same session: while the
        session lives, our lock keeps everyone else off the entry, so a retry that fails
        means the first attempt committed. `replied=False` says a first attempt was made
        elsewhere (a batch) and its reply was lost.
        """
        tag: _Tag = delivery.tag
        session = self._session
        with translating(f"settle message {delivery.message.id} on {delivery.queue!r}"):
            for attempt in (1, 2) if replied else (2,):
                if session.await_session() != tag.session:
                    raise _lease_lost([delivery])
                tx = session.client.transaction()
                build(tx, tag)
                try:
                    results = session.wait(tx.commit_async())
                except SessionExpiredError:
                    raise _lease_lost([delivery]) from None
                except OUTCOME_UNKNOWN:
                    continue
                if committed(results) or attempt == 2:
                    return
                raise _lease_lost([delivery])
            raise _lease_lost([delivery])

    def ack(self, delivery: Delivery) -> None:
        self._settle(delivery, _ack_ops)

    def ack_batch(self, deliveries: list[Delivery]) -> None:
        """Pipelined transactions: one round trip for the batch."""
        session = self._session
        with translating(f"ack {len(deliveries)} messages"):
            current = session.await_session()
            lost = [d for d in deliveries if d.tag.session != current]
            held = [d for d in deliveries if d.tag.session == current]
            outcome = commit_each(session, [d.tag for d in held], _ack_ops)
        for delivery, won in zip(held, outcome, strict=True):
            if won is None:  # the reply was lost: find out, one by one
                try:
                    self._settle(delivery, _ack_ops, replied=False)
                except LeaseLost:
                    lost.append(delivery)
            elif not won:
                lost.append(delivery)
        if lost:
            raise _lease_lost(lost)

    def nack(self, delivery: Delivery, *, requeue: bool, delay: float, reason: str) -> None:
        def build(tx: TransactionRequest, tag: _Tag) -> None:
            entry, paths = tag.entry, tag.paths
            if not requeue or tag.count >= self.options.max_deliveries:
                _dead_letter_ops(reason if not requeue else MAX_DELIVERIES_REASON)(tx, tag)
            elif delay > 0:
                _ack_ops(tx, tag)
                name = EntryName.prefix(entry.priority, now_ms() + int(delay * 1000), tag.count)
                tx.create(paths.entry(name), tag.data, sequence=True)
            else:
                tx.check(paths.entry(entry.name), version=tag.version)
                tx.delete(paths.lock(entry.name))

        self._settle(delivery, build)

    # -- administration ------------------------------------------------------------------

    def _ready(self, paths: QueuePaths) -> list[EntryName]:
        """The queue's ready entries (due, unlocked) in delivery order, listed afresh."""
        session = self._session
        entries = session.client.get_children_async(paths.entries)
        locks = session.client.get_children_async(paths.locks)
        try:
            names, locked = session.wait(entries), frozenset(session.wait(locks))
        except NoNodeError:
            return []
        parsed = (EntryName.parse(name) for name in names)
        return ready(sorted(entry for entry in parsed if entry is not None), locked)

    def size(self, queue: str) -> int:
        paths = self._paths(queue)
        with translating(f"size of {queue!r}"):
            return len(self._ready(paths))

    def counts(self, queue: str) -> QueueCounts:
        """One listing each of the entries, the locks and the dead letters: a locked entry
        is held, an unlocked one is ready once due, delayed before."""
        paths = self._paths(queue)
        client = self._session.client
        with translating(f"counts of {queue!r}"):
            listings = [
                client.get_children_async(path) for path in (paths.entries, paths.locks, paths.dead)
            ]
            names, locks, dead = (self._children(listing) for listing in listings)
        now, locked = now_ms(), frozenset(locks)
        entries = [e for e in map(EntryName.parse, names) if e is not None]
        held = sum(1 for e in entries if e.name in locked)
        due = [e.due_ms for e in entries if e.name not in locked and e.due_ms <= now]
        delayed = len(entries) - held - len(due)
        oldest = (now - min(due)) / 1000.0 if due else None
        return QueueCounts(len(due), delayed, held, len(dead), oldest)

    def _children(self, listing: Any) -> list[str]:
        try:
            found: list[str] = self._session.wait(listing)
        except NoNodeError:
            return []
        return found

    def purge(self, queue: str) -> int:
        paths = self._paths(queue)
        with translating(f"purge {queue!r}"):
            entries = self._ready(paths)

            def build(tx: TransactionRequest, entry: EntryName) -> None:
                tx.create(paths.lock(entry.name), ephemeral=True)  # fails if held
                tx.delete(paths.entry(entry.name))
                tx.delete(paths.lock(entry.name))

            return sum(bool(won) for won in commit_each(self._session, entries, build))

    def delete(self, queue: str) -> None:
        paths = self._paths(queue)
        with translating(f"delete {queue!r}"):
            self._known.discard(queue)
            self._session.delete_tree(paths.root)

    def _dead_nodes(
        self, paths: QueuePaths, limit: int | None = None
    ) -> list[tuple[str, bytes, int]]:
        """The queue's oldest `limit` (default all) dead letters: (name, data, version)."""
        client = self._session.client
        try:
            names = self._session.wait(client.get_children_async(paths.dead))
        except NoNodeError:
            return []
        names = sorted((n for n in names if n.startswith(DEAD_PREFIX)), key=sequence_of)[:limit]
        reads = [(name, client.get_async(f"{paths.dead}/{name}")) for name in names]
        found = []
        for name, read in reads:
            try:
                data, stat = self._session.wait(read)
            except NoNodeError:
                continue
            found.append((name, data, stat.version))
        return found

    def purge_dead_letters(self, queue: str) -> int:
        """Delete the dead letters one by one (each delete its own reply); a letter another
        purge or replay removed first is not counted."""
        paths = self._paths(queue)
        client = self._session.client
        with translating(f"purge dead letters of {queue!r}"):
            try:
                names = self._session.wait(client.get_children_async(paths.dead))
            except NoNodeError:
                return 0
            deletes = [client.delete_async(f"{paths.dead}/{n}") for n in names]
            removed = 0
            for pending in deletes:
                try:
                    self._session.wait(pending)
                    removed += 1
                except NoNodeError:
                    continue
            return removed

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        paths = self._paths(queue)
        with translating(f"list dead letters of {queue!r}"):
            nodes = self._dead_nodes(paths, limit)
        letters = []
        for _, data, _ in nodes:
            packed, reason, dead_at, count = unpack_dead(data)
            letters.append(DeadLetter(envelope.unpack(packed), queue, reason, dead_at, count))
        return letters

    def replay_dead_letters(self, queue: str, *, ids: Iterable[str] | None = None) -> int:
        paths = self._paths(queue)
        wanted = None if ids is None else set(ids)
        with translating(f"replay dead letters of {queue!r}"):
            self._ensure(queue, paths)
            chosen = []
            for name, data, version in self._dead_nodes(paths):
                packed = unpack_dead(data)[0]
                message = envelope.unpack(packed)
                if wanted is None or message.id in wanted:
                    chosen.append((name, version, message.priority, packed))

            def build(tx: TransactionRequest, item: tuple[str, int, int, bytes]) -> None:
                name, version, priority, packed = item
                tx.delete(f"{paths.dead}/{name}", version=version)
                tx.create(
                    paths.entry(EntryName.prefix(priority, now_ms(), 0)), packed, sequence=True
                )

            outcome = commit_each(self._session, chosen, build, lambda item: len(item[3]))
            return sum(bool(won) for won in outcome)

    # -- broadcast -----------------------------------------------------------------------

    def broadcast(self, channel: str, message: Message) -> None:
        data = self.check_publish(channel, (message,))[0]
        with translating(f"broadcast on {channel!r}"):
            send_broadcast(self._session, channel, data)

    def subscribe(self, channel: str) -> Subscription:
        validate_queue_name(channel)
        with translating(f"subscribe to {channel!r}"):
            return ZooKeeperSubscription(self._session, channel)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """End the session: held messages come back at once, with their counts raised."""
        self._session.close()
