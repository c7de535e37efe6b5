"""Per-worker rate limits: the task's `rate_limit` ("10/s", "100/m", "1000/h"), enforced
with a token bucket per task name (conveyor.app.rate_limit) as middleware.

A delivery whose task has no token yet is held in the worker (holding.py) until one is
due; it is not returned to the broker, which would count a delivery each time. The rate
is per worker process, as in Celery: N workers run up to N times the rate. Remote control
(`app.control.rate_limit(name, "5/s")`) changes it at run time (`set_rate`);
`worker_disable_rate_limits = True` turns them all off, as in Celery.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from conveyor.app.rate_limit import RateLimit, TokenBucket, parse_rate
from conveyor.worker.middleware import Middleware

if TYPE_CHECKING:
    from conveyor.worker.request import Work


class RateLimits(Middleware):
    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket | None] = {}
        self._overrides: dict[str, RateLimit | None] = {}
        self._lock = threading.Lock()

    def set_rate(self, task_name: str, rate: str | float | None) -> RateLimit | None:
        """Change the rate of `task_name` on this worker (InvalidRateLimit if malformed)."""
        parsed = parse_rate(rate)
        with self._lock:
            self._overrides[task_name] = parsed
            self._buckets[task_name] = None if parsed is None else parsed.bucket()
        return parsed

    def _bucket(self, worker: Any, task_name: str) -> TokenBucket | None:
        try:
            return self._buckets[task_name]
        except KeyError:
            pass
        with self._lock:
            if task_name not in self._buckets:
                task = worker.app.tasks.get(task_name)
                own = getattr(task, "rate_limit", None)
                rate = parse_rate(worker.app.conf.task_default_rate_limit if own is None else own)
                self._buckets[task_name] = None if rate is None else rate.bucket()
            return self._buckets[task_name]

    def before_submit(self, worker: Any, work: Work) -> float:
        if worker.app.conf.worker_disable_rate_limits:
            return 0.0
        bucket = self._bucket(worker, work.job.message.task)
        return 0.0 if bucket is None else bucket.take()
