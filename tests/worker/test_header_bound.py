"""The header-count bound the design promises (issue 12, defect 10): refused on send before
any I/O, and a received message over it is dead-lettered with the reason."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest

from conveyor import Conveyor
from conveyor.core import transport as contract
from conveyor.core.errors import EncodeError
from conveyor.core.message import MAX_HEADERS, Message
from conveyor.core.registry import create_transport
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


def many_headers(count: int) -> dict[str, int]:
    return {f"h{i}": i for i in range(count)}


def test_a_message_over_the_header_bound_is_refused_before_sending() -> None:
    transport = create_transport(f"memory://{uuid.uuid4().hex}")
    transport.publish("q", Message(b"ok", headers=many_headers(MAX_HEADERS)))
    with pytest.raises(EncodeError, match=f"{MAX_HEADERS + 1} headers, over the limit"):
        transport.publish("q", Message(b"no", headers=many_headers(MAX_HEADERS + 1)))
    assert transport.size("q") == 1, "nothing was sent"


def test_a_received_task_over_the_header_bound_is_dead_lettered(
    app: Conveyor, start_worker: StartWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    # A foreign producer that knows no bound puts the message in.
    with monkeypatch.context() as foreign:
        foreign.setattr(contract, "check_headers", lambda message: None)
        result = add.apply_async((1, 1), headers=many_headers(MAX_HEADERS + 5))
    start_worker()
    assert wait_until(lambda: app.transport.dead_letters("default") != [], 5)
    (dead,) = app.transport.dead_letters("default")
    # The user's headers plus the few the task layer adds itself (its own, by name).
    counted = re.search(r"has (\d+) headers, over the limit of (\d+)", dead.reason)
    assert counted, dead.reason
    assert int(counted[1]) > MAX_HEADERS + 4 and int(counted[2]) == MAX_HEADERS
    # The dead letter and the FAILURE record are two writes: wait for the second too.
    assert wait_until(lambda: result.state == "FAILURE", 5), result.state
    assert add.delay(2, 2).get(timeout=5) == 4
