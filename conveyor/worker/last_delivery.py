"""A task's last allowed delivery, when the run before it died with its worker.

Under the threads and solo pools a task that kills its process (os._exit, a segfault, the
OOM killer) takes the whole worker down: nobody is left to store its outcome, the message
comes back after the lease, and each delivery runs it again (at-least-once, as for any
worker that died). Past `max_deliveries` the transport dead-letters it as "max deliveries"
without anything stored, so `get()` would wait out its timeout.

So the delivery before the last records who runs it (a STARTED record naming the worker's
hostname, machine and pid, written by results.Claim), and the last delivery reads it first:
a run started by a worker that is gone means the task already cost a worker its life, and
the last delivery stores a FAILURE (WorkerLostError) and settles the message instead of
running it once more into a silent dead letter.

"Gone": on the same machine, its pid no longer exists (our own pid is a predecessor's only
when the incarnation id differs, as in a restarted container); elsewhere, it
answers no `ping` within a second. A worker that is alive but was cut off past its lease
keeps its run: the delivery runs as before.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from conveyor.app.base import Conveyor
from conveyor.app.context import Context
from conveyor.backends.base import STARTED, ResultRecord

log = logging.getLogger("conveyor.worker")
#: How long a worker on another machine has to answer the ping that says it is alive.
PING_TIMEOUT = 1.0
#: What the FAILURE says when the lost run's exit status is unknown (the worker is gone).
LOST = "worker lost while running the task"
#: This process's own id beside its pid: a restarted container may get the same pid (1)
#: on the same hostname, and must still see its predecessor as gone.
INCARNATION = uuid.uuid4().hex


def start_meta(hostname: str | None) -> dict[str, Any]:
    """What a STARTED record says about who runs the task."""
    return {
        "hostname": hostname,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "incarnation": INCARNATION,
    }


def _budget(app: Conveyor, request: Context) -> int:
    """The transport's max_deliveries, as the worker noted it in the delivery info (a
    process-pool child builds no transport); the app's transport for a job made elsewhere."""
    noted = (request.delivery_info or {}).get("max_deliveries")
    return noted if isinstance(noted, int) else app.transport.options.max_deliveries


def records_start(app: Conveyor, request: Context) -> bool:
    """Whether this delivery writes a STARTED record for `lost_run` to read: the one
    before the last allowed delivery (the first, when two are allowed; none when one is)."""
    budget = _budget(app, request)
    return budget > 1 and request.delivery_count == budget - 1


def is_last(app: Conveyor, request: Context) -> bool:
    """Whether this is the last delivery the transport allows (with one before it)."""
    budget = _budget(app, request)
    return budget > 1 and request.delivery_count >= budget


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _gone(app: Conveyor, meta: dict[str, Any]) -> bool:
    pid, host, hostname = meta.get("pid"), meta.get("host"), meta.get("hostname")
    if not isinstance(pid, int) or not isinstance(host, str):
        return False  # a STARTED record of track_started before this release: no verdict
    if host == socket.gethostname():
        if pid == os.getpid():
            return meta.get("incarnation") != INCARNATION
        return not _pid_alive(pid)
    if not isinstance(hostname, str):
        return False
    try:
        replies = app.control.ping(destination=[hostname], timeout=PING_TIMEOUT)
    except Exception:  # no broadcast on this transport, or the broker is down: no verdict
        log.warning("could not ping %s to see whether it is alive", hostname, exc_info=True)
        return False
    return not replies


def lost_run(app: Conveyor, record: ResultRecord | None) -> str | None:
    """The FAILURE text when `record` is the STARTED record of a run whose worker is gone."""
    if record is None or record.state != STARTED or not _gone(app, record.meta):
        return None
    meta = record.meta
    return f"{LOST} (worker {meta.get('hostname')}, pid {meta.get('pid')} on {meta.get('host')})"
