"""Prometheus metrics (prometheus_client), on the dashboard's /metrics and on a worker's
--metrics-port.

From events: ``conveyor_tasks_total{name,state}`` (a counter per task name and the state an
event put it in: RECEIVED, STARTED, SUCCESS, FAILURE, RETRY, REVOKED, REJECTED; PENDING
counts task-sent) and ``conveyor_task_runtime_seconds{name}`` (a histogram of the runtimes
of successes and failures). Read at scrape time: per queue ``conveyor_queue_ready``,
``_delayed``, ``_held``, ``_dead`` and ``conveyor_queue_oldest_ready_age_seconds`` (the
number KEDA and other autoscalers want), and per worker ``conveyor_worker_up``,
``conveyor_worker_active`` and ``conveyor_worker_prefetched`` (prefetch in use) from the
last heartbeats. A count that the transport cannot give is left out, not reported as 0.

The dashboard counts every event it hears since it started; a worker counts its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from conveyor.app.base import Conveyor
from conveyor.backends.events import Event
from conveyor.backends.events.base import TASK_STATES
from conveyor.monitoring import queues as queue_info
from conveyor.monitoring.state import ClusterState, worker_alive

if TYPE_CHECKING:
    from conveyor.monitoring.dashboard.app import Dashboard

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUNTIME_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0)


class EventMetrics:
    """The counters and histogram fed by batches of events (a listener)."""

    def __init__(self, registry: CollectorRegistry | None, state: ClusterState) -> None:
        self.state = state
        self.tasks = Counter(
            "conveyor_tasks",
            "Task events by task name and the state they report.",
            ["name", "state"],
            registry=registry,
        )
        self.runtime = Histogram(
            "conveyor_task_runtime_seconds",
            "Runtimes of finished tasks (successes and failures).",
            ["name"],
            buckets=RUNTIME_BUCKETS,
            registry=registry,
        )

    def observe(self, events: Iterable[Event]) -> None:
        for event in events:
            kind = event.get("type")
            task_id = event.get("uuid")
            if kind not in TASK_STATES or not isinstance(task_id, str):
                continue
            name = str(event.get("name") or self.state.name_of(task_id))
            self.tasks.labels(name, TASK_STATES[str(kind)][0]).inc()
            runtime = event.get("runtime")
            if kind in ("task-succeeded", "task-failed") and isinstance(runtime, (int, float)):
                self.runtime.labels(name).observe(float(runtime))


class WorkerGauges:
    """A worker's own up, active and prefetched gauges, from its worker events; live in
    prometheus_client's multiprocess mode ("liveall": one series per live process)."""

    def __init__(self) -> None:
        from prometheus_client import Gauge

        labels = ["hostname"]
        self.up = Gauge(
            "conveyor_worker_up",
            "1 while the worker runs.",
            labels,
            registry=None,
            multiprocess_mode="liveall",
        )
        self.active = Gauge(
            "conveyor_worker_active",
            "Tasks running now.",
            labels,
            registry=None,
            multiprocess_mode="liveall",
        )
        self.held = Gauge(
            "conveyor_worker_prefetched",
            "Deliveries held (prefetch in use): running or waiting in the pool.",
            labels,
            registry=None,
            multiprocess_mode="liveall",
        )

    def observe(self, events: Iterable[Event]) -> None:
        for event in events:
            kind, hostname = event.get("type"), event.get("hostname")
            if not isinstance(kind, str) or not kind.startswith("worker-") or not hostname:
                continue
            self.up.labels(hostname).set(0.0 if kind == "worker-offline" else 1.0)
            self.active.labels(hostname).set(float(event.get("active") or 0))
            self.held.labels(hostname).set(float(event.get("prefetched") or 0))


class QueueCollector(Collector):
    """Queue counts read from the transport at each scrape."""

    def __init__(self, app: Conveyor, queues: Callable[[], list[str]]) -> None:
        self.app = app
        self.queues = queues

    def collect(self) -> Iterator[Metric]:
        families = {
            field: GaugeMetricFamily(f"conveyor_queue_{field}", help_, labels=["queue"])
            for field, help_ in (
                ("ready", "Messages deliverable now."),
                ("delayed", "Messages waiting in the broker for their due time."),
                ("held", "Messages delivered to a consumer and not yet settled."),
                ("dead", "Messages in the queue's dead-letter queue."),
            )
        }
        age = GaugeMetricFamily(
            "conveyor_queue_oldest_ready_age_seconds",
            "How long the oldest ready message has waited.",
            labels=["queue"],
        )
        for queue in self.queues():
            counts = queue_info.queue_counts(self.app, queue)
            for field, family in families.items():
                value = getattr(counts, field)
                if value is not None:
                    family.add_metric([queue], float(value))
            if counts.oldest_age is not None:
                age.add_metric([queue], counts.oldest_age)
        yield from families.values()
        yield age


class WorkerCollector(Collector):
    """Per worker, from its last event: up, active tasks, prefetched deliveries."""

    def __init__(self, workers: Callable[[], dict[str, Event]]) -> None:
        self.workers = workers

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "conveyor_worker_up", "1 while the worker's heartbeats arrive.", labels=["hostname"]
        )
        active = GaugeMetricFamily(
            "conveyor_worker_active", "Tasks running now.", labels=["hostname"]
        )
        held = GaugeMetricFamily(
            "conveyor_worker_prefetched",
            "Deliveries held by the worker (prefetch in use): running or waiting in its pool.",
            labels=["hostname"],
        )
        now = time.time()
        for hostname, event in sorted(self.workers().items()):
            alive = worker_alive(event, now)
            up.add_metric([hostname], 1.0 if alive else 0.0)
            if alive:
                active.add_metric([hostname], float(event.get("active") or 0))
                held.add_metric([hostname], float(event.get("prefetched") or 0))
        yield up
        yield active
        yield held


def dashboard_registry(board: Dashboard) -> tuple[CollectorRegistry, EventMetrics]:
    registry = CollectorRegistry()
    metrics = EventMetrics(registry, board.state)
    registry.register(QueueCollector(board.app, lambda: queue_info.known_queues(board.app)))
    registry.register(WorkerCollector(board.app.events.store.workers))
    return registry, metrics


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE
