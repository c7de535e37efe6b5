"""A result-backend outage is not poison: held tasks wait for the backend with bounded
backoff and run when it is back; none is dead-lettered as "max deliveries" (issue 12,
defect 3)."""

from __future__ import annotations

import time
import uuid

import pytest

from conveyor import Conveyor, states
from conveyor.testing.servers import LocalServer, start_local_server
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

MAX_DELIVERIES = 2
OUTAGE = 3 * MAX_DELIVERIES  # seconds: before the fix each second cost one delivery


def worker_saw_the_outage(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        r.name == "conveyor.worker" and "Connection refused" in r.getMessage()
        for r in caplog.records
    )


def test_a_backend_outage_longer_than_max_deliveries_dead_letters_nothing(
    own_redis: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    broker = f"memory://{uuid.uuid4().hex}?max_deliveries={MAX_DELIVERIES}"
    app = Conveyor("outage", broker=broker, backend=own_redis.url)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    worker = Worker(app, concurrency=2, shutdown_timeout=2.0)
    worker.start()
    revived: LocalServer | None = None
    try:
        assert add.delay(1, 1).get(timeout=5) == 2
        own_redis.kill()
        results = [add.delay(i, i) for i in range(4)]  # PENDING fails; the sends do not
        assert wait_until(lambda: worker_saw_the_outage(caplog), 10), caplog.text
        time.sleep(OUTAGE)  # the outage itself
        assert app.transport.dead_letters("default") == []
        revived = start_local_server("redis", port=own_redis.port)
        assert [r.get(timeout=20) for r in results] == [0, 2, 4, 6]
        assert all(r.state == states.SUCCESS for r in results)
        assert app.transport.dead_letters("default") == []
    finally:
        worker.stop()
        app.close()
        if revived is not None:
            revived.stop()
