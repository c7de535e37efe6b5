"""A worker whose fetch loop meets a non-transient error keeps trying, and consumes again
once the broker takes it back (issue 12, defect 1): never a live process that does nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from conveyor import Conveyor
from conveyor.testing.servers import LocalServer
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker


@pytest.fixture
def redis_app(own_redis: LocalServer) -> Iterator[Conveyor]:
    app = Conveyor("zombie", broker=own_redis.url, backend=f"memory://{uuid.uuid4().hex}")
    yield app
    app.close()


def test_a_refused_password_mid_run_does_not_leave_a_zombie_consumer(
    redis_app: Conveyor, own_redis: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    @redis_app.task
    def add(x: int, y: int) -> int:
        return x + y

    admin = redis.Redis(port=own_redis.port)
    worker = Worker(redis_app, concurrency=1, shutdown_timeout=2.0)
    worker.start()
    try:
        assert add.delay(1, 1).get(timeout=5) == 2
        admin.config_set("requirepass", "x")
        admin = redis.Redis(port=own_redis.port, password="x")
        admin.client_kill_filter(_type="normal", skip_me=True)
        # The consumer reconnects and is refused: it logs that and keeps trying (before the
        # fix its thread ended here, silently).
        assert wait_until(
            lambda: "AuthenticationFailed" in caplog.text or not worker.consumer_alive(), 10
        )
        admin.config_set("requirepass", "")
        assert add.delay(2, 3).get(timeout=15) == 5, "the worker consumes again"
    finally:
        worker.stop()
