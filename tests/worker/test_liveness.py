"""A worker's liveness reflects its consumer (issue 12, defect 1): with the consumer thread
gone, ping gets no answer and `run()` ends with an error (a non-zero exit from the CLI)."""

from __future__ import annotations

import threading
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
