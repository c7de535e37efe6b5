"""The live event stream: the transport's broadcast where it has one, else the history.

`EventStream.get(timeout)` returns the next batch of events (possibly empty). With
broadcast, batches arrive as the senders flush; without it, the history's log is polled
every POLL_INTERVAL seconds from the cursor taken when the stream opened. A subscription
that fails is opened again after a pause; the caller never sees the broker's errors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from typing import Any

from conveyor.app.base import Conveyor
from conveyor.app.events import EVENT_CHANNEL
from conveyor.backends.events import Event
from conveyor.core.errors import ConveyorError
from conveyor.core.transport import Subscription

log = logging.getLogger("conveyor.monitoring")
POLL_INTERVAL = 0.5
RETRY_AFTER = 2.0


class EventStream:
    def __init__(self, app: Conveyor, *, broadcast: bool | None = None) -> None:
        self.app = app
        self.broadcast = app.transport.capabilities.broadcast if broadcast is None else broadcast
        self._subscription: Subscription | None = None
        self._cursor: str | None = None
        self._opened = False

    def _open(self) -> None:
        if self.broadcast:
            self._subscription = self.app.transport.subscribe(EVENT_CHANNEL)
        else:
            _, self._cursor = self.app.events.store.since(None)
        self._opened = True

    def get(self, timeout: float) -> list[Event]:
        try:
            if not self._opened:
                self._open()
            if self._subscription is not None:
                return self._from_broadcast(timeout)
            events, self._cursor = self.app.events.store.since(self._cursor)
            if not events:
                time.sleep(min(timeout, POLL_INTERVAL))
            return events
        except ConveyorError as exc:
            log.warning("event stream interrupted, reopening: %s", exc)
            self.close()
            time.sleep(min(timeout, RETRY_AFTER))
            return []

    def _from_broadcast(self, timeout: float) -> list[Event]:
        assert self._subscription is not None
        message = self._subscription.get(timeout)
        if message is None:
            return []
        try:
            batch: Any = json.loads(message.body)
        except ValueError:
            log.warning("ignoring an event message that is not JSON")
            return []
        return [e for e in batch if isinstance(e, dict)] if isinstance(batch, list) else []

    def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        self._opened = False
        if subscription is not None:
            with contextlib.suppress(ConveyorError):
                subscription.close()
