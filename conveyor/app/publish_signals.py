"""before_task_publish / after_task_publish, sent by `Conveyor.send_task`.

Celery's arguments: `sender` is the task name, `body` the message body (conveyor's
version-1 task object as a dict, not Celery's ``(args, kwargs, embed)`` tuple),
`routing_key` the queue, `exchange` always "" (conveyor publishes to queues), and
`headers` the message headers with the task's ``id`` and ``task`` added, as in Celery's
protocol. A receiver of before_task_publish may add headers (tracing ids, ...): what it
leaves in `headers`, but ``id`` and ``task``, is sent.
"""

from __future__ import annotations

from typing import Any

from conveyor import signals
from conveyor.app.protocol import TaskMessage

_OWN = ("id", "task")


def _headers(body: TaskMessage, headers: dict[str, Any] | None) -> dict[str, Any]:
    return {**(headers or {}), "id": body.id, "task": body.task}


def before(body: TaskMessage, queue: str, headers: dict[str, Any] | None) -> dict[str, Any] | None:
    """Send before_task_publish; returns the headers to send."""
    if not signals.before_task_publish.receivers:
        return headers
    shown = _headers(body, headers)
    signals.before_task_publish.send(
        sender=body.task,
        body=body.to_dict(),
        exchange="",
        routing_key=queue,
        headers=shown,
        properties={},
        declare=[],
        retry_policy=None,
    )
    return {name: value for name, value in shown.items() if name not in _OWN}


def after(body: TaskMessage, queue: str, headers: dict[str, Any]) -> None:
    if signals.after_task_publish.receivers:
        signals.after_task_publish.send(
            sender=body.task,
            body=body.to_dict(),
            exchange="",
            routing_key=queue,
            headers=_headers(body, headers),
        )
