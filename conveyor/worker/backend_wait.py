"""Waiting out a result-backend outage inside the worker, holding the message.

A task cannot be checked (revoked? already done?) nor its outcome stored while the result
backend is down. Returning the message to the broker on every failed read or store would
count each one as a delivery, so an outage longer than about `max_deliveries` seconds would
dead-letter the whole backlog as "max deliveries", tasks that never ran included. An outage
is not poison: the slot keeps the message (its lease is renewed while the worker lives) and
retries the backend call with a growing delay, capped at MAX_DELAY, for as long as the
outage lasts. Only a stopping worker ends the wait: then the error is raised and the
message goes back to the broker with the reason "result backend unavailable".
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

from conveyor.core.errors import BackendUnavailable
from conveyor.core.retry import Backoff

T = TypeVar("T")
log = logging.getLogger("conveyor.worker")
BACKOFF = Backoff(initial=0.1, factor=2.0, maximum=5.0)
REASON = "result backend unavailable"

# One event per app: set while its worker stops, so waits end (a process may run several
# workers in turn, as the tests do).
_stopping: weakref.WeakKeyDictionary[object, threading.Event] = weakref.WeakKeyDictionary()


def _event(app: object) -> threading.Event:
    return _stopping.setdefault(app, threading.Event())


def allow_waiting(app: object) -> None:
    """Called when a worker of `app` starts: backend calls wait out outages."""
    _event(app).clear()


def stop_waiting(app: object) -> None:
    """Called when a worker of `app` stops: waiting calls raise their last error now."""
    _event(app).set()


def patiently(app: object, call: Callable[[], T], what: str) -> T:
    """`call()`, retried while it raises BackendUnavailable, until it succeeds or the
    worker stops (then the last error is raised)."""
    stopping = _event(app)
    next_delay = BACKOFF.delays()
    attempt = 0
    while True:
        try:
            return call()
        except BackendUnavailable as exc:
            attempt += 1
            if stopping.is_set():
                raise
            delay = next_delay()
            log.warning(
                "%s: %s (attempt %d), retrying in %.2f s: %s", what, REASON, attempt, delay, exc
            )
            if stopping.wait(delay):
                raise
