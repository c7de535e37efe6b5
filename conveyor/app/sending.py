"""Sending one task: its PENDING record and its message, and what a failure of either means.

The message is the send; the PENDING record only lets a reader tell "pending" from "unknown".
So a result backend that refuses the record does not stop the publish: the message still goes
through the Producer and its documented retries, and the caller sees the publish's own
outcome. When the publish fails, the record is cleaned up quietly: an error of that clean-up
(the same server is down, most likely) is logged, never raised in place of the real one.

A pipelined send (app/pipelining.py) returns once the message is written, with its Ticket;
the record of a task whose publish is finally refused is removed when that is reported
(`forget_refused`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from conveyor.app import pipelining
from conveyor.backends.base import ResultRecord
from conveyor.core.errors import BackendError
from conveyor.core.message import Message
from conveyor.core.pipeline import Ticket
from conveyor.core.retry import Backoff

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor

log = logging.getLogger("conveyor.app")


def send(
    app: Conveyor,
    queue: str,
    message: Message,
    delay: float,
    pending: ResultRecord | None,
    backoff: Backoff | None = None,
) -> Ticket | None:
    """Publish `message`, storing `pending` (if any) beside it; raises the publish's error.
    `backoff` shapes the publish retries (the Producer's own when None). Returns the ticket
    of a pipelined publish, None when the broker confirmed before this returned."""
    pipelined = pipelining.active(app)
    tickets: list[Ticket] = []
    published: list[bool] = []

    def publish() -> None:
        if pipelined:
            tickets.append(
                app.producer.publish_pipelined(queue, message, delay=delay, backoff=backoff)
            )
            pipelining.note(app, tickets[0])
        else:
            app.producer.publish(queue, message, delay=delay, backoff=backoff)
        published.append(True)

    if pending is None:
        publish()
        return tickets[0] if tickets else None
    try:
        try:
            offer = None if delay or pipelined else app.transport.same_server()
            beside = (
                None
                if offer is None
                else app.backend.store_pending_beside(pending, offer, queue, message)
            )
            if beside is None:  # the general path: the record's write overlaps the publish
                app.backend.store_during(pending, publish)
            else:  # one round trip on the broker's server (core.transport.SameServer)
                published.append(True)
                if not beside:
                    app.backend.store(pending)
        except BackendError as exc:
            if published:
                raise  # the message went out and the task will run; its record did not
            log.warning("storing PENDING for %s failed, sending anyway: %s", pending.task_id, exc)
            publish()
    except BaseException:
        if not published:
            _forget_quietly(app, pending.task_id)
        raise
    return tickets[0] if tickets else None


def forget_refused(app: Conveyor, refused: list[Ticket]) -> None:
    """Remove the PENDING records of tasks whose pipelined publish was finally refused."""
    for ticket in refused:  # a task message's correlation id is its task id
        if ticket.message.correlation_id:
            _forget_quietly(app, ticket.message.correlation_id)


def _forget_quietly(app: Conveyor, task_id: str) -> None:
    """Remove the PENDING record of a task that was not sent; a failure here is logged."""
    try:
        app.backend.forget(task_id)
    except Exception as exc:
        log.warning("removing the PENDING record of unsent task %s failed: %s", task_id, exc)
