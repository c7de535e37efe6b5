"""Waiting on a condition with a deadline: the tests' replacement for sleep-and-hope."""

from __future__ import annotations

import time
from collections.abc import Callable

STARTUP = 120.0
"""The deadline for a started process's ready line (seconds). It is a wait, not a bound on
speed: a process that exits is seen at once, and on a loaded 2-core CI box an e2e worker
took over 30 s (its interpreter, imports and sibling fork at load 12)."""


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll `condition` until it is true or `timeout` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return condition()
        time.sleep(interval)
    return True
