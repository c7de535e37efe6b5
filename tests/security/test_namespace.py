"""The `namespace` option: every broker object conveyor creates for a queue (its
dead letters, delays, broadcast exchange, keys, tables, paths) and every result-backend
key, channel and table, the event history's keys and tables and beat's state carry the
user's prefix, and nothing of it is created outside that prefix."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pymemcache
import pytest
import redis
import sqlalchemy
from kazoo.client import KazooClient

from conveyor import Conveyor
from conveyor.backends.base import SUCCESS, ResultBackend, ResultRecord
from conveyor.backends.events import EventStore, TaskQuery, open_store
from conveyor.backends.memcached import COUNTER_PREFIX, RESULT_PREFIX, memcached_key
from conveyor.backends.redis import RedisBackend
from conveyor.beat.status import beat_status
from conveyor.beat.stores import open_store as open_schedule_store
from conveyor.core.errors import ConfigurationError
from conveyor.core.message import Message
from conveyor.core.registry import create_backend, create_transport
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


# -- result backends: the same prefix, from the backend URL or inherited from the broker's --


def _use_backend(backend: ResultBackend, tag: str) -> list[str]:
    """Write and read everything a backend stores for a task: records, a counter, a wait."""
    ids = [f"{tag}-done", f"{tag}-waited"]
    backend.store(ResultRecord(ids[0], SUCCESS, result=1))
    assert backend.get_many(ids)[ids[0]] is not None
    assert backend.incr(f"{tag}-counter") == 1
    waited: list[ResultRecord] = []
    waiter = threading.Thread(target=lambda: waited.append(backend.wait(ids[1], timeout=10)))
    waiter.start()
    try:
        assert wait_until(lambda: backend.get(ids[1]) is None and waiter.is_alive(), 5)
        assert_wait_channel_prefixed(backend, tag)
    finally:
        backend.store(ResultRecord(ids[1], SUCCESS, result=2))
        waiter.join(15)
    assert [r.result for r in waited] == [2]
    return ids


def assert_wait_channel_prefixed(backend: ResultBackend, tag: str) -> None:
    """On Redis, the waiter's pub/sub channel is named with the prefix too."""
    if not isinstance(backend, RedisBackend):
        return
    client = redis.Redis.from_url(str(backend.url.without_query().unredacted()))
    try:
        assert wait_until(lambda: bool(client.pubsub_channels(f"*{tag}*")), 5)
        channels = client.pubsub_channels(f"*{tag}*")
        assert all(c.startswith(BACKEND_NS.encode() + b":") for c in channels), channels
    finally:
        client.close()


BACKEND_NS = "resultsns"


@pytest.fixture
def tag() -> str:
    return f"nsr-{uuid.uuid4().hex[:8]}"


def test_redis_result_keys_start_with_the_namespace(redis_url: str, tag: str) -> None:
    backend = create_backend(f"{redis_url}?namespace={BACKEND_NS}")
    client = redis.Redis.from_url(redis_url)
    try:
        ids = _use_backend(backend, tag)
        keys = list(client.scan_iter(match=f"*{tag}*"))
        assert len(keys) == 3, keys  # two records and the counter
        assert all(k.startswith(f"{BACKEND_NS}:".encode()) for k in keys), keys
    finally:
        client.delete(*client.scan_iter(match=f"*{tag}*"))
        client.close()
        backend.close()
    assert ids


def test_memcached_result_keys_start_with_the_namespace(memcached_url: str, tag: str) -> None:
    backend = create_backend(f"{memcached_url}?namespace={BACKEND_NS}")
    client = pymemcache.Client(str(parse_url(memcached_url).hosts[0]))
    try:
        done, waited = _use_backend(backend, tag)
        for name in (done, waited):
            assert client.get(memcached_key(f"{BACKEND_NS}:{RESULT_PREFIX}", name)) is not None
            assert client.get(memcached_key(RESULT_PREFIX, name)) is None
        assert client.get(memcached_key(f"{BACKEND_NS}:{COUNTER_PREFIX}", f"{tag}-counter"))
        assert client.get(memcached_key(COUNTER_PREFIX, f"{tag}-counter")) is None
    finally:
        client.close()
        backend.close()


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A SQLite file of the test's own, or the shared PostgreSQL or MariaDB database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue(f"{request.param}_url"))


def _sa_url(url: str) -> str:
    sa_url = str(parse_url(url).unredacted()).replace("sql+", "", 1)
    return sa_url.replace("mysql://", "mysql+pymysql://", 1)


def test_sql_result_tables_start_with_the_namespace(sql_url: str, tag: str) -> None:
    url, kind = sql_url, sql_url.split(":", 1)[0]
    backend = create_backend(f"{url}?namespace={BACKEND_NS}")
    engine = sqlalchemy.create_engine(_sa_url(url))
    try:
        ids = _use_backend(backend, tag)
        inspector = sqlalchemy.inspect(engine)
        tables = inspector.get_table_names()
        assert {f"{BACKEND_NS}_conveyor_results", f"{BACKEND_NS}_conveyor_counters"} <= set(
            tables
        ), tables
        if kind == "sqlite":  # a database of its own: nothing outside the prefix at all
            assert all(t.startswith(f"{BACKEND_NS}_") for t in tables), tables
            indexes = [i["name"] for t in tables for i in inspector.get_indexes(t)]
            assert all(str(i).startswith(f"ix_{BACKEND_NS}_") for i in indexes), indexes
        if "conveyor_results" in tables:  # the shared table holds nothing of ours
            with engine.connect() as connection:
                count = connection.execute(
                    sqlalchemy.text(
                        "SELECT COUNT(*) FROM conveyor_results WHERE task_id IN :ids"
                    ).bindparams(sqlalchemy.bindparam("ids", expanding=True)),
                    {"ids": ids},
                ).scalar()
            assert count == 0
    finally:
        engine.dispose()
        backend.close()


@pytest.mark.parametrize(
    ("backend_query", "expected"), [("", "inherited"), ("?namespace=own", "own")]
)
def test_the_backend_inherits_the_broker_namespace(
    tmp_path: object, backend_query: str, expected: str
) -> None:
    app = Conveyor(
        "ns",
        broker=f"sqlite:///{tmp_path}/b.db?namespace=inherited",
        backend=f"sqlite:///{tmp_path}/r.db{backend_query}",
    )
    try:
        assert app.backend.options.namespace == expected
    finally:
        app.close()


@pytest.mark.parametrize("bad", ["9lives", "dash-ed"])
def test_a_bad_backend_namespace_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="namespace"):
        create_backend(f"memory://ns-bad?namespace={bad}")


# -- the event history: the same prefix, from the store URL or inherited from the broker's --


def _use_event_store(store: EventStore, tag: str) -> None:
    """Write everything the history keeps: the log, a task row and timeline, its indexes,
    a worker's last event and a minute's counts; read each back."""
    now = time.time()
    task = {"uuid": f"{tag}-t", "hostname": tag, "timestamp": now}
    store.add(
        [
            {"type": "task-received", "name": tag, **task},
            {"type": "task-succeeded", **task},
            {"type": "worker-heartbeat", "hostname": tag, "timestamp": now},
        ]
    )
    assert [r.task_id for r in store.tasks(TaskQuery(name=tag))] == [f"{tag}-t"]
    assert len(store.timeline(f"{tag}-t")) == 2 and tag in store.workers()
    assert store.series(now - 60)


def test_redis_event_keys_start_with_the_namespace(redis_url: str, tag: str) -> None:
    store = open_store(f"{redis_url}?namespace={BACKEND_NS}")
    client = redis.Redis.from_url(redis_url)
    try:
        _use_event_store(store, tag)
        keys = list(client.scan_iter(match=f"*{tag}*"))
        assert len(keys) == 4, keys  # the task's hash and timeline, its name and host index
        assert all(k.startswith(f"{BACKEND_NS}:conveyor-events:".encode()) for k in keys), keys
        assert client.exists(f"{BACKEND_NS}:conveyor-events:log")
        assert client.hexists(f"{BACKEND_NS}:conveyor-events:workers", tag)
        assert not client.hexists("conveyor-events:workers", tag)
    finally:
        client.delete(*client.scan_iter(match=f"*{tag}*"))
        client.hdel(f"{BACKEND_NS}:conveyor-events:workers", tag)
        client.close()
        store.close()


def test_sql_event_tables_start_with_the_namespace(sql_url: str, tag: str) -> None:
    url, kind = sql_url, sql_url.split(":", 1)[0]
    store = open_store(f"{url}?namespace={BACKEND_NS}")
    engine = sqlalchemy.create_engine(_sa_url(url))
    try:
        _use_event_store(store, tag)
        inspector = sqlalchemy.inspect(engine)
        tables = inspector.get_table_names()
        names = ("conveyor_events", "conveyor_event_tasks", "conveyor_event_workers")
        assert {f"{BACKEND_NS}_{name}" for name in names} <= set(tables), tables
        if kind == "sqlite":  # a database of its own: nothing outside the prefix at all
            assert all(t.startswith(f"{BACKEND_NS}_") for t in tables), tables
            indexes = [i["name"] for t in tables for i in inspector.get_indexes(t)]
            assert indexes and all(str(i).startswith(f"ix_{BACKEND_NS}_") for i in indexes)
        if "conveyor_event_tasks" in tables:  # the shared table holds nothing of ours
            with engine.connect() as connection:
                count = connection.execute(
                    sqlalchemy.text("SELECT COUNT(*) FROM conveyor_event_tasks WHERE name = :n"),
                    {"n": tag},
                ).scalar()
            assert count == 0
    finally:
        engine.dispose()
        store.close()


def test_memory_event_histories_of_two_namespaces_are_apart(tag: str) -> None:
    one, other = open_store("memory://ns-events?namespace=one"), open_store("memory://ns-events")
    _use_event_store(one, tag)
    assert other.task(f"{tag}-t") is None and one.task(f"{tag}-t") is not None


@pytest.mark.parametrize(
    ("store_query", "expected"), [("", "inherited"), ("?namespace=own", "own")]
)
def test_the_event_history_inherits_the_broker_namespace(
    tmp_path: object, tag: str, store_query: str, expected: str
) -> None:
    app = Conveyor("ns", broker=f"sqlite:///{tmp_path}/b.db?namespace=inherited")
    app.conf.events_store_url = f"sqlite:///{tmp_path}/e.db{store_query}"
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/e.db")
    try:
        _use_event_store(app.events.store, tag)
        assert f"{expected}_conveyor_events" in sqlalchemy.inspect(engine).get_table_names()
    finally:
        engine.dispose()
        app.close()


def test_a_bad_event_store_namespace_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="namespace"):
        open_store("memory://ns-bad?namespace=dash-ed")


# -- beat's state store: the same prefix, from the store URL or inherited from the broker's --


def _use_schedule_store(url: str, tag: str) -> None:
    """Take the lease and claim a tick: every key, row, table or node the store makes."""
    store = open_schedule_store(f"{url}{'&' if '?' in url else '?'}namespace={BACKEND_NS}", tag)
    try:
        assert store.acquire(tag, 30.0, time.time()) and store.leader(time.time()) == tag
        assert store.claim(f"{tag}-entry", 100.0) and store.last_run(f"{tag}-entry") == 100.0
    finally:
        store.close()


def test_redis_beat_keys_start_with_the_namespace(redis_url: str, tag: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        _use_schedule_store(redis_url, tag)
        keys = list(client.scan_iter(match=f"*{tag}*"))
        assert len(keys) == 2, keys  # the lease and the runs hash
        assert all(k.startswith(f"{BACKEND_NS}:conveyor:beat:".encode()) for k in keys), keys
    finally:
        client.delete(*client.scan_iter(match=f"*{tag}*"))
        client.close()


def test_memcached_beat_keys_start_with_the_namespace(memcached_url: str, tag: str) -> None:
    client = pymemcache.Client(str(parse_url(memcached_url).hosts[0]))
    try:
        _use_schedule_store(memcached_url, tag)
        lease, runs = (
            f"conveyor-beat-lease:{tag}",
            memcached_key(f"conveyor-beat-run:{tag}:", f"{tag}-entry"),
        )
        assert client.get(f"{BACKEND_NS}:{lease}") == tag.encode() and not client.get(lease)
        assert client.get(f"{BACKEND_NS}:{runs}") and client.get(runs) is None
    finally:
        client.close()


def test_sql_beat_tables_start_with_the_namespace(sql_url: str, tag: str) -> None:
    engine = sqlalchemy.create_engine(_sa_url(sql_url))
    try:
        _use_schedule_store(sql_url, tag)
        tables = sqlalchemy.inspect(engine).get_table_names()
        names = {f"{BACKEND_NS}_conveyor_beat_leases", f"{BACKEND_NS}_conveyor_beat_runs"}
        assert names <= set(tables), tables
        if sql_url.startswith("sqlite"):  # a database of its own: nothing outside the prefix
            assert all(t.startswith(f"{BACKEND_NS}_") for t in tables), tables
        if "conveyor_beat_leases" in tables:  # the shared table holds nothing of ours
            with engine.connect() as connection:
                count = connection.execute(
                    sqlalchemy.text("SELECT COUNT(*) FROM conveyor_beat_leases WHERE holder = :h"),
                    {"h": tag},
                ).scalar()
            assert count == 0
    finally:
        engine.dispose()


def test_zookeeper_beat_paths_start_with_the_namespace(zookeeper_url: str, tag: str) -> None:
    parsed = parse_url(zookeeper_url)
    root = parsed.path.rstrip("/") or "/conveyor"
    client = KazooClient(",".join(str(h) for h in parsed.hosts))
    client.start(timeout=10)
    try:
        _use_schedule_store(zookeeper_url, tag)
        assert client.exists(f"{root}/{BACKEND_NS}/beat/{tag}/runs")
        assert not client.exists(f"{root}/beat/{tag}")
    finally:
        client.delete(f"{root}/{BACKEND_NS}/beat/{tag}", recursive=True)
        client.stop()
        client.close()


def test_memory_beat_stores_of_two_namespaces_are_apart(tag: str) -> None:
    _use_schedule_store("memory://ns-beat", tag)
    other = open_schedule_store("memory://ns-beat", tag)
    assert other.leader(time.time()) is None and other.last_run(f"{tag}-entry") is None


@pytest.mark.parametrize(
    ("store_query", "expected"), [("", "inherited"), ("?namespace=own", "own")]
)
def test_beat_inherits_the_broker_namespace(
    tmp_path: object, tag: str, store_query: str, expected: str
) -> None:
    app = Conveyor(tag, broker=f"sqlite:///{tmp_path}/b.db?namespace=inherited")
    app.conf.beat_store_url = f"sqlite:///{tmp_path}/s.db{store_query}"
    app.task(name="t")(lambda: None)
    app.conf.beat_schedule = {f"{tag}-entry": {"task": "t", "schedule": 60.0}}
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/s.db")
    try:
        beat_status(app)
        assert f"{expected}_conveyor_beat_runs" in sqlalchemy.inspect(engine).get_table_names()
    finally:
        engine.dispose()
        app.close()
