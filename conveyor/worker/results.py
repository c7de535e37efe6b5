"""Writing task states: one backend write per state, the ready ones never undone."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from conveyor.app import states
from conveyor.app.base import Conveyor
from conveyor.backends.base import ResultRecord, now
from conveyor.backends.errors import describe_exception
from conveyor.core.errors import EncodeError

log = logging.getLogger("conveyor.worker")


def traceback_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def store_failure(
    app: Conveyor, task_id: str, exc: BaseException, parent_id: str | None = None
) -> None:
    app.backend.store(
        ResultRecord(
            task_id,
            states.FAILURE,
            result=describe_exception(exc),
            traceback=traceback_text(exc),
            parent_id=parent_id,
            date_done=now(),
        )
    )


def store_success(
    app: Conveyor, task_id: str, retval: Any, parent_id: str | None
) -> BaseException | None:
    """Store SUCCESS; a return value the backend cannot encode is stored as a FAILURE
    (EncodeError), which is returned so the caller reports the task as failed."""
    record = ResultRecord(
        task_id, states.SUCCESS, result=retval, parent_id=parent_id, date_done=now()
    )
    try:
        app.backend.store(record)
    except EncodeError as exc:
        store_failure(app, task_id, exc, parent_id)
        return exc
    return None


def store_retry(
    app: Conveyor, task_id: str, exc: BaseException | None, parent_id: str | None
) -> None:
    app.backend.store(
        ResultRecord(
            task_id,
            states.RETRY,
            result=None if exc is None else describe_exception(exc),
            traceback=None if exc is None else traceback_text(exc),
            parent_id=parent_id,
        )
    )


def claim(app: Conveyor, task_id: str, track_started: bool, meta: dict[str, Any]) -> str | None:
    """Check the stored state before running: the ready state that forbids a run
    (REVOKED, or a finished duplicate delivery), else None. With `track_started` the
    check is the STARTED write itself, so it costs no extra round trip."""
    backend = app.backend
    if track_started and backend.store(ResultRecord(task_id, states.STARTED, meta=meta)):
        return None
    record = backend.get(task_id)
    if record is not None and record.ready:
        return record.state
    return None
