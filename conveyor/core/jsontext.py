"""Compact JSON text from one reusable encoder.

``json.JSONEncoder.encode`` builds a new C encoder object on every call, about a third of
the cost of encoding a task message. `compact_encoder` builds it once. It skips the
circular-reference bookkeeping, so a value that contains itself ends in RecursionError
(callers report it as too deeply nested) instead of ValueError.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)  # None on PyPy


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def compact_encoder(
    default: Callable[[Any], Any] | None = None, allow_nan: bool = False
) -> Callable[[Any], str]:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"), ...)` as a function."""
    default = default or _no_default
    if c_make_encoder is None:  # pragma: no cover
        return json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), default=default, allow_nan=allow_nan
        ).encode
    encoder = c_make_encoder(
        None, default, encode_basestring, None, ":", ",", False, False, allow_nan
    )

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode
