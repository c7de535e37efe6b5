"""Writing task states: one backend write per state, the ready ones never undone.

As middleware: `Claim` (the check before a run) and `Results` (the store after it)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from conveyor.app import states
from conveyor.app.base import Conveyor
from conveyor.app.context import Context
from conveyor.app.exceptions import WorkerLostError
from conveyor.app.extended import extended_meta
from conveyor.app.task import Task
from conveyor.backends.base import ResultRecord, now
from conveyor.backends.errors import describe_exception
from conveyor.canvas.advance import children
from conveyor.canvas.failures import rest_not_run
from conveyor.core.errors import EncodeError
from conveyor.worker import last_delivery
from conveyor.worker.backend_wait import patiently
from conveyor.worker.middleware import (
    ExceptionInfo,
    Middleware,
    Outcome,
    Request,
    traceback_text,
)

log = logging.getLogger("conveyor.worker")
# How old a batch's state check may be when its task starts. A revoke stored later than
# that before the start is not seen (the message was in flight to the slot anyway).
CHECK_FRESH_FOR = 0.05


def store(app: Conveyor, record: ResultRecord) -> bool:
    """`backend.store(record)`, waiting out a backend outage (backend_wait)."""
    return patiently(app, lambda: app.backend.store(record), f"storing {record.state}")


def failure_record(
    task_id: str,
    exc: BaseException,
    parent_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> ResultRecord:
    return ResultRecord(
        task_id,
        states.FAILURE,
        result=describe_exception(exc),
        traceback=traceback_text(exc),
        parent_id=parent_id,
        date_done=now(),
        meta=meta or {},
    )


def not_kept(record: ResultRecord) -> None:
    """A run's outcome the backend refused: a ready state is stored for its id already (a
    duplicate delivery, or a task id reused before the first finished). The first outcome
    stands; this says so, naming the id."""
    log.warning(
        "task %s: this run's %s is not kept; the id has a finished state already "
        "(the first outcome stands; is the task id reused?)",
        record.task_id,
        record.state,
    )


def store_failure(
    app: Conveyor,
    task_id: str,
    exc: BaseException,
    parent_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    record = failure_record(task_id, exc, parent_id, meta)
    if not store(app, record):
        not_kept(record)


def success_record(
    task_id: str, retval: Any, parent_id: str | None, meta: dict[str, Any] | None = None
) -> ResultRecord:
    return ResultRecord(
        task_id,
        states.SUCCESS,
        result=retval,
        parent_id=parent_id,
        date_done=now(),
        meta=meta or {},
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
        if not store(app, record):
            not_kept(record)
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


def fail_lost_run(app: Conveyor, request: Context) -> str | None:
    """On the last allowed delivery: FAILURE (stored) when the run before it died with its
    worker, the ready state when the task is done already, else None (last_delivery.py)."""
    assert request.id is not None
    task_id = request.id
    record = patiently(app, lambda: app.backend.get(task_id), "reading the state")
    if record is not None and record.ready:
        return record.state
    lost = last_delivery.lost_run(app, record)
    if lost is None:
        return None
    log.error("task %s[%s] failed: %s; not running it again", request.task, task_id, lost)
    store_failure(app, task_id, WorkerLostError(lost), request.parent_id)
    return states.FAILURE


class Claim(Middleware):
    """Before a run: the revoked/duplicate check (see `claim`), and on the last allowed
    delivery the lost-run check (`fail_lost_run`); returns the forbidding state, so the
    task does not run."""

    def before_task(self, task: Task, request: Context) -> str | None:
        if request.ignore_result or request.id is None:
            return None
        app = task.app
        if last_delivery.is_last(app, request):
            state = fail_lost_run(app, request)
            if state is not None:
                return state
        track = task.track_started
        track = app.conf.task_track_started if track is None else track
        track = bool(track) or last_delivery.records_start(app, request)
        meta = last_delivery.start_meta(request.hostname)
        checked = request.checked if isinstance(request, Request) else None
        return claim(app, request.id, track, meta, checked)


def _errors_kept(task: Task, state: str) -> bool:
    """Whether a FAILURE of an ignore_result task is stored anyway (Celery's
    store_errors_even_if_ignored, as a task option or a setting)."""
    keep = task.store_errors_even_if_ignored or task.app.conf.task_store_errors_even_if_ignored
    return state == states.FAILURE and bool(keep)


class Results(Middleware):
    """After a run: store its state (unless results are ignored). A SUCCESS may be left in
    `outcome.record` for the pool to store in a batch; one whose value cannot be encoded is
    stored as FAILURE (EncodeError) and the outcome becomes that failure."""

    def after_task(self, task: Task, request: Context, outcome: Outcome) -> None:
        app, state = task.app, outcome.state
        if request.id is None or (request.ignore_result and not _errors_kept(task, state)):
            return
        meta = extended_meta(request) if app.conf.result_extended else None
        if state == states.SUCCESS:
            record = success_record(request.id, outcome.retval, request.parent_id, meta)
            record.children = children(request)
            if outcome.defer and encodes(record):
                outcome.record = record
                return
            problem = store_success(app, record)
            if problem is not None:
                outcome.state, outcome.retval = states.FAILURE, problem
                outcome.einfo = ExceptionInfo.of(problem)
        elif state == states.FAILURE:
            # The chain steps that will now never run are stored in one batch with the
            # failure (canvas/failures.rest_not_run says why).
            message = request.message if isinstance(request, Request) else None
            records = [failure_record(request.id, outcome.retval, request.parent_id, meta)]
            if message is not None and message.callbacks:
                traceback = outcome.einfo.traceback if outcome.einfo else None
                records[:0] = rest_not_run(app, message, outcome.retval, traceback)
                outcome.rest_stored = True
            stored = patiently(app, lambda: app.backend.store_many(records), "storing FAILURE")
            if not stored[-1]:
                not_kept(records[-1])
        elif state == states.RETRY:
            store_retry(app, request.id, getattr(outcome.retval, "exc", None), request.parent_id)
