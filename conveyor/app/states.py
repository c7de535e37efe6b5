"""Task states, with Celery's names.

The ready states come from the result-backend contract; PROGRESS is the conventional
custom state for `update_state`, and UNKNOWN is what an id with no record reads as (conveyor
never reports an unknown id as PENDING).
"""

from __future__ import annotations

from conveyor.backends.base import (
    FAILURE,
    PENDING,
    READY_STATES,
    RETRY,
    REVOKED,
    STARTED,
    SUCCESS,
)

PROGRESS = "PROGRESS"
UNKNOWN = "UNKNOWN"
# Celery's other standard states: a worker received the message, rejected it (Reject), or
# the task raised Ignore. conveyor stores none of them as a result; they name events.
RECEIVED = "RECEIVED"
REJECTED = "REJECTED"
IGNORED = "IGNORED"
ALL_STATES = frozenset(
    {PENDING, RECEIVED, STARTED, SUCCESS, FAILURE, REVOKED, REJECTED, RETRY, IGNORED}
)
EXCEPTION_STATES = frozenset({FAILURE, RETRY, REVOKED})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})
UNREADY_STATES = frozenset({PENDING, STARTED, RETRY, PROGRESS, UNKNOWN})

__all__ = [
    "ALL_STATES",
    "EXCEPTION_STATES",
    "FAILURE",
    "IGNORED",
    "PENDING",
    "PROGRESS",
    "PROPAGATE_STATES",
    "READY_STATES",
    "RECEIVED",
    "REJECTED",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "UNKNOWN",
    "UNREADY_STATES",
]
