"""The RabbitMQ transport (pika): ``amqp[s]://user:pass@host[:port][;host2...]/vhost?options``.

The vhost is the URL path without its first slash (``//`` is ``/``). Hosts are tried in
order. Options: see `AMQPOptions` (``queue_type=quorum``, ``heartbeat``, ``ssl_*``, ...).

Two connections, each with its own I/O thread (see link.py): one publishes and
administers, one consumes, so a broker that blocks publishers (memory or disk alarm) never
stalls acks, and heartbeats are answered while tasks run for minutes.

* Durable queues, persistent messages, a publisher confirm for every message; a batch is
  published whole and then waits for its confirms.
* Each `fetch` consumes with the credit it needs and cancels before it returns
  (inbox.py), so between fetches the broker pushes nothing: the rest stays ready there,
  where `size`, `purge`, priorities and other consumers see it.
* Leases follow the connection: unacked deliveries return when it dies or closes. An ack
  for a delivery from a dead channel raises LeaseLost and is never sent on a new channel.
* Requeue and dead-letter republish the message (with confirms) and then ack the original,
  carrying the count of earlier deliveries in a header. Quorum queues add their own
  ``x-delivery-count`` for crash returns; on classic queues a broker redelivery
  (``redelivered``) is counted by republishing it once with the count raised.
* Delays wait in per-delay TTL queues in the broker (topology.py).
* Broadcast: a fanout exchange per channel (broadcast.py).

Limit: a delivery held longer than the broker's ``consumer_timeout`` (30 min by default in
RabbitMQ 3.x) makes the broker close the consumer channel and requeue it; raise that
setting on the broker for longer tasks.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from functools import partial
from typing import Any

import pika
import pika.channel
from pika.spec import BasicProperties

from conveyor.core.errors import (
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    ConveyorError,
    LeaseLost,
    MessageTooLarge,
)
from conveyor.core.message import DeadLetter, Delivery, Message, check_headers
from conveyor.core.names import validate_queue_name
from conveyor.core.retry import Backoff
from conveyor.core.transport import (
    MAX_DELIVERIES_REASON,
    Capabilities,
    QueueCounts,
    Subscription,
    Transport,
    TransportOptions,
)
from conveyor.core.url import URL
from conveyor.transports.amqp import codec, deadletters
from conveyor.transports.amqp import topology as topo
from conveyor.transports.amqp.broadcast import (
    SUBSCRIBE,
    AMQPSubscription,
    declare_exchange,
)
from conveyor.transports.amqp.confirms import Confirms, Outgoing
from conveyor.transports.amqp.inbox import MAX_LIMIT, Inbox, Raw, Unacked
from conveyor.transports.amqp.link import ChannelSetup, Link, connect, reply, resolve
from conveyor.transports.amqp.options import AMQPOptions, connection_parameters

PUBLISH, CONSUME, ADMIN = "publish", "consume", "admin"
_CONSUMER_GONE = "the consumer connection is gone; the broker redelivers the message"
READY_WAIT = 0.5  # s: how long a fetch waits for messages its queue reported ready


class AMQPTransport(Transport):
    """RabbitMQ through pika; see the module docstring."""

    Options = AMQPOptions
    capabilities = Capabilities(
        max_message_size=64 * 1024 * 1024,
        priorities=True,
        broadcast=True,
        connection_cut=True,
        pipelined_confirms=True,
    )
    options: AMQPOptions

    def __init__(self, url: URL, options: TransportOptions) -> None:
        super().__init__(url, options)
        # ?queue_type=quorum: replicated queues that count redeliveries themselves
        # (x-delivery-count) and have no priorities (RabbitMQ 3.x).
        self._quorum = self.options.queue_type == "quorum"
        if self._quorum:
            self.capabilities = replace(self.capabilities, priorities=False)
        if not url.hosts:
            raise ConfigurationError(f"AMQP URL {url} names no host")
        self._queue_arguments = topo.queue_arguments(
            self.options.queue_type, self.options.max_priority
        )
        self._tls = self.options.tls_context() if url.scheme == "amqps" else None
        self._fresh_state()
        _transports.add(self)

    def _fresh_state(self) -> None:
        """Connections, locks and buffers: all of them belong to one process.

        A forked child (a worker's prefork pool) starts here afresh and leaves the parent's
        sockets alone: closing them from the child would close the parent's connections.
        """
        self._lock = threading.RLock()
        self._links: dict[str, Link | None] = {PUBLISH: None, CONSUME: None}
        self._retry_at: dict[str, float] = {}
        self._backoff: dict[str, Callable[[], float]] = {}
        self._declared: dict[str, float] = {}  # name -> when (monotonic)
        self._delay_queues: defaultdict[str, set[str]] = defaultdict(set)
        self._confirms: dict[pika.channel.Channel, Confirms] = {}
        self._unacked: dict[pika.channel.Channel, Unacked] = {}
        self._inbox = Inbox()
        self._admin_lock = threading.Lock()
        self._closes = 0

    # -- connections -----------------------------------------------------------------

    def _parameters(self, kind: str) -> list[pika.ConnectionParameters]:
        return connection_parameters(self.url, self.options, self._tls, kind)

    def _link(self, kind: str) -> Link:
        """The live connection of `kind` (PUBLISH or CONSUME), reconnecting with backoff."""
        with self._lock:
            link = self._links[kind]
            if link is not None and link.alive:
                return link
            wait = self._retry_at.get(kind, 0.0) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if link is not None:
                link.close(0.5)
            self._links[kind] = None
            setups: dict[str, ChannelSetup] = {
                PUBLISH: self._setup_publish,
                CONSUME: self._setup_consume,
            }
            lost = self._publisher_lost if kind == PUBLISH else self._consumer_lost
            try:
                link = connect(self._parameters(kind), self.options.connect_timeout, setups, lost)
            except BrokerUnavailable:
                next_delay = self._backoff.setdefault(kind, Backoff(maximum=5.0).delays())
                self._retry_at[kind] = time.monotonic() + next_delay()
                raise
            self._backoff.pop(kind, None)
            self._retry_at.pop(kind, None)
            if kind == PUBLISH:
                self._declared.clear()
            self._links[kind] = link
            return link

    def _setup_publish(self, channel: pika.channel.Channel, ready: Callable[[], None]) -> None:
        confirms = self._confirms[channel] = Confirms()
        confirms.attach(channel, ready)

    def _setup_consume(self, channel: pika.channel.Channel, ready: Callable[[], None]) -> None:
        unacked = self._unacked[channel] = Unacked(channel)

        def on_cancel(frame: Any) -> None:
            dropped = self._inbox.cancelled(frame.method.consumer_tag)
            unacked.requeue([raw.delivery_tag for raw in dropped])

        channel.add_on_cancel_callback(on_cancel)
        ready()

    def _publisher_lost(self, role: str | None) -> None:
        self._declared.clear()
        if role in (None, PUBLISH):
            self._confirms.clear()

    def _consumer_lost(self, _role: str | None) -> None:
        self._unacked.clear()
        self._inbox.reset()

    def _call(self, kind: str, role: str, work: Callable[..., None]) -> Any:
        return self._link(kind).call(role, work, self.options.confirm_timeout)

    # -- declarations ------------------------------------------------------------------

    def _name(self, queue: str) -> str:
        """The broker's name of `queue` (after the namespace, if any; see topology.py)."""
        return topo.queue_name(queue, self.options.namespace)

    def _queue_steps(self, queue: str) -> list[Callable[[pika.channel.Channel, Any], None]]:
        dlq = topo.dead_letter_queue(queue, self.options.namespace)
        return [
            _declare(self._name(queue), self._queue_arguments),
            _declare(dlq, topo.DEAD_LETTER_ARGUMENTS),
        ]

    def _ensure_queue(self, queue: str) -> None:
        if queue not in self._declared:  # the common case, checked before building steps
            self._ensure({queue: self._queue_steps(queue)})

    def _ensure(self, steps_by_name: dict[str, list[Any]], max_age: float | None = None) -> None:
        """Declare what is not declared on the current publish link (or is too old)."""
        now = time.monotonic()
        todo = [
            step
            for name, steps in steps_by_name.items()
            if name not in self._declared
            or (max_age is not None and now - self._declared[name] > max_age)
            for step in steps
        ]
        if todo:
            self._call(PUBLISH, PUBLISH, lambda ch, fut: _run_steps(ch, fut, todo))
            for name in steps_by_name:
                self._declared[name] = now

    def _route(self, queue: str, delay: float) -> tuple[str, Callable[[], None]]:
        """The routing key to publish to for `queue` after `delay`, and its declaration."""
        namespace = self.options.namespace
        if delay <= 0:
            return self._name(queue), partial(self._ensure_queue, queue)
        ms = topo.delay_bucket(delay)
        name = topo.delay_queue(queue, ms, namespace)
        exchange = topo.due_exchange(queue, namespace)
        self._delay_queues[queue].add(name)

        def prepare() -> None:
            # The delay queue's path back to `queue` is redeclared with it: someone may have
            # deleted `queue` (and its due exchange) meanwhile, and a message expiring into
            # a missing exchange is dropped without a word.
            self._ensure(
                {
                    name: [
                        *self._queue_steps(queue),
                        lambda ch, cb: ch.exchange_declare(
                            exchange, "fanout", durable=True, callback=cb
                        ),
                        lambda ch, cb: ch.queue_bind(self._name(queue), exchange, callback=cb),
                        _declare(name, topo.delay_arguments(queue, ms, namespace)),
                    ]
                },
                max_age=topo.DELAY_QUEUE_REFRESH,
            )

        return name, prepare

    # -- producing -------------------------------------------------------------------

    def publish_many(self, queue: str, messages: Sequence[Message], *, delay: float = 0.0) -> None:
        validate_queue_name(queue)
        routing_key, prepare = self._route(queue, delay)
        items = self._encode("", routing_key, messages)
        if items:
            self._publish(items, prepare)

    def _encode(
        self, exchange: str, routing_key: str, messages: Sequence[Message]
    ) -> list[Outgoing]:
        """Encode every message, refusing the batch before any I/O if one is too large."""
        items = []
        limit = self.capabilities.max_message_size
        for message in messages:
            check_headers(message)
            properties, size = codec.encode(message)
            if size > limit:
                raise MessageTooLarge(
                    f"message {message.id} is {size} bytes, over the AMQP transport's limit of "
                    f"{limit} bytes; nothing was sent"
                )
            items.append((exchange, routing_key, properties, message.body))
        return items

    def broadcast(self, channel: str, message: Message) -> None:
        validate_queue_name(channel)
        exchange = topo.broadcast_exchange(self.options.namespace)
        items = self._encode(exchange, channel, (message,))
        self._publish(items, lambda: self._ensure({exchange: [declare_exchange(exchange)]}))

    def subscribe(self, channel: str) -> Subscription:
        validate_queue_name(channel)
        return AMQPSubscription(
            self._parameters(SUBSCRIBE),
            self.options.connect_timeout,
            channel,
            self.options.namespace,
        )

    def _publish(self, items: list[Outgoing], prepare: Callable[[], None]) -> None:
        """Publish and wait for every confirm; unroutable messages get one redeclared retry."""
        pending = items
        for _attempt in range(2):
            prepare()
            batch = pending
            returned = self._call(PUBLISH, PUBLISH, partial(self._send, batch))
            if not returned:
                return
            pending = [batch[i] for i in returned]
            self._declared.clear()
        raise BrokerError(f"{len(pending)} messages could not be routed to {pending[0][1]!r}")

    def _send(self, batch: list[Outgoing], channel: pika.channel.Channel, future: Any) -> None:
        self._confirms[channel].publish(channel, batch, future)

    def publish_pipelined(
        self, queue: str, messages: Sequence[Message], *, delay: float = 0.0
    ) -> Future[None]:
        """Hand the batch to the I/O thread and return: the Future completes with its confirms.

        Unroutable messages (their queue was deleted) fail the Future with BrokerError after
        the declarations are forgotten, so the Pipeline's republish declares the queue again.
        """
        validate_queue_name(queue)
        routing_key, prepare = self._route(queue, delay)
        items = self._encode("", routing_key, messages)
        prepare()  # a dictionary look-up once the queue is declared on this link
        sent = self._link(PUBLISH).submit_soon(PUBLISH, partial(self._send, items))
        outcome: Future[None] = Future()

        def settle(future: Future[list[int]]) -> None:
            error = future.exception()
            if error is None and future.result():
                self._declared.clear()
                error = BrokerError(
                    f"{len(future.result())} messages could not be routed to {routing_key!r}"
                )
            if error is None:
                outcome.set_result(None)
            else:
                outcome.set_exception(error)

        sent.add_done_callback(settle)
        return outcome

    # -- consuming -------------------------------------------------------------------

    def fetch(self, queue: str, *, max_messages: int = 1, timeout: float = 1.0) -> list[Delivery]:
        validate_queue_name(queue)
        if max_messages < 1:
            return []
        deadline = time.monotonic() + timeout
        closes = self._closes
        while closes == self._closes:  # a close() meanwhile ends this fetch, not reconnects
            raws = self._fetch_once(queue, max_messages, deadline)
            deliveries = self._accept(queue, raws) if raws else []
            if deliveries or time.monotonic() >= deadline:
                return deliveries
        return []

    def _fetch_once(self, queue: str, max_messages: int, deadline: float) -> list[Raw]:
        """Consume `queue` with the credit this fetch needs, take what comes, cancel.

        The credit is what the queue holds ready (one when empty), up to `max_messages`,
        so a consumer usually uses it all and its cancel meets no message (inbox.py).
        A fetch that finds messages ready waits for them a little even with no timeout.
        """
        link = self._link(CONSUME)
        inbox = self._inbox

        def on_message(ch: Any, method: Any, properties: BasicProperties, body: bytes) -> None:
            tag = method.delivery_tag
            raw = Raw(ch, tag, method.redelivered, properties, body, inbox.epoch, queue)
            if inbox.push(method.consumer_tag, raw):
                self._unacked[ch].delivered(tag)
            else:
                ch.basic_nack(tag, requeue=True)  # its fetch ended on a lost channel

        def start(ch: pika.channel.Channel, fut: Future[Any]) -> None:
            epoch = inbox.epoch

            def on_declared(frame: Any) -> None:
                ready = frame.method.message_count
                credit = min(max_messages, max(ready, 1), MAX_LIMIT)
                unacked = self._unacked.get(ch)
                if unacked is None or unacked.credit != credit:
                    # basic.qos (per consumer) applies to consumers started after it and
                    # stays set on the channel: a round trip only when the credit changes.
                    ch.basic_qos(prefetch_count=credit)
                    if unacked is not None:
                        unacked.credit = credit
                tag = ch.basic_consume(self._name(queue), on_message)
                inbox.opened(tag, queue, credit, epoch)
                resolve(fut, (ch, tag, ready, credit))

            ch.queue_declare(
                self._name(queue),
                durable=True,
                arguments=self._queue_arguments,
                callback=on_declared,
            )

        asked = time.monotonic()
        channel, tag, ready, credit = link.call(CONSUME, start, self.options.confirm_timeout)
        if ready:
            # The ready messages arrive about one round trip after the declare's reply (the
            # consume goes out, they come back): on a slow link a fixed wait would cancel
            # the consumer before they arrive, on every fetch, and nothing would ever be
            # delivered. So the wait is at least a few of the round trips just measured.
            round_trip = time.monotonic() - asked
            deadline = max(deadline, time.monotonic() + max(READY_WAIT, 3 * round_trip))
        raws: list[Raw] = []
        try:
            raws = inbox.take(tag, max_messages, deadline)
        finally:
            if len(raws) >= credit:
                leftovers = self._cancel_used(link, channel, tag)
            else:
                leftovers = self._cancel(link, tag, credit - len(raws))
        return raws + leftovers

    def _cancel_used(
        self, link: Link, channel: pika.channel.Channel, consumer_tag: str
    ) -> list[Raw]:
        """Cancel a consumer whose credit the fetch took whole, without waiting.

        The broker sends it nothing more until an ack, and the cancel is handed to the
        loop thread before any ack of these deliveries (its callbacks run in order), so
        nothing can be left in its buffer and there is no reply to wait for: the fetch
        saves a hand-over and a wake-up of the caller.
        """
        self._inbox.close(consumer_tag)

        def cancel() -> None:
            if channel.is_open:
                channel.basic_cancel(consumer_tag)

        link.later(cancel)  # a dead link: the broker forgets the consumer with the channel
        return []

    def _cancel(self, link: Link, consumer_tag: str, unused: int) -> list[Raw]:
        """Cancel a fetch's consumer before its deliveries are handed out (so before any
        ack of them); return what it received after the fetch stopped taking.

        With credit left, wait for the broker's cancel-ok: once the fetch returns, the
        broker sends that consumer nothing more (whatever it sent meanwhile went back).
        """

        def work(ch: pika.channel.Channel, fut: Future[Any]) -> None:
            leftovers = self._inbox.close(consumer_tag)
            if not ch.is_open:
                resolve(fut, leftovers)
            elif len(leftovers) >= unused:
                ch.basic_cancel(consumer_tag)
                resolve(fut, leftovers)
            else:
                ch.basic_cancel(consumer_tag, callback=lambda _frame: resolve(fut, leftovers))

        try:
            leftovers: list[Raw] = link.call(CONSUME, work, self.options.confirm_timeout)
        except ConveyorError:  # the channel is gone, and the broker returns its deliveries
            self._inbox.close(consumer_tag)
            return []
        return leftovers

    def _count(self, raw: Raw) -> int:
        """The delivery count of `raw`, this delivery included (a quorum queue adds the
        broker's own count of returns)."""
        count = codec.previous_deliveries(raw.properties) + 1
        if self._quorum:
            returns = (raw.properties.headers or {}).get("x-delivery-count", 0)
            count += returns if isinstance(returns, int) else 0
        return count

    def _counted_by_broker(self, raw: Raw) -> bool:
        """Whether the count of `raw` already includes broker redeliveries (quorum only)."""
        return self._quorum or not raw.redelivered

    def _accept(self, queue: str, raws: list[Raw]) -> list[Delivery]:
        """Deliveries for the caller; settles internally those that must not be handed out.

        A classic queue only flags a broker redelivery (a consumer died holding it), so
        such a message is republished once with that delivery counted and acked; its next
        delivery then carries the exact count.
        """
        deliveries = []
        limit = self.options.max_deliveries
        moved: set[int] = set()
        try:
            for index, raw in enumerate(raws):
                message = codec.decode(raw.properties, raw.body)
                count = self._count(raw)
                if not self._counted_by_broker(raw):
                    requeue = count < limit
                    reason = "" if requeue else MAX_DELIVERIES_REASON
                    self._move(queue, message, raw, count, requeue, 0.0, reason)
                    moved.add(index)
                elif count > limit:
                    self._move(queue, message, raw, count - 1, False, 0.0, MAX_DELIVERIES_REASON)
                    moved.add(index)
                else:
                    deliveries.append(Delivery(self, queue, message, count, raw))
        except BaseException:  # none of this batch reaches the caller: give it all back
            unsettled = [raw for index, raw in enumerate(raws) if index not in moved]
            self._return_buffered(unsettled)
            raise
        return deliveries

    def _held_tag(self, delivery: Delivery) -> Raw:
        tag: Raw = delivery.tag
        link = self._links[CONSUME]
        if link is None or not link.alive or link.channel(CONSUME) is not tag.channel:
            raise LeaseLost(
                f"message {delivery.message.id}: its channel is gone; the broker redelivers it"
            )
        return tag

    def ack(self, delivery: Delivery) -> None:
        self._send_acks([self._held_tag(delivery)])

    def ack_batch(self, deliveries: list[Delivery]) -> None:
        """One hand-over to the I/O thread; those whose channel is gone raise after it."""
        tags: list[Raw] = []
        lost: list[Delivery] = []
        for delivery in deliveries:
            try:
                tags.append(self._held_tag(delivery))
            except LeaseLost:
                lost.append(delivery)
        if tags:
            self._send_acks(tags)
        if lost:
            ids = ", ".join(d.message.id for d in lost)
            raise LeaseLost(f"messages {ids}: their channel is gone; the broker redelivers them")

    def _send_acks(self, tags: list[Raw]) -> None:
        """Ack on the delivering channel only: a tag is meaningless on any other."""
        link = self._links[CONSUME]
        if link is None:
            raise LeaseLost(_CONSUMER_GONE)

        def send() -> None:
            with link.corked():
                for channel, delivery_tags in _by_channel(tags).items():
                    if channel.is_open and channel in self._unacked:
                        self._unacked[channel].ack(delivery_tags)

        if not link.later(send):
            raise LeaseLost(_CONSUMER_GONE)

    def nack(self, delivery: Delivery, *, requeue: bool, delay: float, reason: str) -> None:
        tag = self._held_tag(delivery)
        count = delivery.delivery_count
        if requeue and count >= self.options.max_deliveries:
            requeue, reason = False, MAX_DELIVERIES_REASON
        self._move(delivery.queue, delivery.message, tag, count, requeue, delay, reason)

    def _move(
        self,
        queue: str,
        message: Message,
        tag: Raw,
        count: int,
        requeue: bool,
        delay: float,
        reason: str,
    ) -> None:
        """Republish (requeue after `delay`, or dead-letter) with confirms, then ack `tag`."""
        if requeue:
            routing_key, prepare = self._route(queue, delay)
            properties, _ = codec.encode(message, previous=count)
        else:
            routing_key = topo.dead_letter_queue(queue, self.options.namespace)
            prepare = partial(self._ensure_queue, queue)
            properties, _ = codec.encode(message, previous=count, dead=(reason, time.time()))
        self._publish([("", routing_key, properties, message.body)], prepare)
        with contextlib.suppress(LeaseLost):  # the original comes back: a duplicate, not a loss
            self._send_acks([tag])

    # -- administration -------------------------------------------------------------

    def size(self, queue: str) -> int:
        validate_queue_name(queue)
        count: int = self._call(
            PUBLISH,
            PUBLISH,
            lambda ch, fut: ch.queue_declare(
                self._name(queue),
                durable=True,
                arguments=self._queue_arguments,
                callback=reply(fut, lambda f: f.method.message_count),
            ),
        )
        return count

    def purge(self, queue: str) -> int:
        validate_queue_name(queue)
        self._ensure_queue(queue)
        count: int = self._call(
            PUBLISH,
            PUBLISH,
            lambda ch, fut: ch.queue_purge(
                self._name(queue), callback=reply(fut, lambda f: f.method.message_count)
            ),
        )
        return count

    def delete(self, queue: str) -> None:
        validate_queue_name(queue)
        namespace = self.options.namespace
        names = [
            self._name(queue),
            topo.dead_letter_queue(queue, namespace),
            *sorted(self._delay_queues.pop(queue, ())),
        ]
        exchange = topo.due_exchange(queue, namespace)
        steps = [_delete(name) for name in names]
        steps.append(lambda ch, cb: ch.exchange_delete(exchange, callback=cb))
        self._call(PUBLISH, PUBLISH, lambda ch, fut: _run_steps(ch, fut, steps))
        for name in (*names, exchange):
            self._declared.pop(name, None)
        self._return_buffered(self._inbox.forget(queue))

    def _return_buffered(self, raws: list[Raw]) -> None:
        """Give back deliveries that were buffered but never handed out."""
        link = self._links[CONSUME]
        if not raws or link is None:
            return

        def send() -> None:
            with link.corked():
                for channel, delivery_tags in _by_channel(raws).items():
                    if channel.is_open and channel in self._unacked:
                        self._unacked[channel].requeue(delivery_tags)

        link.later(send)

    def _browse(self, queue: str, limit: int | None) -> list[Raw]:
        """Get (without ack) up to `limit` dead letters of `queue`; `_release` them after."""
        self._ensure_queue(queue)
        work = deadletters.browse(topo.dead_letter_queue(queue, self.options.namespace), limit)
        return list(self._link(PUBLISH).call(ADMIN, work, self.options.confirm_timeout))

    def _release(self, acked: list[Raw], returned: list[Raw]) -> None:
        """Settle a browse and wait for the broker (the caller may exit right after)."""
        work = deadletters.release(acked, returned)
        self._link(PUBLISH).call(ADMIN, work, self.options.confirm_timeout)

    def counts(self, queue: str) -> QueueCounts:
        """Ready and dead from the broker's own counts; AMQP shows neither a queue's
        unacknowledged messages nor the per-delay queues, so held and delayed are None."""
        self._ensure_queue(queue)  # the queue and its dead-letter queue
        ready = self.size(queue)
        dead = topo.dead_letter_queue(queue, self.options.namespace)
        count: int = self._call(
            PUBLISH,
            PUBLISH,
            lambda ch, fut: ch.queue_declare(
                dead, passive=True, callback=reply(fut, lambda f: f.method.message_count)
            ),
        )
        return QueueCounts(ready, dead=count)

    def purge_dead_letters(self, queue: str) -> int:
        validate_queue_name(queue)
        self._ensure_queue(queue)
        dead = topo.dead_letter_queue(queue, self.options.namespace)
        count: int = self._call(
            PUBLISH,
            PUBLISH,
            lambda ch, fut: ch.queue_purge(
                dead, callback=reply(fut, lambda f: f.method.message_count)
            ),
        )
        return count

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        validate_queue_name(queue)
        with self._admin_lock:
            raws = self._browse(queue, limit)
            self._release([], raws)
        return [deadletters.dead_letter(queue, raw) for raw in raws]

    def replay_dead_letters(self, queue: str, *, ids: Iterable[str] | None = None) -> int:
        validate_queue_name(queue)
        wanted = None if ids is None else set(ids)
        with self._admin_lock:
            return self._replay(queue, wanted)

    def _replay(self, queue: str, wanted: set[str] | None) -> int:
        raws = self._browse(queue, None)
        chosen, kept, items = [], [], []
        for raw in raws:
            message = codec.decode(raw.properties, raw.body)
            if wanted is None or message.id in wanted:
                chosen.append(raw)
                items.append(("", self._name(queue), codec.encode(message)[0], raw.body))
            else:
                kept.append(raw)
        try:
            if items:
                self._publish(items, partial(self._ensure_queue, queue))
        except BaseException:
            with contextlib.suppress(ConveyorError):  # unsettled, they return with the link
                self._release([], raws)
            raise
        self._release(chosen, kept)
        return len(chosen)

    def _return_untaken(self) -> None:
        link = self._links[CONSUME]
        tags = self._inbox.consumer_tags()
        if link is None or not link.alive or not tags:
            return

        def cancel(ch: pika.channel.Channel, fut: Future[Any]) -> None:
            for tag in tags[:-1]:
                ch.basic_cancel(tag)
            ch.basic_cancel(tags[-1], callback=reply(fut))

        link.call(CONSUME, cancel, self.options.confirm_timeout)
        by_queue: defaultdict[str, list[Raw]] = defaultdict(list)
        for raw in self._inbox.drain():
            by_queue[raw.queue].append(raw)
        for queue, raws in by_queue.items():
            items: list[Outgoing] = []
            for raw in raws:
                message = codec.decode(raw.properties, raw.body)
                previous = self._count(raw) - self._counted_by_broker(raw)
                properties, _ = codec.encode(message, previous=previous)
                items.append(("", self._name(queue), properties, raw.body))
            self._publish(items, partial(self._ensure_queue, queue))
            self._send_acks(raws)

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close both connections: unacked deliveries go back to their queues at once.

        Deliveries the broker pushed that no caller ever took are first put back with their
        count unchanged (republished, then acked): returned by the broker they would come
        back flagged as redelivered and counted, and a worker restarted a few times could
        dead-letter a message it never ran. If that fails, the broker returns them anyway.
        """
        with contextlib.suppress(ConveyorError):
            self._return_untaken()
        with self._lock:
            self._closes += 1
            links = [link for link in self._links.values() if link is not None]
            self._links = {PUBLISH: None, CONSUME: None}
        for link in links:
            link.close()
        self._inbox.reset()


def _declare(name: str, arguments: dict[str, Any]) -> Callable[[pika.channel.Channel, Any], None]:
    return lambda ch, cb: ch.queue_declare(name, durable=True, arguments=arguments, callback=cb)


_transports: weakref.WeakSet[AMQPTransport] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for transport in list(_transports):
        transport._fresh_state()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _by_channel(raws: list[Raw]) -> dict[pika.channel.Channel, list[int]]:
    grouped: dict[pika.channel.Channel, list[int]] = {}
    for raw in raws:
        grouped.setdefault(raw.channel, []).append(raw.delivery_tag)
    return grouped


def _delete(name: str) -> Callable[[pika.channel.Channel, Any], None]:
    return lambda ch, cb: ch.queue_delete(name, callback=cb)


def _run_steps(
    channel: pika.channel.Channel,
    future: Future[Any],
    steps: list[Callable[[pika.channel.Channel, Any], None]],
) -> None:
    """Send every step at once (pika queues its RPCs); done when the last one replies."""
    for step in steps[:-1]:
        step(channel, None)
    steps[-1](channel, reply(future))
