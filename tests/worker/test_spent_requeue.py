"""A message the worker itself sends back on its last allowed delivery is dead-lettered by
the transport as "max deliveries": the worker stores the task's FAILURE first, saying why,
so `get()` raises at once instead of waiting out its timeout (issue 12, "no silent dead
letters"), on every transport."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from conveyor import Conveyor
from conveyor.app.exceptions import Reject
from conveyor.exceptions import MaxDeliveriesExceeded
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

DELIVERIES = 2
KINDS = ["memory", "sqlite", "redis", "amqp", "postgres", "mysql", "zookeeper"]


@pytest.fixture(params=KINDS)
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    kind = request.param
    if kind == "memory":
        return f"memory://{uuid.uuid4().hex}"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('spent')}/broker.db"
    return str(request.getfixturevalue(f"{kind}_url"))


@pytest.fixture
def app(broker: str) -> Iterator[Conveyor]:
    separator = "&" if "?" in broker else "?"
    url = f"{broker}{separator}max_deliveries={DELIVERIES}&lease_timeout=2"
    application = Conveyor("spent", broker=url, backend=f"memory://{uuid.uuid4().hex}")
    yield application
    application.close()


def test_a_requeue_on_the_last_delivery_stores_the_failure(app: Conveyor) -> None:
    queue = f"spent-{uuid.uuid4().hex[:8]}"

    @app.task
    def bounce() -> None:
        raise Reject("not now", requeue=True)

    worker = Worker(app, queues=[queue], concurrency=1, shutdown_timeout=5)
    worker.start()
    try:
        result = bounce.apply_async(queue=queue)
        with pytest.raises(MaxDeliveriesExceeded, match=r"max deliveries.*requeued by the task"):
            result.get(timeout=30)
        transport = app.transport
        assert wait_until(lambda: len(transport.dead_letters(queue)) == 1, 10)
        (dead,) = transport.dead_letters(queue)
        assert dead.reason == "max deliveries"
    finally:
        worker.stop()
        app.transport.purge_dead_letters(queue)
