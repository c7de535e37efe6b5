"""Dead letters: browsing a queue's dead-letter queue with basic.get, and settling what was got.

AMQP has no way to read a queue without taking from it, so a browse gets messages without
acking them (on the admin channel), then puts them back in place with a nack-requeue, or
acks those a replay has republished.

The settlement is waited for, not just handed to the I/O thread: the CLI's ``dead replay``
exits as soon as the call returns, and an ack still queued in the I/O thread then never
leaves the process; the broker returns the unacked original when the connection drops, next
to its replayed copy (a duplicate dead letter once the replay is dead-lettered again).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pika.channel
import pika.spec

from conveyor.core.errors import ConnectionLost
from conveyor.core.message import DeadLetter
from conveyor.transports.amqp import codec
from conveyor.transports.amqp import topology as topo
from conveyor.transports.amqp.inbox import Raw
from conveyor.transports.amqp.link import Work, resolve

MAX_BROWSE = 100_000  # dead letters one replay moves at most


def browse(dlq: str, limit: int | None) -> Work:
    """Loop-thread work: basic.get up to `limit` messages of `dlq`, one after another."""

    def work(ch: pika.channel.Channel, fut: Future[Any]) -> None:
        got: list[Raw] = []
        ch.add_callback(lambda _frame: resolve(fut, got), [pika.spec.Basic.GetEmpty])

        def take(left: int) -> None:
            if left <= 0:
                resolve(fut, got)
                return

            def on_get(ch: Any, method: Any, properties: Any, body: bytes) -> None:
                got.append(Raw(ch, method.delivery_tag, False, properties, body, queue=dlq))
                take(left - 1)

            ch.basic_get(dlq, on_get)

        # Not the declare's message_count: messages just returned by a nack may not be
        # counted yet, while a basic.get sees them (same channel, same order).
        ch.queue_declare(
            dlq,
            durable=True,
            arguments=topo.DEAD_LETTER_ARGUMENTS,
            callback=lambda _frame: take(MAX_BROWSE if limit is None else limit),
        )

    return work


def release(acked: list[Raw], returned: list[Raw]) -> Work:
    """Admin-channel work: ack what a replay moved, put the rest back, and wait for the broker.

    AMQP acks have no reply; a queue.declare of the dead-letter queue on the same channel
    does, and the broker answers it only after the queue has taken the settlements sent
    before it. An ack whose channel closed meanwhile is lost: the broker has returned that
    message, so a replay raises rather than report it moved.
    """

    def work(ch: pika.channel.Channel, fut: Future[Any]) -> None:
        lost = [raw for raw in acked if not raw.channel.is_open]
        for raw in acked:
            if raw.channel.is_open:
                raw.channel.basic_ack(raw.delivery_tag)
        for raw in returned:
            if raw.channel.is_open:
                raw.channel.basic_nack(raw.delivery_tag, requeue=True)
        if lost:
            raise ConnectionLost(
                f"{len(lost)} replayed dead letters went back to {lost[0].queue} as well: "
                "their channel closed before the ack"
            )
        if not acked and not returned:
            resolve(fut, None)
            return
        ch.queue_declare(
            (acked or returned)[0].queue,
            durable=True,
            arguments=topo.DEAD_LETTER_ARGUMENTS,
            callback=lambda _frame: resolve(fut, None),
        )

    return work


def dead_letter(queue: str, raw: Raw) -> DeadLetter:
    reason, dead_at = codec.dead_letter_info(raw.properties)
    message = codec.decode(raw.properties, raw.body)
    return DeadLetter(message, queue, reason, dead_at, codec.previous_deliveries(raw.properties))
