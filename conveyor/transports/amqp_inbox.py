"""The consumer side's shared state: what the broker pushed, and the credit it may push.

The consumer loop thread pushes deliveries in; `fetch` callers on any thread take them out.

Flow control is a window per queue, not a fixed prefetch. Each consumer on a queue has a
prefetch limit (basic.qos per consumer; quorum queues refuse channel-wide qos), and the
queue's window is the sum of its consumers' limits. When a fetch needs more room than
``held + buffered + max_messages``, another consumer is added with just the missing credit.
So the broker sends no more than callers asked for: a consumer holding its limit receives
nothing more until it settles, and messages nobody asked for stay ready in the broker,
where `size` counts them and other consumers can take them. The window only grows (no
cancel, whose in-flight deliveries would bounce back flagged as redelivered), so a steady
consumer pays no round trip; past a few consumers it grows by doubling.

Everything is tied to an epoch: when the consumer channel goes away, its buffered
deliveries are forgotten (the broker requeues them) and its tags become invalid.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import NamedTuple

import pika.channel
from pika.spec import BasicProperties

MAX_LIMIT = 65535  # basic.qos prefetch_count is a short
MAX_CONSUMERS = 8  # per queue, before the window grows by doubling


class Raw(NamedTuple):
    """One message as the broker delivered it (or basic.get returned it)."""

    channel: pika.channel.Channel
    delivery_tag: int
    redelivered: bool
    properties: BasicProperties
    body: bytes
    epoch: int = 0
    queue: str = ""


class Inbox:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.epoch = 0
        self._ready: defaultdict[str, deque[Raw]] = defaultdict(deque)
        self._consumers: defaultdict[str, set[str]] = defaultdict(set)  # queue -> tags
        self._window: defaultdict[str, int] = defaultdict(int)  # sum of consumer limits
        self._held: defaultdict[str, int] = defaultdict(int)  # handed out, not settled

    # -- loop thread ---------------------------------------------------------------

    def push(self, consumer_tag: str, raw: Raw) -> bool:
        """Buffer `raw` (made with this epoch); False when its consumer is no longer current."""
        queue = raw.queue
        with self.cond:
            if consumer_tag not in self._consumers.get(queue, ()) or raw.epoch != self.epoch:
                return False
            ready = self._ready[queue]
            ready.append(raw)
            if len(ready) == 1:  # takers only wait on an empty buffer
                self.cond.notify_all()
            return True

    def reset(self) -> None:
        """The channel is gone: what it delivered comes back from the broker by itself."""
        with self.cond:
            self.epoch += 1
            for state in (self._ready, self._consumers, self._window, self._held):
                state.clear()
            self.cond.notify_all()

    def cancelled(self, consumer_tag: str) -> list[Raw]:
        """The broker cancelled a consumer (its queue was deleted); return its buffer."""
        with self.cond:
            queue = next((q for q, tags in self._consumers.items() if consumer_tag in tags), None)
            return [] if queue is None else self.forget(queue)

    # -- any thread ----------------------------------------------------------------

    def forget(self, queue: str) -> list[Raw]:
        """Stop treating `queue` as consumed; return its buffered deliveries."""
        with self.cond:
            for state in (self._consumers, self._window, self._held):
                state.pop(queue, None)
            dropped = list(self._ready.pop(queue, ()))
            self.cond.notify_all()
            return dropped

    def consumer_tags(self) -> list[str]:
        with self.cond:
            return [tag for tags in self._consumers.values() for tag in tags]

    def drain(self) -> list[Raw]:
        """Forget every queue; return every buffered delivery (nobody took them)."""
        with self.cond:
            drained = [raw for ready in self._ready.values() for raw in ready]
            for state in (self._ready, self._consumers, self._window, self._held):
                state.clear()
            self.cond.notify_all()
            return drained

    def consuming(self, queue: str) -> bool:
        return bool(self._consumers.get(queue))

    def credit_needed(self, queue: str, max_messages: int) -> int:
        """The prefetch limit of the consumer to add so a fetch has room, or 0."""
        with self.cond:
            buffered = len(self._ready.get(queue, ()))
            window = self._window.get(queue, 0)
            missing = self._held.get(queue, 0) + buffered + max_messages - window
            if missing <= 0:
                return 0
            if len(self._consumers.get(queue, ())) >= MAX_CONSUMERS:
                missing = max(missing, window)
            return min(missing, MAX_LIMIT)

    def started(self, queue: str, consumer_tag: str, limit: int, epoch: int) -> None:
        with self.cond:
            if epoch == self.epoch:
                self._consumers[queue].add(consumer_tag)
                self._window[queue] += limit

    def take(self, queue: str, max_messages: int, deadline: float) -> list[Raw]:
        """Up to `max_messages` buffered deliveries of `queue`, waiting until `deadline`.

        Returns early (maybe empty) when the channel or the consumer goes away.
        """
        with self.cond:
            epoch, ready = self.epoch, self._ready[queue]
            while not ready and self.epoch == epoch and self._consumers.get(queue):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            taken = [ready.popleft() for _ in range(min(max_messages, len(ready)))]
            self._held[queue] += len(taken)
            return taken

    def settled(self, raws: list[Raw]) -> None:
        """`raws` were acked or given back: they no longer use their queue's window."""
        with self.cond:
            for raw in raws:
                if raw.epoch == self.epoch and self._held.get(raw.queue, 0) > 0:
                    self._held[raw.queue] -= 1


class Unacked:
    """The delivery tags of one consumer channel not yet settled (loop thread only).

    Acks are coalesced: when the oldest outstanding tags are all settled, one
    ``basic.ack(multiple=True)`` covers those settled by this call, instead of a frame (and
    a syscall) each. A multiple ack never reaches a held tag, because it stops at the first
    one, and its own tag is always still outstanding (the broker closes the channel on an
    unknown tag), so tags settled earlier one by one never serve as its tag.
    """

    def __init__(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        self._order: deque[int] = deque()  # delivered, in delivery order
        self._done: set[int] = set()  # settled, still in _order behind a held tag

    def delivered(self, delivery_tag: int) -> None:
        self._order.append(delivery_tag)

    def ack(self, delivery_tags: list[int]) -> None:
        fresh = set(delivery_tags)
        self._done.update(fresh)
        covered = None
        order, done = self._order, self._done
        while order and order[0] in done:
            tag = order.popleft()
            done.discard(tag)
            if tag in fresh:
                fresh.discard(tag)
                covered = tag
        if covered is not None:
            self._channel.basic_ack(covered, multiple=True)
        for tag in sorted(fresh):  # behind a held one: acked alone
            self._channel.basic_ack(tag)

    def requeue(self, delivery_tags: list[int]) -> None:
        for tag in delivery_tags:
            self._channel.basic_nack(tag, requeue=True)
        self._done.update(delivery_tags)
        while self._order and self._order[0] in self._done:
            self._done.discard(self._order.popleft())
