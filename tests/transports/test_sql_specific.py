"""SQL transport behaviour beyond the conformance suite, on real SQLite, PostgreSQL, MariaDB.

Tables live in the shared `test` database under the default prefix (queues are unique per
test); tests that need their own tables use a unique prefix and drop only those tables.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from conveyor.core.errors import (
    BrokerUnavailable,
    ConfigurationError,
    ConnectionLost,
    LeaseLost,
)
from conveyor.core.message import Delivery, Message
from conveyor.core.registry import create_transport
from conveyor.core.url import parse_url
from conveyor.testing.frozen import frozen_consumer
from conveyor.testing.plugin import missing
from conveyor.testing.servers import free_port
from conveyor.testing.suite_support import closing_builder
from conveyor.testing.waiting import wait_until
from conveyor.transports.base import MAX_DELIVERIES_REASON, Transport
from conveyor.transports.sql import SQLTransport

DATABASES = ["sqlite", "postgres", "mysql"]
MakeTransport = Callable[..., Transport]


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conveyor.db'}"
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def queue() -> str:
    return f"sqltest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make(url: str) -> Iterator[MakeTransport]:
    with closing_builder(create_transport, Transport, url) as factory:
        yield factory


def raw_engine(url: str) -> sa.Engine:
    """A plain SQLAlchemy engine on the same database, for looking behind the transport."""
    parsed = parse_url(url)
    if parsed.scheme == "sqlite":
        return sa.create_engine(f"sqlite:///{parsed.path[1:]}")
    driver = "postgresql+psycopg" if parsed.scheme == "sql+postgresql" else "mysql+pymysql"
    host = parsed.hosts[0]
    return sa.create_engine(
        sa.URL.create(
            driver, parsed.username, parsed.password, host.name, host.port, parsed.path[1:]
        )
    )


def run_python(code: str, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_dialect_subclasses_declare_their_capabilities(tmp_path: Path) -> None:
    sqlite = create_transport(f"sqlite:///{tmp_path / 'a.db'}")
    postgres = create_transport("sql+postgresql://postgres@127.0.0.1:5432/test")
    mysql = create_transport("sql+mysql://root@127.0.0.1:3306/test")
    assert all(isinstance(t, SQLTransport) for t in (sqlite, postgres, mysql))
    assert not sqlite.capabilities.networked
    assert postgres.capabilities.networked and mysql.capabilities.connection_cut
    assert mysql.capabilities.max_message_size < postgres.capabilities.max_message_size


@pytest.mark.parametrize(
    "bad",
    ["sqlite://", "sqlite:///:memory:", "sqlite://host/x.db", "sql+postgresql://a;b/test"],
)
def test_unusable_urls_are_refused_before_io(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        create_transport(bad)


@pytest.mark.parametrize("prefix", ["", "1abc", "a-b", "x; DROP TABLE t", "a" * 41])
def test_table_prefix_must_be_an_identifier(tmp_path: Path, prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="table_prefix"):
        create_transport(f"sqlite:///{tmp_path / 'p.db'}", table_prefix=prefix)


def test_idle_consumer_picks_up_a_message_from_another_transport(
    make: MakeTransport, queue: str
) -> None:
    consumer, producer = make(), make()
    consumer.size(queue)  # schema and connections ready before the measurement
    producer.size(queue)
    got: list[Delivery] = []
    waiting = threading.Event()

    def consume() -> None:
        waiting.set()
        got.extend(consumer.fetch(queue, timeout=10.0))

    thread = threading.Thread(target=consume)
    thread.start()
    waiting.wait(5)
    time.sleep(0.3)  # let the consumer settle into its idle poll
    producer.publish(queue, Message(b"wake up"))
    published = time.monotonic()
    assert wait_until(lambda: bool(got), 5.0)
    latency = time.monotonic() - published
    thread.join(5)
    assert got[0].message.body == b"wake up"
    assert latency < 0.5, f"picked up after {latency * 1000:.0f} ms"
    got[0].ack()


def test_postgresql_notifies_an_idle_consumer(postgres_url: str, queue: str) -> None:
    """With polling slowed to 2 s, only LISTEN/NOTIFY can deliver within a fraction of it."""
    consumer = create_transport(postgres_url, poll_interval=2.0)
    producer = create_transport(postgres_url)
    try:
        assert consumer.fetch(queue, timeout=2.5) == []  # now listening, polling every 2 s
        got: list[Delivery] = []
        thread = threading.Thread(target=lambda: got.extend(consumer.fetch(queue, timeout=10)))
        thread.start()
        time.sleep(1.5)  # deep into the idle backoff
        producer.publish(queue, Message(b"notified"))
        published = time.monotonic()
        assert wait_until(lambda: bool(got), 5.0)
        latency = time.monotonic() - published
        thread.join(5)
        assert latency < 0.3, f"picked up after {latency * 1000:.0f} ms"
        got[0].ack()
    finally:
        consumer.close()
        producer.close()


def lease_threads() -> int:
    return sum(t.name == "conveyor-sql-leases" and t.is_alive() for t in threading.enumerate())


def test_close_returns_unacked_messages_at_once(make: MakeTransport, queue: str) -> None:
    first, second = make(lease_timeout=30.0), make(lease_timeout=30.0)
    first.publish_many(queue, [Message(b"a"), Message(b"b")])
    before = lease_threads()
    held = first.fetch(queue, max_messages=2, timeout=5.0)
    assert len(held) == 2
    assert lease_threads() == before + 1
    first.close()
    assert lease_threads() == before  # close stops the lease renewer
    started = time.monotonic()
    back = second.fetch(queue, max_messages=2, timeout=5.0)
    assert time.monotonic() - started < 2.0  # far below the 30 s lease
    assert sorted(d.message.body for d in back) == [b"a", b"b"]
    assert [d.delivery_count for d in back] == [2, 2]
    for delivery in back:
        delivery.ack()


def test_settling_twice_after_close_is_lease_lost(make: MakeTransport, queue: str) -> None:
    first, second = make(), make()
    first.publish(queue, Message(b"x"))
    (held,) = first.fetch(queue, timeout=5.0)
    first.close()
    (again,) = second.fetch(queue, timeout=5.0)
    with pytest.raises(LeaseLost):
        held.ack()
    again.ack()
    assert second.size(queue) == 0


def test_nack_without_delay_keeps_the_place_in_the_queue(make: MakeTransport, queue: str) -> None:
    transport = make()
    transport.publish_many(queue, [Message(b"first"), Message(b"second")])
    (first,) = transport.fetch(queue, timeout=5.0)
    first.nack(requeue=True)
    (again,) = transport.fetch(queue, timeout=5.0)
    assert (again.message.body, again.delivery_count) == (b"first", 2)
    again.ack()


def test_ack_many_settles_a_batch_and_reports_lost_leases(make: MakeTransport, queue: str) -> None:
    first, second = make(), make()
    first.publish_many(queue, [Message(f"m{i}".encode()) for i in range(6)])
    batch = first.fetch(queue, max_messages=5, timeout=5.0)
    assert len(batch) == 5
    first.ack_many(batch[:3])
    assert all(d.settled for d in batch[:3])
    (stale, kept) = batch[3:]
    first.close()  # returns the two unacked ones; `stale` no longer holds its message
    taken = second.fetch(queue, max_messages=3, timeout=5.0)
    assert sorted(d.message.body for d in taken) == [b"m3", b"m4", b"m5"]
    with pytest.raises(LeaseLost, match="1 of 1"):
        first.ack_many([stale])
    second.ack_many(taken)
    assert second.size(queue) == 0
    assert second.fetch(queue, timeout=0.3) == []
    assert not kept.settled


def test_batches_of_every_size_settle_exactly_their_messages(
    make: MakeTransport, queue: str
) -> None:
    """Statements run with their SQL text kept per length of their IN lists (sql_driver):
    acks of different sizes, in any order, each remove exactly their own messages."""
    first, second = make(), make()
    first.publish_many(queue, [Message(f"m{i:02}".encode()) for i in range(12)])
    held = first.fetch(queue, max_messages=12, timeout=5.0)
    assert len(held) == 12
    for size in (1, 3, 1, 2):
        batch, held = held[:size], held[size:]
        first.ack_many(batch)
    first.close()  # the five unacked ones go back
    back = second.fetch(queue, max_messages=12, timeout=5.0)
    assert sorted(d.message.body for d in back) == [f"m{i:02}".encode() for i in range(7, 12)]
    second.ack_many(back)
    assert second.fetch(queue, timeout=0.3) == []


def test_postgresql_publishes_wait_for_the_flush_and_claims_do_not(postgres_url: str) -> None:
    """Only claims, settlements and lease updates may be forgotten by a crashed server."""
    transport = create_transport(postgres_url)
    assert isinstance(transport, SQLTransport)
    engines = transport._engines

    def synchronous_commit(engine: sa.Engine) -> str:
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("SHOW synchronous_commit").scalar())

    plain = raw_engine(postgres_url)
    try:
        server_default = synchronous_commit(plain)
        assert server_default != "off"
        assert synchronous_commit(engines.single) == server_default
        assert synchronous_commit(engines.atomic) == server_default
        assert synchronous_commit(engines.relaxed) == "off"
    finally:
        plain.dispose()
        transport.close()


def _use_in_forked_child(transport: Transport, queue: str) -> None:
    transport.publish(queue, Message(b"from child"))
    (delivery,) = transport.fetch(queue, timeout=5.0)
    delivery.ack()
    transport.close()
    os._exit(0 if delivery.message.body == b"from child" else 1)


def test_forked_child_gets_its_own_connections_and_identity(
    make: MakeTransport, queue: str
) -> None:
    transport = make()
    transport.publish(queue, Message(b"parent's"))
    (held,) = transport.fetch(queue, timeout=5.0)
    child = multiprocessing.get_context("fork").Process(
        target=_use_in_forked_child, args=(transport, queue)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0
    held.ack()  # the parent's claim and connections survived the child
    assert transport.fetch(queue, timeout=0.3) == []


def test_large_binary_body_round_trips(make: MakeTransport, queue: str) -> None:
    transport = make()
    # Zero bytes cost the most to escape on MySQL: the worst case must fit in one statement.
    body = b"\x00'\\\"" * ((transport.capabilities.max_message_size - 1024) // 4)
    transport.publish(queue, Message(body))
    (delivery,) = transport.fetch(queue, timeout=10.0)
    assert delivery.message.body == body
    delivery.ack()


def test_prefixes_isolate_tables_and_schema_creation_races(url: str, queue: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    # Four processes create the schema at the same moment, then publish.
    start_at = str(time.time() + 1.5)
    children = [run_python(_RACER, url, prefix, queue, start_at) for _ in range(4)]
    try:
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            assert out.strip() == "published"
        mine = create_transport(url, table_prefix=prefix)
        default = create_transport(url)
        assert mine.size(queue) == 4
        assert default.size(queue) == 0
        mine.close()
        default.close()
    finally:
        engine = raw_engine(url)
        with engine.begin() as connection:
            for table in ("messages", "broadcasts"):
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {prefix}{table}"))
            if engine.dialect.name == "postgresql":  # the notifying trigger's function
                connection.execute(sa.text(f"DROP FUNCTION IF EXISTS {prefix}messages_ready()"))
        engine.dispose()


_RACER = """
import sys, time
from conveyor.core.message import Message
from conveyor.core.registry import create_transport
url, prefix, queue, start_at = sys.argv[1:]
transport = create_transport(url, table_prefix=prefix)
time.sleep(max(0.0, float(start_at) - time.time()))
transport.publish(queue, Message(b"x"))
transport.close()
print("published")
"""


def test_processes_share_one_sqlite_file(tmp_path: Path, queue: str) -> None:
    """Two producer and two consumer processes on one file: no loss, no duplicate, no
    "database is locked"."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    stop = tmp_path / "producers-done"
    consumers = [run_python(_CONSUMER, url, queue, str(stop)) for _ in range(2)]
    producers = [run_python(_PRODUCER, url, queue, str(n)) for n in range(2)]
    try:
        for producer in producers:
            _, err = producer.communicate(timeout=120)
            assert producer.returncode == 0, err
        stop.touch()
        seen: list[str] = []
        for consumer in consumers:
            out, err = consumer.communicate(timeout=120)
            assert consumer.returncode == 0, err
            seen += out.split()
    finally:
        for child in producers + consumers:
            if child.poll() is None:
                child.kill()
    assert len(seen) == len(set(seen)) == 200
    assert set(seen) == {f"{p}-{i}" for p in range(2) for i in range(100)}


_PRODUCER = """
import sys
from conveyor.core.message import Message
from conveyor.core.registry import create_transport
url, queue, name = sys.argv[1:]
transport = create_transport(url)
for i in range(0, 100, 10):
    transport.publish(queue, Message(f"{name}-{i}".encode()))
    transport.publish_many(queue, [Message(f"{name}-{j}".encode()) for j in range(i + 1, i + 10)])
transport.close()
"""

_CONSUMER = """
import os, sys, time
from conveyor.core.registry import create_transport
url, queue, stop = sys.argv[1:]
transport = create_transport(url)
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    producers_done = os.path.exists(stop)
    batch = transport.fetch(queue, max_messages=7, timeout=0.2)
    for delivery in batch:
        print(delivery.message.body.decode(), flush=True)
        delivery.ack()
    if producers_done and not batch and transport.size(queue) == 0:
        break
transport.close()
"""


def test_broadcast_reaches_a_subscriber_in_another_process(url: str) -> None:
    channel = f"control-{uuid.uuid4().hex[:8]}"
    transport = create_transport(url)
    try:
        transport.broadcast(channel, Message(b"before"))  # not for later subscribers
        child = run_python(_SUBSCRIBER, url, channel)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        transport.broadcast(channel, Message(b"ping", headers={"cmd": "ping"}))
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert out.split() == ["ping", "None"]
    finally:
        transport.close()


_SUBSCRIBER = """
import sys
from conveyor.core.registry import create_transport
url, channel = sys.argv[1:]
transport = create_transport(url)
subscription = transport.subscribe(channel)
print("ready", flush=True)
first = subscription.get(timeout=20.0)
print(first.body.decode() if first else None, flush=True)
print(subscription.get(timeout=0.5), flush=True)
subscription.close()
transport.close()
"""


def test_frozen_consumer_loses_its_lease(url: str, queue: str) -> None:
    """A consumer that stops renewing (SIGSTOP) loses the message; its late ack is refused."""
    transport = create_transport(url, lease_timeout=1.0)
    try:
        transport.publish(queue, Message(b"slow"))
        with frozen_consumer(url, queue, lease_timeout=1.0) as child:
            assert child.held == 1
            (taken,) = transport.fetch(queue, timeout=10.0)
            assert time.monotonic() - child.frozen_at < 4.0
            assert taken.delivery_count == 2
            assert child.wake_and_ack() == "LeaseLost"
            taken.ack()
    finally:
        transport.close()


def test_dead_consumer_at_max_deliveries_is_dead_lettered(url: str, queue: str) -> None:
    transport = create_transport(url, lease_timeout=1.0, max_deliveries=1)
    try:
        transport.publish(queue, Message(b"poison"))
        with frozen_consumer(url, queue, lease_timeout=1.0) as child:
            assert child.held == 1
        assert transport.fetch(queue, timeout=3.0) == []  # reaped into the dead letters
        assert wait_until(lambda: len(transport.dead_letters(queue)) == 1, 5.0)
        (dead,) = transport.dead_letters(queue)
        assert dead.reason == MAX_DELIVERIES_REASON
        assert (dead.message.body, dead.delivery_count) == (b"poison", 1)
    finally:
        transport.close()


def test_terminated_backend_recovers_with_conveyor_errors(postgres_url: str, queue: str) -> None:
    """Kill this transport's own PostgreSQL sessions server-side, mid-work."""
    transport = create_transport(postgres_url, lease_timeout=5.0)
    admin = raw_engine(postgres_url)
    try:
        transport.publish_many(queue, [Message(f"m{i}".encode()) for i in range(4)])
        held = transport.fetch(queue, max_messages=2, timeout=5.0)
        assert len(held) == 2
        with admin.begin() as connection:
            owner = connection.execute(
                sa.text(
                    "SELECT DISTINCT owner FROM conveyor_messages "
                    "WHERE queue = :q AND owner IS NOT NULL"
                ),
                {"q": queue},
            ).scalar_one()
            killed = connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": f"conveyor-{owner}"},
            ).all()
        assert killed, "the transport's sessions were not found"
        # Held messages survive their connection: the lease belongs to the transport.
        for delivery in held:
            delivery.ack()
        try:
            transport.publish(queue, Message(b"after"))
        except ConnectionLost:  # the only error allowed: a publish whose outcome is unknown
            transport.publish(queue, Message(b"after"))
        rest = transport.fetch(queue, max_messages=10, timeout=5.0)
        assert {b"m2", b"m3", b"after"} <= {d.message.body for d in rest}
        for delivery in rest:
            delivery.ack()
    finally:
        transport.close()
        admin.dispose()


@dataclass
class OwnPostgres:
    """A PostgreSQL server this test starts in a temporary directory, stopped by its PID."""

    data: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"sql+postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = ["-p", str(self.port), "-k", str(self.data.parent)]
        options += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        self.process = subprocess.Popen(
            [*_AS_POSTGRES, f"{_PG_BIN}/postgres", "-D", str(self.data), *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # An open port is not a server that takes connections ("the database system is
        # starting up"): wait for a real login.
        assert wait_until(self.accepts_connections, 30)

    def accepts_connections(self) -> bool:
        try:
            psycopg.connect(
                host="127.0.0.1",
                port=self.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=2,
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # fast shutdown
            self.process.wait(30)


_PG_BIN = "/usr/lib/postgresql/15/bin"
_AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    if not Path(f"{_PG_BIN}/initdb").exists() or (_AS_POSTGRES and not shutil.which("runuser")):
        missing("no PostgreSQL server binaries to start a private server")
    # Under /tmp itself: the server runs as `postgres`, which cannot enter pytest's tmp_path.
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
    if _AS_POSTGRES:
        shutil.chown(workdir, user="postgres")
    server = OwnPostgres(workdir / "data", free_port())
    try:
        initdb = ["-D", str(server.data), "-A", "trust", "-U", "postgres", "--no-sync"]
        subprocess.run(
            [*_AS_POSTGRES, f"{_PG_BIN}/initdb", *initdb], check=True, capture_output=True
        )
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_server_restart_is_survived_with_conveyor_errors_only(
    own_postgres: OwnPostgres, queue: str
) -> None:
    transport = create_transport(own_postgres.url, lease_timeout=10.0, connect_timeout=2.0)
    try:
        transport.publish_many(queue, [Message(f"m{i}".encode()) for i in range(3)])
        held = transport.fetch(queue, max_messages=2, timeout=5.0)
        assert len(held) == 2
        own_postgres.stop()
        with pytest.raises(BrokerUnavailable):
            transport.publish(queue, Message(b"during"))
        with pytest.raises(BrokerUnavailable):
            transport.fetch(queue, timeout=0.5)
        own_postgres.start()

        def publish_after() -> bool:
            try:
                transport.publish(queue, Message(b"after"))
                return True
            except BrokerUnavailable:
                return False

        assert wait_until(publish_after, 30, interval=0.2)
        transport.ack_many(held)  # the claims outlived the server's restart
        rest = transport.fetch(queue, max_messages=5, timeout=5.0)
        assert sorted(d.message.body for d in rest) == [b"after", b"m2"]
        transport.ack_many(rest)
    finally:
        transport.close()
