"""Pipelined publisher confirms (broker_publish_confirm="pipelined") against the real RabbitMQ.

Each test sends through an app on its own queue (deleted after), reads what arrived with a
transport of its own, and counts message ids: nothing may be lost, and a republished message
keeps its id.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from conveyor import Conveyor
from conveyor.app import context
from conveyor.app.context import Context
from conveyor.app.result import AsyncResult
from conveyor.core.errors import ConfigurationError, ConveyorError, PublishFailed
from conveyor.core.registry import create_transport
from conveyor.core.transport import Transport
from conveyor.testing.proxy import proxy_in_front_of
from conveyor.testing.waiting import wait_until
from tests.transports.test_amqp_specific import rabbitmqctl

__all__ = ["rabbitmqctl"]  # a fixture, used by name below

TASK = "tests.pipelined.noop"


@pytest.fixture
def queue(amqp_url: str) -> Iterator[str]:
    name = f"amqppub-test-{uuid.uuid4().hex[:12]}"
    yield name
    with (
        contextlib.closing(create_transport(amqp_url)) as cleaner,
        contextlib.suppress(ConveyorError),
    ):
        cleaner.delete(name)


@pytest.fixture
def make_app(amqp_url: str) -> Iterator[Callable[..., Conveyor]]:
    apps: list[Conveyor] = []

    def make(broker: str | None = None, **settings: object) -> Conveyor:
        name = uuid.uuid4().hex
        settings.setdefault("broker_publish_confirm", "pipelined")
        app = Conveyor(
            "pipelined", broker=broker or amqp_url, backend=f"memory://{name}", **settings
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def arrived(amqp_url: str, queue: str, expected: int, timeout: float = 60.0) -> Counter[str]:
    """Message ids of what is on `queue`, counted, acked as read; reads until `expected`
    distinct ids came, then until the queue is empty."""
    seen: Counter[str] = Counter()
    with contextlib.closing(create_transport(amqp_url)) as reader:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = reader.fetch(queue, max_messages=500, timeout=1.0)
            for delivery in batch:
                seen[delivery.message.id] += 1
            if batch:
                reader.ack_many(batch)
            elif len(seen) >= expected:
                break
    return seen


def message_id(result: AsyncResult) -> str:
    assert result.publish_ticket is not None
    return result.publish_ticket.message.id


def test_pipelined_publishes_all_arrive_exactly_once(
    make_app: Callable[..., Conveyor], amqp_url: str, queue: str
) -> None:
    app = make_app(broker_publish_window=64)
    results = [app.send_task(TASK, (i,), queue=queue) for i in range(2000)]
    assert any(r.publish_ticket is not None and not r.publish_ticket.done for r in results), (
        "every publish had its confirm before send_task returned: nothing was pipelined"
    )
    assert app.producer.pipeline.outstanding <= 64  # the window bounds what is unconfirmed
    app.flush(timeout=60)
    assert app.producer.pipeline.outstanding == 0
    seen = arrived(amqp_url, queue, len(results))
    assert set(seen) == {message_id(r) for r in results}
    assert max(seen.values()) == 1, "a message arrived twice without any fault"


def test_flush_waits_for_every_confirm(
    make_app: Callable[..., Conveyor], amqp_url: str, queue: str
) -> None:
    """Confirms delayed by a slow link: flush returns only once each one came back."""
    with proxy_in_front_of(amqp_url) as (proxy, through):
        app = make_app(broker=through.unredacted())
        app.send_task(TASK, queue=queue)  # connected and declared before the link slows
        app.flush(timeout=30)
        proxy.latency = 0.3
        results = [app.send_task(TASK, (i,), queue=queue) for i in range(50)]
        tickets = [r.publish_ticket for r in results]
        assert all(t is not None for t in tickets)
        assert not all(t.done for t in tickets if t is not None)
        app.flush(timeout=30)
        assert all(t.done and t.error is None for t in tickets if t is not None)
        assert app.producer.pipeline.outstanding == 0


def test_cut_with_confirms_outstanding_republishes_with_the_same_ids(
    make_app: Callable[..., Conveyor], amqp_url: str, queue: str
) -> None:
    """The link is cut while messages have reached the broker and their confirms have not
    come back: each is published again after the reconnect, under its own id, and none is
    lost (those the broker had taken arrive twice, as the same id)."""
    checker = create_transport(amqp_url)
    try:
        with proxy_in_front_of(amqp_url) as (proxy, through):
            app = make_app(broker=through.unredacted())
            app.send_task(TASK, queue=queue)
            app.flush(timeout=30)
            proxy.latency = 1.0  # both ways: messages reach the broker, confirms lag behind
            results = [app.send_task(TASK, (i,), queue=queue) for i in range(300)]
            assert wait_until(lambda: checker.size(queue) >= 50, 30), "nothing reached the broker"
            outstanding = app.producer.pipeline.outstanding
            assert outstanding > 0, "every confirm came back before the cut"
            assert proxy.cut() > 0
            proxy.heal()
            app.flush(timeout=60)
    finally:
        checker.close()
    ids = {message_id(r) for r in results}
    seen = arrived(amqp_url, queue, len(ids) + 1)
    assert ids <= set(seen), f"lost: {len(ids - set(seen))} of {len(ids)}"
    assert sum(seen.values()) > len(ids) + 1, "nothing was republished after the cut"


@pytest.fixture
def reject_publish(rabbitmqctl: Callable[..., str], queue: str) -> Iterator[None]:
    """A policy on `queue` alone: full at 0 messages, refusing publishes (nacks)."""
    policy = f"{queue}-full"
    rabbitmqctl(
        "set_policy",
        "--apply-to",
        "queues",
        policy,
        f"^{queue}$",
        '{"max-length": 0, "overflow": "reject-publish"}',
    )
    try:
        yield
    finally:
        rabbitmqctl("clear_policy", policy)


def test_nacked_publish_raises_publish_failed_on_get(
    make_app: Callable[..., Conveyor], queue: str, reject_publish: None
) -> None:
    app = make_app()
    result = app.send_task(TASK, queue=queue)
    with pytest.raises(PublishFailed) as raised:
        result.get(timeout=30)
    assert raised.value.message_ids and result.id in str(raised.value)
    assert "after 3 attempts" in str(raised.value)  # republished twice after the first nack
    assert result.state == "UNKNOWN"  # its PENDING record went with the refused publish
    app.flush(timeout=5)  # reported once, by get(): the flush does not raise it again


def test_pipeline_block_raises_for_a_refused_publish(
    make_app: Callable[..., Conveyor], queue: str, reject_publish: None
) -> None:
    app = make_app(broker_publish_confirm="each")
    with pytest.raises(PublishFailed) as raised, app.pipeline():
        results = [app.send_task(TASK, (i,), queue=queue) for i in range(3)]
        assert all(r.publish_ticket is not None for r in results)  # pipelined inside
    assert len(raised.value.message_ids) == 3


def test_a_task_run_by_a_worker_sends_with_each_unless_in_a_block(
    make_app: Callable[..., Conveyor], amqp_url: str, queue: str
) -> None:
    """So a task is never acked before the tasks it sent are on the broker."""
    app = make_app()
    running = Context(id="parent", task="tests.parent", called_directly=False)
    with context.running(running):
        child = app.send_task(TASK, queue=queue)
        with app.pipeline():
            pipelined = app.send_task(TASK, queue=queue)
        assert pipelined.publish_ticket is not None and pipelined.publish_ticket.done
    assert child.publish_ticket is None
    assert app.send_task(TASK, queue=queue).publish_ticket is not None  # outside a task
    app.flush(timeout=30)
    assert len(arrived(amqp_url, queue, 3)) == 3


def test_an_error_inside_a_pipeline_block_propagates_after_the_wait(
    make_app: Callable[..., Conveyor], amqp_url: str, queue: str
) -> None:
    app = make_app(broker_publish_confirm="each")
    with pytest.raises(KeyError), app.pipeline():
        result = app.send_task(TASK, queue=queue)
        raise KeyError("the block's own error")
    assert result.publish_ticket is not None and result.publish_ticket.done
    assert len(arrived(amqp_url, queue, 1)) == 1


def test_each_mode_confirms_before_send_returns(
    make_app: Callable[..., Conveyor], amqp_url: str, queue: str
) -> None:
    app = make_app(broker_publish_confirm="each")
    result = app.send_task(TASK, queue=queue)
    assert result.publish_ticket is None
    assert len(arrived(amqp_url, queue, 1)) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("broker_publish_confirm", "pipeline"),
        ("broker_publish_confirm", True),
        ("broker_publish_window", 0),
        ("broker_publish_window", "100"),
    ],
)
def test_bad_publish_settings_are_refused_by_name(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Conveyor("bad", broker="memory://", **{name: value})
    app = Conveyor("bad", broker="memory://")
    with pytest.raises(ConfigurationError, match=name):
        app.conf[name] = value


def test_flush_and_pipeline_are_no_ops_without_pipelined_confirms() -> None:
    """On a broker that confirms every publish before delay() returns there is nothing to
    wait for; the block and flush still work."""
    name = uuid.uuid4().hex
    app = Conveyor("memory", broker=f"memory://{name}", backend=f"memory://{name}")
    transport: Transport = app.transport
    assert not transport.capabilities.pipelined_confirms
    with app.pipeline():
        result = app.send_task(TASK, queue="q")
    app.flush(timeout=1)
    assert result.publish_ticket is None and transport.size("q") == 1
    app.close()


EXITING_PRODUCER = """
import sys
from conveyor import Conveyor
app = Conveyor("exiting", broker=sys.argv[1], backend="memory://exiting",
               broker_publish_confirm="pipelined", task_send_sent_event=False)
for i in range(int(sys.argv[3])):
    print(app.send_task("tests.pipelined.noop", (i,), queue=sys.argv[2]).publish_ticket.message.id)
"""


def test_interpreter_exit_waits_for_outstanding_confirms(amqp_url: str, queue: str) -> None:
    """A producer that ends without flushing: its exit waits for every confirm, so what
    the slow link still held when the script's last line ran reaches the broker."""
    with proxy_in_front_of(amqp_url) as (proxy, through):
        proxy.latency = 0.5
        done = subprocess.run(
            [sys.executable, "-c", EXITING_PRODUCER, through.unredacted(), queue, "200"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    ids = set(done.stdout.split())
    assert len(ids) == 200
    assert set(arrived(amqp_url, queue, len(ids))) == ids
