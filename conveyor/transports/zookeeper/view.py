"""A consumer's watched view of one queue: which entries exist and which are locked.

Children watches (one-shot, re-armed on each listing) mark the view stale and wake waiting
fetchers; the listing itself is only re-read when a fetch needs it, so a busy consumer does
not re-list a long queue on every change. An idle fetch sleeps on a condition until a watch
fires, the earliest delayed entry falls due, or its timeout passes: no polling.
"""

from __future__ import annotations

import random
import threading
import time
from itertools import islice

from kazoo.exceptions import NoNodeError

from conveyor.transports.zookeeper.layout import EntryName, QueuePaths
from conveyor.transports.zookeeper.session import ZooKeeperSession

# After consumers collide on the head of a queue, each takes from one of the first SPREAD
# windows (its lane, picked at random at each collision) for CONTENTION_MEMORY seconds, so
# consumers in different lanes stop reading entries the others take; a lone consumer keeps
# strict order.
SPREAD = 8
CONTENTION_MEMORY = 1.0
# A busy consumer keeps taking from a listing this young before it re-lists the queue.
FRESHNESS = 0.25


def now_ms() -> int:
    """Due times are wall-clock milliseconds: producers and consumers may be different hosts."""
    return int(time.time() * 1000)


class ChangeSignal:
    """A stale flag set by one-shot watches, with a condition that sleepers wait on."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._stale = True

    def mark(self, _event: object = None) -> None:
        """Watch callback (kazoo's thread): something changed; wake the waiters."""
        with self._changed:
            self._stale = True
            self._changed.notify_all()

    @property
    def stale(self) -> bool:
        return self._stale

    def clear(self) -> None:
        """Call before re-listing: a change during the listing marks it stale again."""
        with self._changed:
            self._stale = False

    def wait(self, timeout: float) -> None:
        """Sleep until a watch fires or `timeout` passes."""
        with self._changed:
            if not self._stale and timeout > 0:
                self._changed.wait(timeout)


class QueueView:
    def __init__(self, session: ZooKeeperSession, paths: QueuePaths) -> None:
        self._session = session
        self.paths = paths
        self.signal = ChangeSignal()
        self._entries: list[EntryName] = []
        self._locked: frozenset[str] = frozenset()
        self._tried: set[str] = set()
        self._listed_at = 0.0
        self._contended_until = 0.0
        self._lane = 0

    def _refresh(self) -> None:
        self.signal.clear()
        client = self._session.client
        entries = client.get_children_async(self.paths.entries, watch=self.signal.mark)
        locks = client.get_children_async(self.paths.locks, watch=self.signal.mark)
        try:
            names = self._session.wait(entries)
            locked = self._session.wait(locks)
        except NoNodeError:  # a new or deleted queue: create it and list again
            self.signal.mark()
            ensure_queue(self._session, self.paths)
            return
        known = {entry.name: entry for entry in self._entries}  # parse only the new names
        parsed = (known.get(name) or EntryName.parse(name) for name in names)
        self._entries = sorted(entry for entry in parsed if entry is not None)
        self._locked = frozenset(locked)
        self._tried = set()
        self._listed_at = time.monotonic()

    def candidates(self, count: int) -> list[EntryName]:
        """The first due, unlocked, untried entries in delivery order (priority, then
        publish order): enough to `choose` `count` of them.

        A changed queue is re-listed, unless a young listing still offers untried entries:
        a consumer draining a long queue does not re-list it for every batch it takes.
        """
        limit = count * SPREAD
        found = ready(self._entries, self._locked, self._tried, limit)
        young = time.monotonic() - self._listed_at < FRESHNESS
        if self.signal.stale and not (found and young):
            self._refresh()
            found = ready(self._entries, self._locked, self._tried, limit)
        return found

    def note_tried(self, entries: list[EntryName]) -> None:
        """These were taken or lost to others: skip them until the next listing."""
        self._tried.update(entry.name for entry in entries)

    def note_contention(self) -> None:
        """Another consumer won a race for an entry this one chose: move to a random lane."""
        self._contended_until = time.monotonic() + CONTENTION_MEMORY
        self._lane = random.randrange(SPREAD)

    def choose(self, candidates: list[EntryName], count: int) -> list[EntryName]:
        """The entries to try: the first `count`, or this consumer's lane of them (the
        lane-th window of `count`) while contended."""
        if len(candidates) <= count or time.monotonic() >= self._contended_until:
            return candidates[:count]
        start = count * (self._lane % (len(candidates) // count))
        return candidates[start : start + count]

    def next_due(self) -> float | None:
        """Seconds until the earliest not-yet-due unlocked entry falls due, if any."""
        now = now_ms()
        pending = [e.due_ms for e in self._entries if e.due_ms > now and e.name not in self._locked]
        return (min(pending) - now) / 1000 if pending else None


def ready(
    entries: list[EntryName],
    locked: frozenset[str],
    skip: set[str] | None = None,
    limit: int | None = None,
) -> list[EntryName]:
    """The due entries of a sorted listing that are neither locked nor skipped, in order;
    the first `limit` of them (a fetch from a long queue stops looking once it has enough)."""
    now = now_ms()
    skip = skip or set()
    found = (
        entry
        for entry in entries
        if entry.due_ms <= now and entry.name not in locked and entry.name not in skip
    )
    return list(islice(found, limit))


def ensure_queue(session: ZooKeeperSession, paths: QueuePaths) -> None:
    """Create the queue's entry, lock and dead-letter folders (idempotent)."""
    client = session.client
    pending = [client.ensure_path_async(p) for p in (paths.entries, paths.locks, paths.dead)]
    for result in pending:
        session.wait(result)
