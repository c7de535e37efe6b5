"""The ZooKeeper transport (kazoo): ``zookeeper://[user:password@]host:port[,host:port]/root``.

Each message is a persistent sequential entry node; its name carries its priority and due
time (see zookeeper_layout). A consumer takes an entry with one transaction that creates an
ephemeral lock node and rewrites the entry with a versioned set, so the entry's version
counts deliveries and identifies the take. Ack deletes entry and lock in one transaction
conditioned on that version: if the consumer's session ended (and with it the lock) or the
entry was taken again, the ack is refused with `LeaseLost`.

Leases follow the ZooKeeper session: `lease_timeout` is the session timeout (the server
clamps it to [minSessionTimeout, maxSessionTimeout], by default 2 x and 20 x tickTime).
A consumer that dies loses its session; its locks vanish, watches wake the other consumers,
and the next take raises the count. Consumers learn of new entries and freed locks through
children watches, never by polling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kazoo.client import TransactionRequest
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError

from conveyor.core import envelope
from conveyor.core.errors import LeaseLost
from conveyor.core.message import DeadLetter, Delivery, Message
from conveyor.core.names import validate_queue_name
from conveyor.core.url import URL
from conveyor.transports.base import (
    MAX_DELIVERIES_REASON,
    Capabilities,
    Subscription,
    Transport,
    TransportOptions,
)
from conveyor.transports.zookeeper_broadcast import ZooKeeperSubscription, send_broadcast
from conveyor.transports.zookeeper_layout import (
    DEAD_PREFIX,
    EntryName,
    QueuePaths,
    pack_dead,
    sequence_of,
    unpack_dead,
)
from conveyor.transports.zookeeper_session import ZooKeeperSession, translate, translating
from conveyor.transports.zookeeper_view import QueueView, ensure_queue, now_ms

# ZooKeeper refuses requests over jute.maxbuffer (1 MiB by default) by dropping the
# connection; this leaves room for paths, ACLs and the dead-letter header.
MAX_MESSAGE_SIZE = 1_000_000
_BATCH_BYTES = 900_000
_OP_OVERHEAD = 256
# A transaction that lost a race: the failing op's error, RolledBack for the ops before it,
# RuntimeInconsistency for the ops after it.
_CONTENTION = (
    NodeExistsError,
    NoNodeError,
    BadVersionError,
    RolledBackError,
    RuntimeInconsistency,
)
_OUTCOME_UNKNOWN = (ConnectionLoss, OperationTimeoutError, KazooTimeoutError)


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


def _committed(results: list[Any]) -> bool:
    """True if a transaction committed; False if it lost a race; raises anything else."""
    failures = [r for r in results if isinstance(r, Exception)]
    for failure in failures:
        if not isinstance(failure, _CONTENTION):
            raise failure
    return not failures


def _batches(packed: Sequence[bytes]) -> list[list[bytes]]:
    """Split `packed` into transactions that each stay well under jute.maxbuffer."""
    batches: list[list[bytes]] = [[]]
    size = 0
    for data in packed:
        cost = len(data) + _OP_OVERHEAD
        if batches[-1] and size + cost > _BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(data)
        size += cost
    return batches


class ZooKeeperTransport(Transport):
    """Queues as ZooKeeper nodes; leases are ZooKeeper sessions."""

    capabilities = Capabilities(
        max_message_size=MAX_MESSAGE_SIZE,
        priorities=True,
        broadcast=True,
        authenticates=False,
        connection_cut=True,
    )

    def __new__(cls, url: URL, options: TransportOptions) -> ZooKeeperTransport:
        """A URL with credentials gives the variant that declares `authenticates`."""
        if cls is ZooKeeperTransport and url.username is not None:
            cls = AuthenticatedZooKeeperTransport
        return super().__new__(cls)

    def __init__(self, url: URL, options: TransportOptions) -> None:
        super().__init__(url, options)
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
        if not messages:
            return
        due = now_ms() + int(delay * 1000) if delay > 0 else 0
        names = [EntryName.prefix(m.priority, due, 0) for m in messages]
        items = list(zip(names, packed, strict=True))
        with translating(f"publish to {queue!r}"):
            self._ensure(queue, paths)
            failed = self._create_entries(paths, items)
            if failed:  # the queue was deleted meanwhile: recreate it, send the rest again
                self._known.discard(queue)
                self._ensure(queue, paths)
                if self._create_entries(paths, failed):
                    raise translate(NoNodeError(), f"publish to {queue!r}")

    def _create_entries(
        self, paths: QueuePaths, items: list[tuple[str, bytes]]
    ) -> list[tuple[str, bytes]]:
        """Create the entries in pipelined transactions; return the items of failed ones."""
        client = self._session.client
        sent = []
        start = 0
        for batch in _batches([data for _, data in items]):
            chunk = items[start : start + len(batch)]
            start += len(batch)
            tx = client.transaction()
            for name, data in chunk:
                tx.create(paths.entry(name), data, sequence=True)
            sent.append((chunk, tx.commit_async()))
        failed: list[tuple[str, bytes]] = []
        for chunk, result in sent:
            if not _committed(self._session.wait(result)):
                failed += chunk
        return failed

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
                candidates = view.candidates()
                if candidates:
                    taken = self._take(queue, paths, candidates[:max_messages])
                    if taken:
                        return taken
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                due = view.next_due()
                view.signal.wait(remaining if due is None else min(remaining, due))

    def _take(self, queue: str, paths: QueuePaths, chosen: list[EntryName]) -> list[Delivery]:
        """Try to take each chosen entry; return the deliveries of those that were won."""
        session = self._session
        client = session.client
        session_id = session.session_id()
        reads = [(entry, client.get_async(paths.entry(entry.name))) for entry in chosen]
        attempts = []
        for entry, read in reads:
            try:
                data, stat = session.wait(read)
            except NoNodeError:
                continue
            tx = client.transaction()
            tx.create(paths.lock(entry.name), ephemeral=True)
            if entry.base + stat.version >= self.options.max_deliveries:
                self._dead_letter(tx, paths, entry, stat.version, data, MAX_DELIVERIES_REASON)
                _committed(session.wait(tx.commit_async()))  # won or lost: nothing to deliver
                continue
            tx.set_data(paths.entry(entry.name), data, version=stat.version)
            attempts.append((entry, data, stat.version + 1, tx.commit_async()))
        deliveries = []
        for entry, data, version, result in attempts:
            try:
                won = _committed(session.wait(result))
            except _OUTCOME_UNKNOWN:  # did it commit? then our session holds the lock
                won = self._lock_owner(paths, entry) == session.await_session()
            if not won:
                continue
            owner = session_id
            if session.session_id() != session_id:  # the session changed under the take
                owner = self._lock_owner(paths, entry)
            if owner is not None:
                tag = _Tag(paths, entry, version, owner, data)
                deliveries.append(Delivery(self, queue, envelope.unpack(data), tag.count, tag))
        return deliveries

    def _lock_owner(self, paths: QueuePaths, entry: EntryName) -> int | None:
        """The session holding the entry's lock, if anyone does."""
        session = self._session
        stat = session.wait(session.client.exists_async(paths.lock(entry.name)))
        return None if stat is None else int(stat.ephemeralOwner)

    @staticmethod
    def _dead_letter(
        tx: TransactionRequest,
        paths: QueuePaths,
        entry: EntryName,
        version: int,
        data: bytes,
        reason: str,
    ) -> None:
        """Add to `tx`: remove the entry (at `version`) and its lock, add a dead letter."""
        tx.delete(paths.entry(entry.name), version=version)
        tx.delete(paths.lock(entry.name))
        dead = pack_dead(data, reason, time.time(), entry.base + version)
        tx.create(f"{paths.dead}/{DEAD_PREFIX}", dead, sequence=True)

    # -- settling ------------------------------------------------------------------------

    def _settle(
        self, delivery: Delivery, build: Callable[[TransactionRequest, _Tag], None]
    ) -> None:
        """Commit the settling transaction `build` makes, iff this consumer still holds it.

        A reply lost to a dropped connection is retried once in the same session: while the
        session lives, our lock keeps everyone else off the entry, so a retry that fails
        means the first attempt committed.
        """
        tag: _Tag = delivery.tag
        what = f"settle message {delivery.message.id} on {delivery.queue!r}"
        lost = LeaseLost(
            f"message {delivery.message.id} on {delivery.queue!r} is no longer held by this "
            "consumer: its ZooKeeper session ended, and the message may have gone to another"
        )
        session = self._session
        with translating(what):
            for attempt in (1, 2):
                if session.await_session() != tag.session:
                    raise lost
                tx = session.client.transaction()
                build(tx, tag)
                try:
                    results = session.wait(tx.commit_async())
                except SessionExpiredError:
                    raise lost from None
                except (*_OUTCOME_UNKNOWN, ConnectionClosedError):
                    continue
                if _committed(results) or attempt == 2:
                    return
                raise lost
            raise lost

    def ack(self, delivery: Delivery) -> None:
        def build(tx: TransactionRequest, tag: _Tag) -> None:
            tx.delete(tag.paths.entry(tag.entry.name), version=tag.version)
            tx.delete(tag.paths.lock(tag.entry.name))

        self._settle(delivery, build)

    def nack(self, delivery: Delivery, *, requeue: bool, delay: float, reason: str) -> None:
        def build(tx: TransactionRequest, tag: _Tag) -> None:
            entry, paths = tag.entry, tag.paths
            if not requeue or tag.count >= self.options.max_deliveries:
                why = reason if not requeue else MAX_DELIVERIES_REASON
                self._dead_letter(tx, paths, entry, tag.version, tag.data, why)
            elif delay > 0:
                tx.delete(paths.entry(entry.name), version=tag.version)
                tx.delete(paths.lock(entry.name))
                name = EntryName.prefix(entry.priority, now_ms() + int(delay * 1000), tag.count)
                tx.create(paths.entry(name), tag.data, sequence=True)
            else:
                tx.check(paths.entry(entry.name), version=tag.version)
                tx.delete(paths.lock(entry.name))

        self._settle(delivery, build)

    # -- administration ------------------------------------------------------------------

    def _listing(self, paths: QueuePaths) -> tuple[list[EntryName], set[str]]:
        """The queue's ready entries (due, unlocked) in order, and its locked names."""
        session = self._session
        entries = session.client.get_children_async(paths.entries)
        locks = session.client.get_children_async(paths.locks)
        try:
            names, locked = session.wait(entries), set(session.wait(locks))
        except NoNodeError:
            return [], set()
        now = now_ms()
        parsed = (EntryName.parse(name) for name in names)
        ready = [e for e in parsed if e is not None and e.due_ms <= now and e.name not in locked]
        return sorted(ready), locked

    def size(self, queue: str) -> int:
        paths = self._paths(queue)
        with translating(f"size of {queue!r}"):
            return len(self._listing(paths)[0])

    def purge(self, queue: str) -> int:
        paths = self._paths(queue)
        with translating(f"purge {queue!r}"):
            ready, _ = self._listing(paths)
            client = self._session.client
            pending = []
            for entry in ready:  # lock, delete, unlock: never removes a held entry
                tx = client.transaction()
                tx.create(paths.lock(entry.name), ephemeral=True)
                tx.delete(paths.entry(entry.name))
                tx.delete(paths.lock(entry.name))
                pending.append(tx.commit_async())
            return sum(_committed(self._session.wait(result)) for result in pending)

    def delete(self, queue: str) -> None:
        paths = self._paths(queue)
        with translating(f"delete {queue!r}"):
            self._known.discard(queue)
            self._session.delete_tree(paths.root)

    def _dead_nodes(self, paths: QueuePaths) -> list[tuple[str, bytes, int]]:
        """Every dead letter of the queue, oldest first: (name, data, version)."""
        client = self._session.client
        try:
            names = self._session.wait(client.get_children_async(paths.dead))
        except NoNodeError:
            return []
        names = sorted((n for n in names if n.startswith(DEAD_PREFIX)), key=sequence_of)
        reads = [(name, client.get_async(f"{paths.dead}/{name}")) for name in names]
        found = []
        for name, read in reads:
            try:
                data, stat = self._session.wait(read)
            except NoNodeError:
                continue
            found.append((name, data, stat.version))
        return found

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        paths = self._paths(queue)
        with translating(f"list dead letters of {queue!r}"):
            nodes = self._dead_nodes(paths)[:limit]
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
            client = self._session.client
            pending = []
            for name, data, version in self._dead_nodes(paths):
                packed = unpack_dead(data)[0]
                message = envelope.unpack(packed)
                if wanted is not None and message.id not in wanted:
                    continue
                tx = client.transaction()
                tx.delete(f"{paths.dead}/{name}", version=version)
                tx.create(
                    paths.entry(EntryName.prefix(message.priority, 0, 0)), packed, sequence=True
                )
                pending.append(tx.commit_async())
            return sum(_committed(self._session.wait(result)) for result in pending)

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


class AuthenticatedZooKeeperTransport(ZooKeeperTransport):
    """With user:password in the URL: nodes carry digest ACLs and the server checks them.

    Without credentials there is nothing to check: ZooKeeper accepts any digest identity at
    connect time, and nodes with an open ACL accept everyone.
    """

    capabilities = replace(ZooKeeperTransport.capabilities, authenticates=True)
