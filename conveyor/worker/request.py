"""From a delivery to a runnable job, or to a dead letter with a reason.

A body that cannot be read, names an unknown task or has a refused content type is
nacked without requeue (dead-lettered with the reason) and, when the task id is known
(the message's correlation id, or the body's id), its result is marked FAILURE.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from conveyor import signals
from conveyor.app import protocol, states
from conveyor.app.base import Conveyor
from conveyor.app.exceptions import MaxDeliveriesExceeded, NotRegistered
from conveyor.core.codecs import Serializer
from conveyor.core.errors import BackendUnavailable, ContentDisallowed, DecodeError
from conveyor.core.message import Delivery, header_problem
from conveyor.core.transport import MAX_DELIVERIES_REASON
from conveyor.worker import events
from conveyor.worker.backend_wait import REASON
from conveyor.worker.ended import Ended
from conveyor.worker.execute import REQUEUED, Job
from conveyor.worker.expiry import mark_expired
from conveyor.worker.results import store_failure

log = logging.getLogger("conveyor.worker")
UNREADABLE = (ContentDisallowed, DecodeError, NotRegistered)


@dataclass
class Work:
    """A job with its delivery: the pool calls `begin` before running and `finish` after.

    Early-ack tasks (acks_late=False) are acked in `begin`, so a message never started
    can still be returned to the broker at shutdown. Late-ack tasks are acked in `finish`,
    after the result is stored; an infrastructure error there returns the message.
    """

    job: Job
    delivery: Delivery
    acks_late: bool
    app: Conveyor

    @property
    def task_id(self) -> str:
        return self.job.message.id

    def begin(self) -> None:
        if not self.acks_late:
            self.delivery.ack()

    def finish(self, ended: Ended) -> None:
        """Settle the message by how the run ended (a deferred store is settle.py's)."""
        try:
            error = ended.error
            if error is not None:
                log.error("task %s could not complete: %r", self.task_id, error)
                if self.acks_late:
                    cause = REASON if isinstance(error, BackendUnavailable) else "worker error"
                    self._requeue(f"{cause}: {error}", delay=1.0)
            elif not self.acks_late:
                return
            elif ended.state == states.REJECTED:
                self.delivery.nack(requeue=False, reason="rejected by the task (Reject)")
            elif ended.state == REQUEUED:
                self._requeue("requeued by the task (Reject)")
            else:
                self.delivery.ack()
        except Exception:
            log.exception("settling the message of task %s failed", self.task_id)

    def _requeue(self, reason: str, delay: float = 0.0) -> None:
        """Send the message back; on its last allowed delivery the transport dead-letters
        it as "max deliveries" instead, so the task's FAILURE is stored first, saying why
        (a dead letter is never silent)."""
        message = self.job.message
        spent = self.delivery.delivery_count >= self.app.transport.options.max_deliveries
        if spent and not message.ignore_result:
            error = MaxDeliveriesExceeded(f"{MAX_DELIVERIES_REASON}; the last time: {reason}")
            try:
                store_failure(self.app, message.id, error, message.parent_id)
            except Exception:
                log.exception("could not mark task %s FAILURE", message.id)
        self.delivery.nack(requeue=True, delay=delay, reason=reason)

    def give_back(self) -> None:
        """Return an unstarted job's message to the broker (warm shutdown)."""
        try:
            self.delivery.nack(requeue=True, reason="worker shutdown")
        except Exception:
            log.exception("returning the message of task %s failed", self.task_id)


def read(app: Conveyor, delivery: Delivery) -> Job:
    """Decode and check a delivery; raises one of UNREADABLE."""
    message = delivery.message
    problem = header_problem(message)
    if problem is not None:
        raise DecodeError(problem)
    app.signer.verify(message)  # before any decoding: InvalidSignature is a DecodeError
    body = protocol.decode(message, app.serializer)
    if body.task not in app.tasks:
        raise NotRegistered(f"unknown task {body.task!r}")
    info = {
        "queue": delivery.queue,
        "priority": message.priority,
        "redelivered": delivery.delivery_count > 1,
        # read by last_delivery.py, also in process-pool children that have no transport
        "max_deliveries": app.transport.options.max_deliveries,
    }
    return Job(body, info, delivery.delivery_count, message.headers)


def _body_text(delivery: Delivery, name: str) -> str | None:
    """A string field of the body, if the body decodes at all."""
    message = delivery.message
    try:
        data = Serializer().decode(message.body, message.content_type)
    except (ContentDisallowed, DecodeError):
        return None
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def _known_id(delivery: Delivery) -> str | None:
    return delivery.message.correlation_id or _body_text(delivery, "id")


def reject(app: Conveyor, delivery: Delivery, problem: BaseException) -> None:
    """Dead-letter `delivery` with the reason, then mark the task FAILURE when its id is
    known: whoever sees the FAILURE finds the dead letter already there."""
    reason = f"{type(problem).__name__}: {problem}"
    log.error("rejecting message %s: %s", delivery.message.id, reason)
    delivery.nack(requeue=False, reason=reason)
    task_id = _known_id(delivery)
    if isinstance(problem, NotRegistered):
        signals.task_unknown.send(
            sender=app,
            name=_body_text(delivery, "task"),
            id=task_id,
            message=delivery.message,
            exc=problem,
        )
    else:
        signals.task_rejected.send(sender=app, message=delivery.message, exc=problem)
    if task_id is not None:
        try:
            store_failure(app, task_id, problem)
        except Exception:
            log.exception("could not mark task %s FAILURE", task_id)
    events.rejected(app, delivery, task_id, reason)


def expire(app: Conveyor, delivery: Delivery, job: Job) -> None:
    """A task past its `expires` is marked REVOKED and acked, not run."""
    mark_expired(app, job.message)
    delivery.ack()
