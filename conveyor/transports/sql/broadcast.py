"""Broadcast over SQL: a table of recent broadcasts that every subscriber reads forward.

A broadcast is one row (channel, time, packed message); a broadcast deletes the rows older
than KEEP seconds, so the table stays small. A subscriber starts after the newest row of
its channel and polls for newer ones while `get` waits. Ids are allocated at INSERT but
become visible at COMMIT, so on a server a row can appear after one with a higher id: the
subscriber looks back LOOKBACK ids and skips those it has seen, so such a late row still
arrives, once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from conveyor.core import envelope
from conveyor.core.message import Message
from conveyor.core.transport import Subscription

KEEP = 60.0
LOOKBACK = 16
_FIRST_POLL = 0.005
_POLL = 0.25
"""Control traffic (inspect, revoke --terminate) waits a little, so idle subscribers cost
less than idle consumers."""


class LocalSignal:
    """Wakes this process's waiting fetches and subscriptions when it wrote something."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self._changed:
            self.generation += 1
            self._changed.notify_all()

    def wait(self, generation: int, timeout: float) -> None:
        """Wait up to `timeout` unless something changed since `generation` was read."""
        with self._changed:
            if self.generation == generation:
                self._changed.wait(timeout)


class SQLSubscription(Subscription):
    """`read(statement, **params)` runs a read statement and returns its rows as tuples."""

    def __init__(
        self, channel: str, statements: Any, read: Callable[..., list[Any]], signal: LocalSignal
    ) -> None:
        self._channel = channel
        self._sql = statements
        self._read = read
        self._signal = signal
        recent = read(statements.recent_broadcasts, ch=channel, lim=LOOKBACK)
        self._seen = {row_id for (row_id,) in recent}
        self._newest = max(self._seen, default=0)
        self._pending: deque[Message] = deque()
        self._closed = False

    def get(self, timeout: float) -> Message | None:
        deadline = time.monotonic() + timeout
        pause = _FIRST_POLL
        while not self._pending:
            generation = self._signal.generation
            self._poll()
            remaining = deadline - time.monotonic()
            if self._pending or remaining <= 0 or self._closed:
                break
            self._signal.wait(generation, min(pause, remaining))
            pause = min(pause * 2, _POLL)
        return self._pending.popleft() if self._pending else None

    def _poll(self) -> None:
        after = self._newest - LOOKBACK
        for row_id, body in self._read(self._sql.broadcasts_after, ch=self._channel, after=after):
            if row_id not in self._seen:
                self._seen.add(row_id)
                self._newest = max(self._newest, row_id)
                self._pending.append(envelope.unpack(body))
        floor = self._newest - LOOKBACK
        self._seen = {seen for seen in self._seen if seen > floor}

    def close(self) -> None:
        self._closed = True
