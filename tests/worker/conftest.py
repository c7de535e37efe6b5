from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.worker.worker import Worker
from tests.app.conftest import app

__all__ = ["app"]


@pytest.fixture
def start_worker(app: Conveyor) -> Iterator[Callable[..., Worker]]:
    """Start an in-process worker on the test app; stopped (warm) at teardown."""
    started: list[Worker] = []

    def start(**options: Any) -> Worker:
        options.setdefault("concurrency", 2)
        options.setdefault("shutdown_timeout", 5.0)
        worker = Worker(app, **options)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
