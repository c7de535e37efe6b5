"""The consumer side's shared state: what the broker pushed for each fetch's consumer.

The consumer loop thread pushes deliveries in; `fetch` callers on any thread take them out.

Credit follows fetches, and no consumer outlives its fetch. AMQP 0-9-1 credit (basic.qos)
cannot shrink, and an ack gives it back, so a consumer kept between fetches would be sent
messages nobody asked for: held while its process idles (a second consumer waits for
them), not counted by `size`, not reached by `purge`, taken in arrival order instead of
priority order, and counted as delivered when the idle process dies. So each fetch opens
its own consumer with the credit it needs (no more than the queue's ready count and the
fetch's `max_messages`) and cancels it before handing its deliveries out.

The cancel is sent before any ack of those deliveries, so a consumer whose credit was
used up receives nothing more. A consumer cancelled with credit left (other consumers
took what its queue held, or a fetch ended on its timeout) may meet a message published
in the same instant; the broker has sent it, so pika returns it to the queue, where its
next delivery counts that return (classic queues flag it redelivered; quorum queues add
it to ``x-delivery-count``). That is the read-ahead bound: at most the unused credit of
a fetch that just ended, only for messages arriving while its cancel travels.

Everything is tied to an epoch: when the consumer channel goes away, its buffered
deliveries are forgotten (the broker requeues them) and its tags become invalid.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import NamedTuple

import pika.channel
from pika.spec import BasicProperties

MAX_LIMIT = 65535  # basic.qos prefetch_count is a short
FILL_GRACE = 0.02  # s: after a delivery, how long a fetch waits for more of its credit


class Raw(NamedTuple):
    """One message as the broker delivered it (or basic.get returned it)."""

    channel: pika.channel.Channel
    delivery_tag: int
    redelivered: bool
    properties: BasicProperties
    body: bytes
    epoch: int = 0
    queue: str = ""


class _Open(NamedTuple):
    """One fetch's consumer: its queue, its credit, what the broker pushed so far."""

    queue: str
    credit: int
    ready: deque[Raw]


class Inbox:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.epoch = 0
        self._open: dict[str, _Open] = {}  # consumer tag -> its fetch's state

    # -- loop thread ---------------------------------------------------------------

    def push(self, consumer_tag: str, raw: Raw) -> bool:
        """Buffer `raw` (made with this epoch); False when its consumer is no longer current."""
        with self.cond:
            state = self._open.get(consumer_tag)
            if state is None or raw.epoch != self.epoch:
                return False
            ready = state.ready
            ready.append(raw)
            # Wake the fetch for its first delivery and when its credit is used, not for
            # each one: a waiter woken in between only goes back to sleep (take() wakes by
            # itself when its grace ends and then counts what came meanwhile).
            if len(ready) == 1 or len(ready) >= state.credit:
                self.cond.notify_all()
            return True

    def opened(self, consumer_tag: str, queue: str, credit: int, epoch: int) -> bool:
        """A fetch's consumer started; False if the channel it started on is gone."""
        with self.cond:
            if epoch != self.epoch:
                return False
            self._open[consumer_tag] = _Open(queue, credit, deque())
            return True

    def close(self, consumer_tag: str) -> list[Raw]:
        """The consumer was cancelled: return what it received that nobody took."""
        with self.cond:
            state = self._open.pop(consumer_tag, None)
            return [] if state is None else list(state.ready)

    def reset(self) -> None:
        """The channel is gone: what it delivered comes back from the broker by itself."""
        with self.cond:
            self.epoch += 1
            self._open.clear()
            self.cond.notify_all()

    def cancelled(self, consumer_tag: str) -> list[Raw]:
        """The broker cancelled a consumer (its queue was deleted); return its buffer."""
        dropped = self.close(consumer_tag)
        with self.cond:
            self.cond.notify_all()
        return dropped

    # -- any thread ----------------------------------------------------------------

    def forget(self, queue: str) -> list[Raw]:
        """Stop the fetches of `queue` (it is being deleted); return their buffers."""
        with self.cond:
            tags = [tag for tag, state in self._open.items() if state.queue == queue]
            dropped = [raw for tag in tags for raw in self._open.pop(tag).ready]
            self.cond.notify_all()
            return dropped

    def consumer_tags(self) -> list[str]:
        with self.cond:
            return list(self._open)

    def drain(self) -> list[Raw]:
        """Forget every consumer; return every buffered delivery (nobody took them)."""
        with self.cond:
            drained = [raw for state in self._open.values() for raw in state.ready]
            self._open.clear()
            self.cond.notify_all()
            return drained

    def take(self, consumer_tag: str, max_messages: int, deadline: float) -> list[Raw]:
        """Up to `max_messages` deliveries of the consumer: waits until `deadline` for the
        first, then until its credit is used or `FILL_GRACE` passes without another (so a
        cancel rarely meets credit left while the queue still holds messages).

        Returns early, empty, when the channel or the consumer goes away.
        """
        with self.cond:
            epoch, seen, grace_end = self.epoch, 0, deadline
            while True:
                state = self._open.get(consumer_tag)
                if state is None or self.epoch != epoch:
                    return []
                ready = state.ready
                if len(ready) >= min(state.credit, max_messages):
                    break
                if len(ready) > seen:
                    seen, grace_end = len(ready), time.monotonic() + FILL_GRACE
                left = grace_end - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return [ready.popleft() for _ in range(min(max_messages, len(ready)))]


class Unacked:
    """The delivery tags of one consumer channel not yet settled (loop thread only).

    Acks are coalesced: when the oldest outstanding tags are all settled, one
    ``basic.ack(multiple=True)`` covers those settled by this call, instead of a frame (and
    a syscall) each. A multiple ack never reaches a held tag, because it stops at the first
    one, and its own tag is always still outstanding (the broker closes the channel on an
    unknown tag), so tags settled earlier one by one never serve as its tag.

    `credit` is the channel's last basic.qos, so a fetch sends one only when it changes.
    """

    def __init__(self, channel: pika.channel.Channel) -> None:
        self._channel = channel
        self.credit = 0  # the channel's basic.qos prefetch_count (0: not set, unlimited)
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
