from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from conveyor import Conveyor, Task
from conveyor.worker.worker import Worker
from tests.worker.conftest import app, start_worker

__all__ = ["Tasks", "app", "start_worker", "tasks"]


class Boom(Exception):
    pass


@dataclass
class Tasks:
    """The tasks the canvas tests compose, registered on the test app."""

    add: Task
    mul: Task
    tsum: Task
    fail: Task
    echo: Task
    count: Task
    app: Conveyor

    def runs(self, name: str) -> int:
        """How many times `count` ran with `name` (a counter in the result backend)."""
        return self.app.backend.incr(f"test.runs:{name}", 0)


@pytest.fixture
def tasks(app: Conveyor) -> Tasks:
    return register(app)


@pytest.fixture(scope="module")
def shared_app() -> Iterator[Conveyor]:
    """One app (memory broker and store) for a module's tests, with `shared` running."""
    name = uuid.uuid4().hex
    application = Conveyor("tests", broker=f"memory://{name}", backend=f"memory://{name}")
    yield application
    application.close()


@pytest.fixture(scope="module")
def shared(shared_app: Conveyor) -> Iterator[Tasks]:
    """The tasks on `shared_app` and a worker running them for the whole module (tasks a
    test registers later are seen too: the pool threads read the app's registry)."""
    registered = register(shared_app)
    worker = Worker(shared_app, concurrency=4, shutdown_timeout=5.0)
    worker.start()
    yield registered
    worker.stop()


def register(app: Conveyor) -> Tasks:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task
    def tsum(values: list[int]) -> int:
        return sum(values)

    @app.task
    def fail(*args: Any) -> None:
        raise Boom(f"failed with {args}")

    @app.task
    def echo(*args: Any, **kwargs: Any) -> list[Any]:
        return [list(args), kwargs]

    @app.task
    def count(value: Any, name: str) -> Any:
        app.backend.incr(f"test.runs:{name}")
        return value

    return Tasks(add, mul, tsum, fail, echo, count, app)
