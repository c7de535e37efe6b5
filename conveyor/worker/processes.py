"""The process pool: each slot thread drives one child process over a pipe.

Children are started with "spawn" (never fork a threaded process) and load the app
themselves from the `-A` path, then run `execute` exactly as a pool thread would: they store
results and publish retries through their own connections; the parent only settles the
message. The slot thread enforces the hard time limit: a child past it is killed, the task
marked FAILURE (TimeLimitExceeded) and a fresh child started. A child that dies for any
other reason ends the task as a FAILURE (WorkerLostError, worker/lost.py).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from conveyor import signals
from conveyor.app import states
from conveyor.app.base import Conveyor
from conveyor.app.exceptions import TimeLimitExceeded
from conveyor.core.errors import ConfigurationError, ConveyorError
from conveyor.worker.ended import Ended
from conveyor.worker.execute import Job, execute
from conveyor.worker.lost import worker_lost
from conveyor.worker.pools import ThreadPool
from conveyor.worker.recycle import used_up
from conveyor.worker.request import Work
from conveyor.worker.results import store_failure
from conveyor.worker.time_limits import for_task

log = logging.getLogger("conveyor.worker")
_spawn = multiprocessing.get_context("spawn")


class ChildLost(ConveyorError):
    """A pool child exited while running a task."""


def child_main(
    app_path: str, hostname: str, conn: Connection, loglevel: int, logfile: str | None = None
) -> None:
    """A child's life: load the app, then run jobs from the pipe until it closes."""
    from conveyor.app.loader import load_app
    from conveyor.monitoring.worker_metrics import count_in_pool_child
    from conveyor.worker.logs import setup as setup_logging

    # The parent decides when children stop; a terminal's ^C or a group SIGTERM must not
    # interrupt a running task.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    app = load_app(app_path)
    setup_logging(loglevel, logfile, conf=app.conf)
    count_in_pool_child(app)
    signals.worker_process_init.send(sender=None)
    while True:
        try:
            job: Job | None = conn.recv()
        except EOFError:
            break
        if job is None:
            break
        try:
            reply: tuple[str, Any] = ("ok", execute(app, job, hostname, hard_limit_outside=True))
        except Exception as exc:
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)
    signals.worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
    app.close()


def _log_file() -> str | None:
    """The file the worker logs to (`-f`), for its children to log there too: the file of
    the root logger's first file handler, if it has one."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


class _Child:
    def __init__(self, app_path: str, hostname: str) -> None:
        self.conn, child_conn = _spawn.Pipe()
        self.process: BaseProcess = _spawn.Process(
            target=child_main,
            args=(app_path, hostname, child_conn, logging.getLogger().level, _log_file()),
            daemon=True,
            name="conveyor-child",
        )
        self.process.start()
        child_conn.close()
        self.terminated = False
        self.tasks = 0

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(5)
        self.kill()


class ProcessPool(ThreadPool):
    """N child processes; tasks can be killed (hard time limit, revoke with terminate)."""

    def __init__(
        self, app: Conveyor, hostname: str, concurrency: int, app_path: str | None
    ) -> None:
        if not app_path:
            raise ConfigurationError(
                "the process pool needs the app's -A path to load it in children"
            )
        super().__init__(app, hostname, concurrency)
        self.app_path = app_path
        self._children: dict[int, _Child] = {}

    def _start_slot(self, number: int) -> None:
        self._children[number] = _Child(self.app_path, self.hostname)
        super()._start_slot(number)

    def slot_id(self, number: int) -> int:
        return number

    def _retired(self, number: int) -> None:
        """A slot ended by shrink stops its child, so a shrunk pool holds fewer processes."""
        super()._retired(number)
        child = self._children.pop(number, None)
        if child is not None:
            child.stop()

    def run(self, slot: int, work: Work) -> Ended:
        child = self._children[slot]
        task = self.app.tasks[work.job.message.task]
        _soft, hard = for_task(task, work.job.headers)
        try:
            child.conn.send(work.job)
            if not child.conn.poll(hard):
                return self._replace(slot, work, timed_out=True)
            kind, value = child.conn.recv()
        except (EOFError, OSError):  # the child died (or was terminated) mid-task
            return self._replace(slot, work, timed_out=False)
        child.tasks += 1
        reason = used_up(self.app.conf, child.process.pid, child.tasks)
        if reason is not None:
            log.info("replacing pool child %s: %s", child.process.pid, reason)
            child.stop()
            self._children[slot] = _Child(self.app_path, self.hostname)
        ended: Ended = value if kind == "ok" else Ended.failed(ChildLost(value))
        return ended

    def _replace(self, slot: int, work: Work, *, timed_out: bool) -> Ended:
        child = self._children[slot]
        terminated = child.terminated
        child.kill()
        self._children[slot] = _Child(self.app_path, self.hostname)
        if terminated:
            return Ended.at(states.REVOKED)
        if timed_out:
            message = work.job.message
            log.error("task %s[%s] hit its hard time limit; child killed", message.task, message.id)
            store_failure(self.app, message.id, TimeLimitExceeded("hard time limit exceeded"))
            return Ended.at(states.FAILURE)
        return worker_lost(self.app, work, child.process.exitcode)

    def _terminate_slot(self, slot: int) -> bool:
        child = self._children[slot]
        child.terminated = True
        child.kill()
        return True

    def join(self, timeout: float) -> bool:
        done = super().join(timeout)
        if done:
            for child in list(self._children.values()):
                child.stop()
        return done

    def kill(self) -> None:
        for child in list(self._children.values()):
            child.kill()
