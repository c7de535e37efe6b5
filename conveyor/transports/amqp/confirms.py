"""Publisher confirms for a batch without a round trip per message.

A batch is published in one go on the loop thread; its Future completes once the broker
has confirmed every message of it (acks may cover many tags at once). A nack fails the
batch. Messages the broker could not route (``mandatory``) come back before their ack and
are reported by index, so the caller can redeclare the queue and send just those again.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pika.channel
from pika.spec import Basic, BasicProperties

from conveyor.core.errors import BrokerError

# exchange, routing key, properties, body
Outgoing = tuple[str, str, BasicProperties, bytes]


@dataclass
class _Batch:
    future: Future[list[int]]
    items: list[Outgoing]
    remaining: int
    nacked: int = 0
    returned: list[int] = field(default_factory=list)

    def settle(self, ok: bool) -> None:
        self.remaining -= 1
        self.nacked += not ok
        if self.remaining or self.future.done():
            return
        if self.nacked:
            self.future.set_exception(
                BrokerError(f"the broker refused {self.nacked} of {len(self.items)} messages")
            )
        else:
            self.future.set_result(sorted(self.returned))


class Confirms:
    """The confirm bookkeeping of one channel in confirm mode (loop thread only)."""

    def __init__(self) -> None:
        self._next_tag = 1
        self._waiting: dict[int, _Batch] = {}

    def attach(self, channel: pika.channel.Channel, ready: Any) -> None:
        """Put `channel` in confirm mode, then call `ready()`."""
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=lambda _f: ready())

    def publish(
        self, channel: pika.channel.Channel, items: list[Outgoing], future: Future[list[int]]
    ) -> None:
        batch = _Batch(future, items, len(items))
        with channel.connection.corked():  # few large writes for the batch (frames.py)
            for exchange, routing_key, properties, body in items:
                # Straight to a queue: mandatory, so a vanished queue is noticed, not a silent
                # loss. Through an exchange (broadcast): no subscriber is a valid outcome.
                mandatory = not exchange
                channel.basic_publish(exchange, routing_key, body, properties, mandatory=mandatory)
                self._waiting[self._next_tag] = batch
                self._next_tag += 1

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ok = isinstance(method, Basic.Ack)
        if method.multiple:
            tags = []
            for tag in self._waiting:
                if tag > method.delivery_tag:
                    break
                tags.append(tag)
        else:
            tags = [method.delivery_tag]
        for tag in tags:
            batch = self._waiting.pop(tag, None)
            if batch is not None:
                batch.settle(ok)

    def _on_return(
        self, _channel: Any, method: Any, properties: BasicProperties, _body: bytes
    ) -> None:
        seen: set[int] = set()
        for batch in self._waiting.values():
            if id(batch) in seen:
                continue
            seen.add(id(batch))
            for index, (_, routing_key, sent, _) in enumerate(batch.items):
                if (
                    routing_key == method.routing_key
                    and sent.message_id == properties.message_id
                    and index not in batch.returned
                ):
                    batch.returned.append(index)
                    return
