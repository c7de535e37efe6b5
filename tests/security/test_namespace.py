"""The `namespace` transport option: every broker object conveyor creates for a queue (its
dead letters, delays, broadcast exchange, keys, tables, paths) carries the user's prefix,
and nothing of it is created outside that prefix."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import sqlalchemy
from kazoo.client import KazooClient

from conveyor.core.errors import ConfigurationError
from conveyor.core.message import Message
from conveyor.core.registry import create_transport
from conveyor.core.transport import Transport
from conveyor.core.url import parse_url
from conveyor.testing.plugin import missing
from conveyor.testing.waiting import wait_until


def _exercise(transport: Transport, queue: str, channel: str) -> None:
    """Create everything a queue can have: ready, delayed, dead, a broadcast channel."""
    transport.publish(queue, Message(b"ready"))
    transport.publish(queue, Message(b"later"), delay=30.0)
    (delivery,) = transport.fetch(queue, timeout=5.0)
    delivery.nack(requeue=False, reason="namespace test")
    assert [d.message.body for d in transport.dead_letters(queue)] == [b"ready"]
    if transport.capabilities.broadcast:
        subscription = transport.subscribe(channel)
        try:
            transport.broadcast(channel, Message(b"hello"))
            received = subscription.get(timeout=5.0)
            assert received is not None and received.body == b"hello"
        finally:
            subscription.close()


@pytest.fixture
def names() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"ns{tag}", f"nsq-{tag}", f"nsc-{tag}"


@pytest.fixture
def make() -> Iterator[Callable[..., Transport]]:
    made: list[Transport] = []

    def build(url: str, **options: object) -> Transport:
        transport = create_transport(url, **options)
        made.append(transport)
        return transport

    yield build
    for transport in made:
        transport.close()


def test_redis_keys_start_with_the_namespace(
    redis_url: str, names: tuple[str, str, str], make: Callable[..., Transport]
) -> None:
    namespace, queue, channel = names
    transport = make(redis_url, namespace=namespace)
    client = redis.Redis.from_url(redis_url)
    seen_channels: list[bytes] = []
    if transport.capabilities.broadcast:
        subscription = transport.subscribe(channel)
        seen_channels = client.pubsub_channels(f"*{channel}*")
        subscription.close()
    try:
        _exercise(transport, queue, channel)
        keys = list(client.scan_iter(match=f"*{queue}*"))
        assert keys, "the queue made no keys"
        assert all(k.startswith(f"{namespace}:".encode()) for k in keys), keys
        assert all(c.startswith(f"{namespace}:".encode()) for c in seen_channels), seen_channels
    finally:
        transport.delete(queue)
        client.close()


def test_rabbitmq_queues_and_exchanges_start_with_the_namespace(
    amqp_url: str, names: tuple[str, str, str], make: Callable[..., Transport]
) -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        missing("rabbitmqctl is needed to list the broker's queues and exchanges")
    namespace, queue, channel = names
    transport = make(amqp_url, namespace=namespace)

    def listing(kind: str) -> list[str]:
        out = subprocess.run(
            [ctl, "-q", f"list_{kind}", "name"], capture_output=True, text=True, timeout=60
        )
        return [line.strip() for line in out.stdout.splitlines()]

    subscription = transport.subscribe(channel)
    try:
        _exercise(transport, queue, channel)
        queues, exchanges = listing("queues"), listing("exchanges")
    finally:
        subscription.close()
        transport.delete(queue)
    ours = [n for n in queues + exchanges if queue in n or n.startswith(f"{namespace}.")]
    assert len(ours) >= 5, ours  # queue, dead letters, delay queue, due and broadcast exchange
    assert all(n.startswith(f"{namespace}.") for n in ours), ours
    assert f"{namespace}.conveyor.broadcast" in exchanges
    assert any(n.startswith(f"{namespace}.conveyor.sub.") for n in queues)


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_sql_tables_start_with_the_namespace(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: object,
    names: tuple[str, str, str],
    make: Callable[..., Transport],
) -> None:
    namespace, queue, channel = names
    url = (
        f"sqlite:///{tmp_path}/ns.db"
        if kind == "sqlite"
        else str(request.getfixturevalue(f"{kind}_url"))
    )
    transport = make(url, namespace=namespace)
    try:
        _exercise(transport, queue, channel)
        sa_url = str(parse_url(url).unredacted()).replace("sql+", "", 1)
        if kind == "mysql":
            sa_url = sa_url.replace("mysql://", "mysql+pymysql://", 1)
        engine = sqlalchemy.create_engine(sa_url)
        try:
            tables = sqlalchemy.inspect(engine).get_table_names()
            ours = [t for t in tables if t.startswith(f"{namespace}_")]
            assert f"{namespace}_conveyor_messages" in ours, tables
            if "conveyor_messages" in tables:  # the shared table holds nothing of ours
                with engine.connect() as connection:
                    count = connection.execute(
                        sqlalchemy.text("SELECT COUNT(*) FROM conveyor_messages WHERE queue = :q"),
                        {"q": queue},
                    ).scalar()
                assert count == 0
        finally:
            engine.dispose()
    finally:
        transport.delete(queue)


def test_zookeeper_paths_start_with_the_namespace(
    zookeeper_url: str, names: tuple[str, str, str], make: Callable[..., Transport]
) -> None:
    namespace, queue, channel = names
    transport = make(zookeeper_url, namespace=namespace)
    parsed = parse_url(zookeeper_url)
    root = parsed.path.rstrip("/") or "/conveyor"
    client = KazooClient(",".join(str(h) for h in parsed.hosts))
    client.start(timeout=10)
    try:
        _exercise(transport, queue, channel)
        assert client.exists(f"{root}/{namespace}/queues/{queue}")
        assert not client.exists(f"{root}/queues/{queue}")
    finally:
        transport.delete(queue)
        client.delete(f"{root}/{namespace}", recursive=True)
        client.stop()
        client.close()


def test_memory_namespaces_are_apart(make: Callable[..., Transport]) -> None:
    one, other = make("memory://ns-test", namespace="one"), make("memory://ns-test")
    one.publish("q", Message(b"x"))
    assert other.size("q") == 0 and one.size("q") == 1
    assert wait_until(lambda: bool(one.fetch("q", timeout=0.1)), 2)


@pytest.mark.parametrize("bad", ["", "9lives", "has space", "dash-ed", "x" * 33, "ünï"])
def test_a_bad_namespace_is_refused_naming_it(bad: str) -> None:
    if not bad:
        assert create_transport("memory://ns-empty", namespace="").size("q") == 0
        return
    with pytest.raises(ConfigurationError, match="namespace"):
        create_transport("memory://ns-bad", namespace=bad)
