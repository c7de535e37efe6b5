from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from conveyor import Conveyor, Task
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
