"""The worker's events: task-received ... task-succeeded, and the worker's own heartbeat.

Each function is one hook call from the worker's code (worker.py, execute.py, request.py)
and costs a dict and an append (conveyor.app.events sends them off the task's path); all
task events are skipped when `worker_send_task_events` is off. Fields are Celery's:
``uuid``, ``name``, ``args``/``kwargs`` (shortened reprs), ``runtime``, ``result``,
``exception``, ``traceback``; the heartbeat carries ``freq``, ``active``, ``processed``
and ``loadavg``, plus conveyor's ``pool``, ``concurrency``, ``queues`` and ``prefetched``
(deliveries held: running or waiting in the pool). task-started also carries ``name``
(Celery's does not), so a process that sees only a task's run, such as a process-pool
child counting metrics, can name it.
"""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from conveyor.app import states
from conveyor.app.base import Conveyor
from conveyor.app.context import Context
from conveyor.app.events import Lazy, task_fields
from conveyor.app.exceptions import TaskRevokedError
from conveyor.app.protocol import TaskMessage
from conveyor.core.message import Delivery
from conveyor.worker.middleware import Middleware, Outcome, Request

if TYPE_CHECKING:
    from conveyor.app.task import Task
    from conveyor.worker.pools import Pool

log = logging.getLogger("conveyor.worker")
HEARTBEAT_INTERVAL = 2.0  # Celery's default `freq`
_OUTCOMES = {
    states.SUCCESS: "task-succeeded",
    states.FAILURE: "task-failed",
    states.RETRY: "task-retried",
}


def received(app: Conveyor, msg: TaskMessage, hostname: str, queue: str) -> None:
    if app.events.task_events:
        app.events.send("task-received", hostname=hostname, **task_fields(msg, queue))


def rejected(app: Conveyor, delivery: Delivery, task_id: str | None, reason: str) -> None:
    if app.events.task_events and task_id:
        app.events.send(
            "task-rejected", uuid=task_id, requeue=False, reason=reason, queue=delivery.queue
        )


def skipped(app: Conveyor, msg: TaskMessage, hostname: str, state: str) -> None:
    """A task not run because it is REVOKED (or already ready) in the result backend."""
    if app.events.task_events and state == states.REVOKED:
        app.events.send(
            "task-revoked", uuid=msg.id, name=msg.task, hostname=hostname, terminated=False
        )


def expired(app: Conveyor, msg: TaskMessage) -> None:
    if app.events.task_events:
        app.events.send("task-revoked", uuid=msg.id, name=msg.task, expired=True)


class Run:
    """One execution: task-started now, then `done` sends the outcome with the runtime."""

    __slots__ = ("app", "began", "hostname", "msg")

    def __init__(self, app: Conveyor, msg: TaskMessage, hostname: str) -> None:
        self.app, self.msg, self.hostname = app, msg, hostname
        self.began = time.monotonic()
        if app.events.task_events:
            app.events.send("task-started", uuid=msg.id, name=msg.task, hostname=hostname)

    def done(self, state: str, retval: Any, einfo: Any) -> None:
        """`einfo`: the ExceptionInfo of a failure or retry, else None."""
        kind = _OUTCOMES.get(state)
        if kind is None or not self.app.events.task_events:
            return
        fields: dict[str, Any] = {"uuid": self.msg.id, "hostname": self.hostname}
        if kind == "task-succeeded":
            fields.update(result=Lazy(retval), runtime=time.monotonic() - self.began)
        elif isinstance(einfo and einfo.exception, TaskRevokedError):
            kind, fields["terminated"] = "task-revoked", True
        elif einfo is not None:
            fields.update(exception=Lazy(einfo.exception), traceback=einfo.traceback)
            fields["runtime"] = time.monotonic() - self.began
        self.app.events.send(kind, **fields)


class TaskEvents(Middleware):
    """task-started before the body, the outcome once it is stored (worker/stack.py)."""

    def before_task(self, task: Task, request: Context) -> None:
        if isinstance(request, Request) and request.message is not None:
            request.scratch["events"] = Run(task.app, request.message, request.hostname or "")

    def task_skipped(self, task: Task, request: Context, state: str) -> None:
        if isinstance(request, Request) and request.message is not None:
            skipped(task.app, request.message, request.hostname or "", state)

    def after_task(self, task: Task, request: Context, outcome: Outcome) -> None:
        run = request.scratch.get("events") if isinstance(request, Request) else None
        if run is not None:
            run.done(outcome.state, outcome.retval, outcome.einfo)


class WorkerEvents:
    """The worker's own events: worker-online at start, worker-heartbeat every `freq`
    seconds while `alive()` (the consumer thread runs), worker-offline at stop or as soon as
    the consumer is found dead (a worker that consumes nothing is not alive to a monitor,
    issue 12); and task-received, counted as `processed`."""

    def __init__(
        self,
        app: Conveyor,
        hostname: str,
        pool: Pool,
        pool_kind: str,
        queues: list[str],
        held: Callable[[], int],
        alive: Callable[[], bool],
        freq: float = HEARTBEAT_INTERVAL,
    ) -> None:
        self.app, self.hostname, self.pool, self.freq = app, hostname, pool, freq
        self.held, self.alive = held, alive
        self._offline = False
        self.pool_kind, self.queues = pool_kind, queues
        self.processed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def received(self, msg: TaskMessage, queue: str) -> None:
        self.processed += 1
        received(self.app, msg, self.hostname, queue)

    def _send(self, kind: str) -> None:
        try:
            load = [round(x, 2) for x in os.getloadavg()]
        except OSError:
            load = []
        self.app.events.send(
            kind,
            hostname=self.hostname,
            freq=self.freq,
            active=len(self.pool.active()),
            processed=self.processed,
            prefetched=self.held(),
            loadavg=load,
            pool=self.pool_kind,
            concurrency=self.pool.concurrency,
            queues=self.queues,
            sw_ident="conveyor",
            sw_sys=platform.system(),
        )

    def start(self) -> None:
        self._send("worker-online")
        self._thread = threading.Thread(target=self._run, name="conveyor-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.freq):
            if not self.alive():
                log.error("%s: the consumer is not running; no more heartbeats", self.hostname)
                self._go_offline()
                return
            self._send("worker-heartbeat")

    def _go_offline(self) -> None:
        if not self._offline:
            self._offline = True
            self._send("worker-offline")

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(self.freq + 1.0)
        self._thread = None
        self._go_offline()
