"""Body compression: ``compression="zlib"`` on send, undone on receive by a header.

A compressed message keeps its serializer's content type and says how its body was
compressed in the ``compression`` header (e.g. ``application/zlib``), so a consumer knows
to decompress before the accept-list check and the decode. Decompression stops at the
serializer's size limit: a small body that would expand past it (a "zip bomb") is refused
with DecodeError instead of filling memory. Only standard-library methods are offered.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from conveyor.core.errors import DecodeError, EncodeError

HEADER = "compression"


class _Decompressor(Protocol):
    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


@dataclass(frozen=True)
class Method:
    name: str
    content_type: str
    compress: Callable[[bytes], bytes]
    decompressor: Callable[[], _Decompressor]


_METHODS = {
    method.name: method
    for method in (
        Method("zlib", "application/zlib", zlib.compress, zlib.decompressobj),
        Method("bzip2", "application/x-bz2", bz2.compress, bz2.BZ2Decompressor),
        Method("lzma", "application/x-lzma", lzma.compress, lzma.LZMADecompressor),
    )
}
_ALIASES = {"gzip": "zlib", "bz2": "bzip2", "xz": "lzma"}
_BY_CONTENT_TYPE = {method.content_type: method for method in _METHODS.values()}


def method(name: str) -> Method:
    """The compression method called `name` ('zlib', 'gzip', 'bzip2', 'lzma')."""
    found = _METHODS.get(_ALIASES.get(name, name))
    if found is None:
        known = ", ".join(sorted({*_METHODS, *_ALIASES}))
        raise EncodeError(f"unknown compression {name!r} (known: {known})")
    return found


def compress(body: bytes, name: str) -> tuple[bytes, str]:
    """The compressed body and the header value that names its method."""
    chosen = method(name)
    return chosen.compress(body), chosen.content_type


def decompress(body: bytes, headers: dict[str, Any], max_size: int) -> bytes:
    """`body` as sent, before compression (unchanged when the headers name none)."""
    content_type = headers.get(HEADER)
    if content_type is None:
        return body
    chosen = _BY_CONTENT_TYPE.get(content_type) if isinstance(content_type, str) else None
    if chosen is None:
        raise DecodeError(f"unknown compression {content_type!r} in the message headers")
    try:
        plain = chosen.decompressor().decompress(body, max_size + 1)
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError) as exc:
        raise DecodeError(f"cannot decompress a {chosen.name} body: {exc}") from None
    if len(plain) > max_size:
        raise DecodeError(f"{chosen.name} body expands past the limit of {max_size} bytes; refused")
    return plain
