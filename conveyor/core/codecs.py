"""Codecs for message bodies and results: JSON by default, msgpack optional, pickle opt-in.

The accept list is checked before any decode, so a disallowed content type never reaches a
parser. Sizes and nesting depth are bounded on encode and on decode.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.core.errors import (
    ContentDisallowed,
    DecodeError,
    EncodeError,
    MessageTooLarge,
    SerializationError,
)
from conveyor.core.jsontext import compact_encoder

DEFAULT_MAX_SIZE = 16 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64


@dataclass(frozen=True)
class Codec:
    name: str
    content_type: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


_to_json = compact_encoder()


def _json_encode(value: Any) -> bytes:
    return _to_json(value).encode()


def _json_decode(data: bytes) -> Any:
    return json.loads(data)


def _msgpack_codec() -> Codec:
    try:
        import msgpack
    except ImportError:  # pragma: no cover - depends on the environment
        raise EncodeError("msgpack is not installed: pip install 'conveyor[msgpack]'") from None
    return Codec(
        "msgpack",
        "application/x-msgpack",
        lambda value: msgpack.packb(value, use_bin_type=True),
        lambda data: msgpack.unpackb(data, raw=False, strict_map_key=False),
    )


_JSON = Codec("json", "application/json", _json_encode, _json_decode)
_PICKLE = Codec("pickle", "application/x-python-serialize", pickle.dumps, pickle.loads)
CODECS: dict[str, Callable[[], Codec]] = {
    "json": lambda: _JSON,
    "msgpack": _msgpack_codec,
    "pickle": lambda: _PICKLE,
}
CONTENT_TYPES = {
    "application/json": "json",
    "application/x-msgpack": "msgpack",
    "application/x-python-serialize": "pickle",
}


def get_codec(name_or_type: str) -> Codec:
    """Look a codec up by short name ('json') or content type ('application/json')."""
    factory = CODECS.get(CONTENT_TYPES.get(name_or_type, name_or_type))
    if factory is None:
        raise ContentDisallowed(f"unknown serializer or content type {name_or_type!r}")
    return factory()


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _json_may_exceed(data: bytes, limit: int) -> bool:
    """Whether JSON text may nest deeper than `limit`. Every level opens with '[' or '{',
    so text with no more of those than `limit` cannot; a quick bound that spares walking
    the value (brackets inside strings only make it more cautious)."""
    return data.count(b"[") + data.count(b"{") > limit


class Serializer:
    """Encodes and decodes with an accept list and limits.

    `accept` lists short names or content types; pickle is refused unless named there.
    """

    def __init__(
        self,
        accept: list[str] | tuple[str, ...] = ("json",),
        max_size: int = DEFAULT_MAX_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.accepted = frozenset(get_codec(name).content_type for name in accept)
        self.max_size = max_size
        self.max_depth = max_depth

    def encode(self, value: Any, serializer: str = "json") -> tuple[bytes, str]:
        """Return (body, content_type)."""
        codec = get_codec(serializer)
        json_text = codec is _JSON  # checked after encoding, by the quick bound first
        if not json_text and _depth_exceeds(value, self.max_depth):
            raise self._too_deep(EncodeError, "value")
        try:
            body = codec.encode(value)
        except RecursionError:
            raise self._too_deep(EncodeError, "value") from None
        except (TypeError, ValueError, OverflowError, pickle.PicklingError) as exc:
            raise EncodeError(f"cannot encode with {codec.name}: {exc}") from None
        walk = json_text and _json_may_exceed(body, self.max_depth)
        if walk and _depth_exceeds(value, self.max_depth):
            raise self._too_deep(EncodeError, "value")
        if len(body) > self.max_size:
            raise MessageTooLarge(
                f"encoded value is {len(body)} bytes, over the limit of {self.max_size}"
            )
        return body, codec.content_type

    def decode(self, body: bytes, content_type: str) -> Any:
        """Decode `body`; content types outside the accept list are refused unread."""
        if content_type not in self.accepted:
            raise ContentDisallowed(
                f"content type {content_type!r} is not accepted "
                f"(accepted: {', '.join(sorted(self.accepted))})"
            )
        if len(body) > self.max_size:
            raise DecodeError(f"body is {len(body)} bytes, over the limit of {self.max_size}")
        try:
            value = get_codec(content_type).decode(body)
        except RecursionError:
            raise self._too_deep(DecodeError, "body") from None
        except Exception as exc:
            raise DecodeError(f"cannot decode {content_type}: {exc}") from None
        json_text = content_type == _JSON.content_type
        if json_text and not _json_may_exceed(body, self.max_depth):
            return value
        if _depth_exceeds(value, self.max_depth):
            raise self._too_deep(DecodeError, "body")
        return value

    def _too_deep(self, error: type[SerializationError], what: str) -> SerializationError:
        return error(f"{what} nests deeper than {self.max_depth} levels")
