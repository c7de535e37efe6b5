"""The chord join on every real result backend (the counter is each store's own atomic
increment): the body runs once, with the ordered results, also when every header message
is delivered twice; a failing header fails the body once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, Delivery, chord
from conveyor.worker.worker import Worker
from tests.canvas.conftest import Boom

BACKENDS = ["redis", "memcached", "postgres", "mysql", "sqlite"]


@pytest.fixture(params=BACKENDS)
def backend_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Conveyor]:
    kind = request.param
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'results.db'}"
    else:
        url = request.getfixturevalue(f"{kind}_url")
    name = uuid.uuid4().hex
    app = Conveyor("tests", broker=f"memory://{name}", backend=url, result_expires=300)
    yield app
    app.close()


def test_chord_join_on_a_real_backend(backend_app: Conveyor) -> None:
    app = backend_app
    tag = uuid.uuid4().hex

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def body(values: list[int]) -> list[int]:
        app.backend.incr(f"body:{tag}")
        return values

    @app.task
    def fail(x: int) -> None:
        raise Boom(str(x))

    result = chord([add.s(i, i) for i in range(30)], body.s()).delay()
    deliveries: list[Delivery] = []
    while len(deliveries) < 30:
        deliveries += app.transport.fetch("default", max_messages=30, timeout=1.0)
    for delivery in deliveries:  # every header message twice
        app.transport.publish("default", delivery.message)
        delivery.nack(requeue=True)
    failing = chord([add.s(1, 1), fail.s(1), fail.s(2)], body.s()).delay()
    # One slot: a duplicate header delivery may send the body again while it is PENDING
    # (see canvas/join.py), and two copies that start at the same moment both run; in one
    # slot the second finds the first's result and is not run.
    worker = Worker(app, concurrency=1, shutdown_timeout=5.0)
    worker.start()
    try:
        assert result.get(timeout=30) == [2 * i for i in range(30)]
        with pytest.raises(Boom):
            failing.get(timeout=30)
    finally:
        worker.stop()
    assert app.backend.incr(f"body:{tag}", 0) == 1
