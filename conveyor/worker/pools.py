"""Execution pools: solo (inline), threads, processes (processes.py).

The consumer hands each `Work` to `submit`; a pool runs it with `execute` and settles it
through `Work.begin`/`Work.finish`. Threads and processes share the slot loop below: N slot
threads take work from one queue, so prefetched work waits in that queue (and is given back
to the broker on warm shutdown) rather than in a slot.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod

from conveyor.app.base import Conveyor
from conveyor.app.exceptions import TaskRevokedError
from conveyor.core.errors import ConfigurationError
from conveyor.worker.ended import Ended
from conveyor.worker.execute import execute
from conveyor.worker.request import Work
from conveyor.worker.settle import QUICK, Settlements
from conveyor.worker.time_limits import interrupt

log = logging.getLogger("conveyor.worker")
SHARE_WEIGHT = 0.1  # of the latest run in slow_share
MOSTLY = 0.2  # slow_share under this: mostly quick


class Pool(ABC):
    def __init__(self, app: Conveyor, hostname: str, concurrency: int) -> None:
        self.app = app
        self.hostname = hostname
        self.concurrency = concurrency
        self._active: dict[int, Work] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._unstarted: list[Work] = []
        #: The last run time of each task name, seconds.
        self.durations: dict[str, float] = {}
        #: The share of recent runs that took QUICK seconds or more (a moving average
        #: that starts at "all slow").
        self.slow_share = 1.0

    def start(self) -> None:
        """Start threads or children; called once before the first `submit`."""

    @abstractmethod
    def submit(self, work: Work) -> None: ...

    def close(self) -> None:
        """Start no more work: what arrives from now on waits for `drain`."""
        self._closing.set()

    def drain(self) -> list[Work]:
        """Remove and return the work not yet started."""
        with self._lock:
            taken, self._unstarted = self._unstarted, []
        return taken

    @abstractmethod
    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` for running work to finish; True if all did."""

    def kill(self) -> None:
        """Stop running work at once where possible (cold shutdown)."""

    def active(self) -> list[Work]:
        with self._lock:
            return list(self._active.values())

    def terminate(self, task_id: str) -> bool:
        """Stop the running task `task_id` (revoke with terminate); True if it was found."""
        with self._lock:
            for slot, work in self._active.items():
                if work.task_id == task_id:
                    return self._terminate_slot(slot)
        return False

    def _terminate_slot(self, slot: int) -> bool:
        return interrupt(slot, TaskRevokedError)

    def _run_here(self, work: Work) -> Ended:
        try:
            return execute(self.app, work.job, self.hostname, defer_success=True)
        except Exception as exc:
            return Ended.failed(exc)

    def _process(self, slot: int, work: Work, batch: Settlements | None = None) -> None:
        """Run `work`; a success to store goes into `batch` (settled at once without one)."""
        with self._lock:
            if self._closing.is_set():
                self._unstarted.append(work)
                return
            self._active[slot] = work
        try:
            work.begin()
            started = time.monotonic()
            ended = self.run(slot, work)
            elapsed = time.monotonic() - started
            self.durations[work.job.message.task] = elapsed
            self.slow_share += SHARE_WEIGHT * ((elapsed >= QUICK) - self.slow_share)
            if ended.stored is not None:
                settlements = batch or Settlements(self.app)
                settlements.add(work, ended.stored)
                if batch is None:
                    settlements.flush()
            else:
                work.finish(ended)
        except Exception:
            log.exception("settling task %s failed", work.task_id)
        finally:
            with self._lock:
                self._active.pop(slot, None)

    def run(self, slot: int, work: Work) -> Ended:
        return self._run_here(work)

    def mostly_quick(self) -> bool:
        """Whether recent runs took under QUICK seconds, but for the odd one (a thread
        descheduled on a busy machine); false until enough runs say so."""
        return self.slow_share < MOSTLY

    def quick(self, work: Work) -> bool:
        """Whether `work`'s task ran in under QUICK seconds last time."""
        return self.durations.get(work.job.message.task, QUICK) < QUICK


class SoloPool(Pool):
    """Runs each task inline, in the consumer's thread: one at a time, no hand-off."""

    def __init__(self, app: Conveyor, hostname: str, concurrency: int = 1) -> None:
        super().__init__(app, hostname, 1)
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, work: Work) -> None:
        self._idle.clear()
        try:
            self._process(threading.get_ident(), work)
        finally:
            self._idle.set()

    def join(self, timeout: float) -> bool:
        return self._idle.wait(timeout)


class ThreadPool(Pool):
    """Tasks run in N slot threads of the worker process, taking work from one queue."""

    def __init__(self, app: Conveyor, hostname: str, concurrency: int) -> None:
        super().__init__(app, hostname, concurrency)
        self._queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._resize_lock = threading.Lock()
        self._retiring = 0  # stop marks put by shrink and not yet taken by a slot

    def start(self) -> None:
        for number in range(self.concurrency):
            self._start_slot(number)

    def _start_slot(self, number: int) -> None:
        thread = threading.Thread(
            target=self._loop, args=(number,), name=f"conveyor-slot-{number}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def grow(self, n: int) -> int:
        """Add `n` slots (remote control pool_grow, the autoscaler); returns the new size."""
        with self._resize_lock:
            first = len(self._threads)
            for number in range(first, first + n):
                self._start_slot(number)
            self.concurrency += n
            return self.concurrency

    def shrink(self, n: int) -> int:
        """End `n` slots once they finish their task (pool_shrink, the autoscaler; at least
        one stays); returns the new size."""
        with self._resize_lock:
            n = min(n, self.concurrency - 1)
            self._retiring += n
            for _ in range(n):
                self._queue.put(None)
            self.concurrency -= n
            return self.concurrency

    def busy(self) -> int:
        """How many slots run a task now."""
        with self._lock:
            return len(self._active)

    def waiting(self) -> int:
        """How much work waits in the pool's queue for a free slot (approximate, as
        SimpleQueue.qsize is; the stop marks of slots being retired are not counted)."""
        return max(0, self._queue.qsize() - self._retiring)

    def _retired(self, number: int) -> None:
        """Slot `number` took a stop mark and ends."""
        with self._resize_lock:
            self._retiring = max(0, self._retiring - 1)

    def _loop(self, number: int) -> None:
        """Run work from the queue; successes are stored and acked in batches while more
        quick work waits (see Settlements), and as soon as the queue is empty."""
        slot = self.slot_id(number)
        batch = Settlements(self.app)
        while True:
            try:
                work = self._queue.get_nowait()
            except queue.Empty:
                batch.flush()
                work = self._queue.get()
            if work is None:
                self._retired(number)
                break
            if not (batch.has_room() and self.quick(work)):
                batch.flush()
            self._process(slot, work, batch)
        batch.flush()

    def slot_id(self, number: int) -> int:
        """The key of slot `number` in the active table (a thread ident for threads)."""
        return threading.get_ident()

    def submit(self, work: Work) -> None:
        self._queue.put(work)

    def drain(self) -> list[Work]:
        taken = super().drain()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return taken
            if item is not None:
                taken.append(item)

    def join(self, timeout: float) -> bool:
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)


#: Celery's pool names that are conveyor's under another name.
POOL_ALIASES = {"prefork": "processes"}


def pool_name(kind: str) -> str:
    """`kind` as conveyor names it: "prefork" (Celery's, `worker_pool = "prefork"`) is
    the processes pool."""
    return POOL_ALIASES.get(kind, kind)


def create_pool(
    kind: str, app: Conveyor, hostname: str, concurrency: int, app_path: str | None
) -> Pool:
    kind = pool_name(kind)
    if kind == "solo":
        return SoloPool(app, hostname)
    if kind == "threads":
        return ThreadPool(app, hostname, concurrency)
    if kind == "processes":
        from conveyor.worker.processes import ProcessPool

        return ProcessPool(app, hostname, concurrency, app_path)
    raise ConfigurationError(
        f"unknown pool {kind!r}: use threads, processes (prefork) or solo"
        + ("; conveyor has no green-thread pools" if kind in ("gevent", "eventlet") else "")
    )
