"""Work held in the worker for a while before it goes to the pool (rate limits).

A middleware's `before_submit` may ask to hold a delivery for some seconds: it waits here,
in one heap served by one thread, then goes through `before_submit` again (a rate limit
may ask for more). Held work counts against the prefetch window and keeps its lease (the
consumer is alive), so no other worker gets it; on shutdown it is returned to the broker
unstarted, like prefetched work.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from conveyor.worker.request import Work


class Holding:
    def __init__(self, release: Callable[[Work], None]) -> None:
        self._release = release
        self._heap: list[tuple[float, int, Work]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def items(self) -> list[Work]:
        """What is held now, soonest first."""
        with self._wake:
            return [work for _due, _n, work in sorted(self._heap)]

    def hold(self, seconds: float, work: Work) -> None:
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), work))
            self._wake.notify()
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=self._run, name="conveyor-holding", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                if self._stopped:
                    return
                _due, _n, work = heapq.heappop(self._heap)
            self._release(work)

    def drain(self) -> list[Work]:
        """Stop releasing; return what was held (to give back to the broker)."""
        with self._wake:
            self._stopped = True
            taken = [work for _due, _n, work in sorted(self._heap)]
            self._heap.clear()
            self._wake.notify_all()
        return taken
