"""The autoscaler behind ``--autoscale MAX,MIN``: the pool grows under load, shrinks when idle.

Celery's shape (celery.worker.autoscale): a thread looks at the pool every INTERVAL
seconds. When every slot is busy and work waits in the pool's queue, the pool grows at
once by what waits, up to MAX. When fewer slots are needed than the pool has (busy plus
waiting), for `keepalive` seconds on end (`worker_autoscale_keepalive`, Celery's
AUTOSCALE_KEEPALIVE, 30 s), it shrinks to that, down to MIN. Work waits in the pool's queue
because the prefetch window is sized by MAX, as Celery's is; a slot being retired finishes
its task first.

`pool_grow`/`pool_shrink` go through here while autoscaling (`force_grow`/`force_shrink`),
as Celery's do: growing past MAX raises MAX and shrinking below MIN lowers MIN, so the
autoscaler does not undo by itself what an operator asked for; within the bounds it stays
free to move. The `autoscale` command sets both bounds (`update`). MIN 0 keeps one slot (a
pool with none would hold prefetched work that nobody runs).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

log = logging.getLogger("conveyor.worker")
INTERVAL = 0.5  # seconds between looks at the pool


class Resizable(Protocol):
    concurrency: int

    def busy(self) -> int: ...
    def waiting(self) -> int: ...
    def grow(self, n: int) -> int: ...
    def shrink(self, n: int) -> int: ...


class Autoscaler:
    """Keeps `pool` between `minimum` and `maximum` slots by load; see the module docstring."""

    def __init__(
        self, pool: Resizable, maximum: int, minimum: int, keepalive: float = 30.0
    ) -> None:
        self.pool = pool
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.keepalive = keepalive
        #: Slots wanted at the last look (busy + waiting): Celery's `qty`.
        self.wanted = 0
        self._over_since: float | None = None  # since when the pool has more than wanted
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._run, name="conveyor-autoscaler", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(INTERVAL + 5.0)

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                self.step(time.monotonic())
            except Exception:
                log.exception("autoscaling the pool failed")

    def step(self, now: float) -> None:
        """One look at the pool: grow, start or reset the idle clock, or shrink."""
        with self._lock:
            busy, waiting, size = self.pool.busy(), self.pool.waiting(), self.pool.concurrency
            self.wanted = busy + waiting
            if busy >= size and waiting and size < self.maximum:
                self._over_since = None
                grown = self.pool.grow(min(waiting, self.maximum - size))
                log.info("autoscale: pool grown to %d slots (%d waiting)", grown, waiting)
                return
            target = max(self.wanted, self.minimum)
            if target >= size:
                self._over_since = None
            elif self._over_since is None:
                self._over_since = now
            elif now - self._over_since >= self.keepalive:
                self._over_since = None
                shrunk = self.pool.shrink(size - target)
                log.info("autoscale: pool shrunk to %d slots (idle)", shrunk)

    def force_grow(self, n: int) -> int:
        """pool_grow: `n` more slots now; MAX rises to the new size if it is above it."""
        with self._lock:
            size = self.pool.grow(n)
            self.maximum = max(self.maximum, size)
            self._over_since = None
            return size

    def force_shrink(self, n: int) -> int:
        """pool_shrink: `n` fewer slots (one stays); MIN falls to the new size if below it."""
        with self._lock:
            size = self.pool.shrink(n)
            self.minimum = min(self.minimum, size)
            return size

    def update(self, maximum: int, minimum: int) -> None:
        """The `autoscale` control command: new bounds, and the pool moved inside them at
        once (as Celery's Autoscaler.update)."""
        with self._lock:
            self.maximum = maximum
            self.minimum = max(1, min(minimum, maximum))
            size = self.pool.concurrency
            if size > self.maximum:
                self.pool.shrink(size - self.maximum)
            elif size < self.minimum:
                self.pool.grow(self.minimum - size)
            self._over_since = None

    def info(self) -> dict[str, Any]:
        """For `inspect stats` (Celery's autoscaler info: max, min, current, qty)."""
        return {
            "max": self.maximum,
            "min": self.minimum,
            "current": self.pool.concurrency,
            "qty": self.wanted,
        }
