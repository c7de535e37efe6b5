"""Remote control: revoke (durable, in the result backend) and inspect (broadcast).

Revocation is a REVOKED record in the result backend, which every worker reads before it
runs a task, so a worker that is offline now still honours it later. `terminate=True` and
`inspect` also need the transport's broadcast capability to reach live workers.

Broadcast wire format (JSON on channel ``_control``): ``{"command": ..., "arguments": {...},
"reply_to": channel | null}``; each worker answers on `reply_to` with
``{"hostname": ..., "reply": ...}``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from conveyor.app import states
from conveyor.backends.base import ResultRecord, now
from conveyor.core.message import Message

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor

CONTROL_CHANNEL = "_control"


def control_message(command: str, arguments: dict[str, Any], reply_to: str | None) -> Message:
    body = {"command": command, "arguments": arguments, "reply_to": reply_to}
    return Message(json.dumps(body).encode(), reply_to=reply_to)


class Inspect:
    """Ask live workers; each method returns ``{hostname: reply}`` within `timeout`."""

    def __init__(self, app: Conveyor, timeout: float = 1.0) -> None:
        self.app = app
        self.timeout = timeout

    def _collect(self, command: str) -> dict[str, Any]:
        transport = self.app.transport
        reply_to = f"_reply_{uuid.uuid4().hex}"
        subscription = transport.subscribe(reply_to)
        try:
            transport.broadcast(CONTROL_CHANNEL, control_message(command, {}, reply_to))
            replies: dict[str, Any] = {}
            deadline = time.monotonic() + self.timeout
            while (left := deadline - time.monotonic()) > 0:
                message = subscription.get(left)
                if message is None:
                    break
                answer = json.loads(message.body)
                replies[answer["hostname"]] = answer["reply"]
            return replies
        finally:
            subscription.close()

    def ping(self) -> dict[str, Any]:
        return self._collect("ping")

    def registered(self) -> dict[str, Any]:
        return self._collect("registered")

    def active(self) -> dict[str, Any]:
        return self._collect("active")


class Control:
    def __init__(self, app: Conveyor) -> None:
        self.app = app

    def revoke(self, task_id: str | list[str], terminate: bool = False) -> None:
        """Mark the task(s) REVOKED; with `terminate`, also stop a running one (broadcast)."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        for one in ids:
            self.app.backend.store(ResultRecord(one, states.REVOKED, date_done=now()))
        if terminate:
            self.app.transport.broadcast(
                CONTROL_CHANNEL, control_message("revoke", {"ids": ids, "terminate": True}, None)
            )

    def inspect(self, timeout: float = 1.0) -> Inspect:
        return Inspect(self.app, timeout)

    def ping(self, timeout: float = 1.0) -> dict[str, Any]:
        return Inspect(self.app, timeout).ping()
