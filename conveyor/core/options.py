"""Typed options from URL query strings.

Each transport or backend declares a dataclass of its options with defaults; the query
string fills it, converting text to each field's type. Unknown names and bad values fail
at construction, naming the option and what it accepts.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from conveyor.core.errors import InvalidURL

T = TypeVar("T")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, text: str, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if text.lower() in ("", "none", "null"):
            return None
        return _convert(name, text, args[0])
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
        if kind in (int, float, str):
            return kind(text)
    except ValueError:
        pass
    else:
        raise InvalidURL(f"option {name!r} has an unsupported type {kind!r}")
    raise InvalidURL(f"option {name}={text!r} is not a valid {getattr(kind, '__name__', kind)}")


def parse_options(cls: type[T], values: dict[str, str], **overrides: Any) -> T:
    """Build `cls` (a dataclass) from query-string `values`, then apply `overrides`."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for name, text in values.items():
        if name not in known:
            import difflib  # only for the hint of an error, not at every start

            near = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise InvalidURL(
                f"unknown option {name!r}{hint} Known options: {', '.join(sorted(known))}"
            )
        kwargs[name] = _convert(name, text, hints[name])
    for name, value in overrides.items():
        if name not in known:
            raise InvalidURL(f"unknown option {name!r}; known: {', '.join(sorted(known))}")
        kwargs[name] = value
    options = cls(**kwargs)
    validate = getattr(options, "validate", None)
    if validate is not None:
        validate()
    return options
