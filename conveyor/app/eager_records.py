"""The outcomes of eager runs by app and task id, for result handles made elsewhere.

A chain run under `task_always_eager` returns the handle of its last step, made before
the step ran; `AsyncResult(id)` may be built from an id too. Neither holds the EagerResult,
and an eager run stores nothing in the backend, so AsyncResult looks here first. Each app
has its own outcomes (an id means something only to its app), and only its newest LIMIT
are kept: this is for tests and scripts, not a result store.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any

from conveyor.backends.base import ResultRecord

LIMIT = 10_000
_records: weakref.WeakKeyDictionary[Any, OrderedDict[str, ResultRecord]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def keep(app: Any, record: ResultRecord) -> None:
    with _lock:
        records = _records.setdefault(app, OrderedDict())
        records[record.task_id] = record
        records.move_to_end(record.task_id)
        while len(records) > LIMIT:
            records.popitem(last=False)


def find(app: Any, task_id: str) -> ResultRecord | None:
    """The outcome of the eager run of `task_id` on `app`, if one ran in this process."""
    if not _records:  # the common case, no eager run at all: no lock taken
        return None
    with _lock:
        records = _records.get(app)
        return None if records is None else records.get(task_id)
