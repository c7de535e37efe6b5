"""What a failure does to the rest of a workflow: the steps that will never run are marked,
and the errbacks are called.

A step that cannot run because an earlier one failed is stored as FAILURE with the earlier
error (so `.get()` on a chain's result raises the first error instead of waiting forever),
and ``meta={"not_run": True, "failed": <id of the task that failed>}`` saying why. The
errbacks are called by conveyor.app.errbacks, which eager runs share.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from conveyor.app import states
from conveyor.backends.base import ResultRecord, now
from conveyor.backends.errors import describe_exception
from conveyor.canvas.signature import CHORD_JOIN, Signature

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.protocol import TaskMessage

log = logging.getLogger("conveyor.canvas")


def not_run_records(
    ids: Iterable[str], exc: BaseException, traceback: str | None, failed: str
) -> list[ResultRecord]:
    """FAILURE records (with `exc`) for the tasks `ids`, which will never be sent because
    task `failed` failed."""
    done = now()
    return [
        ResultRecord(
            task_id,
            states.FAILURE,
            result=describe_exception(exc),
            traceback=traceback,
            meta={"not_run": True, "failed": failed},
            date_done=done,
        )
        for task_id in ids
    ]


def mark_not_run(
    app: Conveyor, ids: Iterable[str], exc: BaseException, traceback: str | None, failed: str
) -> None:
    """Store FAILURE (with `exc`) for every id in `ids`, whose tasks will never be sent."""
    records = not_run_records(ids, exc, traceback, failed)
    if records:
        app.backend.store_many(records)


def rest_not_run(
    app: Conveyor, msg: TaskMessage, exc: BaseException, traceback: str | None
) -> list[ResultRecord]:
    """The records marking the chain steps after the failed task `msg` (its callbacks
    other than chord joins, and what follows them) as never to run.

    The worker stores them in one batch with the task's own FAILURE (worker/results.py):
    `get()` on a chain's last result follows a failed parent at once, so whoever sees the
    failure must see the rest failed too. Where the backend stores a batch atomically
    (memory, Redis, SQL) both appear at once; elsewhere the rest is stored first.
    """
    ids = [
        task_id
        for data in msg.callbacks
        if CHORD_JOIN not in data
        for task_id in Signature.from_dict(data, app).frozen_ids()
    ]
    return not_run_records(ids, exc, traceback, msg.id)
