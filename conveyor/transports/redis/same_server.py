"""The Redis transport's SameServer offer (conveyor.core.transport.SameServer): a result
backend on the same Redis database sends its commands in the write that publishes, so the
PENDING record and the message of a `delay()` cost one round trip, not two.

Decided without I/O: the endpoint is the connection settings that name the database
(conveyor.clients.redis.endpoint_of), and a link with several hosts offers nothing, since
which server answers is known only after connecting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from conveyor.core.message import Message
from conveyor.core.transport import SameServer

if TYPE_CHECKING:
    from conveyor.transports.redis.transport import RedisTransport


class RedisSameServer(SameServer):
    """Another component's commands, then the LPUSH of one message, in one write."""

    def __init__(self, transport: RedisTransport, endpoint: dict[str, Any]) -> None:
        self._transport = transport
        self.endpoint = endpoint

    def publish_after(
        self, commands: Sequence[tuple[Any, ...]], queue: str, message: Message
    ) -> list[Any]:
        transport = self._transport
        what = f"publish to {queue!r}"
        push = transport.publish_command(queue, message)  # validation raises before I/O
        *replies, pushed = transport.link.send_all(what, [*commands, push])
        if isinstance(pushed, Exception):
            raise transport.link.translate(pushed, what)
        return replies
