"""Server-sent events for the dashboard: one thread reads the event stream, every open page
gets each batch.

The hub's thread starts with the dashboard (its metrics count every event) and feeds each
subscriber's asyncio queue through its event loop (call_soon_threadsafe); a page that does
not keep up loses batches beyond QUEUE_SIZE, never slows the others. The state
(ClusterState) and the listeners (the metrics) take each batch here too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable

from conveyor.app.base import Conveyor
from conveyor.backends.events import Event
from conveyor.monitoring.state import ClusterState
from conveyor.monitoring.stream import EventStream

log = logging.getLogger("conveyor.monitoring")
QUEUE_SIZE = 100
KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing the stream


class Hub:
    def __init__(self, app: Conveyor, state: ClusterState) -> None:
        self.app = app
        self.state = state
        #: Called in the hub's thread with each batch, after the state took it.
        self.listeners: list[Callable[[list[Event]], None]] = []
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[list[Event]]]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="conveyor-hub", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3.0)

    def _run(self) -> None:
        stream = EventStream(self.app)
        try:
            while not self._stop.is_set():
                batch = stream.get(0.5)
                if not batch:
                    continue
                self.state.apply(batch)
                for listener in self.listeners:
                    try:
                        listener(batch)
                    except Exception:
                        log.exception("an event listener of the dashboard failed")
                with self._lock:
                    subscribers = list(self._subscribers)
                for loop, queue in subscribers:
                    loop.call_soon_threadsafe(_offer, queue, batch)
        finally:
            stream.close()

    async def subscribe(self) -> AsyncIterator[str]:
        """SSE frames: one ``batch`` event per batch of events (their types and ids)."""
        queue: asyncio.Queue[list[Event]] = asyncio.Queue(QUEUE_SIZE)
        entry = (asyncio.get_running_loop(), queue)
        with self._lock:
            self._subscribers.add(entry)
        self.start()
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    batch = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except asyncio.TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                summary = [
                    {"type": e.get("type"), "uuid": e.get("uuid"), "hostname": e.get("hostname")}
                    for e in batch
                ]
                yield f"event: batch\ndata: {json.dumps(summary)}\n\n"
        finally:
            with self._lock:
                self._subscribers.discard(entry)


def _offer(queue: asyncio.Queue[list[Event]], batch: list[Event]) -> None:
    if not queue.full():
        queue.put_nowait(batch)
