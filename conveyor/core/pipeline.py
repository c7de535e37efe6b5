"""Pipelined publishing: a message is written at once and its confirm is waited for later.

Waiting for each publisher confirm costs a round trip and, on a RabbitMQ classic queue, an
fsync (0.7-1 ms) per `delay()`. A Pipeline writes the message (`Transport.publish_pipelined`)
and keeps a Ticket for it until the broker confirms. At most `window` tickets are outstanding:
the next publish blocks until one settles, so memory and what a crash can lose stay bounded.

A ticket whose confirm failed is published again, with the same Message and so the same id:

* refused (a nack, an unroutable message): up to `refusals` attempts in all, then it fails
  with PublishFailed;
* connection lost with the confirm outstanding (outcome unknown): after a reconnect, within
  the Backoff's budget, as `Producer.publish` retries; a message the broker had in fact
  taken then arrives twice under one id, which consumers already treat as one message.

There is no thread of its own: whoever waits drives the republishing (the next publish,
`wait`, `flush`, the exit hook). The transport's I/O thread only records an outcome, under
one lock. At interpreter exit every live pipeline is flushed (`EXIT_TIMEOUT`), and what is
still unconfirmed or refused then is logged as an error.

Surprising: a republished message goes out after those written since, so order holds only
while nothing fails.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import CancelledError, Future
from functools import partial

from conveyor.core.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ConfigurationError,
    PublishFailed,
    PublishTimeout,
)
from conveyor.core.message import Message
from conveyor.core.retry import Backoff, call_with_retry
from conveyor.core.transport import Transport

log = logging.getLogger("conveyor.pipeline")

PENDING, CONFIRMED, FAILED = "pending", "confirmed", "failed"
EXIT_TIMEOUT = 30.0  # s: how long interpreter exit waits for outstanding confirms
SHOWN_IDS = 10  # ids named in a PublishFailed message (all are in `message_ids`)


class Ticket:
    """One pipelined message, from its write until the broker confirmed it or it failed."""

    __slots__ = (
        "_delays",
        "attempts",
        "delay",
        "error",
        "lost_since",
        "message",
        "not_before",
        "queue",
        "refusals",
        "reported",
        "state",
    )

    def __init__(self, queue: str, message: Message, delay: float) -> None:
        self.queue = queue
        self.message = message
        self.delay = delay
        self.state = PENDING
        self.error: PublishFailed | None = None
        self.attempts = 1
        self.refusals = 0
        self.lost_since: float | None = None
        self.not_before = 0.0
        self.reported = False  # its failure was raised (or handed to on_refused) once
        self._delays: Callable[[], float] | None = None

    @property
    def done(self) -> bool:
        return self.state != PENDING

    def next_delay(self, backoff: Backoff) -> float:
        if self._delays is None:
            self._delays = backoff.delays()
        return self._delays()

    def __repr__(self) -> str:
        return f"<Ticket {self.message.id} {self.state}>"


class Pipeline:
    """Tracks the confirms of one transport's pipelined publishes; see the module docstring.

    `on_refused(tickets)` is called on the waiting thread, once per failed ticket, when its
    failure is reported (the app removes the PENDING records of tasks that were never sent).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        window: int = 1000,
        refusals: int = 3,
        backoff: Backoff | None = None,
        stall_timeout: float = 30.0,
        on_refused: Callable[[list[Ticket]], None] | None = None,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigurationError(f"publish window {window!r}: a positive whole number")
        self.transport = transport
        self.window = window
        self.refusals = refusals
        self.backoff = backoff or Backoff()
        self.stall_timeout = stall_timeout
        self.on_refused = on_refused
        self._fresh_state()
        _pipelines.add(self)

    def _fresh_state(self) -> None:
        """Locks and tickets belong to one process: a forked child starts with none (its
        parent still tracks and flushes its own)."""
        self._cond = threading.Condition()
        self._outstanding: set[Ticket] = set()
        self._retry: deque[Ticket] = deque()
        self._refused: set[Ticket] = set()  # failed, not yet reported

    @property
    def outstanding(self) -> int:
        """Tickets written and not yet confirmed or failed."""
        return len(self._outstanding)

    # -- publishing ----------------------------------------------------------------------

    def publish(
        self, queue: str, message: Message, *, delay: float = 0.0, backoff: Backoff | None = None
    ) -> Ticket:
        """Write `message` now and return its ticket; blocks while the window is full.

        A broker that cannot be reached for the write is retried by `backoff` (this
        pipeline's own when None) and then raises BrokerUnavailable, as `Producer.publish`.
        """
        if self._retry:
            self._drive()
        if len(self._outstanding) >= self.window:
            deadline = time.monotonic() + self.stall_timeout
            if not self._wait_until(lambda: len(self._outstanding) < self.window, deadline):
                raise BrokerUnavailable(
                    f"no publisher confirm for {self.stall_timeout:.0f} s with {self.window} "
                    f"messages outstanding; {message.id} was not sent"
                )
        future = call_with_retry(
            lambda: self.transport.publish_pipelined(queue, (message,), delay=delay),
            backoff or self.backoff,
            f"publish to {queue!r}",
        )
        ticket = Ticket(queue, message, delay)
        self._track(ticket, future)
        return ticket

    def _track(self, ticket: Ticket, future: Future[None]) -> None:
        with self._cond:
            self._outstanding.add(ticket)
        future.add_done_callback(lambda f: self._settle(ticket, f))

    def _settle(self, ticket: Ticket, future: Future[None]) -> None:
        """Record one attempt's outcome (any thread, the I/O thread most often)."""
        try:
            error = future.exception()
        except CancelledError as exc:
            error = exc
        with self._cond:
            if error is None:
                ticket.state = CONFIRMED
                self._outstanding.discard(ticket)
            elif self._again(ticket, error):
                self._retry.append(ticket)
            else:
                ticket.state = FAILED
                task = ticket.message.correlation_id
                ticket.error = PublishFailed(
                    f"message {ticket.message.id}{f' (task {task})' if task else ''} to "
                    f"{ticket.queue!r} was not accepted after {ticket.attempts} attempts: {error}",
                    (ticket.message.id,),
                )
                ticket.error.__cause__ = error
                self._outstanding.discard(ticket)
                self._refused.add(ticket)
            self._cond.notify_all()

    def _again(self, ticket: Ticket, error: BaseException) -> bool:
        """Whether `ticket` is published again after `error`; sets when (caller holds the lock)."""
        if isinstance(error, AuthenticationFailed) or not isinstance(error, BrokerError):
            return False
        now = time.monotonic()
        backoff = self.backoff
        if isinstance(error, BrokerUnavailable):  # the connection: outcome unknown
            if ticket.lost_since is None:
                ticket.lost_since = now
            wait = ticket.next_delay(backoff)
            if now + wait - ticket.lost_since > backoff.budget:
                return False
            if backoff.retries is not None and ticket.attempts > backoff.retries:
                return False
        else:  # the broker said no (nack, unroutable)
            ticket.refusals += 1
            if ticket.refusals >= self.refusals:
                return False
            wait = ticket.next_delay(backoff)
        ticket.not_before = now + wait
        return True

    def _drive(self) -> None:
        """Republish the tickets that are due, on the calling thread.

        A reconnect that fails ends the pass: the rest wait for the next one, and the failed
        attempt counts against the ticket's budget like a lost confirm.
        """
        now = time.monotonic()
        with self._cond:
            due = [t for t in self._retry if t.not_before <= now]
            if not due:
                return
            self._retry = deque(t for t in self._retry if t.not_before > now)
        for index, ticket in enumerate(due):
            ticket.attempts += 1
            try:
                future = self.transport.publish_pipelined(
                    ticket.queue, (ticket.message,), delay=ticket.delay
                )
            except Exception as exc:
                future = Future()
                future.set_exception(exc)
                future.add_done_callback(partial(self._settle, ticket))
                if isinstance(exc, BrokerUnavailable):
                    with self._cond:
                        self._retry.extend(due[index + 1 :])
                    return
                continue
            log.debug("republished %s (attempt %d)", ticket.message.id, ticket.attempts)
            future.add_done_callback(partial(self._settle, ticket))

    # -- waiting -------------------------------------------------------------------------

    def _wait_until(self, ready: Callable[[], bool], deadline: float | None) -> bool:
        """Drive retries and wait until `ready()` (checked under the lock) or `deadline`."""
        while True:
            if self._retry:
                self._drive()
            with self._cond:
                if ready():
                    return True
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return False
                waits = [deadline - now] if deadline is not None else []
                if self._retry:
                    waits.append(max(0.0, min(t.not_before for t in self._retry) - now))
                self._cond.wait(min(waits) if waits else None)

    def wait(self, tickets: Iterable[Ticket], timeout: float | None = None) -> None:
        """Wait until each ticket is confirmed or failed.

        Raises PublishFailed naming the failed tickets not reported before (each failure is
        reported once), then PublishTimeout if some are still outstanding at `timeout`.
        """
        tickets = list(tickets)
        deadline = None if timeout is None else time.monotonic() + timeout
        settled = self._wait_until(lambda: all(t.done for t in tickets), deadline)
        failed = self._report([t for t in tickets if t.state == FAILED])
        if failed:
            raise _failure(failed)
        if not settled:
            left = sum(not t.done for t in tickets)
            raise PublishTimeout(f"{left} publisher confirms still outstanding after {timeout} s")

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every confirm outstanding now; report failures not reported yet (see wait)."""
        with self._cond:
            tickets = [*self._outstanding, *self._refused]
        self.wait(tickets, timeout)

    def _report(self, failed: Sequence[Ticket]) -> list[Ticket]:
        """The failed tickets not reported before, now marked reported."""
        with self._cond:
            new = [t for t in failed if not t.reported]
            for ticket in new:
                ticket.reported = True
                self._refused.discard(ticket)
        if new and self.on_refused is not None:
            try:
                self.on_refused(new)
            except Exception:  # the caller must still learn of the failure itself
                log.exception("on_refused failed for %d refused messages", len(new))
        return new


def _failure(failed: Sequence[Ticket]) -> PublishFailed:
    if len(failed) == 1 and failed[0].error is not None:
        return failed[0].error
    ids = tuple(t.message.id for t in failed)
    shown = ", ".join(ids[:SHOWN_IDS]) + (", ..." if len(ids) > SHOWN_IDS else "")
    first = failed[0].error
    error = PublishFailed(
        f"{len(ids)} pipelined messages were not accepted ({shown}): {first}", ids
    )
    error.__cause__ = first
    return error


_pipelines: weakref.WeakSet[Pipeline] = weakref.WeakSet()


def _flush_at_exit() -> None:
    """Interpreter exit waits for every outstanding confirm; what fails is logged."""
    for pipeline in list(_pipelines):
        if not pipeline.outstanding and not pipeline._refused:
            continue
        try:
            pipeline.flush(EXIT_TIMEOUT)
        except (PublishFailed, PublishTimeout) as exc:
            log.error("at exit: %s", exc)


def _after_fork_in_child() -> None:
    for pipeline in list(_pipelines):
        pipeline._fresh_state()


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
