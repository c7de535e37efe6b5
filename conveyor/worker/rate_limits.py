"""Per-worker rate limits (the task's `rate_limit`, e.g. "10/s"): placeholder."""

from __future__ import annotations

from conveyor.worker.middleware import Middleware


class RateLimits(Middleware):
    pass
