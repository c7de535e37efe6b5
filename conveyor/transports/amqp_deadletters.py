"""Dead letters: browsing a queue's dead-letter queue with basic.get, and settling what was got.

AMQP has no way to read a queue without taking from it, so a browse gets messages without
acking them (on the admin channel), then puts them back in place with a nack-requeue, or
acks those a replay has republished.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pika.channel
import pika.spec

from conveyor.core.message import DeadLetter
from conveyor.transports import amqp_codec as codec
from conveyor.transports import amqp_topology as topo
from conveyor.transports.amqp_inbox import Raw
from conveyor.transports.amqp_link import Work, resolve

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
                got.append(Raw(ch, method.delivery_tag, False, properties, body))
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


def release(acked: list[Raw], returned: list[Raw]) -> Callable[[], None]:
    """Loop-thread action: ack what a replay moved, put the rest back where it was."""

    def send() -> None:
        for raw in acked:
            if raw.channel.is_open:
                raw.channel.basic_ack(raw.delivery_tag)
        for raw in returned:
            if raw.channel.is_open:
                raw.channel.basic_nack(raw.delivery_tag, requeue=True)

    return send


def dead_letter(queue: str, raw: Raw) -> DeadLetter:
    reason, dead_at = codec.dead_letter_info(raw.properties)
    message = codec.decode(raw.properties, raw.body)
    return DeadLetter(message, queue, reason, dead_at, codec.previous_deliveries(raw.properties))
