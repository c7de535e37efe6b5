"""The task message wire format, version 1 (docs/protocol.md, docs/task-message.schema.json).

A task travels as one transport Message: the body is a JSON object (or the configured
serializer's equivalent), the content type names the serializer, and `correlation_id`
carries the task id so a worker can mark FAILURE even when the body cannot be read.
Nothing Python-specific is on the wire: any language can produce or consume tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from conveyor.app.call_checks import unencodable_json
from conveyor.core import compression as compressing
from conveyor.core.codecs import Serializer
from conveyor.core.errors import DecodeError, EncodeError
from conveyor.core.message import Message

VERSION = 1


class ProtocolError(DecodeError):
    """A body that decodes but is not a valid version-1 task message."""


@dataclass(slots=True)
class TaskMessage:
    """The fields of one task invocation. `eta` and `expires` are ISO 8601 UTC strings."""

    id: str
    task: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    eta: str | None = None
    expires: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    group_id: str | None = None
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    errbacks: list[dict[str, Any]] = field(default_factory=list)
    ignore_result: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "id": self.id,
            "task": self.task,
            "args": self.args,
            "kwargs": self.kwargs,
            "retries": self.retries,
            "eta": self.eta,
            "expires": self.expires,
            "root_id": self.root_id,
            "parent_id": self.parent_id,
            "group_id": self.group_id,
            "callbacks": self.callbacks,
            "errbacks": self.errbacks,
            "ignore_result": self.ignore_result,
        }


_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "task": (str,),
    "args": (list,),
    "kwargs": (dict,),
    "retries": (int,),
    "eta": (str, type(None)),
    "expires": (str, type(None)),
    "root_id": (str, type(None)),
    "parent_id": (str, type(None)),
    "group_id": (str, type(None)),
    "callbacks": (list,),
    "errbacks": (list,),
    "ignore_result": (bool,),
}
_REQUIRED = ("id", "task")


def encode(
    task: TaskMessage,
    serializer: Serializer,
    *,
    codec: str = "json",
    priority: int = 0,
    headers: dict[str, Any] | None = None,
    compression: str | None = None,
    reply_to: str | None = None,
) -> Message:
    """The transport Message for `task`; EncodeError if an argument cannot be encoded.

    With `compression` ('zlib', ...) the body is compressed and a header says how.
    """
    try:
        body, content_type = serializer.encode(task.to_dict(), codec)
    except EncodeError as exc:
        where = unencodable_json(task.args, task.kwargs) if codec == "json" else None
        if where is None:
            raise
        raise EncodeError(f"task {task.task}: {where} ({exc})") from None
    headers = headers or {}
    if compression:
        body, method = compressing.compress(body, compression)
        headers = {**headers, compressing.HEADER: method}
    return Message(
        body=body,
        headers=headers,
        content_type=content_type,
        priority=priority,
        correlation_id=task.id,
        reply_to=reply_to,
    )


def decode(message: Message, serializer: Serializer) -> TaskMessage:
    """Read and validate a task message; ContentDisallowed, DecodeError or ProtocolError."""
    body = compressing.decompress(message.body, message.headers, serializer.max_size)
    data = serializer.decode(body, message.content_type)
    if not isinstance(data, dict):
        raise ProtocolError(f"task body must be an object, not {type(data).__name__}")
    version = data.get("v")
    if version != VERSION:
        raise ProtocolError(f"unsupported task protocol version {version!r} (expected {VERSION})")
    for name in _REQUIRED:
        if name not in data:
            raise ProtocolError(f"task body has no {name!r}")
    values: dict[str, Any] = {}
    for name, kinds in _TYPES.items():
        if name not in data:
            continue
        value = data[name]
        if not isinstance(value, kinds) or (name == "retries" and isinstance(value, bool)):
            raise ProtocolError(f"task field {name!r} has the wrong type {type(value).__name__}")
        values[name] = value
    if not values["id"] or not values["task"]:
        raise ProtocolError("task 'id' and 'task' must be non-empty")
    for name in ("eta", "expires"):
        if values.get(name) is not None:
            parse_time(values[name])
    return TaskMessage(**values)


def format_time(epoch: float) -> str:
    """An ISO 8601 UTC timestamp with microseconds, e.g. 2026-01-02T03:04:05.000006+00:00."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="microseconds")


def parse_time(text: str) -> float:
    """Epoch seconds from an ISO 8601 timestamp; one without an offset is read as UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolError(f"not an ISO 8601 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
