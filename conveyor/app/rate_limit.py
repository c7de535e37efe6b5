"""Task rate limits in Celery's syntax: ``"10/s"``, ``"100/m"``, ``"1000/h"`` or a number.

A rate is parsed once, when the task is declared (a bad one raises there, naming the task
option and the value), into tasks per second. The worker enforces it per worker with a
token bucket (`RateLimit.bucket`); parsing lives in the app layer so the decorator can
refuse a bad value before any worker sees it.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from conveyor.core.errors import ConfigurationError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:/\s*([smh]))?\s*$")


class InvalidRateLimit(ConfigurationError):
    """A rate limit that is not ``N``, ``N/s``, ``N/m`` or ``N/h``."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`per_second` tasks per second; `text` is the rate as the user wrote it."""

    per_second: float
    text: str

    def bucket(self) -> TokenBucket:
        """A fresh token bucket for one worker, allowing a burst of at most one second's
        worth of tasks (and at least one task)."""
        return TokenBucket(self.per_second, max(1.0, self.per_second))


def parse_rate(value: str | float | int | None) -> RateLimit | None:
    """The rate `value` stands for, or None for "no limit" (None, "", 0, "0/s").

    A plain number means tasks per second, as in Celery.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidRateLimit(
            f"rate limit must be a string like '10/s' or a number, not {type(value).__name__}"
        )
    text = str(value)
    if isinstance(value, (int, float)):
        if value < 0:
            raise InvalidRateLimit(f"rate limit {value!r} is negative")
        per_second = float(value)
    else:
        if not text.strip():
            return None
        match = _RATE.match(text)
        if match is None:
            raise InvalidRateLimit(
                f"rate limit {text!r} is not N, N/s, N/m or N/h (e.g. '10/s', '100/m')"
            )
        count, unit = match.groups()
        per_second = float(count) / _UNITS[unit or "s"]
    if per_second == 0:
        return None
    return RateLimit(per_second, text)


@dataclass
class TokenBucket:
    """A thread-safe token bucket: `rate` tokens a second, holding at most `capacity`."""

    rate: float
    capacity: float
    _tokens: float = field(init=False)
    _stamp: float = field(init=False, default_factory=time.monotonic)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._tokens = self.capacity

    def take(self) -> float:
        """Take one token: 0.0 when one was available (it is consumed), else the seconds
        until one will be (nothing is consumed; ask again then)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate
