"""Remote control: revoke (durable, in the result backend), and broadcast commands and
inspection of live workers, with Celery's method names, arguments and reply shapes.

Revocation is a REVOKED record in the result backend, which every worker reads before it
runs a task, so a worker that is offline now still honours it later. Everything else
needs the transport's broadcast capability to reach live workers.

Broadcast wire format (JSON on channel ``_control``): ``{"command": ..., "arguments": {...},
"reply_to": channel | null, "destination": [hostname, ...] | null}``; each worker named by
`destination` (every worker when null) answers on `reply_to` with
``{"hostname": ..., "reply": ...}``.

Shapes as Celery's: ``app.control.ping()`` and ``broadcast(..., reply=True)`` return a list
of ``{hostname: reply}``; ``app.control.inspect().ping()`` returns ``{hostname: {"ok":
"pong"}}`` and ``{}`` when nobody answered.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from conveyor.app import states
from conveyor.backends.base import ResultRecord, now
from conveyor.core.message import Message

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor

CONTROL_CHANNEL = "_control"
Destination = Sequence[str] | str | None


def control_message(
    command: str,
    arguments: dict[str, Any],
    reply_to: str | None,
    destination: list[str] | None = None,
) -> Message:
    body = {
        "command": command,
        "arguments": arguments,
        "reply_to": reply_to,
        "destination": destination,
    }
    return Message(json.dumps(body).encode(), reply_to=reply_to)


def _hosts(destination: Destination) -> list[str] | None:
    if destination is None:
        return None
    return [destination] if isinstance(destination, str) else list(destination)


class Inspect:
    """Ask live workers; each method returns ``{hostname: reply}`` (``{}`` when nobody
    answered within `timeout`)."""

    def __init__(
        self,
        app: Conveyor,
        timeout: float = 1.0,
        destination: Destination = None,
        limit: int | None = None,
        callback: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.app = app
        self.timeout = timeout
        self.destination = destination
        self.limit = limit
        self.callback = callback

    def _request(self, command: str, **arguments: Any) -> dict[str, Any]:
        replies = self.app.control.broadcast(
            command,
            arguments,
            destination=self.destination,
            reply=True,
            timeout=self.timeout,
            limit=self.limit,
            callback=self.callback,
        )
        return {host: answer for one in replies for host, answer in one.items()}

    def ping(self) -> dict[str, Any]:
        return self._request("ping")

    def registered(self, *taskinfoitems: str) -> dict[str, Any]:
        return self._request("registered")

    registered_tasks = registered

    def active(self) -> dict[str, Any]:
        return self._request("active")

    def scheduled(self) -> dict[str, Any]:
        return self._request("scheduled")

    def reserved(self) -> dict[str, Any]:
        return self._request("reserved")

    def revoked(self) -> dict[str, Any]:
        return self._request("revoked")

    def stats(self) -> dict[str, Any]:
        return self._request("stats")

    def active_queues(self) -> dict[str, Any]:
        return self._request("active_queues")

    def query_task(self, *ids: str | list[str]) -> dict[str, Any]:
        flat = [one for item in ids for one in ([item] if isinstance(item, str) else item)]
        return self._request("query_task", ids=flat)

    def conf(self, with_defaults: bool = False) -> dict[str, Any]:
        return self._request("conf", with_defaults=with_defaults)

    def report(self) -> dict[str, Any]:
        return self._request("report")


class Control:
    """`app.control`: Celery's remote-control API."""

    def __init__(self, app: Conveyor) -> None:
        self.app = app

    def inspect(
        self,
        timeout: float = 1.0,
        destination: Destination = None,
        limit: int | None = None,
        callback: Callable[[dict[str, Any]], Any] | None = None,
    ) -> Inspect:
        return Inspect(self.app, timeout, destination, limit, callback)

    def broadcast(
        self,
        command: str,
        arguments: dict[str, Any] | None = None,
        destination: Destination = None,
        reply: bool = False,
        timeout: float = 1.0,
        limit: int | None = None,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        **extra: Any,
    ) -> list[dict[str, Any]]:
        """Send `command` to the live workers; with `reply`, collect ``{hostname: reply}``
        answers for `timeout` seconds (or until `limit` answers, or every destination)."""
        arguments = {**(arguments or {}), **extra}
        transport = self.app.transport
        hosts = _hosts(destination)
        if not reply:
            transport.broadcast(CONTROL_CHANNEL, control_message(command, arguments, None, hosts))
            return []
        reply_to = f"_reply_{uuid.uuid4().hex}"
        subscription = transport.subscribe(reply_to)
        wanted = limit or (len(hosts) if hosts else None)
        try:
            transport.broadcast(
                CONTROL_CHANNEL, control_message(command, arguments, reply_to, hosts)
            )
            replies: list[dict[str, Any]] = []
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                message = subscription.get(left)
                if message is None:
                    break
                answer = json.loads(message.body)
                one = {answer["hostname"]: answer["reply"]}
                replies.append(one)
                if callback is not None:
                    callback(one)
                if wanted is not None and len(replies) >= wanted:
                    break
            return replies
        finally:
            subscription.close()

    def ping(self, destination: Destination = None, timeout: float = 1.0) -> list[dict[str, Any]]:
        """``[{hostname: {"ok": "pong"}}, ...]``, as Celery's."""
        return self.broadcast("ping", destination=destination, reply=True, timeout=timeout)

    def revoke(
        self,
        task_id: str | list[str],
        destination: Destination = None,
        terminate: bool = False,
        signal: str | int = "SIGTERM",
        **options: Any,
    ) -> None:
        """Mark the task(s) REVOKED; with `terminate`, also stop a running one (broadcast;
        a process-pool child is killed, `signal` is reported in task_revoked)."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        for one in ids:
            self.app.backend.store(ResultRecord(one, states.REVOKED, date_done=now()))
        if terminate:
            self.broadcast(
                "revoke",
                {"ids": ids, "terminate": True, "signal": str(signal)},
                destination=destination,
            )

    # The commands below take Celery's `destination=`, `reply=`, `timeout=` and `limit=`
    # (see `broadcast`); with reply=True they return the workers' answers.

    def rate_limit(
        self, task_name: str, rate_limit: str | float | None, **options: Any
    ) -> list[dict[str, Any]]:
        """Set `task_name`'s rate limit ("10/s"; None or 0 for none) on live workers."""
        arguments = {"task_name": task_name, "rate_limit": rate_limit}
        return self.broadcast("rate_limit", arguments, **options)

    def time_limit(
        self, task_name: str, soft: float | None = None, hard: float | None = None, **options: Any
    ) -> list[dict[str, Any]]:
        """Set `task_name`'s time limits on live workers."""
        arguments = {"task_name": task_name, "soft": soft, "hard": hard}
        return self.broadcast("time_limit", arguments, **options)

    def shutdown(self, **options: Any) -> list[dict[str, Any]]:
        """Ask live workers for a warm shutdown."""
        return self.broadcast("shutdown", **options)

    def pool_grow(self, n: int = 1, **options: Any) -> list[dict[str, Any]]:
        return self.broadcast("pool_grow", {"n": n}, **options)

    def pool_shrink(self, n: int = 1, **options: Any) -> list[dict[str, Any]]:
        return self.broadcast("pool_shrink", {"n": n}, **options)

    def autoscale(self, max: int, min: int, **options: Any) -> list[dict[str, Any]]:
        """New bounds for workers started with --autoscale (Celery's argument names)."""
        return self.broadcast("autoscale", {"max": max, "min": min}, **options)

    def add_consumer(self, queue: str, **options: Any) -> list[dict[str, Any]]:
        """Start consuming `queue` on live workers (Celery's exchange options are not
        needed: queues are the routing keys of one direct exchange)."""
        return self.broadcast("add_consumer", {"queue": queue}, **_routing_dropped(options))

    def cancel_consumer(self, queue: str, **options: Any) -> list[dict[str, Any]]:
        return self.broadcast("cancel_consumer", {"queue": queue}, **_routing_dropped(options))


_BROADCAST_OPTIONS = ("destination", "reply", "timeout", "limit", "callback")


def _routing_dropped(options: dict[str, Any]) -> dict[str, Any]:
    """Celery's add_consumer takes exchange/routing_key/...: not needed here."""
    return {name: value for name, value in options.items() if name in _BROADCAST_OPTIONS}
