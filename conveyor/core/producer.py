"""The Producer: publish with bounded reconnect, reusing message ids across retries."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from conveyor.core.message import Message
from conveyor.core.pipeline import Pipeline, Ticket
from conveyor.core.retry import Backoff, call_with_retry
from conveyor.core.transport import Transport


class Producer:
    """Publishes through a transport; a broker that stays down ends in BrokerUnavailable.

    A publish that fails with a lost connection is retried with the same Message objects,
    so the same ids: a consumer that sees an id twice is looking at one message.
    `publish` returns once the broker confirmed; `publish_pipelined` returns once the
    message is written and leaves its confirm to `pipeline` (core/pipeline.py), whose
    window holds at most `window` unconfirmed messages.
    """

    def __init__(
        self,
        transport: Transport,
        backoff: Backoff | None = None,
        *,
        window: int = 1000,
        on_refused: Callable[[list[Ticket]], None] | None = None,
    ) -> None:
        self.transport = transport
        self.backoff = backoff or Backoff()
        self.pipeline = Pipeline(
            transport, window=window, backoff=self.backoff, on_refused=on_refused
        )

    def publish(
        self, queue: str, message: Message, *, delay: float = 0.0, backoff: Backoff | None = None
    ) -> Message:
        """Publish `message`, retrying by `backoff` (this producer's own when None)."""
        call_with_retry(
            lambda: self.transport.publish(queue, message, delay=delay),
            backoff or self.backoff,
            f"publish to {queue!r}",
        )
        return message

    def publish_pipelined(
        self, queue: str, message: Message, *, delay: float = 0.0, backoff: Backoff | None = None
    ) -> Ticket:
        """Write `message` now; its ticket settles when the broker confirms (see Pipeline)."""
        return self.pipeline.publish(queue, message, delay=delay, backoff=backoff)

    def publish_many(
        self, queue: str, messages: Sequence[Message], *, delay: float = 0.0
    ) -> Sequence[Message]:
        call_with_retry(
            lambda: self.transport.publish_many(queue, messages, delay=delay),
            self.backoff,
            f"publish of {len(messages)} messages to {queue!r}",
        )
        return messages
