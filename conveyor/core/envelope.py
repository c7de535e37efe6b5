"""The byte form of a Message for brokers that store one opaque value per message.

Layout: the magic ``CV1``, a 4-byte big-endian length, a compact JSON object of the
properties and headers, then the body bytes untouched. The body is never re-encoded, so
binary bodies cost nothing and survive byte for byte.
"""

from __future__ import annotations

import json
import math
import struct
from json.encoder import encode_basestring as _quote  # what _dumps uses for strings
from typing import Any

from conveyor.core.errors import DecodeError, EncodeError
from conveyor.core.jsontext import compact_encoder
from conveyor.core.message import Message

MAGIC = b"CV1"
_LENGTH = struct.Struct(">I")
_PREFIX = len(MAGIC) + _LENGTH.size
_dumps = compact_encoder(allow_nan=True)
_loads = json.loads


def pack(message: Message) -> bytes:
    """Encode a message into one byte string."""
    try:
        head = (_quick_head(message) or _dumps(_meta(message))).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        raise EncodeError(f"message headers must be JSON values: {exc!r}") from None
    return b"".join((MAGIC, _LENGTH.pack(len(head)), head, message.body))


def _meta(message: Message) -> dict[str, Any]:
    meta = {
        "id": message.id,
        "ct": message.content_type,
        "ce": message.content_encoding,
        "p": message.priority,
        "ts": message.timestamp,
        "h": message.headers,
    }
    if message.correlation_id is not None:
        meta["cid"] = message.correlation_id
    if message.reply_to is not None:
        meta["rt"] = message.reply_to
    return meta


def _quick_head(message: Message) -> str | None:
    """`_dumps(_meta(message))` for the usual field types, twice as fast; else None.

    The hot path of every publish: json's own string escaper and number reprs, in one
    format string instead of a dict walked by the encoder. Same bytes, by construction.
    """
    m = message
    ts, priority, headers, cid, rt = (
        m.timestamp,
        m.priority,
        m.headers,
        m.correlation_id,
        m.reply_to,
    )
    if not (
        type(ts) is float
        and math.isfinite(ts)
        and type(priority) is int
        and type(headers) is dict
        and type(m.id) is str
        and type(m.content_type) is str
        and type(m.content_encoding) is str
        and (cid is None or type(cid) is str)
        and (rt is None or type(rt) is str)
    ):
        return None
    head = (
        f'{{"id":{_quote(m.id)},"ct":{_quote(m.content_type)},'
        f'"ce":{_quote(m.content_encoding)},"p":{priority!r},"ts":{ts!r},'
        f'"h":{_dumps(headers) if headers else "{}"}'
    )
    if cid is not None:
        head += f',"cid":{_quote(cid)}'
    if rt is not None:
        head += f',"rt":{_quote(rt)}'
    return head + "}"


def unpack(data: bytes) -> Message:
    """Decode bytes made by `pack`; anything else raises DecodeError."""
    if data[:3] != MAGIC or len(data) < _PREFIX:
        raise DecodeError("not a conveyor envelope (bad magic)")
    (length,) = _LENGTH.unpack_from(data, 3)
    end = _PREFIX + length
    if end > len(data):
        raise DecodeError("truncated conveyor envelope")
    try:
        meta = _loads(data[_PREFIX:end].decode())  # str: json skips sniffing the encoding
        return Message(
            body=bytes(data[end:]),
            headers=meta["h"],
            id=meta["id"],
            content_type=meta["ct"],
            content_encoding=meta["ce"],
            priority=meta["p"],
            timestamp=meta["ts"],
            correlation_id=meta.get("cid"),
            reply_to=meta.get("rt"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise DecodeError(f"malformed conveyor envelope: {exc}") from None


def packed_size(message: Message) -> int:
    """The size `pack(message)` produces, used to enforce size limits before sending."""
    return len(pack(message))
