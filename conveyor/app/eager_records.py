"""The outcomes of eager runs by app and task id, for result handles made elsewhere.

A chain run under `task_always_eager` hands back its last step's outcome, which ran inside
a callback of the step before (app/eager.py); `AsyncResult(id)` may be built from an id
too. Neither holds the EagerResult, and an eager run stores nothing in the backend, so
AsyncResult looks here first. The EagerResult itself is kept, so a failure read through
another handle is the task's own exception object, as on the EagerResult. Each app has its
own outcomes (an id means something only to its app), and only its newest LIMIT are kept:
this is for tests and scripts, not a result store.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.app.eager import EagerResult

LIMIT = 10_000
_records: weakref.WeakKeyDictionary[Any, OrderedDict[str, EagerResult]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def keep(result: EagerResult) -> None:
    with _lock:
        records = _records.setdefault(result.app, OrderedDict())
        records[result.id] = result
        records.move_to_end(result.id)
        while len(records) > LIMIT:
            records.popitem(last=False)


def find(app: Any, task_id: str) -> EagerResult | None:
    """The outcome of the eager run of `task_id` on `app`, if one ran in this process."""
    if not _records:  # the common case, no eager run at all: no lock taken
        return None
    with _lock:
        records = _records.get(app)
        return None if records is None else records.get(task_id)
