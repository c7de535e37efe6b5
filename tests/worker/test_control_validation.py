"""A malformed control broadcast is logged and dropped; the control thread lives on
(issue 12, defect 5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor import Conveyor
from conveyor.app.control import CONTROL_CHANNEL
from conveyor.core.message import Message
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]

MALFORMED = [
    b'{"command": "revoke", "arguments": [1]}',
    b'{"command": "revoke", "arguments": {"ids": 5, "terminate": true}}',
    b'{"command": "revoke", "arguments": {"ids": [1, null], "terminate": true}}',
    b'{"command": ["ping"]}',
    b'{"command": "ping", "reply_to": 7}',
    b"[1, 2]",
    b"not json",
    b"\xff\xfe",
]


def test_malformed_control_messages_are_dropped_and_the_worker_still_answers(
    app: Conveyor, start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    worker = start_worker()
    assert wait_until(
        lambda: app.control.inspect(timeout=0.2).ping() == {worker.hostname: {"ok": "pong"}}, 5
    )
    for body in MALFORMED:
        app.transport.broadcast(CONTROL_CHANNEL, Message(body))
    assert wait_until(
        lambda: app.control.inspect(timeout=0.2).ping() == {worker.hostname: {"ok": "pong"}}, 5
    )
    assert wait_until(
        lambda: caplog.text.count("ignoring malformed control message") == len(MALFORMED), 5
    ), caplog.text
