"""A worker's liveness reflects its consumer (issue 12, defect 1): with the consumer thread
gone, ping gets no answer and `run()` ends with an error (a non-zero exit from the CLI)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from conveyor import Conveyor
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import ConsumerDied, Worker

StartWorker = Callable[..., Worker]


def test_a_worker_without_a_consumer_answers_no_ping(
    app: Conveyor, start_worker: StartWorker
) -> None:
    worker = start_worker()
    assert wait_until(
        lambda: app.control.inspect(timeout=0.2).ping() == {worker.hostname: {"ok": "pong"}}, 5
    )
    worker.consumer.stop()
    assert wait_until(lambda: not worker.consumer_alive(), 5)
    assert app.control.inspect(timeout=0.5).ping() == {}


def test_run_ends_with_an_error_when_the_consumer_thread_ends(app: Conveyor) -> None:
    worker = Worker(app, concurrency=1, shutdown_timeout=1.0)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            worker.supervise()
        except BaseException as exc:
            outcome.append(exc)

    worker.start()
    watcher = threading.Thread(target=run)
    watcher.start()
    worker.consumer.stop()
    watcher.join(10)
    assert not watcher.is_alive()
    (error,) = outcome
    with pytest.raises(ConsumerDied, match="consumer thread ended"):
        raise error


def test_heartbeats_stop_with_the_consumer(app: Conveyor) -> None:
    """A worker whose consumer died says worker-offline and beats no more, so a monitor
    (conveyor.monitoring.state) stops counting it as alive."""
    from conveyor.monitoring.stream import EventStream

    worker = Worker(app, concurrency=1, shutdown_timeout=1.0)
    worker.events.freq = 0.1
    stream = EventStream(app)
    stream.get(0.1)  # opened: what is sent from now on is seen
    seen: list[dict[str, object]] = []

    def kinds() -> list[object]:
        seen.extend(e for e in stream.get(0.2) if e.get("hostname") == worker.hostname)
        return [e["type"] for e in seen]

    worker.start()
    try:
        assert wait_until(lambda: "worker-heartbeat" in kinds(), 10)
        worker.consumer.stop()
        assert wait_until(lambda: "worker-offline" in kinds(), 10), kinds()
        offline = kinds().index("worker-offline")
        quiet_until = time.monotonic() + 10 * worker.events.freq  # ten missed beats
        while time.monotonic() < quiet_until:
            kinds()
        assert "worker-heartbeat" not in kinds()[offline:], kinds()
    finally:
        worker.stop()
