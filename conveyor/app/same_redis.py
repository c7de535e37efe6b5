"""One round trip for a task's PENDING record and its message, when the broker and the
result backend are the same Redis database.

`send_task` otherwise overlaps the two writes on two connections (store_during): two
requests and two replies per call, most of a `delay()`'s client CPU. Here both go in one
write on one connection, the PENDING record first (RedisBackend.pending_command). A delay
or a lost connection falls back to the general path, which owns the retries.
"""

from __future__ import annotations

import sys
from typing import Any

from conveyor.backends.base import ResultBackend, ResultRecord
from conveyor.core.errors import BrokerUnavailable
from conveyor.core.message import Message
from conveyor.core.transport import Transport


class SameRedis:
    """PENDING + publish in one round trip, active when `transport` and `backend` are
    conveyor's Redis components on the same database (decided once, without I/O)."""

    def __init__(self, transport: Transport, backend: ResultBackend) -> None:
        self.transport: Any = transport
        self.backend: Any = backend
        # Only a Redis pair can be active, and its modules are loaded if it is one: looking
        # them up instead of importing keeps an install without the redis extra working.
        transports = sys.modules.get("conveyor.transports.redis")
        backends = sys.modules.get("conveyor.backends.redis")
        self.active = (
            transports is not None
            and backends is not None
            and isinstance(transport, transports.RedisTransport)
            and isinstance(backend, backends.RedisBackend)
            and transport.endpoint() == backend.endpoint()
        )

    def store_and_publish(self, record: ResultRecord, queue: str, message: Message) -> bool:
        """Store `record` and publish `message` in one round trip. False when inactive, or
        when the connection failed (either may have been sent): the caller sends both on
        the general path, the message keeping its id as in any publish retry."""
        if not self.active:
            return False
        what = f"publish to {queue!r}"
        commands = [
            self.backend.pending_command(record),
            self.transport.publish_command(queue, message),
        ]
        try:
            stored, pushed = self.transport.link.send_all(what, commands)
        except BrokerUnavailable:  # and ConnectionLost: resend on the general path
            return False
        if isinstance(pushed, Exception):
            raise self.transport.link.translate(pushed, what)
        if isinstance(stored, Exception):
            self.backend.store(record)  # the write failed: store it on its own
        return True
