"""The worker says "ready" only once the broker answers (issue 12, defect 9): started while
the broker refuses connections, it waits, retrying, and is ready when the broker is up."""

from __future__ import annotations

import threading
import uuid

import pytest

from conveyor import Conveyor
from conveyor.testing.servers import LocalServer, free_port, start_local_server
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker


def ready_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if " ready: queues " in r.getMessage()]


def test_no_ready_line_while_the_broker_refuses_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    port = free_port()
    app = Conveyor(
        "ready", broker=f"redis://127.0.0.1:{port}/0", backend=f"memory://{uuid.uuid4().hex}"
    )

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    worker = Worker(app, concurrency=1, shutdown_timeout=2.0)
    starting = threading.Thread(target=worker.start, daemon=True)
    starting.start()
    server: LocalServer | None = None
    try:
        assert wait_until(lambda: caplog.text.count("is not reachable yet") >= 3, 10)
        assert ready_lines(caplog) == [], "ready was said while the broker was down"
        server = start_local_server("redis", port=port)
        assert wait_until(lambda: len(ready_lines(caplog)) == 1, 15), caplog.text
        starting.join(5)
        assert add.delay(2, 2).get(timeout=10) == 4
    finally:
        worker.stop()
        app.close()
        if server is not None:
            server.stop()
