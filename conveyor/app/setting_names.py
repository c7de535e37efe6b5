"""Checking setting names as they are set: a misspelled name is never taken silently.

`conf.update(broker_ur=...)` used to store a setting nobody reads, and the app went on with
the default broker. Every setting conveyor reads has a default (config.DEFAULTS), so a
name outside that table is unknown: it is still stored (user code may read its own
settings), with a warning that names the nearest known setting. With `strict_settings`
set, an unknown name raises ConfigurationError instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection

from conveyor.core.errors import ConfigurationError


class UnknownSetting(UserWarning):
    """A setting name conveyor does not know (most likely misspelled)."""


def describe(name: str, known: Collection[str]) -> str:
    import difflib  # only for the hint of an error, not at every start

    nearest = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    hint = f"; did you mean {nearest[0]!r}?" if nearest else ""
    return f"unknown setting {name!r}{hint}"


def check(name: str, known: Collection[str], *, strict: bool) -> None:
    """Warn (or, when `strict`, raise) if `name` is not a known setting."""
    if name in known:
        return
    text = describe(name, known)
    if strict:
        raise ConfigurationError(text)
    warnings.warn(text, UnknownSetting, stacklevel=4)
