"""The one-round-trip PENDING + publish when broker and backend are one Redis database: the
Redis transport's SameServer offer, taken by the Redis backend (core.transport.SameServer)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from conveyor import Conveyor
from conveyor.app import states
from conveyor.backends.base import ResultRecord
from conveyor.core.message import Message
from conveyor.core.transport import SameServer
from conveyor.testing.servers import LocalServer

QUEUE = "same"
COUNTED = ("set", "lpush", "evalsha")


@pytest.fixture
def same_db_app(own_redis: LocalServer) -> Iterator[Conveyor]:
    app = Conveyor("same", broker=own_redis.url, backend=own_redis.url, task_default_queue=QUEUE)
    app.task(name="same.add")(lambda x, y: x + y)
    yield app
    app.close()


def _server_view(url: str) -> tuple[list[str], dict[str, int]]:
    """The last command of each other client connected, and the calls per command."""
    admin = redis.Redis.from_url(url)
    try:
        last = [c["cmd"] for c in admin.client_list(_type="normal") if c["cmd"] != "client|list"]
        stats = admin.info("commandstats")
        return last, {name[len("cmdstat_") :]: int(v["calls"]) for name, v in stats.items()}
    finally:
        admin.close()


@pytest.mark.parametrize(
    ("broker", "backend", "active"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", True),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1", False),
        ("redis://127.0.0.1:6379/0", "redis://localhost:6379/0", False),
        ("redis://u:p@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", False),
        ("redis://127.0.0.1:6379;127.0.0.1:6380/0", "redis://127.0.0.1:6379/0", False),
        ("redis://127.0.0.1:6379/0", "memory://x", False),
    ],
)
def test_taken_only_for_the_same_database(broker: str, backend: str, active: bool) -> None:
    """Decided without I/O: a spy stands in for the server and records what it was given."""
    app = Conveyor("same", broker=broker, backend=backend)
    try:
        offer = app.transport.same_server()
        if offer is None:
            assert not active
            return
        sent: list[tuple[object, ...]] = []

        class Spy(SameServer):
            endpoint = offer.endpoint

            def publish_after(self, commands: object, queue: str, message: Message) -> list[object]:
                sent.extend(commands)  # type: ignore[call-overload]
                return ["OK"]

        taken = app.backend.store_pending_beside(
            ResultRecord("id-1", states.PENDING), Spy(), QUEUE, Message(b"{}")
        )
        assert (taken is True) is active and (taken is None) is not active
        assert len(sent) == (1 if active else 0)
    finally:
        app.close()


def test_pending_and_message_share_one_connection(
    same_db_app: Conveyor, own_redis: LocalServer
) -> None:
    _, before = _server_view(own_redis.url)
    result = same_db_app.tasks["same.add"].delay(2, 2)
    last_commands, after = _server_view(own_redis.url)
    # Both went on the publishing connection: none is left with the SET as its last.
    assert "set" not in last_commands and "lpush" in last_commands
    assert {name: after.get(name, 0) - before.get(name, 0) for name in COUNTED} == {
        "set": 1,
        "lpush": 1,
        "evalsha": 0,
    }
    assert result.state == states.PENDING
    assert same_db_app.transport.size(QUEUE) == 1
    (delivery,) = same_db_app.transport.fetch(QUEUE, max_messages=1, timeout=1.0)
    assert delivery.message.correlation_id == result.id
    delivery.ack()


def test_the_pending_record_expires_like_any_record(
    own_redis: LocalServer,
) -> None:
    app = Conveyor("same", broker=own_redis.url, backend=own_redis.url, result_expires=30)
    try:
        result = app.send_task("same.add", (1, 1), queue=QUEUE)
        admin = redis.Redis.from_url(own_redis.url)
        try:
            ttls = [admin.pttl(key) for key in admin.keys(f"*{result.id}*")]
        finally:
            admin.close()
        assert len(ttls) == 1 and 25_000 < ttls[0] <= 30_000
    finally:
        app.close()


def test_a_ready_state_stored_first_is_kept(same_db_app: Conveyor) -> None:
    task_id = str(uuid.uuid4())
    same_db_app.backend.store(ResultRecord(task_id, states.SUCCESS, result=4))
    same_db_app.send_task("same.add", (2, 2), task_id=task_id)
    assert same_db_app.AsyncResult(task_id).state == states.SUCCESS
    assert same_db_app.transport.size(QUEUE) == 1


def test_a_cut_connection_falls_back_and_sends_both_once(
    same_db_app: Conveyor, own_redis: LocalServer
) -> None:
    task = same_db_app.tasks["same.add"]
    task.delay(1, 1)
    admin = redis.Redis.from_url(own_redis.url)
    try:
        admin.client_kill_filter(_type="normal", skipme=True)  # every pooled connection
    finally:
        admin.close()
    result = task.delay(3, 3)
    assert result.state == states.PENDING
    assert same_db_app.transport.size(QUEUE) == 2


def test_a_failed_record_write_beside_the_publish_is_stored_on_its_own(
    same_db_app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The publish went out but the PENDING write got an error reply: the record is stored
    by the backend's own path, and the message is not sent twice."""
    real = same_db_app.transport.same_server()
    assert real is not None

    class FailingRecord(SameServer):
        endpoint = real.endpoint

        def publish_after(self, commands: object, queue: str, message: Message) -> list[object]:
            real.publish_after([], queue, message)
            return [redis.ResponseError("OOM command not allowed")]

    monkeypatch.setattr(same_db_app.transport, "same_server", FailingRecord)
    result = same_db_app.tasks["same.add"].delay(5, 5)
    assert result.state == states.PENDING
    assert same_db_app.transport.size(QUEUE) == 1
