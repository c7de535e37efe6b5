"""The worker-middleware contract suite (conveyor.worker.middleware): what a middleware
must leave intact. Bind it to yours by subclassing with a `middleware` fixture:

    class TestMyMiddleware(MiddlewareContract):
        @pytest.fixture
        def middleware(self) -> Middleware:
            return Timing()

Each clause runs a real worker (threads pool, in-process broker and results) with the
middleware in the stack, and checks that outcomes still arrive as without it and that
no hook of it raised (a raising hook is logged and ignored by the worker, so it would
otherwise pass unseen).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.app.base import Conveyor
from conveyor.app.exceptions import TaskRevokedError
from conveyor.worker.middleware import Middleware
from conveyor.worker.worker import Worker

clause = pytest.mark.clause


class Boom(Exception):
    pass


class MiddlewareContract:
    @pytest.fixture
    def app(self, middleware: Middleware) -> Iterator[Conveyor]:
        name = uuid.uuid4().hex
        app = Conveyor("suite", broker=f"memory://{name}", backend=f"memory://{name}")
        app.conf.worker_middleware = [middleware]

        @app.task(name="suite.add")
        def add(x: int, y: int) -> int:
            return x + y

        @app.task(name="suite.boom")
        def boom() -> None:
            raise Boom("as intended")

        @app.task(name="suite.flaky", bind=True, max_retries=2)
        def flaky(self: Any) -> int:
            if self.request.retries == 0:
                raise self.retry(countdown=0.01)
            return int(self.request.retries)

        yield app
        app.close()

    @pytest.fixture
    def worker(self, app: Conveyor, caplog: pytest.LogCaptureFixture) -> Iterator[Worker]:
        worker = Worker(app, concurrency=4, shutdown_timeout=5.0)
        with caplog.at_level(logging.ERROR, "conveyor.worker"):
            worker.start()
            yield worker
            worker.stop()
        seen = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
        raised = [r.getMessage() for r in seen if r.getMessage().startswith("middleware ")]
        assert raised == [], f"a hook of the middleware raised: {raised}"

    @clause("M1", "a task's result is stored and read back")
    def test_success(self, app: Conveyor, worker: Worker) -> None:
        assert app.tasks["suite.add"].delay(2, 3).get(timeout=10) == 5

    @clause("M2", "a failing task ends FAILURE with its own error")
    def test_failure(self, app: Conveyor, worker: Worker) -> None:
        with pytest.raises(Boom, match="as intended"):
            app.tasks["suite.boom"].delay().get(timeout=10)

    @clause("M3", "a retried task runs again and succeeds")
    def test_retry(self, app: Conveyor, worker: Worker) -> None:
        assert app.tasks["suite.flaky"].delay().get(timeout=10) == 1

    @clause("M4", "a revoked task is not run")
    def test_revoked(self, app: Conveyor, worker: Worker) -> None:
        result = app.tasks["suite.add"].apply_async((1, 1), countdown=0.2)
        result.revoke()
        with pytest.raises(TaskRevokedError):
            result.get(timeout=10)

    @clause("M5", "many tasks at once in four slots all complete")
    def test_concurrency(self, app: Conveyor, worker: Worker) -> None:
        results = [app.tasks["suite.add"].delay(n, n) for n in range(100)]
        assert [r.get(timeout=20) for r in results] == [2 * n for n in range(100)]
