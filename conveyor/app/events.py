"""Sending events: Celery's event names and fields, batched off the caller's path.

`app.events.send(type, **fields)` only appends to a buffer; a daemon thread flushes the
buffer every FLUSH_INTERVAL seconds (and on `close`, and at exit), in slices of FLUSH_SLICE
events with a short pause between them, so that a large batch never holds the GIL for long
and the task threads' latency stays low: each slice goes into the event history
(conveyor.backends.events, in the result backend's store unless `events_store_url` names
another), then out on the transport's broadcast channel EVENT_CHANNEL for live views, when
the transport has broadcast; without it, live views poll the history. Values marked `Lazy`
(task arguments, results) are turned into their shortened repr in the flush thread too, so
sending a task costs a dict and an append.

Settings: `worker_send_task_events` (worker task events, default on; `False` turns them
off), `task_send_sent_event` (task-sent from clients, default on), `events_store_url`,
`events_expires` (seconds the history keeps events) and `events_max_tasks` (tasks kept).
A store or broker that fails drops that batch with a warning at most once a minute:
events never block or fail a task.
"""

from __future__ import annotations

import atexit
import logging
import os
import reprlib
import socket
import threading
import time
import weakref
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from conveyor.backends.events import SCHEMES, Event, EventStore, open_store
from conveyor.backends.events.base import encode
from conveyor.core.errors import ConveyorError
from conveyor.core.message import Message
from conveyor.core.url import parse_url

if TYPE_CHECKING:
    from conveyor.app.base import Conveyor
    from conveyor.app.protocol import TaskMessage

log = logging.getLogger("conveyor.events")
EVENT_CHANNEL = "_events"
FALLBACK_STORE = "memory://events"  # no Redis or SQL to keep the history in: this process
FLUSH_INTERVAL = 0.25
MAX_BUFFER = 100_000  # events kept while the store is unreachable; the oldest go first
FLUSH_SLICE = 500  # events per store write and broadcast message (about 125 tasks)
SLICE_PAUSE = 0.001  # seconds between a flush's slices
WARN_EVERY = 60.0
REPR_LIMIT = 1024
TRACEBACK_LIMIT = 16_384

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 20
_repr.maxlevel = 4


_PLAIN = (int, float, bool, type(None))
_FAST = frozenset({list, tuple, dict, str, int, float, bool, type(None)})


def _small(value: Any) -> bool:
    """A number, a short string, or a short list/tuple/dict of those: plain repr() gives
    what reprlib would, several times faster (most task arguments and results)."""
    if isinstance(value, _PLAIN) or (isinstance(value, str) and len(value) <= _repr.maxstring):
        return True
    if isinstance(value, (list, tuple)) and len(value) <= 8:
        return all(isinstance(v, _PLAIN) or (isinstance(v, str) and len(v) <= 64) for v in value)
    if isinstance(value, dict) and len(value) <= 8:
        return all(
            isinstance(k, str)
            and len(k) <= 64
            and (isinstance(v, _PLAIN) or (isinstance(v, str) and len(v) <= 64))
            for k, v in value.items()
        )
    return False


def saferepr(value: Any) -> str:
    """A repr short enough to store and show, which never raises."""
    try:
        text = repr(value) if type(value) in _FAST and _small(value) else _repr.repr(value)
    except Exception as exc:
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


class Lazy:
    """A value whose repr the flush thread computes (see saferepr)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def task_fields(body: TaskMessage, queue: str) -> dict[str, Any]:
    """The fields task-sent and task-received share (Celery's, and the queue)."""
    return {
        "uuid": body.id,
        "name": body.task,
        "args": Lazy(body.args),
        "kwargs": Lazy(body.kwargs),
        "retries": body.retries,
        "eta": body.eta,
        "expires": body.expires,
        "root_id": body.root_id,
        "parent_id": body.parent_id,
        "queue": queue,
    }


def store_url(conf: Any) -> str:
    """The history's URL: events_store_url, else the result backend's or the broker's URL
    when it is a store kind, else an in-process memory store."""
    if conf.events_store_url:
        return str(conf.events_store_url)
    for url in (conf.result_backend, conf.broker_url):
        if parse_url(url).scheme in SCHEMES:
            return str(url)
    return FALLBACK_STORE


def _finish(event: Event) -> Event:
    for key, value in event.items():
        if isinstance(value, Lazy):
            event[key] = saferepr(value.value)
    if isinstance(event.get("traceback"), str):
        event["traceback"] = event["traceback"][-TRACEBACK_LIMIT:]
    return event


class EventSender:
    """The app's event buffer and its flush thread; see the module docstring."""

    def __init__(self, app: Conveyor) -> None:
        self.app = app
        self._pid = os.getpid()
        self.hostname = f"gen{self._pid}@{socket.gethostname()}"
        #: Called in the flush thread with each batch (the worker's metrics listen here).
        self.listeners: list[Callable[[list[Event]], None]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buffer: list[Event] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: EventStore | None = None
        self._warned: dict[str, float] = {}
        self._at_exit = False
        # A forked child (a web server's workers after a preload) has no flush thread and
        # a copy of the buffer: it starts afresh.
        after_fork = weakref.WeakMethod(self._forked)
        os.register_at_fork(after_in_child=lambda: (m := after_fork()) is not None and m())

    def _forked(self) -> None:
        self._pid = os.getpid()
        self.hostname = f"gen{self._pid}@{socket.gethostname()}"
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buffer, self._thread, self._store = [], None, None

    # -- sending -------------------------------------------------------------------

    @property
    def task_events(self) -> bool:
        """Whether workers send task events (worker_send_task_events)."""
        return bool(self.app.conf.worker_send_task_events)

    def send(self, kind: str, **fields: Any) -> None:
        """Queue one event; `hostname` defaults to this process's client name."""
        event: Event = {"type": kind, "timestamp": time.time(), "hostname": self.hostname}
        event.update(fields)
        event["pid"] = self._pid
        with self._lock:
            self._buffer.append(event)
            if len(self._buffer) > MAX_BUFFER:
                del self._buffer[: len(self._buffer) - MAX_BUFFER]
            if self._thread is None:
                self._start()

    def task_sent(self, body: TaskMessage, queue: str) -> None:
        """task-sent, when task_send_sent_event is on (the default)."""
        if self.app.conf.task_send_sent_event:
            self.send("task-sent", **task_fields(body, queue))

    # -- flushing ------------------------------------------------------------------

    def _start(self) -> None:
        self._stop = stop = threading.Event()  # each thread its own: close stops only it
        self._thread = threading.Thread(
            target=self._run, args=(stop,), name="conveyor-events", daemon=True
        )
        self._thread.start()
        if not self._at_exit:
            self._at_exit = True
            flush = weakref.WeakMethod(self.flush)
            atexit.register(lambda: (method := flush()) is not None and method())

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            self.flush()

    @property
    def store(self) -> EventStore:
        """The history this app writes to (and the dashboard reads)."""
        if self._store is None:
            conf = self.app.conf
            self._store = open_store(
                store_url(conf),
                expires=conf.events_expires,
                max_tasks=conf.events_max_tasks,
                namespace=self.app.namespace,
            )
        return self._store

    def flush(self) -> int:
        """Send what is buffered now; returns how many events went. Never raises."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            for start in range(0, len(batch), FLUSH_SLICE):
                if start:
                    # The slice's work holds the GIL; a pause lets the task threads run
                    # between slices, rather than wait out switch intervals behind a batch.
                    time.sleep(SLICE_PAUSE)
                self._send([_finish(event) for event in batch[start : start + FLUSH_SLICE]])
            return len(batch)

    def _send(self, events: list[Event]) -> None:
        """One slice: into the history, as one broadcast message, to the listeners."""
        lines = encode(events)  # once, for the history and the broadcast
        self._guarded("storing events", lambda: self.store.add(events, lines))
        transport = self.app.transport
        if transport.capabilities.broadcast:
            body = Message(("[" + ",".join(lines) + "]").encode())
            self._guarded("broadcasting events", partial(transport.broadcast, EVENT_CHANNEL, body))
        for listener in list(self.listeners):
            self._guarded("an event listener", partial(listener, events))

    def _guarded(self, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:
            now = time.monotonic()
            if now - self._warned.get(what, -WARN_EVERY) >= WARN_EVERY:
                self._warned[what] = now
                kind = "" if isinstance(exc, ConveyorError) else f"{type(exc).__name__}: "
                log.warning("%s failed, events dropped: %s%s", what, kind, exc)

    def close(self) -> None:
        """Flush what is buffered, stop the thread and close the history's connections."""
        with self._lock:  # not between a sender's creating the thread and starting it
            thread, self._thread = self._thread, None
            self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self.flush()
        store, self._store = self._store, None
        if store is not None:
            store.close()
