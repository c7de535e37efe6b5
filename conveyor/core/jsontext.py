"""Compact JSON text from one reusable encoder. PRIVATE HOOK OF CPYTHON: the only module of
conveyor that uses `json.encoder.c_make_encoder`.

``json.JSONEncoder.encode`` builds a new C encoder object on every call, about a third of
the cost of encoding a task message. `compact_encoder` builds it once, through the C
encoder's constructor, which CPython does not document. It skips the circular-reference
bookkeeping, so a value that contains itself ends in RecursionError (callers report it as
too deeply nested) instead of ValueError.

The hook is checked once, at import: it must exist (not on PyPy) and encode a probe value to
the text `json.dumps` gives. If not, one log line says so and every encoder takes the public
path (`json.JSONEncoder(...).encode`, the same text, slower). requires-python caps CPython
below 4.
"""

from __future__ import annotations

import json
import json.encoder
import logging
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

log = logging.getLogger("conveyor.core")
_PROBE: Any = {"a": [1, 2.5, None, True, "é\n"], "b": {}}


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _private_encoder(
    make: Any, default: Callable[[Any], Any], allow_nan: bool
) -> Callable[[Any], str]:
    encoder = make(None, default, encode_basestring, None, ":", ",", False, False, allow_nan)

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


def _public_encoder(default: Callable[[Any], Any], allow_nan: bool) -> Callable[[Any], str]:
    return json.JSONEncoder(
        ensure_ascii=False,
        separators=(",", ":"),
        default=default,
        allow_nan=allow_nan,
        check_circular=False,
    ).encode


def usable_hook(make: Any) -> bool:
    """Whether `make` (CPython's c_make_encoder, or None) builds an encoder that writes what
    json.dumps writes; False, not an error, for anything else."""
    if make is None:
        return False
    expected = json.dumps(_PROBE, ensure_ascii=False, separators=(",", ":"))
    try:
        return _private_encoder(make, _no_default, False)(_PROBE) == expected
    except Exception:
        return False


def checked_hook(make: Any) -> Any:
    """`make` if it is usable, else None after one log line."""
    if usable_hook(make):
        return make
    log.warning(
        "json.encoder.c_make_encoder is missing or changed: JSON takes the public encoder "
        "(same text, slower)"
    )
    return None


c_make_encoder: Any = checked_hook(getattr(json.encoder, "c_make_encoder", None))
"""The checked hook, or None: decided once, at import."""


def compact_encoder(
    default: Callable[[Any], Any] | None = None, allow_nan: bool = False
) -> Callable[[Any], str]:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"), ...)` as a function."""
    default = default or _no_default
    if c_make_encoder is None:
        return _public_encoder(default, allow_nan)
    return _private_encoder(c_make_encoder, default, allow_nan)
