"""The chord join, run by the worker that finished a header task.

Each header task that succeeds adds one to the chord's counter (`ResultBackend.incr`,
atomic on every backend) after its result is stored. A worker that sees the counter at
or above the header size reads every header record by id (one `get_many`); only when all
have succeeded does it take the chord's one-time `settled` mark (a second counter that
only its first incrementer sees at 1) and send the body with the results in header order.

Why this gives exactly one body: a task that runs twice stores its result once (the first
ready state wins) and a duplicate delivery of a finished task is not run again, so the
counter over-counts only when a worker died between storing a result and counting it and
the message came back (execute then counts the stored result again). Over-counting only
makes a worker read the header early and find it incomplete; it never sends the body,
because the records are checked, and the `settled` mark lets only one sender through.
A failed header task takes the same mark: the body is stored as FAILURE with that error
and its errbacks run, once, and a late success can no longer send it.

A worker killed after taking the `settled` mark and before the body's publish returned
would lose the body; the header task whose message comes back then finds the body without
a record (or PENDING) and sends it (see `succeeded`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from conveyor.app import states
from conveyor.app.context import Context
from conveyor.app.errbacks import call_errbacks
from conveyor.canvas.failures import mark_not_run
from conveyor.canvas.results import load_group
from conveyor.canvas.signature import CHORD_JOIN, Signature

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.protocol import TaskMessage

log = logging.getLogger("conveyor.canvas")


def counter_key(group_id: str) -> str:
    return f"chord.count:{group_id}"


def settled_key(group_id: str) -> str:
    return f"chord.settled:{group_id}"


def _saved(app: Conveyor, group_id: str) -> dict[str, Any] | None:
    saved = load_group(app, group_id)
    if saved is None or "body" not in saved:
        log.error("chord %s: its join record is missing (expired?); the body cannot run", group_id)
        return None
    return saved


def _settle(app: Conveyor, group_id: str) -> bool:
    """Take the chord's one-time mark: True for exactly one caller."""
    return app.backend.incr(settled_key(group_id)) == 1


def succeeded(
    app: Conveyor, entry: dict[str, Any], msg: TaskMessage, recovering: bool = False
) -> None:
    """Count a header task's success; send the body if the header is now complete.

    `recovering`: the task had finished before a worker crash and its message came back.
    That worker may have died holding the one-time mark, before the body's PENDING record
    was stored with its publish: then the body is sent now (a body that was published
    after all runs once anyway, unless both copies start at the same moment)."""
    group_id, size = entry[CHORD_JOIN], int(entry["size"])
    if app.backend.incr(counter_key(group_id)) < size:
        return
    saved = _saved(app, group_id)
    if saved is None:
        return
    ids = saved["results"]
    records = app.backend.get_many(ids)
    if not all((r := records.get(i)) is not None and r.state == states.SUCCESS for i in ids):
        return  # not complete yet (an over-count), or failed: `failed` handles that
    body = Signature.from_dict(saved["body"], app)
    if not _settle(app, group_id):
        if not recovering or body.id is None:
            return
        sent = app.backend.get(body.id)
        if sent is not None and sent.state != states.PENDING:
            return  # it ran, or runs: the sender published it
    values = [records[i].result for i in ids]  # type: ignore[union-attr]
    body.apply_async((values,), parent_id=msg.id, root_id=msg.root_id or msg.id)


def failed(
    app: Conveyor,
    entry: dict[str, Any],
    request: Context,
    exc: BaseException,
    traceback: str | None,
) -> None:
    """A header task failed: fail the body (and what follows it) and call its errbacks."""
    group_id = entry[CHORD_JOIN]
    saved = _saved(app, group_id)
    if saved is None or not _settle(app, group_id):
        return
    body = Signature.from_dict(saved["body"], app)
    assert request.id is not None
    mark_not_run(app, body.frozen_ids(), exc, traceback, request.id)
    call_errbacks(
        app, [e.to_dict() for e in body.options.get("link_error", ())], request, exc, traceback
    )
