"""pika's private hooks (transports/amqp/frames.py): checked at import, with a public fallback."""

from __future__ import annotations

import contextlib
import logging
import uuid

import pika
import pytest

from conveyor.core.errors import ConveyorError
from conveyor.core.message import Message
from conveyor.core.registry import create_transport
from conveyor.testing.waiting import wait_until
from conveyor.transports.amqp import frames


def test_the_installed_pika_has_every_hook() -> None:
    """A pika release that drops or renames a hook fails here (and in the lowest-versions
    job), instead of going quietly slower."""
    assert frames.missing_hooks(pika.SelectConnection, frames._AsyncPlaintextTransport) == []
    assert frames.connection_class is frames.BatchingConnection


def test_a_missing_hook_gives_the_public_connection_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Renamed(pika.SelectConnection):
        _output_marshaled_frames = None  # as if a new pika had renamed it

    with caplog.at_level(logging.WARNING, logger="conveyor.amqp"):
        chosen = frames.choose(Renamed, None)
    assert chosen is frames.PublicConnection
    (line,) = [r.getMessage() for r in caplog.records if r.name == "conveyor.amqp"]
    assert "_output_marshaled_frames" in line and "_AsyncPlaintextTransport" in line
    assert "_adapter_emit_data" not in line
    assert frames.choose(pika.SelectConnection, frames._AsyncPlaintextTransport) is (
        frames.BatchingConnection
    )


def test_the_public_connection_publishes_confirms_and_delivers(
    amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback is a working transport, batches and corked acks included."""
    monkeypatch.setattr(frames, "connection_class", frames.PublicConnection)
    transport = create_transport(amqp_url)
    queue = f"amqp-public-{uuid.uuid4().hex[:12]}"
    try:
        transport.publish_many(queue, [Message(f"m{i}".encode()) for i in range(50)])
        got: list[bytes] = []

        def fetched_all() -> bool:
            deliveries = transport.fetch(queue, max_messages=50, timeout=0.5)
            got.extend(d.message.body for d in deliveries)
            transport.ack_many(deliveries)
            return len(got) >= 50

        assert wait_until(fetched_all, timeout=30)
        assert sorted(got) == sorted(f"m{i}".encode() for i in range(50))
        assert transport.size(queue) == 0
        links = [link for link in transport._links.values() if link is not None]
        assert links and all(type(link._conn) is frames.PublicConnection for link in links)
    finally:
        with contextlib.suppress(ConveyorError):
            transport.delete(queue)
        transport.close()
