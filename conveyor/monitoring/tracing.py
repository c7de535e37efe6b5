"""OpenTelemetry spans (`conveyor[otel]`): one for each publish, one for each execution,
linked through the message headers across processes, and so through chains.

`instrument(app)` connects a receiver of before_task_publish/after_task_publish that opens
a PRODUCER span ``send <task name>`` (a child of whatever span is current: a request
handler's, or the running task's when a task sends the next one) and writes its context
into the message headers with the global propagator (W3C ``traceparent`` by default); and
it adds conveyor.worker.tracing's middleware to `worker_middleware`, which opens a CONSUMER
span ``run <task name>`` as the child of the context it reads back from the headers, and
records the exception of a failure. Call it where the app is defined, so workers and their
process-pool children (which load the app) are instrumented too. The program configures
the SDK (a TracerProvider and exporter); without one the API's no-op tracer is used.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import propagate, trace

from conveyor import signals
from conveyor.app.base import Conveyor

TRACER = "conveyor"
MIDDLEWARE = "conveyor.worker.tracing:Tracing"
_open: dict[str, Any] = {}  # task id -> its publish span, between before and after
_lock = threading.Lock()


def _before_publish(sender: Any = None, body: Any = None, headers: Any = None, **_: Any) -> None:
    if not isinstance(headers, dict) or not isinstance(body, dict):
        return
    span = trace.get_tracer(TRACER).start_span(
        f"send {sender}",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "conveyor",
            "messaging.operation": "publish",
            "messaging.destination.name": str(_.get("routing_key", "")),
            "conveyor.task_id": str(body.get("id", "")),
            "conveyor.task_name": str(sender),
        },
    )
    propagate.inject(headers, context=trace.set_span_in_context(span))
    with _lock:
        _open[str(body.get("id"))] = span


def _after_publish(body: Any = None, **_: Any) -> None:
    if isinstance(body, dict):
        with _lock:
            span = _open.pop(str(body.get("id")), None)
        if span is not None:
            span.end()


def instrument(app: Conveyor) -> None:
    """Trace `app`'s publishes and (through worker_middleware) its executions."""
    signals.before_task_publish.connect(_before_publish)  # again: no second connection
    signals.after_task_publish.connect(_after_publish)
    entries = list(app.conf.worker_middleware)
    if MIDDLEWARE not in entries:
        app.conf.worker_middleware = (*entries, MIDDLEWARE)
