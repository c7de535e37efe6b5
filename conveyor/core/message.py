"""Message and Delivery: what travels through a transport, and one receipt of it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.core.errors import AlreadySettled, EncodeError

if TYPE_CHECKING:
    from conveyor.core.transport import Transport


def new_message_id() -> str:
    """128 random bits as 32 hex digits: as unique as ``uuid4().hex``, at a third of the
    cost (every publish makes one)."""
    return os.urandom(16).hex()


def new_task_id() -> str:
    """A random (version 4) UUID in its text form, built without `uuid.UUID`'s overhead."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# Headers per message, bounded on send (Transport.check_publish, the AMQP encoder) and on
# receive (the worker dead-letters a message over it), like sizes and JSON depth: a peer
# cannot make every consumer parse and keep an unbounded header table.
MAX_HEADERS = 100


def header_problem(message: Message) -> str | None:
    """Why `message`'s headers break the bound, or None."""
    count = len(message.headers)
    if count <= MAX_HEADERS:
        return None
    return f"message {message.id} has {count} headers, over the limit of {MAX_HEADERS}"


def check_headers(message: Message) -> None:
    """Refuse a message over the header bound before anything is sent."""
    problem = header_problem(message)
    if problem is not None:
        raise EncodeError(f"{problem}; nothing was sent")


@dataclass(slots=True)
class Message:
    """Opaque bytes plus headers and properties. Transports never read task fields.

    Headers hold JSON values (str, int, float, bool, None, lists and dicts of them).
    The properties are the fixed fields below; `id` stays the same across publish retries
    and redeliveries, so consumers can recognise a duplicate.
    """

    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_message_id)
    content_type: str = "application/json"
    content_encoding: str = "utf-8"
    priority: int = 0
    timestamp: float = field(default_factory=time.time)
    correlation_id: str | None = None
    reply_to: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.body, (bytes, bytearray, memoryview)):
            kind = type(self.body).__name__
            hint = " (encode the text first, e.g. body.encode())" if kind == "str" else ""
            raise EncodeError(f"message body must be bytes, not {kind}{hint}")


@dataclass(slots=True)
class DeadLetter:
    """A message parked in a queue's dead-letter queue, with why and when."""

    message: Message
    queue: str
    reason: str
    dead_at: float
    delivery_count: int


class Delivery:
    """One receipt of a message by a consumer; settle it once with `ack` or `nack`.

    `tag` is the transport's own handle (a stream id, a lock path, a row id); nothing
    outside the transport reads it. `ack`/`nack` may be called from any thread.
    """

    __slots__ = (
        "_on_settle",
        "_settled",
        "_transport",
        "delivery_count",
        "message",
        "queue",
        "tag",
    )

    def __init__(
        self,
        transport: Transport,
        queue: str,
        message: Message,
        delivery_count: int,
        tag: Any,
    ) -> None:
        self._transport = transport
        self.queue = queue
        self.message = message
        self.delivery_count = delivery_count
        self.tag = tag
        self._settled = False
        self._on_settle: Callable[[Delivery], None] | None = None

    @property
    def settled(self) -> bool:
        return self._settled

    @property
    def transport(self) -> Transport:
        return self._transport

    def on_settle(self, callback: Callable[[Delivery], None]) -> None:
        """Call `callback(self)` once, after this delivery is acked or nacked."""
        self._on_settle = callback

    def ack(self) -> None:
        """Remove the message for good."""
        self._settle()
        try:
            self._transport.ack(self)
        finally:
            self._notify()

    def nack(self, *, requeue: bool = True, delay: float = 0.0, reason: str = "rejected") -> None:
        """Return the message (after `delay` seconds) or, with requeue=False, dead-letter it."""
        self._settle()
        try:
            self._transport.nack(self, requeue=requeue, delay=delay, reason=reason)
        finally:
            self._notify()

    @staticmethod
    def ack_all(deliveries: Sequence[Delivery], send: Callable[[list[Delivery]], None]) -> None:
        """Settle `deliveries` as acked and hand them to `send` at once (a batched ack).

        Deliveries settled before are left out and raise AlreadySettled after the rest went.
        """
        fresh: list[Delivery] = []
        twice: list[str] = []
        for delivery in deliveries:
            if delivery._settled:
                twice.append(delivery.message.id)
            else:
                delivery._settled = True
                fresh.append(delivery)
        try:
            if fresh:
                send(fresh)
        finally:
            for delivery in fresh:
                delivery._notify()
        if twice:
            raise AlreadySettled(f"messages {', '.join(twice)} were already settled")

    def _settle(self) -> None:
        if self._settled:
            raise AlreadySettled(f"message {self.message.id} on {self.queue!r} was already settled")
        self._settled = True

    def _notify(self) -> None:
        callback, self._on_settle = self._on_settle, None
        if callback is not None:
            callback(self)

    def __repr__(self) -> str:
        return (
            f"<Delivery {self.message.id} queue={self.queue!r} "
            f"count={self.delivery_count} settled={self._settled}>"
        )
