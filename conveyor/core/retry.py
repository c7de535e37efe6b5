"""Bounded exponential backoff for operations that may meet a broker that is down."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from conveyor.core.errors import AuthenticationFailed, BrokerUnavailable

T = TypeVar("T")
log = logging.getLogger("conveyor.retry")


@dataclass(frozen=True)
class Backoff:
    """Delays of initial, initial*factor + step, ... capped at `maximum`, jittered by +-10%.

    `budget` bounds the whole retry: past it the last error is raised as BrokerUnavailable;
    so does `retries`, the number of retries after the first attempt, when set (Celery's
    linear ``retry_policy`` is ``factor=1, step=interval_step``).
    """

    initial: float = 0.05
    factor: float = 2.0
    maximum: float = 2.0
    budget: float = 20.0
    retries: int | None = None
    step: float = 0.0

    def delays(self) -> Callable[[], float]:
        current = [self.initial]

        def next_delay() -> float:
            delay = current[0]
            current[0] = min(delay * self.factor + self.step, self.maximum)
            return delay * random.uniform(0.9, 1.1)

        return next_delay


def call_with_retry(operation: Callable[[], T], backoff: Backoff, what: str) -> T:
    """Run `operation`, retrying BrokerUnavailable (not auth failures) within the budget."""
    deadline = time.monotonic() + backoff.budget
    next_delay = backoff.delays()
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except AuthenticationFailed:
            raise
        except BrokerUnavailable as exc:
            delay = next_delay()
            if backoff.retries is not None and attempt > backoff.retries:
                raise BrokerUnavailable(
                    f"{what} failed {attempt} times ({backoff.retries} retries); giving up: {exc}"
                ) from exc
            if time.monotonic() + delay > deadline:
                raise BrokerUnavailable(
                    f"{what} failed {attempt} times over {backoff.budget:.0f} s; giving up: {exc}"
                ) from exc
            log.warning("%s failed (attempt %d), retrying in %.2f s: %s", what, attempt, delay, exc)
            time.sleep(delay)
