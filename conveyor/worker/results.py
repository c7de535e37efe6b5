"""Writing task states: one backend write per state, the ready ones never undone."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any

from conveyor.app import states
from conveyor.app.base import Conveyor
from conveyor.backends.base import ResultRecord, now
from conveyor.backends.errors import describe_exception
from conveyor.core.errors import EncodeError
from conveyor.worker.backend_wait import patiently

log = logging.getLogger("conveyor.worker")
# How old a batch's state check may be when its task starts. A revoke stored later than
# that before the start is not seen (the message was in flight to the slot anyway).
CHECK_FRESH_FOR = 0.05


def traceback_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def store(app: Conveyor, record: ResultRecord) -> bool:
    """`backend.store(record)`, waiting out a backend outage (backend_wait)."""
    return patiently(app, lambda: app.backend.store(record), f"storing {record.state}")


def store_failure(
    app: Conveyor, task_id: str, exc: BaseException, parent_id: str | None = None
) -> None:
    store(
        app,
        ResultRecord(
            task_id,
            states.FAILURE,
            result=describe_exception(exc),
            traceback=traceback_text(exc),
            parent_id=parent_id,
            date_done=now(),
        ),
    )


def success_record(task_id: str, retval: Any, parent_id: str | None) -> ResultRecord:
    return ResultRecord(
        task_id, states.SUCCESS, result=retval, parent_id=parent_id, date_done=now()
    )


def encodes(record: ResultRecord) -> bool:
    """Whether `record` encodes (so a batched store of it cannot fail on its value)."""
    try:
        record.to_bytes()
    except EncodeError:
        return False
    return True


def store_success(app: Conveyor, record: ResultRecord) -> BaseException | None:
    """Store a SUCCESS record; a return value the backend cannot encode is stored as a
    FAILURE (EncodeError), which is returned so the caller reports the task as failed."""
    try:
        store(app, record)
    except EncodeError as exc:
        store_failure(app, record.task_id, exc, record.parent_id)
        return exc
    return None


def store_retry(
    app: Conveyor, task_id: str, exc: BaseException | None, parent_id: str | None
) -> None:
    store(
        app,
        ResultRecord(
            task_id,
            states.RETRY,
            result=None if exc is None else describe_exception(exc),
            traceback=None if exc is None else traceback_text(exc),
            parent_id=parent_id,
        ),
    )


@dataclass(frozen=True)
class Checked:
    """A task's ready state (None: not ready or unknown) as read at monotonic time `at`,
    for a whole fetched batch in one `get_many`."""

    state: str | None
    at: float

    def fresh(self) -> bool:
        return time.monotonic() - self.at < CHECK_FRESH_FOR


def check_many(app: Conveyor, task_ids: list[str]) -> dict[str, Checked]:
    """Read the ready states of `task_ids` in one round trip."""
    at = time.monotonic()
    records = app.backend.get_many(task_ids)
    return {
        task_id: Checked(record.state if record is not None and record.ready else None, at)
        for task_id, record in records.items()
    }


def claim(
    app: Conveyor,
    task_id: str,
    track_started: bool,
    meta: dict[str, Any],
    checked: Checked | None = None,
) -> str | None:
    """Check the stored state before running: the ready state that forbids a run
    (REVOKED, or a finished duplicate delivery), else None. With `track_started` the
    check is the STARTED write itself, so it costs no extra round trip; without it, a
    state read for the delivery's batch less than CHECK_FRESH_FOR seconds ago is used."""
    if track_started and store(app, ResultRecord(task_id, states.STARTED, meta=meta)):
        return None
    if not track_started and checked is not None and checked.fresh():
        return checked.state
    record = patiently(app, lambda: app.backend.get(task_id), "reading the state")
    if record is not None and record.ready:
        return record.state
    return None
