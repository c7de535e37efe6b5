"""A worker's Prometheus endpoint: `conveyor -A tasks worker --metrics-port N`.

One port serves every process of the command line: the first process points
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, a temporary folder) at
all of them before any metric exists, its siblings inherit the setting, each process counts
its own events into it (an app.events listener, in the flush thread), and the first serves
the sum with the queue gauges of the worker's queues, read at scrape time. The server
starts with the first batch of events the first process sends (its worker-online), so it
runs in the process that works, also after a --detach.

Process-pool children are started with the setting in their environment (CHILDREN_ENV
beside it), and `count_in_pool_child` makes each count the events of its own app there too.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from typing import Any

from conveyor.app.base import Conveyor
from conveyor.backends.events import Event

log = logging.getLogger("conveyor.monitoring")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Set while a worker counts metrics: tells its process-pool children to count theirs.
CHILDREN_ENV = "CONVEYOR_METRICS_COUNT_CHILDREN"


class WorkerMetrics:
    def __init__(self, app: Conveyor, port: int, address: str, queues: list[str]) -> None:
        self.app, self.port, self.address, self.queues = app, port, address, queues
        self._serving = False
        self._lock = threading.Lock()
        from conveyor.monitoring.metrics import EventMetrics, WorkerGauges
        from conveyor.monitoring.state import ClusterState

        self.state = ClusterState()
        self.events = EventMetrics(None, self.state)
        self.gauges = WorkerGauges()

    def observe(self, batch: list[Event]) -> None:
        self.state.apply(batch)
        self.events.observe(batch)
        self.gauges.observe(batch)
        if not self._serving:
            self._serve()

    def _serve(self) -> None:
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        from conveyor.monitoring.metrics import QueueCollector

        with self._lock:
            if self._serving:
                return
            self._serving = True
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            registry.register(QueueCollector(self.app, lambda: self.queues))
            start_http_server(self.port, self.address, registry)
            log.info("metrics on http://%s:%d/metrics", self.address, self.port)


def prepare_processes() -> None:
    """In the first process, before anything imports prometheus_client's metrics: one
    folder for the counts of every process of this command line, removed at exit."""
    if os.environ.get(MULTIPROC_ENV):
        return
    folder = tempfile.mkdtemp(prefix="conveyor-metrics-")
    os.environ[MULTIPROC_ENV] = folder
    os.environ[CHILDREN_ENV] = "1"
    atexit.register(shutil.rmtree, folder, True)


def install(app: Conveyor, port: int, address: str, queues: list[str], *, first: bool) -> Any:
    """Count this process's events; the first process also serves them all."""
    metrics = WorkerMetrics(app, port, address, queues)
    if not first:
        metrics._serving = True  # a sibling counts; the first process serves
    app.events.listeners.append(metrics.observe)
    return metrics


def count_in_pool_child(app: Conveyor) -> None:
    """In a process-pool child: count its tasks' events into the worker's metrics, when
    the worker serves them (the child's tasks send events through the child's own app)."""
    if os.environ.get(CHILDREN_ENV) and os.environ.get(MULTIPROC_ENV):
        install(app, 0, "", [], first=False)
