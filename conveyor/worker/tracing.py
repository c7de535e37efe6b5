"""The execution half of conveyor.monitoring.tracing: a middleware that runs each task in a
CONSUMER span ``run <task name>``, the child of the publish span whose context came in the
message headers. Needs `conveyor[otel]`; added to worker_middleware by `instrument`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace

from conveyor.app.context import Context
from conveyor.worker.middleware import Middleware

if TYPE_CHECKING:
    from conveyor.app.task import Task

TRACER = "conveyor"


class Tracing(Middleware):
    def around_task(self, task: Task, request: Context, call: Callable[[], Any]) -> Any:
        parent = propagate.extract(request.headers or {})
        attributes: dict[str, str | int] = {
            "messaging.system": "conveyor",
            "messaging.operation": "process",
            "conveyor.task_id": str(request.id),
            "conveyor.task_name": task.name,
            "conveyor.retries": int(request.retries or 0),
            "conveyor.hostname": str(request.hostname or ""),
        }
        tracer = trace.get_tracer(TRACER)
        with tracer.start_as_current_span(
            f"run {task.name}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ):
            return call()
