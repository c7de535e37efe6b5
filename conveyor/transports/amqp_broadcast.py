"""Broadcast over RabbitMQ: a fanout exchange per channel, one private queue per subscriber.

Each subscription has its own connection and an exclusive, auto-deleted, server-named
queue bound to ``conveyor.broadcast.<channel>``: every live subscriber gets each message
once, and when the last subscriber goes away the exchange goes too. Broadcasts are fire-and-forget
signals (auto-ack); a message sent while nobody listens reaches nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any

import pika
import pika.channel

from conveyor.core.message import Message
from conveyor.transports import amqp_codec as codec
from conveyor.transports.amqp_link import connect, reply
from conveyor.transports.base import Subscription

SUBSCRIBE = "subscribe"


def broadcast_exchange(channel: str) -> str:
    return f"conveyor.broadcast.{channel}"


def declare_exchange(name: str) -> Callable[[pika.channel.Channel, Any], None]:
    """Transient and auto-deleted: it goes away with its last subscriber."""
    return lambda ch, cb: ch.exchange_declare(
        name, "fanout", durable=False, auto_delete=True, callback=cb
    )


class AMQPSubscription(Subscription):
    def __init__(
        self, candidates: list[pika.ConnectionParameters], timeout: float, channel: str
    ) -> None:
        self._inbox: SimpleQueue[Message] = SimpleQueue()
        self._link = connect(candidates, timeout, {}, lambda _role: None)
        exchange = broadcast_exchange(channel)

        def on_message(_ch: Any, _method: Any, properties: Any, body: bytes) -> None:
            self._inbox.put(codec.decode(properties, body))

        def work(ch: pika.channel.Channel, fut: Future[Any]) -> None:
            def bind(frame: Any) -> None:
                queue = frame.method.queue
                ch.queue_bind(queue, exchange)
                ch.basic_consume(queue, on_message, auto_ack=True, callback=reply(fut))

            declare_exchange(exchange)(ch, None)
            ch.queue_declare("", exclusive=True, auto_delete=True, callback=bind)

        try:
            self._link.call(SUBSCRIBE, work, timeout)
        except BaseException:
            self._link.close()
            raise

    def get(self, timeout: float) -> Message | None:
        try:
            return self._inbox.get(timeout=timeout)
        except Empty:
            return None

    def close(self) -> None:
        self._link.close()
