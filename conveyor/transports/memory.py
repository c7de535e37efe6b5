"""The in-memory transport: the reference implementation of the contract, thread-safe.

All transports built from the same ``memory://name`` URL in one process share one broker.
Messages are stored packed, exactly as a networked broker would hold them, so the memory
transport rejects what the others reject. A transport's unacked deliveries come back when it
is closed, which is how a consumer "dies" inside one process.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from queue import Empty, SimpleQueue

from conveyor.core import envelope
from conveyor.core.errors import LeaseLost
from conveyor.core.inprocess import PerName
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


@dataclass
class _Entry:
    """A stored message. Among equal priorities, ready entries go by `ready_at` (when they
    became deliverable: the publish time, or the due time of a delay), then publish order."""

    data: bytes
    priority: int
    seq: int
    ready_at: float
    deliveries: int = 0


@dataclass
class _Queue:
    ready: list[tuple[int, float, int, _Entry]] = field(default_factory=list)
    delayed: list[tuple[float, int, _Entry]] = field(default_factory=list)
    dead: list[tuple[_Entry, str, float]] = field(default_factory=list)


class _Broker:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.queues: dict[str, _Queue] = {}
        self.held: dict[int, tuple[str, _Entry, MemoryTransport]] = {}
        self.channels: dict[str, list[SimpleQueue[bytes]]] = {}
        self.seq = itertools.count()

    def queue(self, name: str) -> _Queue:
        return self.queues.setdefault(name, _Queue())

    def make_ready(self, queue: _Queue, entry: _Entry) -> None:
        heapq.heappush(queue.ready, (-entry.priority, entry.ready_at, entry.seq, entry))

    def promote_due(self, queue: _Queue, now: float) -> float | None:
        """Move due delayed entries to ready; return the next due time, if any."""
        while queue.delayed and queue.delayed[0][0] <= now:
            due, _, entry = heapq.heappop(queue.delayed)
            entry.ready_at = due
            self.make_ready(queue, entry)
        return queue.delayed[0][0] if queue.delayed else None

    def requeue(self, name: str, entry: _Entry, delay: float, max_deliveries: int) -> None:
        queue = self.queue(name)
        if entry.deliveries >= max_deliveries:
            queue.dead.append((entry, MAX_DELIVERIES_REASON, time.time()))
        elif delay > 0:
            heapq.heappush(queue.delayed, (time.monotonic() + delay, next(self.seq), entry))
        else:
            self.make_ready(queue, entry)
        self.lock.notify_all()


_broker_for = PerName(_Broker)


class _MemorySubscription(Subscription):
    def __init__(self, broker: _Broker, channel: str) -> None:
        self._broker, self._channel = broker, channel
        self._inbox: SimpleQueue[bytes] = SimpleQueue()
        with broker.lock:
            broker.channels.setdefault(channel, []).append(self._inbox)

    def get(self, timeout: float) -> Message | None:
        try:
            return envelope.unpack(self._inbox.get(timeout=timeout))
        except Empty:
            return None

    def close(self) -> None:
        with self._broker.lock:
            inboxes = self._broker.channels.get(self._channel, [])
            if self._inbox in inboxes:
                inboxes.remove(self._inbox)


class MemoryTransport(Transport):
    """In-process broker for tests and single-process use (``memory://[name]``)."""

    capabilities = Capabilities(
        max_message_size=16 * 1024 * 1024,
        priorities=True,
        broadcast=True,
        crosses_processes=False,
        networked=False,
    )

    def __init__(self, url: URL, options: TransportOptions) -> None:
        super().__init__(url, options)
        self._broker = _broker_for(url, self.options.namespace)

    def publish_many(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        packed = self.check_publish(queue, messages)
        broker = self._broker
        with broker.lock:
            q = broker.queue(queue)
            due = time.monotonic() + delay
            for message, data in zip(messages, packed, strict=True):
                entry = _Entry(data, message.priority, next(broker.seq), due)
                if delay > 0:
                    heapq.heappush(q.delayed, (due, entry.seq, entry))
                else:
                    broker.make_ready(q, entry)
            broker.lock.notify_all()

    def fetch(self, queue: str, *, max_messages: int = 1, timeout: float = 1.0) -> list[Delivery]:
        validate_queue_name(queue)
        broker = self._broker
        deadline = time.monotonic() + timeout
        with broker.lock:
            q = broker.queue(queue)
            while True:
                now = time.monotonic()
                next_due = broker.promote_due(q, now)
                if q.ready:
                    break
                if now >= deadline:
                    return []
                wake = deadline if next_due is None else min(deadline, next_due)
                broker.lock.wait(wake - now)
            taken: list[tuple[_Entry, int]] = []
            while q.ready and len(taken) < max_messages:
                entry = heapq.heappop(q.ready)[3]
                entry.deliveries += 1
                tag = next(broker.seq)
                broker.held[tag] = (queue, entry, self)
                taken.append((entry, tag))
        return [
            Delivery(self, queue, envelope.unpack(entry.data), entry.deliveries, tag)
            for entry, tag in taken
        ]

    def _release(self, delivery: Delivery) -> _Entry:
        held = self._broker.held.pop(delivery.tag, None)
        if held is None:
            raise LeaseLost(f"message {delivery.message.id} is no longer held by this consumer")
        return held[1]

    def ack(self, delivery: Delivery) -> None:
        with self._broker.lock:
            self._release(delivery)

    def nack(self, delivery: Delivery, *, requeue: bool, delay: float, reason: str) -> None:
        broker = self._broker
        with broker.lock:
            entry = self._release(delivery)
            if requeue:
                broker.requeue(delivery.queue, entry, delay, self.options.max_deliveries)
            else:
                broker.queue(delivery.queue).dead.append((entry, reason, time.time()))

    def size(self, queue: str) -> int:
        validate_queue_name(queue)
        with self._broker.lock:
            q = self._broker.queue(queue)
            self._broker.promote_due(q, time.monotonic())
            return len(q.ready)

    def purge(self, queue: str) -> int:
        validate_queue_name(queue)
        with self._broker.lock:
            q = self._broker.queue(queue)
            self._broker.promote_due(q, time.monotonic())
            count, q.ready = len(q.ready), []
            return count

    def delete(self, queue: str) -> None:
        validate_queue_name(queue)
        with self._broker.lock:
            self._broker.queues.pop(queue, None)

    def counts(self, queue: str) -> QueueCounts:
        validate_queue_name(queue)
        broker = self._broker
        with broker.lock:
            q = broker.queue(queue)
            now = time.monotonic()
            broker.promote_due(q, now)
            held = sum(1 for name, _, _ in broker.held.values() if name == queue)
            oldest = min((item[3].ready_at for item in q.ready), default=None)
            return QueueCounts(
                len(q.ready),
                len(q.delayed),
                held,
                len(q.dead),
                None if oldest is None else max(0.0, now - oldest),
            )

    def purge_dead_letters(self, queue: str) -> int:
        validate_queue_name(queue)
        with self._broker.lock:
            q = self._broker.queue(queue)
            count, q.dead = len(q.dead), []
            return count

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        validate_queue_name(queue)
        with self._broker.lock:
            dead = list(self._broker.queue(queue).dead[:limit])
        return [
            DeadLetter(envelope.unpack(entry.data), queue, reason, at, entry.deliveries)
            for entry, reason, at in dead
        ]

    def replay_dead_letters(self, queue: str, *, ids: Iterable[str] | None = None) -> int:
        validate_queue_name(queue)
        wanted = None if ids is None else set(ids)
        broker = self._broker
        with broker.lock:
            q = broker.queue(queue)
            keep, replayed = [], 0
            for item in q.dead:
                entry = item[0]
                if wanted is None or envelope.unpack(entry.data).id in wanted:
                    entry.deliveries = 0
                    broker.make_ready(q, entry)
                    replayed += 1
                else:
                    keep.append(item)
            q.dead = keep
            broker.lock.notify_all()
            return replayed

    def broadcast(self, channel: str, message: Message) -> None:
        data = self.check_publish(channel, (message,))[0]
        with self._broker.lock:
            for inbox in self._broker.channels.get(channel, []):
                inbox.put(data)

    def subscribe(self, channel: str) -> Subscription:
        validate_queue_name(channel)
        return _MemorySubscription(self._broker, channel)

    def close(self) -> None:
        """Return this transport's unacked deliveries to their queues, counts kept."""
        broker = self._broker
        with broker.lock:
            mine = [key for key, (_, _, owner) in broker.held.items() if owner is self]
            for key in mine:
                queue, entry, _ = broker.held.pop(key)
                broker.requeue(queue, entry, 0.0, self.options.max_deliveries)
