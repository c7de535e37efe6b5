"""Which publishes are pipelined, and the `with app.pipeline():` block.

`broker_publish_confirm="pipelined"` pipelines every send of the app, except those made by a
task a worker runs: its messages are confirmed before the task ends, so a task acked never
has children the broker did not take (inside an explicit block it pipelines too, and the
block waits for them before the task goes on). The mechanism is the Producer's Pipeline
(core/pipeline.py); a transport without `pipelined_confirms` publishes and waits as always,
so on such a broker a block and `app.flush` have nothing to wait for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from conveyor.app import context
from conveyor.core.pipeline import Ticket

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor

log = logging.getLogger("conveyor.app")

# The innermost open block on this thread (or task): its app and the tickets sent inside.
_block: ContextVar[tuple[Conveyor, list[Ticket]] | None] = ContextVar(
    "conveyor_pipeline_block", default=None
)


def active(app: Conveyor) -> bool:
    """Whether a send of `app` made now is pipelined."""
    if not app.transport.capabilities.pipelined_confirms:
        return False
    block = _block.get()
    if block is not None and block[0] is app:
        return True
    if app.conf.broker_publish_confirm != "pipelined":
        return False
    running = context.current()
    return running is None or running.called_directly or running.is_eager


def note(app: Conveyor, ticket: Ticket) -> None:
    """Count `ticket` in the open block of `app`, if any."""
    block = _block.get()
    if block is not None and block[0] is app:
        block[1].append(ticket)


@contextmanager
def block(app: Conveyor, timeout: float | None = None) -> Iterator[None]:
    """Pipeline the sends inside; at exit wait for their confirms and raise PublishFailed if
    any was finally refused. An error raised inside the block propagates; the block still waits
    for what it sent, and a publish failure then is logged."""
    tickets: list[Ticket] = []
    token = _block.set((app, tickets))
    try:
        yield
    except BaseException as exc:
        _block.reset(token)
        try:
            _wait(app, tickets, timeout)
        except Exception as publish_error:  # the block's own error propagates; this is logged
            log.error("a pipeline block that raised %r: %s", exc, publish_error)
        raise
    _block.reset(token)
    _wait(app, tickets, timeout)


def _wait(app: Conveyor, tickets: list[Ticket], timeout: float | None) -> None:
    if tickets:
        app.producer.pipeline.wait(tickets, timeout)
