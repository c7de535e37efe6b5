from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor import Conveyor
from conveyor.app import current, protocol
from conveyor.core.message import Message
from tests.app.conftest import app
from tests.worker.conftest import start_worker

__all__ = ["app", "fetch_message", "fetch_task", "start_worker"]


@pytest.fixture(autouse=True)
def _no_shared_tasks_leak() -> Iterator[None]:
    """A shared task joins every later app; keep those of a test out of the next ones."""
    before = list(current._shared)
    yield
    current._shared[:] = before


def fetch_message(app: Conveyor, queue: str = "default") -> Message:
    """The next message on `queue` (acked), as the transport delivered it."""
    (delivery,) = app.transport.fetch(queue, max_messages=1, timeout=1.0)
    delivery.ack()
    return delivery.message


def fetch_task(app: Conveyor, queue: str = "default") -> protocol.TaskMessage:
    return protocol.decode(fetch_message(app, queue), app.serializer)
