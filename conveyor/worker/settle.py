"""Storing successes and acking their messages in batches: two round trips for a batch
instead of two per task.

A slot that finished a task and sees more work waiting runs that next, if the next task
ran in under QUICK seconds last time, and stores the finished results together later.
The batch is stored and acked when the queue is empty, when it holds MAX_BATCH tasks or
is MAX_AGE seconds old, or before a task that is not known to be quick. So a result is
stored at most about MAX_AGE + QUICK seconds later than without batching, and never
waits behind a long task. The order per task is unchanged: the result is stored, then
the success is logged and its hooks and links run, then the message is acked (late acks).
"""

from __future__ import annotations

import logging
import time

from conveyor.app.base import Conveyor
from conveyor.worker.backend_wait import patiently
from conveyor.worker.ended import Ended
from conveyor.worker.middleware import Stored
from conveyor.worker.request import Work
from conveyor.worker.results import not_kept

log = logging.getLogger("conveyor.worker")
QUICK = 0.002
MAX_BATCH = 64
MAX_AGE = 0.01


class Settlements:
    """Finished successes of one slot, waiting to be stored and acked together."""

    def __init__(self, app: Conveyor) -> None:
        self.app = app
        self._items: list[tuple[Work, Stored]] = []
        self._since = 0.0

    def has_room(self) -> bool:
        """Whether one more task may run before this batch is stored."""
        if not self._items:
            return True
        return len(self._items) < MAX_BATCH and time.monotonic() - self._since < MAX_AGE

    def add(self, work: Work, stored: Stored) -> None:
        if not self._items:
            self._since = time.monotonic()
        self._items.append((work, stored))

    def flush(self) -> None:
        """Store every record (one `store_many`), run each task's `after`, ack the late
        acks (one `ack_many`). A failed store returns the messages, like a failed `store`."""
        items, self._items = self._items, []
        if not items:
            return
        try:
            records = [stored.record for _, stored in items]
            kept = patiently(
                self.app, lambda: self.app.backend.store_many(records), "storing results"
            )
        except Exception as exc:
            for work, _ in items:
                work.finish(Ended.failed(exc))
            return
        for record, applied in zip(records, kept, strict=True):
            if not applied:
                not_kept(record)
        late = []
        for work, stored in items:
            try:
                stored.after()
            except Exception:
                log.exception("finishing task %s failed", work.task_id)
            if work.acks_late:
                late.append(work.delivery)
        if late:
            try:
                late[0].transport.ack_many(late)
            except Exception:
                log.exception("acking %d messages failed", len(late))
