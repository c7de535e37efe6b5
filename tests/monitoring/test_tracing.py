"""OpenTelemetry: a publish span and an execution span, linked through the message headers,
and a chain's next task a child of the task that sent it (the SDK's in-memory exporter)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conveyor import Conveyor
from conveyor.monitoring.tracing import instrument
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(tracer_provider)  # once per process: the API allows no reset


@pytest.fixture
def app() -> Iterator[Conveyor]:
    name = uuid.uuid4().hex
    application = Conveyor("tests", broker=f"memory://{name}", backend=f"memory://{name}")
    instrument(application)
    yield application
    application.close()


def test_publish_and_run_spans_link_across_the_message(app: Conveyor) -> None:
    @app.task(name="trace.second")
    def second(x: int) -> int:
        return x * 2

    @app.task(name="trace.first")
    def first(x: int) -> int:
        second.delay(x + 1)
        return x

    EXPORTER.clear()
    worker = Worker(app, concurrency=1, shutdown_timeout=5.0)
    worker.start()
    try:
        tracer = trace.get_tracer("tests")
        with tracer.start_as_current_span("request") as request:
            result = first.delay(1)
        assert result.get(timeout=5) == 1

        def names() -> list[str]:
            return [span.name for span in EXPORTER.get_finished_spans()]

        assert wait_until(lambda: "run trace.second" in names(), 5), names()
    finally:
        worker.stop()
    spans = {span.name: span for span in EXPORTER.get_finished_spans()}
    send_first, run_first = spans["send trace.first"], spans["run trace.first"]
    send_second, run_second = spans["send trace.second"], spans["run trace.second"]
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in spans.values()} == {trace_id}  # one trace
    assert send_first.parent.span_id == request.get_span_context().span_id
    assert run_first.parent.span_id == send_first.context.span_id  # through the headers
    assert send_second.parent.span_id == run_first.context.span_id  # sent by the task
    assert run_second.parent.span_id == send_second.context.span_id
    assert run_first.kind == trace.SpanKind.CONSUMER and send_first.kind == trace.SpanKind.PRODUCER
    assert run_first.attributes["conveyor.task_id"] == result.id
