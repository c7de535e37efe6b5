"""The worker's side of remote control: answers ping/registered/active, obeys revoke;
the other commands (inspect stats/conf/..., rate_limit, shutdown, pool_grow, ...) are in
control_commands.py.

Runs only when the transport declares the broadcast capability; see conveyor.app.control
for the wire format.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from conveyor import signals
from conveyor.app.control import CONTROL_CHANNEL
from conveyor.core.errors import ConveyorError
from conveyor.core.message import Message
from conveyor.worker.control_commands import REVOKED_KEPT, task_request, worker_commands
from conveyor.worker.control_request import parse_control, task_ids
from conveyor.worker.execute import make_context
from conveyor.worker.pools import Pool

log = logging.getLogger("conveyor.worker")


class ControlListener:
    def __init__(
        self,
        app: Any,
        hostname: str,
        pool: Pool,
        alive: Callable[[], bool] = lambda: True,
        worker: Any = None,
    ) -> None:
        self.app = app
        self.hostname = hostname
        self.pool = pool
        #: Whether the worker consumes: a worker that does not answers nothing, so that
        #: ping and inspect show it as gone.
        self.alive = alive
        self._stop = threading.Event()
        self._commands: dict[str, Callable[[dict[str, Any]], Any]] = {
            "ping": lambda _args: {"ok": "pong"},
            # Without the built-in conveyor.* tasks (canvas map/starmap), as with Celery.
            "registered": lambda _args: sorted(
                name for name in self.app.tasks if not name.startswith("conveyor.")
            ),
            "active": lambda _args: [task_request(w, self.hostname) for w in self.pool.active()],
            "revoke": self._revoke,
        }
        #: Ids this worker was asked to revoke (`inspect revoked`).
        self.revoked: list[str] = []
        if worker is not None:
            self._commands.update(worker_commands(worker, self))

    def _revoke(self, arguments: dict[str, Any]) -> list[str]:
        ids = task_ids(arguments)
        self.revoked = [*self.revoked, *ids][-REVOKED_KEPT:]
        if not arguments.get("terminate"):
            return []
        running = {work.task_id: work for work in self.pool.active()}
        stopped = [task_id for task_id in ids if self.pool.terminate(task_id)]
        for task_id in stopped:
            work = running.get(task_id)
            if work is not None:
                signals.task_revoked.send(
                    sender=self.app.tasks.get(work.job.message.task),
                    request=make_context(work.job, self.hostname),
                    terminated=True,
                    signum=arguments.get("signal") or "SIGTERM",
                    expired=False,
                )
        return stopped

    def start(self) -> threading.Thread | None:
        if not self.app.conf.worker_enable_remote_control:  # Celery's setting
            log.info("worker_enable_remote_control is off: no ping, inspect or control")
            return None
        if not self.app.transport.capabilities.broadcast:
            log.info("transport has no broadcast: inspect and revoke --terminate are unavailable")
            return None
        thread = threading.Thread(target=self._run, name="conveyor-control", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        transport = self.app.transport
        while not self._stop.is_set():
            try:
                subscription = transport.subscribe(CONTROL_CHANNEL)
            except ConveyorError as exc:
                log.warning("control channel unavailable, retrying: %s", exc)
                self._stop.wait(2.0)
                continue
            try:
                while not self._stop.is_set():
                    message = subscription.get(1.0)
                    if message is not None:
                        self._handle(message)
            except ConveyorError as exc:
                log.warning("control channel lost, resubscribing: %s", exc)
            finally:
                subscription.close()

    def _handle(self, message: Message) -> None:
        if not self.alive():
            log.error("not answering a control message: this worker's consumer is not running")
            return
        try:
            request = parse_control(message.body)
            if request.destination is not None and self.hostname not in request.destination:
                return
            command = self._commands.get(request.command)
            if command is None:
                raise ValueError(f"unknown command {request.command!r}")
            reply = command(request.arguments)
        except ValueError as exc:
            log.warning("ignoring malformed control message: %s", exc)
            return
        except Exception:
            log.exception("control command failed: %r", message.body[:200])
            return
        if request.reply_to:
            body = json.dumps({"hostname": self.hostname, "reply": reply}).encode()
            self.app.transport.broadcast(request.reply_to, Message(body))
