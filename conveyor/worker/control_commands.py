"""The remote-control commands a worker answers besides ping/registered/active/revoke,
with Celery's names and reply shapes (``{"ok": ...}`` or ``{"error": ...}`` for the
commands; plain data for the inspections).

Where conveyor differs by design: `scheduled` is always empty (a task with an eta waits
in the broker, never in a worker); `reserved` lists the deliveries a rate limit holds in
the worker; `revoked` lists the ids this worker was told to revoke since it started
(revokes themselves are stored in the result backend); pool_grow/pool_shrink change the
number of slots (threads, or children of the process pool).
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from conveyor.app.rate_limit import InvalidRateLimit
from conveyor.core.names import validate_queue_name
from conveyor.worker.rate_limits import RateLimits

if TYPE_CHECKING:
    from conveyor.worker.control import ControlListener
    from conveyor.worker.request import Work

REVOKED_KEPT = 10_000
Command = Callable[[dict[str, Any]], Any]
_STARTED = time.monotonic()


def task_request(work: Work, hostname: str) -> dict[str, Any]:
    """A task as `inspect active/reserved/query_task` show it (Celery's field names)."""
    message = work.job.message
    return {
        "id": message.id,
        "name": message.task,
        "args": message.args,
        "kwargs": message.kwargs,
        "type": message.task,
        "hostname": hostname,
        "delivery_info": work.job.delivery_info,
        "acknowledged": not work.acks_late,
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return repr(value)


def worker_commands(worker: Any, listener: ControlListener) -> dict[str, Command]:
    """The commands of `worker` (read at call time: the worker is still being built)."""
    app, hostname = worker.app, worker.hostname

    def held() -> list[Work]:
        return list(worker.holding.items())

    def task_or_error(name: str) -> Any:
        task = app.tasks.get(name)
        return task if task is not None else {"error": f"unknown task {name!r}"}

    def rate_limit(arguments: dict[str, Any]) -> dict[str, str]:
        name = str(arguments.get("task_name"))
        found = task_or_error(name)
        if isinstance(found, dict):
            return found
        try:
            worker.stack.find(RateLimits).set_rate(name, arguments.get("rate_limit"))
        except InvalidRateLimit as exc:
            return {"error": str(exc)}
        return {"ok": "new rate limit set successfully"}

    def time_limit(arguments: dict[str, Any]) -> dict[str, str]:
        found = task_or_error(str(arguments.get("task_name")))
        if isinstance(found, dict):
            return found
        found.soft_time_limit = arguments.get("soft")
        found.time_limit = arguments.get("hard")
        return {"ok": "time limits set successfully"}

    def shutdown(_arguments: dict[str, Any]) -> dict[str, str]:
        worker._stop_requested.set()
        return {"ok": "shutting down"}

    def resize(arguments: dict[str, Any], grow: bool) -> dict[str, str]:
        n = arguments.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            return {"error": f"n must be a positive number, not {n!r}"}
        scaler = worker.autoscaler  # while autoscaling, its bounds follow (autoscale.py)
        if scaler is not None:
            change = scaler.force_grow if grow else scaler.force_shrink
        else:
            change = getattr(worker.pool, "grow" if grow else "shrink", None)
        if change is None:
            return {"error": f"the {worker.pool_kind} pool has a fixed size"}
        return {"ok": f"pool now has {change(n)} slots"}

    def autoscale(arguments: dict[str, Any]) -> dict[str, str]:
        bounds = arguments.get("max"), arguments.get("min")
        if not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            return {"error": f"max and min must be numbers, not {bounds[0]!r} and {bounds[1]!r}"}
        maximum, minimum = bounds
        assert isinstance(maximum, int) and isinstance(minimum, int)
        if maximum < 1 or not 0 <= minimum <= maximum:
            return {"error": f"need 0 <= min <= max and max >= 1, not max={maximum} min={minimum}"}
        if worker.autoscaler is None:
            return {"error": "autoscale is not enabled: start the worker with --autoscale"}
        worker.autoscaler.update(maximum, minimum)
        return {"ok": f"autoscale now max={maximum} min={minimum}"}

    def queues(arguments: dict[str, Any], add: bool) -> dict[str, str]:
        try:
            queue = validate_queue_name(str(arguments.get("queue")))
        except ValueError as exc:
            return {"error": str(exc)}
        current = list(worker.consumer.queues)
        if add == (queue in current):
            return {
                "ok": f"already consuming from {queue!r}" if add else f"not consuming {queue!r}"
            }
        if not add and len(current) == 1:
            return {"error": f"{queue!r} is the only queue; stop the worker instead"}
        worker.consumer.queues = [*current, queue] if add else [q for q in current if q != queue]
        worker.queues = list(worker.consumer.queues)
        return {"ok": f"{'added' if add else 'no longer'} consuming from {queue!r}"}

    def stats(_arguments: dict[str, Any]) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "pid": os.getpid(),
            "uptime": round(time.monotonic() - _STARTED, 3),
            "total": worker.stack.counts(),
            "pool": {
                "implementation": worker.pool_kind,
                "max-concurrency": worker.pool.concurrency,
                "processes": worker.processes,
                **({} if worker.autoscaler is None else {"autoscaler": worker.autoscaler.info()}),
            },
            "prefetch_count": worker.consumer.prefetch,
            "broker": {"url": str(app.transport.url)},
            "rusage": {"utime": usage.ru_utime, "stime": usage.ru_stime, "maxrss": usage.ru_maxrss},
        }

    def query_task(arguments: dict[str, Any]) -> dict[str, Any]:
        wanted = set(arguments.get("ids") or [])
        found: dict[str, Any] = {}
        for state, works in (("active", worker.pool.active()), ("reserved", held())):
            for work in works:
                if work.task_id in wanted:
                    found[work.task_id] = [state, task_request(work, hostname)]
        return found

    def conf(arguments: dict[str, Any]) -> dict[str, Any]:
        settings = app.conf
        every = list(settings)
        names = (
            every if arguments.get("with_defaults") else [n for n in every if settings.is_set(n)]
        )
        shown = {name: _json_safe(settings[name]) for name in names}
        for name in ("broker_url", "result_backend"):  # never a password
            if name in shown:
                shown[name] = str(
                    getattr(app, "transport" if name == "broker_url" else "backend").url
                )
        return shown

    def report(_arguments: dict[str, Any]) -> dict[str, str]:
        from conveyor import __version__

        text = (
            f"software -> conveyor:{__version__} py:{platform.python_version()}\n"
            f"platform -> system:{platform.system()} arch:{platform.machine()}\n"
            f"executable -> {sys.executable}\n"
            f"transport -> {app.transport.url}\nresults -> {app.backend.url}\n"
        )
        return {"ok": text}

    return {
        "scheduled": lambda _arguments: [],
        "reserved": lambda _arguments: [task_request(work, hostname) for work in held()],
        "revoked": lambda _arguments: list(listener.revoked),
        "stats": stats,
        "active_queues": lambda _arguments: [
            {
                "name": queue,
                "exchange": {"name": "", "type": "direct"},
                "routing_key": queue,
                "durable": True,
            }
            for queue in worker.consumer.queues
        ],
        "query_task": query_task,
        "conf": conf,
        "report": report,
        "rate_limit": rate_limit,
        "time_limit": time_limit,
        "shutdown": shutdown,
        "pool_grow": lambda arguments: resize(arguments, grow=True),
        "pool_shrink": lambda arguments: resize(arguments, grow=False),
        "autoscale": autoscale,
        "add_consumer": lambda arguments: queues(arguments, add=True),
        "cancel_consumer": lambda arguments: queues(arguments, add=False),
    }
