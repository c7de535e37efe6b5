"""Message <-> AMQP properties, byte-exact both ways.

The body travels untouched. The properties go into their native AMQP fields so other AMQP
clients can read them; what AMQP cannot carry exactly travels in one JSON string header,
``x-conveyor-meta``: the conveyor headers (AMQP tables have no float or null), the
fractional timestamp, and any string property longer than AMQP's 255-byte short string or
a priority outside 0-255. Conveyor's bookkeeping (earlier deliveries, dead-letter reason)
rides in ``x-conveyor-*`` headers that never reach `Message.headers`.

A message from a foreign producer (no meta header) is read from the native fields, its
AMQP headers becoming `Message.headers`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pika.spec import BasicProperties

from conveyor.core.errors import EncodeError
from conveyor.core.jsontext import compact_encoder
from conveyor.core.message import Message, new_message_id

META = "x-conveyor-meta"
PREVIOUS = "x-conveyor-deliveries"  # deliveries before this copy was published
REASON = "x-conveyor-reason"
DEAD_AT = "x-conveyor-dead-at"
PERSISTENT = 2
_SHORT = 255
_dumps = compact_encoder(allow_nan=True)
_STRINGS = (
    ("message_id", "id", "id"),
    ("content_type", "content_type", "ct"),
    ("content_encoding", "content_encoding", "ce"),
    ("correlation_id", "correlation_id", "cid"),
    ("reply_to", "reply_to", "rt"),
)


def encode(
    message: Message, *, previous: int = 0, dead: tuple[str, float] | None = None
) -> tuple[BasicProperties, int]:
    """AMQP properties for `message`, and the bytes the message costs (body + metadata)."""
    meta: dict[str, Any] = {"h": message.headers, "ts": message.timestamp}
    native: dict[str, Any] = {}
    for prop, attr, key in _STRINGS:
        value = getattr(message, attr)
        if value is not None and len(value.encode()) > _SHORT:
            meta[key] = value
        else:
            native[prop] = value
    priority = message.priority
    if not 0 <= priority <= 255:
        meta["p"] = priority
        priority = max(0, min(priority, 255))
    try:
        meta_text = _dumps(meta)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"message headers must be JSON values: {exc}") from None
    headers: dict[str, Any] = {META: meta_text}
    if previous:
        headers[PREVIOUS] = previous
    if dead is not None:
        headers[REASON], headers[DEAD_AT] = dead[0], repr(dead[1])
    properties = BasicProperties(
        delivery_mode=PERSISTENT,
        priority=priority,
        timestamp=int(message.timestamp),
        headers=headers,
        **native,
    )
    return properties, len(message.body) + len(meta_text) + 64


def decode(properties: BasicProperties, body: bytes) -> Message:
    """The Message that `encode` turned into `properties` (or a foreign AMQP message).

    Never raises: a message whose meta header is damaged is read like a foreign one, so it
    still reaches a consumer, which can dead-letter it with a reason.
    """
    headers = properties.headers or {}
    raw = headers.get(META)
    if raw is None:
        return _foreign(properties, body, headers)
    try:
        meta = json.loads(raw)
        return Message(
            body=body,
            headers=meta["h"],
            id=meta.get("id", properties.message_id),
            content_type=meta.get("ct", properties.content_type),
            content_encoding=meta.get("ce", properties.content_encoding),
            priority=meta.get("p", properties.priority or 0),
            timestamp=meta["ts"],
            correlation_id=meta.get("cid", properties.correlation_id),
            reply_to=meta.get("rt", properties.reply_to),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return _foreign(properties, body, headers)


def previous_deliveries(properties: BasicProperties) -> int:
    """Deliveries counted before this copy was (re)published by conveyor."""
    value = (properties.headers or {}).get(PREVIOUS, 0)
    return value if isinstance(value, int) else 0


def dead_letter_info(properties: BasicProperties) -> tuple[str, float]:
    """The reason and time recorded when conveyor dead-lettered this message."""
    headers = properties.headers or {}
    reason = _text(headers.get(REASON, "unknown"))
    try:
        dead_at = float(_text(headers.get(DEAD_AT, "0")))
    except ValueError:
        dead_at = 0.0
    return reason, dead_at


def _foreign(properties: BasicProperties, body: bytes, headers: dict[str, Any]) -> Message:
    """A message from another AMQP client: what its properties say, sensible defaults else.

    No content type reads as opaque bytes; JSON and text without an encoding read as UTF-8
    (JSON is UTF-8 by definition).
    """
    timestamp = properties.timestamp
    content_type = properties.content_type or "application/octet-stream"
    textual = content_type.startswith(("application/json", "text/"))
    return Message(
        body=body,
        headers={k: _jsonable(v) for k, v in headers.items() if not k.startswith("x-conveyor-")},
        id=properties.message_id or new_message_id(),
        content_type=content_type,
        content_encoding=properties.content_encoding or ("utf-8" if textual else "binary"),
        priority=properties.priority or 0,
        timestamp=float(timestamp) if timestamp is not None else time.time(),
        correlation_id=properties.correlation_id,
        reply_to=properties.reply_to,
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _jsonable(value: Any) -> Any:
    """An AMQP table value as a JSON value (bytes become text, timestamps numbers)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return _text(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)
