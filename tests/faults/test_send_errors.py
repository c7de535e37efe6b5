"""A failed `delay()` raises the send's own error after the Producer's retries, not the error
of its clean-up (issue 12, defect 6)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from conveyor import Conveyor
from conveyor.backends.errors import BackendError
from conveyor.core.errors import BrokerUnavailable
from conveyor.core.retry import Backoff
from conveyor.testing.servers import LocalServer

BUDGET = 1.0


@pytest.fixture
def one_redis_app(own_redis: LocalServer) -> Iterator[Conveyor]:
    """Broker and result backend on one Redis database (the one-round-trip path)."""
    app = Conveyor("send-errors", broker=own_redis.url, backend=own_redis.url)
    yield app
    app.close()


@pytest.fixture
def split_app(own_redis: LocalServer) -> Iterator[Conveyor]:
    """Broker and result backend on different databases (the overlapped path)."""
    app = Conveyor("send-errors", broker=own_redis.url, backend=own_redis.url[:-1] + "1")
    yield app
    app.close()


@pytest.mark.parametrize("which", ["one_redis_app", "split_app"])
def test_delay_with_the_server_down_raises_the_publish_error_after_its_retries(
    which: str, own_redis: LocalServer, request: pytest.FixtureRequest
) -> None:
    app: Conveyor = request.getfixturevalue(which)

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    add.delay(1, 1)  # connections are up, then the server goes
    app.producer.backoff = Backoff(initial=0.05, maximum=0.2, budget=BUDGET)
    own_redis.kill()
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="publish to 'default' failed") as raised:
        add.delay(2, 2)
    assert not isinstance(raised.value, BackendError)
    assert time.monotonic() - started >= BUDGET * 0.8, "the retry budget was spent"
