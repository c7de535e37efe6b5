"""Broadcast over RabbitMQ: one direct exchange, one private queue per subscriber.

Each subscription has its own connection and an exclusive, auto-deleted, server-named
queue bound to the ``conveyor.broadcast`` exchange with the channel name as its key: every
live subscriber gets each message once, and a subscriber that goes away leaves nothing
behind (one shared exchange, so short-lived reply channels create no objects). Broadcasts
are fire-and-forget signals (auto-ack); a message sent while nobody listens reaches nobody.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any

import pika
import pika.channel

from conveyor.core.errors import ConnectionLost
from conveyor.core.message import Message
from conveyor.core.transport import Subscription
from conveyor.transports.amqp import codec
from conveyor.transports.amqp import topology as topo
from conveyor.transports.amqp.link import connect, reply

SUBSCRIBE = "subscribe"


def declare_exchange(exchange: str) -> Callable[[pika.channel.Channel, Any], None]:
    """The step that declares the broadcast exchange (topology.broadcast_exchange)."""
    return lambda ch, callback: ch.exchange_declare(
        exchange, "direct", durable=True, callback=callback
    )


class AMQPSubscription(Subscription):
    """One subscriber: an exclusive queue (named ``<namespace>.conveyor.sub.<id>`` with a
    namespace, else by the broker) bound to the broadcast exchange."""

    def __init__(
        self,
        candidates: list[pika.ConnectionParameters],
        timeout: float,
        channel: str,
        namespace: str = "",
    ) -> None:
        exchange = topo.broadcast_exchange(namespace)
        own = f"{namespace}.conveyor.sub.{uuid.uuid4().hex}" if namespace else ""
        self._inbox: SimpleQueue[Message | None] = SimpleQueue()
        # Losing the connection or the channel wakes `get`, which raises: subscribe again.
        self._link = connect(candidates, timeout, {}, lambda _role: self._inbox.put(None))

        def on_message(_ch: Any, _method: Any, properties: Any, body: bytes) -> None:
            self._inbox.put(codec.decode(properties, body))

        def work(ch: pika.channel.Channel, fut: Future[Any]) -> None:
            def bind(frame: Any) -> None:
                queue = frame.method.queue
                ch.queue_bind(queue, exchange, routing_key=channel)
                ch.basic_consume(queue, on_message, auto_ack=True, callback=reply(fut))

            declare_exchange(exchange)(ch, None)
            ch.queue_declare(own, exclusive=True, auto_delete=True, callback=bind)

        try:
            self._link.call(SUBSCRIBE, work, timeout)
        except BaseException:
            self._link.close()
            raise

    def get(self, timeout: float) -> Message | None:
        """The next message, None after `timeout`; ConnectionLost once the link is gone."""
        try:
            message = self._inbox.get(timeout=timeout)
        except Empty:
            return None
        if message is None:
            self._inbox.put(None)  # every later get raises too
            raise ConnectionLost("the broadcast subscription lost its connection")
        return message

    def close(self) -> None:
        self._link.close()
