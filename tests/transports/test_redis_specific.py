"""Redis-only behaviour: key layout, leases, reaping, recovery, URL mapping, faults.

The shared server (the `redis_url` fixture) is only read and written under unique queue
names; the fault tests start their own redis-server and kill it by PID.
"""

from __future__ import annotations

import gc
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from conveyor.core import envelope
from conveyor.core.errors import (
    AlreadySettled,
    AuthenticationFailed,
    BrokerUnavailable,
    ConfigurationError,
    LeaseLost,
)
from conveyor.core.message import Delivery, Message
from conveyor.core.registry import create_transport
from conveyor.core.url import Host, parse_url
from conveyor.testing.plugin import missing
from conveyor.testing.proxy import proxy_in_front_of
from conveyor.testing.servers import free_port, port_open
from conveyor.testing.suite_support import closing_builder
from conveyor.testing.waiting import wait_until
from conveyor.transports.base import MAX_DELIVERIES_REASON
from conveyor.transports.redis import RedisTransport

REDIS_SERVER = "/usr/bin/redis-server"
OPENSSL = "/usr/bin/openssl"
MakeTransport = Callable[..., RedisTransport]


@pytest.fixture
def make_transport(redis_url: str) -> Iterator[MakeTransport]:
    defaults = {"lease_timeout": 1.0, "max_deliveries": 3}
    with closing_builder(create_transport, RedisTransport, redis_url, **defaults) as make:
        yield make


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def queue(raw: redis.Redis) -> Iterator[str]:
    name = f"redis-specific-{uuid.uuid4().hex[:12]}"
    yield name
    keys = list(raw.scan_iter(match=f"conveyor:{{{name}}}:*"))
    if keys:
        raw.delete(*keys)


def queue_keys(raw: redis.Redis, queue: str) -> set[bytes]:
    return set(raw.scan_iter(match=f"conveyor:{{{queue}}}:*"))


def fetch_n(transport: RedisTransport, queue: str, n: int, timeout: float = 10.0) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += transport.fetch(queue, max_messages=n - len(got), timeout=0.5)
    return got


def server_ms(raw: redis.Redis) -> float:
    seconds, micros = raw.time()
    return seconds * 1000 + micros / 1000


# -- key layout -------------------------------------------------------------------------


def test_keys_share_one_hash_tag_and_delete_removes_them_all(
    make_transport: MakeTransport, raw: redis.Redis, queue: str
) -> None:
    transport = make_transport()
    transport.publish_many(queue, [Message(b"a"), Message(b"b"), Message(b"c")])
    transport.publish(queue, Message(b"later"), delay=60)
    first, second = fetch_n(transport, queue, 2)
    first.nack(requeue=False, reason="parked")
    prefix = f"conveyor:{{{queue}}}:".encode()
    assert queue_keys(raw, queue) == {
        prefix + b"ready",
        prefix + b"delayed",
        prefix + b"seq",
        prefix + b"dead",
        prefix + b"consumers",
        prefix + b"held:" + raw.zrange(prefix + b"consumers", 0, -1)[0],
    }
    transport.delete(queue)
    assert queue_keys(raw, queue) == set()
    with pytest.raises(LeaseLost):
        second.ack()  # its queue is gone, and so is the lease


def test_close_returns_holdings_at_once_and_leaves_no_keys(
    make_transport: MakeTransport, raw: redis.Redis, queue: str
) -> None:
    holder, other = make_transport(lease_timeout=30.0), make_transport()
    holder.publish_many(queue, [Message(b"x"), Message(b"y")])
    assert len(fetch_n(holder, queue, 2)) == 2
    holder.close()
    back = other.fetch(queue, max_messages=5, timeout=0.5)  # long before the 30 s lease
    assert [(d.message.body, d.delivery_count) for d in back] == [(b"x", 2), (b"y", 2)]
    other.ack_many(back)
    other.close()
    assert queue_keys(raw, queue) == set()


def test_close_interrupts_a_blocked_fetch_and_unregisters(
    make_transport: MakeTransport, raw: redis.Redis, queue: str
) -> None:
    transport = make_transport()
    results: list[list[Delivery]] = []
    waiter = threading.Thread(target=lambda: results.append(transport.fetch(queue, timeout=30)))
    waiter.start()
    consumers = f"conveyor:{{{queue}}}:consumers".encode()
    assert wait_until(lambda: raw.zcard(consumers) == 1, 5)
    started = time.monotonic()
    transport.close()
    waiter.join(5)
    assert results == [[]]
    assert time.monotonic() - started < 2.0
    assert queue_keys(raw, queue) == set()


# -- leases -----------------------------------------------------------------------------


def test_lease_is_kept_alive_by_the_heartbeat(
    make_transport: MakeTransport, raw: redis.Redis, queue: str
) -> None:
    holder, other = make_transport(lease_timeout=0.6), make_transport(lease_timeout=0.6)
    holder.publish(queue, Message(b"long task"))
    (held,) = fetch_n(holder, queue, 1)
    consumers = f"conveyor:{{{queue}}}:consumers".encode()
    deadline = time.monotonic() + 2.5  # four leases
    while time.monotonic() < deadline:
        assert other.fetch(queue, timeout=0.2) == []
        for _member, expiry in raw.zrange(consumers, 0, -1, withscores=True):
            assert expiry > server_ms(raw) - 50  # nobody's lease has lapsed
    held.ack()


def test_forgotten_transport_stops_renewing_and_its_messages_come_back(
    make_transport: MakeTransport, redis_url: str, queue: str
) -> None:
    forgotten = create_transport(redis_url, lease_timeout=0.5)
    forgotten.publish(queue, Message(b"orphan"))
    assert len(fetch_n(forgotten, queue, 1)) == 1
    del forgotten
    gc.collect()  # the heartbeat holds only a weak reference
    rescuer = make_transport(lease_timeout=0.5)
    back = fetch_n(rescuer, queue, 1, timeout=5.0)
    assert [(d.message.body, d.delivery_count) for d in back] == [(b"orphan", 2)]
    back[0].ack()


def test_reaper_requeues_with_count_raised_and_buries_past_max(
    make_transport: MakeTransport, raw: redis.Redis, queue: str
) -> None:
    """A consumer whose lease lapsed (written by hand): fresh and worn-out messages."""
    prefix = f"conveyor:{{{queue}}}:".encode()
    fresh, worn = Message(b"fresh"), Message(b"worn")
    raw.lpush(prefix + b"held:ghost", b"1:" + envelope.pack(fresh), b"3:" + envelope.pack(worn))
    raw.zadd(prefix + b"consumers", {b"ghost": server_ms(raw) - 1000})
    transport = make_transport(max_deliveries=3)
    (delivery,) = transport.fetch(queue, max_messages=5, timeout=0.5)
    assert (delivery.message, delivery.delivery_count) == (fresh, 2)
    delivery.ack()
    (dead,) = transport.dead_letters(queue)
    assert (dead.message, dead.reason, dead.delivery_count) == (worn, MAX_DELIVERIES_REASON, 3)
    assert not raw.exists(prefix + b"held:ghost")
    assert raw.zscore(prefix + b"consumers", b"ghost") is None


def test_heartbeat_survives_a_cut_connection(
    make_transport: MakeTransport, redis_url: str, queue: str
) -> None:
    with proxy_in_front_of(redis_url) as (proxy, through):
        holder = make_transport(through, lease_timeout=0.9)
        other = make_transport(lease_timeout=0.9)
        holder.publish(queue, Message(b"held through cuts"))
        (held,) = fetch_n(holder, queue, 1)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            proxy.cut()
            assert other.fetch(queue, timeout=0.3) == []
        held.ack()
        assert other.fetch(queue, timeout=1.5) == []


def test_strays_of_a_lost_reply_come_back_on_the_next_fetch(
    make_transport: MakeTransport, raw: redis.Redis, queue: str
) -> None:
    """White box: a fetch whose reply was lost left a message in the held list."""
    transport = make_transport(lease_timeout=30.0)
    transport.publish_many(queue, [Message(b"kept"), Message(b"stray")])
    (kept,) = transport.fetch(queue, timeout=0.5)
    prefix = f"conveyor:{{{queue}}}:".encode()
    held = prefix + b"held:" + transport._consumer
    raw.lmove(prefix + b"ready", held, "RIGHT", "LEFT")  # as if the script ran, reply lost
    transport._strays.add(queue)
    (again,) = transport.fetch(queue, timeout=0.5)
    assert (again.message.body, again.delivery_count) == (b"stray", 2)
    assert raw.lrange(held, 0, -1) == [again.tag, kept.tag]
    transport.ack_many([kept, again])
    assert raw.llen(held) == 0


# -- messages ---------------------------------------------------------------------------


def test_equal_due_times_keep_publish_order(make_transport: MakeTransport, queue: str) -> None:
    transport = make_transport()
    sent = [Message(f"d{i}".encode()) for i in range(50)]
    transport.publish_many(queue, sent, delay=0.3)
    got = fetch_n(transport, queue, 50, timeout=5.0)
    assert [d.message.id for d in got] == [m.id for m in sent]
    transport.ack_many(got)


def test_large_publish_many_is_chunked_in_order(make_transport: MakeTransport, queue: str) -> None:
    transport = make_transport()
    sent = [Message(f"n{i}".encode()) for i in range(2500)]
    transport.publish_many(queue, sent)
    assert transport.size(queue) == 2500
    got: list[Delivery] = []
    while len(got) < 2500:
        batch = transport.fetch(queue, max_messages=5000, timeout=1.0)
        assert 0 < len(batch) <= 1000
        got += batch
        transport.ack_many(batch)
    assert [d.message.id for d in got] == [m.id for m in sent]


def test_malformed_element_is_dead_lettered_not_raised(
    make_transport: MakeTransport, raw: redis.Redis, queue: str
) -> None:
    transport = make_transport()
    raw.lpush(f"conveyor:{{{queue}}}:ready", b"1:not an envelope")
    transport.publish(queue, Message(b"fine"))
    (delivery,) = fetch_n(transport, queue, 1)
    assert delivery.message.body == b"fine"
    delivery.ack()
    (dead,) = transport.dead_letters(queue)
    assert dead.reason.startswith("malformed message")
    assert dead.message.body == b"not an envelope"


def test_ack_many_settles_and_reports_lost_leases(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = make_transport()
    transport.publish_many(queue, [Message(f"a{i}".encode()) for i in range(20)])
    got = fetch_n(transport, queue, 20)
    settled: list[Delivery] = []
    for delivery in got:
        delivery.on_settle(settled.append)
    transport.delete(queue)  # the leases go with the queue
    with pytest.raises(LeaseLost):
        transport.ack_many(got)
    assert settled == got and all(d.settled for d in got)


def test_ack_many_skips_settled_deliveries_but_acks_the_rest(
    make_transport: MakeTransport, raw: redis.Redis, queue: str
) -> None:
    transport = make_transport()
    transport.publish_many(queue, [Message(b"one"), Message(b"two"), Message(b"three")])
    first, *rest = fetch_n(transport, queue, 3)
    first.ack()
    with pytest.raises(AlreadySettled):
        transport.ack_many([first, *rest])
    held = f"conveyor:{{{queue}}}:held:".encode() + transport._consumer
    assert raw.llen(held) == 0
    assert transport.fetch(queue, timeout=0.2) == []


def test_idle_fetch_loop_stays_under_five_percent_cpu(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = make_transport()
    transport.fetch(queue, timeout=0.1)
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < 3.0:
        assert transport.fetch(queue, max_messages=10, timeout=1.0) == []
    used = (time.process_time() - cpu) / (time.monotonic() - wall)
    assert used < 0.05, f"idle fetching used {used:.1%} of a core"


# -- URLs and connecting ----------------------------------------------------------------


def test_rediss_url_maps_to_an_ssl_connection() -> None:
    url = "rediss://alice:s3cret@cache.example:6380/2?ssl_cert_reqs=none&ssl_ca_certs=/ca.pem"
    transport = create_transport(url)
    assert isinstance(transport, RedisTransport)
    kwargs = transport.link.connection_kwargs(transport.url.hosts[0])
    assert kwargs["connection_class"] is redis.SSLConnection
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_ca_certs"]) == ("none", "/ca.pem")
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache.example", 6380, 2)
    assert (kwargs["username"], kwargs["password"]) == ("alice", "s3cret")
    assert "s3cret" not in repr(transport)
    plain = create_transport("redis://localhost")
    assert "connection_class" not in plain.link.connection_kwargs(plain.url.hosts[0])


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost/zero",
        "rediss://h/0?ssl_cert_reqs=maybe",
        "redis://h?lease_timeout=0",
        "redis://h?socket_timeout=0.1",
    ],
)
def test_bad_redis_urls_fail_at_construction(url: str) -> None:
    with pytest.raises(ConfigurationError):
        create_transport(url)


def test_failover_hosts_are_tried_in_order(
    make_transport: MakeTransport, redis_url: str, queue: str
) -> None:
    good = parse_url(redis_url)
    assert good.host is not None
    dead = Host("127.0.0.1", free_port())
    transport = make_transport(replace(good, hosts=(dead, good.host)), connect_timeout=1.0)
    transport.publish(queue, Message(b"via the second host"))
    assert transport.size(queue) == 1
    nowhere = make_transport(replace(good, hosts=(dead, Host("127.0.0.1", 1))))
    with pytest.raises(BrokerUnavailable) as info:
        nowhere.size(queue)
    assert str(dead) in str(info.value) and "127.0.0.1:1" in str(info.value)


def test_wrong_password_is_authentication_failed_without_the_password(redis_url: str) -> None:
    url = replace(parse_url(redis_url), username="conveyor_wrong_user", password="hunter2-x")
    transport = create_transport(url)
    with pytest.raises(AuthenticationFailed) as info:
        transport.size("anything")
    assert "hunter2-x" not in str(info.value)


# -- a server of our own, killed and restarted ------------------------------------------


class OwnRedis:
    """redis-server on a free port in a temp dir, append-only with fsync on every write.

    With `tls` it speaks only TLS, with a self-signed certificate for 127.0.0.1.
    """

    def __init__(self, tls: bool = False) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="conveyor-redis-"))
        self.cert = self.dir / "cert.pem"
        listen = ["--port", str(self.port)]
        if tls:
            key = self.dir / "key.pem"
            subprocess.run(
                [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-keyout", str(key), "-out", str(self.cert), "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1"],
                check=True,
                capture_output=True,
            )  # fmt: skip
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                      "--tls-cert-file", str(self.cert), "--tls-key-file", str(key)]  # fmt: skip
        self.url = f"{'rediss' if tls else 'redis'}://127.0.0.1:{self.port}/0"
        self.command = [REDIS_SERVER, *listen, "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "yes", "--appendfsync", "always",
                        "--dir", str(self.dir)]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        if self.url.startswith("rediss"):
            return redis.Redis.from_url(self.url, ssl_ca_certs=str(self.cert))
        return redis.Redis.from_url(self.url)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert wait_until(self.ready, 20)

    def ready(self) -> bool:
        """Accepting commands: the port is open and the append-only file is loaded."""
        if not port_open("127.0.0.1", self.port):
            return False
        client = self.client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def start_redis() -> Iterator[Callable[..., OwnRedis]]:
    if not Path(REDIS_SERVER).exists():
        missing(f"{REDIS_SERVER} is not installed")
    started: list[OwnRedis] = []

    def start(tls: bool = False) -> OwnRedis:
        server = OwnRedis(tls)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.kill()
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def own_redis(start_redis: Callable[..., OwnRedis]) -> OwnRedis:
    return start_redis()


def test_rediss_round_trip_through_a_tls_server(start_redis: Callable[..., OwnRedis]) -> None:
    if not Path(OPENSSL).exists():
        missing(f"{OPENSSL} is not installed")
    server = start_redis(tls=True)
    transport = create_transport(f"{server.url}?ssl_ca_certs={server.cert}")
    try:
        transport.publish("tls", Message(b"over tls"))
        (delivery,) = fetch_n(transport, "tls", 1)
        assert delivery.message.body == b"over tls"
        delivery.ack()
    finally:
        transport.close()
    unverified = create_transport(server.url, connect_timeout=2.0)  # no CA: self-signed
    with pytest.raises(BrokerUnavailable, match="certificate"):
        unverified.size("tls")


def test_acl_user_works_and_a_missing_permission_is_a_conveyor_error(
    own_redis: OwnRedis,
) -> None:
    admin = own_redis.client()
    admin.acl_setuser("worker", enabled=True, passwords=["+s3cret"], keys=["conveyor:*"],
                      channels=["*"], commands=["+@all"])  # fmt: skip
    admin.acl_setuser("no-scripts", enabled=True, passwords=["+s3cret"], keys=["conveyor:*"],
                      commands=["+@all", "-evalsha", "-eval"])  # fmt: skip
    admin.close()
    address = own_redis.url.removeprefix("redis://")
    worker = create_transport(f"redis://worker:s3cret@{address}")
    limited = create_transport(f"redis://no-scripts:s3cret@{address}")
    try:
        worker.publish("acl", Message(b"allowed"))
        (delivery,) = fetch_n(worker, "acl", 1)
        delivery.nack(requeue=False, reason="checked")
        assert [d.reason for d in worker.dead_letters("acl")] == ["checked"]
        with pytest.raises(AuthenticationFailed, match="permission"):
            limited.fetch("acl", timeout=0.1)
    finally:
        worker.close()
        limited.close()


def test_server_killed_mid_run_raises_conveyor_errors_and_recovers(
    own_redis: OwnRedis,
) -> None:
    queue = "fault"
    transport = create_transport(own_redis.url, lease_timeout=5.0, connect_timeout=1.0)
    try:
        sent = [Message(f"f{i}".encode()) for i in range(10)]
        transport.publish_many(queue, sent)
        held = fetch_n(transport, queue, 5)
        transport.ack_many(held[:2])
        acked = {d.message.id for d in held[:2]}

        blocked: list[BaseException] = []

        def wait_on_empty_queue() -> None:
            try:
                transport.fetch("fault-empty", timeout=10.0)
            except BaseException as exc:
                blocked.append(exc)

        waiter = threading.Thread(target=wait_on_empty_queue)
        waiter.start()
        observer = redis.Redis.from_url(own_redis.url)
        assert wait_until(lambda: any(c["cmd"] == "blmove" for c in observer.client_list()), 5)
        observer.close()
        own_redis.kill()
        waiter.join(5)
        assert not waiter.is_alive()
        assert len(blocked) == 1 and isinstance(blocked[0], BrokerUnavailable)

        for operation in (
            lambda: transport.publish(queue, Message(b"while down")),
            lambda: transport.fetch(queue, timeout=0.5),
            held[2].ack,  # outcome unknown: it must come back later
            lambda: create_transport(own_redis.url, connect_timeout=1.0).size(queue),
        ):
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable) as info:
                operation()
            assert not isinstance(info.value, redis.RedisError)
            assert time.monotonic() - started < 3.0

        own_redis.start()  # same port, same append-only file
        transport.ack_many(held[3:])  # still held by this live consumer
        acked |= {d.message.id for d in held[3:]}
        deadline = time.monotonic() + 15
        while acked != {m.id for m in sent} and time.monotonic() < deadline:
            batch = transport.fetch(queue, max_messages=10, timeout=0.5)
            acked |= {d.message.id for d in batch}
            transport.ack_many(batch)
        assert acked == {m.id for m in sent}
    finally:
        transport.close()
