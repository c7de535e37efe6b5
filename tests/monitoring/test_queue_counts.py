"""Transport.counts and purge_dead_letters (the dashboard's queue page and its metrics) on
every transport: one message in each place (RabbitMQ counts ready and dead only)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.core.message import Message
from conveyor.core.registry import create_transport
from conveyor.core.transport import Transport
from conveyor.testing.waiting import wait_until


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres", "mysql", "zookeeper", "amqp"])
def transport(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Transport]:
    kind = request.param
    if kind == "memory":
        url = f"memory://{uuid.uuid4().hex}"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'broker.db'}"
    else:
        url = request.getfixturevalue(f"{kind}_url")
    opened: Transport = create_transport(url)
    yield opened
    opened.close()


def test_ready_delayed_held_dead_and_the_oldest_age(transport: Transport) -> None:
    queue = f"counts_{uuid.uuid4().hex[:10]}"
    try:
        assert transport.counts(queue).ready == 0
        transport.publish(queue, Message(b"held"))
        transport.publish(queue, Message(b"dead"))
        (held,) = transport.fetch(queue, max_messages=1, timeout=2.0)
        (dead,) = transport.fetch(queue, max_messages=1, timeout=2.0)
        dead.nack(requeue=False, reason="for the count")
        transport.publish(queue, Message(b"ready"))
        transport.publish(queue, Message(b"later"), delay=300.0)
        counts = transport.counts(queue)
        if transport.url.scheme.startswith("amqp"):  # AMQP counts ready and dead only
            assert (counts.ready, counts.delayed, counts.held, counts.dead) == (1, None, None, 1)
        else:
            assert (counts.ready, counts.delayed, counts.held, counts.dead) == (1, 1, 1, 1)
            assert counts.oldest_age is not None and 0.0 <= counts.oldest_age < 60.0
        held.ack()
        if counts.held is not None:
            assert wait_until(lambda: transport.counts(queue).held == 0, 5)
        assert transport.purge_dead_letters(queue) == 1
        assert transport.counts(queue).dead == 0 and transport.dead_letters(queue) == []
    finally:
        transport.delete(queue)
