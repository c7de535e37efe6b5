"""RabbitMQ-specific behaviour beyond the conformance suite, against the real broker.

Each test uses its own queue names and connection names, deletes its queues, and closes
only connections it opened (found through their client-provided connection name).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pika
import pytest

from conveyor.core.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    ConfigurationError,
    ConnectionLost,
    ConveyorError,
    LeaseLost,
    Unsupported,
)
from conveyor.core.message import Delivery, Message
from conveyor.core.producer import Producer
from conveyor.core.registry import create_transport
from conveyor.core.retry import Backoff
from conveyor.core.url import parse_url
from conveyor.testing.plugin import missing
from conveyor.testing.proxy import proxy_in_front_of
from conveyor.testing.servers import (
    RABBITMQ_SERVER,
    LocalServer,
    free_port,
    port_open,
    rabbitmq_command,
)
from conveyor.testing.suite_support import closing_builder
from conveyor.testing.waiting import wait_until
from conveyor.transports.amqp import AMQPTransport
from conveyor.transports.amqp import codec as codec
from conveyor.transports.amqp import topology as topology
from conveyor.transports.amqp.inbox import Raw, Unacked
from conveyor.transports.amqp.topology import DELAY_QUEUE_GRACE_MS, MAX_DELAY, delay_bucket
from conveyor.transports.base import MAX_DELIVERIES_REASON

Make = Callable[..., AMQPTransport]


@pytest.fixture
def make(amqp_url: str) -> Iterator[Make]:
    defaults = {"lease_timeout": 2.0, "max_deliveries": 3}
    with closing_builder(create_transport, AMQPTransport, amqp_url, **defaults) as made:
        yield made


@pytest.fixture
def queue(make: Make) -> Iterator[str]:
    name = f"amqp-test-{uuid.uuid4().hex[:12]}"
    yield name
    cleaner = make()
    with contextlib.suppress(ConveyorError):
        cleaner.delete(name)


def fetch_one(transport: AMQPTransport, queue: str, timeout: float = 10.0) -> Delivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = transport.fetch(queue, timeout=min(1.0, max(0.05, deadline - time.monotonic())))
        if got:
            return got[0]
    raise AssertionError(f"nothing arrived on {queue!r} within {timeout} s")


def cli(tool: str, *args: str) -> str:
    if shutil.which(tool) is None:
        missing(f"{tool} is not available")
    done = subprocess.run([tool, "-q", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        missing(f"{tool} failed: {done.stderr.strip()[:200]}")
    return done.stdout


@pytest.fixture
def rabbitmqctl(amqp_url: str) -> Callable[..., str]:
    """rabbitmqctl, when the node it manages is the broker under test; else a skip."""
    url = parse_url(amqp_url)
    port = (url.host.port if url.host else None) or 5672
    local = url.host is not None and url.host.name in ("127.0.0.1", "localhost", "::1")
    if not local or f"port: {port}, protocol: amqp" not in cli("rabbitmq-diagnostics", "listeners"):
        missing("rabbitmqctl manages another node than the broker under test")
    return lambda *args: cli("rabbitmqctl", *args)


def connection_pids(rabbitmqctl: Callable[..., str], name_prefix: str) -> list[str]:
    rows = rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers")
    return [row.split("\t")[0] for row in rows.splitlines() if name_prefix in row]


def queue_names(rabbitmqctl: Callable[..., str]) -> set[str]:
    rows = rabbitmqctl("list_queues", "name", "--no-table-headers")
    return {row.strip() for row in rows.splitlines() if row.strip()}


# -- the long task and heartbeats -------------------------------------------------------


def test_task_longer_than_heartbeat_is_not_redelivered(make: Make, queue: str) -> None:
    """The I/O thread answers heartbeats while the caller is busy for 3 heartbeat timeouts."""
    worker, other = make(heartbeat=1), make()
    worker.publish(queue, Message(b"long"))
    held = fetch_one(worker, queue)
    busy_until = time.monotonic() + 5.0
    while time.monotonic() < busy_until:  # keep the GIL busy, as a CPU-bound task would
        sum(range(10_000))
        assert other.fetch(queue, timeout=0.01) == []
    held.ack()
    assert other.fetch(queue, timeout=1.0) == []
    assert other.size(queue) == 0


# -- delays --------------------------------------------------------------------------


def test_short_delay_published_after_long_one_arrives_first(make: Make, queue: str) -> None:
    transport = make()
    started = time.monotonic()
    transport.publish(queue, Message(b"sixty"), delay=60.0)
    transport.publish(queue, Message(b"one"), delay=1.0)
    transport.publish(queue, Message(b"one-and-a-half"), delay=1.5)
    first = fetch_one(transport, queue, timeout=5.0)
    assert first.message.body == b"one"
    assert 0.95 <= time.monotonic() - started <= 2.0
    second = fetch_one(transport, queue, timeout=5.0)
    assert second.message.body == b"one-and-a-half"
    for delivery in (first, second):
        delivery.ack()
    assert transport.size(queue) == 0  # "sixty" still waits in the broker
    transport.delete(queue)  # this transport knows its delay queue: it goes too


def test_delay_buckets_round_up_never_early() -> None:
    assert delay_bucket(0.001) == 10
    assert delay_bucket(1.0) == 1000
    assert delay_bucket(1.0001) == 1010
    assert delay_bucket(99.999) == 100_000
    assert delay_bucket(3600.0) == 3_600_000
    assert delay_bucket(3601.5) == 3_610_000  # three significant digits: at most 1% late
    assert delay_bucket(MAX_DELAY) + DELAY_QUEUE_GRACE_MS <= 2**32 - 1  # RabbitMQ's TTL limit
    with pytest.raises(Unsupported, match="49 days"):
        delay_bucket(MAX_DELAY + 1)


def test_delete_removes_delay_queues(
    make: Make, queue: str, rabbitmqctl: Callable[..., str]
) -> None:
    transport = make()
    transport.publish(queue, Message(b"later"), delay=30.0)
    delay_queue = f"conveyor.delay.{queue}.30000"
    assert delay_queue in queue_names(rabbitmqctl)
    transport.delete(queue)
    names = queue_names(rabbitmqctl)
    assert delay_queue not in names
    assert queue not in names
    assert f"conveyor.dlq.{queue}" not in names


# -- delivery counts ---------------------------------------------------------------


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_redeliveries_after_consumers_die_are_counted(
    make: Make, queue: str, queue_type: str
) -> None:
    """A closed consumer's message comes back counted; past max_deliveries it is dead."""
    make(queue_type=queue_type).publish(queue, Message(b"crashy"))
    counts = []
    for _ in range(2):
        consumer = make(max_deliveries=2, queue_type=queue_type)
        counts.append(fetch_one(consumer, queue).delivery_count)
        consumer.close()  # dies holding it
    assert counts == [1, 2]
    survivor = make(max_deliveries=2, queue_type=queue_type)
    assert survivor.fetch(queue, timeout=1.5) == []
    (dead,) = survivor.dead_letters(queue)
    assert dead.reason == MAX_DELIVERIES_REASON
    assert dead.message.body == b"crashy"
    assert dead.delivery_count == 2


def test_quorum_delivery_counts(make: Make, amqp_url: str, queue: str) -> None:
    url = str(parse_url(amqp_url).with_query(queue_type="quorum").unredacted())
    transport = make(url)
    assert not transport.capabilities.priorities
    transport.publish(queue, Message(b"q"))
    first = fetch_one(transport, queue)
    assert first.delivery_count == 1
    first.nack(requeue=True)
    second = fetch_one(transport, queue)
    assert second.delivery_count == 2
    transport.close()  # returned by the broker: quorum counts it in x-delivery-count
    again = make(url)
    third = fetch_one(again, queue)
    assert third.delivery_count == 3
    third.ack()
    assert again.fetch(queue, timeout=0.5) == []


# -- connections ---------------------------------------------------------------------


def held_across_a_broker_close(
    make: Make, queue: str, rabbitmqctl: Callable[..., str]
) -> tuple[AMQPTransport, Producer, Delivery]:
    """A transport and its producer, and the message b"before" that the transport held when
    the broker closed both its connections."""
    name = f"conveyor-test-{uuid.uuid4().hex[:8]}"
    transport = make(connection_name=name)
    producer = Producer(transport, Backoff(budget=20))
    producer.publish(queue, Message(b"before"))
    held = fetch_one(transport, queue)
    pids = connection_pids(rabbitmqctl, name)
    assert len(pids) == 2  # publish and consume
    for pid in pids:
        rabbitmqctl("close_connection", pid, "closed by test_amqp_specific")
    assert wait_until(lambda: not transport._links["consume"].alive, 10)  # type: ignore[union-attr]
    return transport, producer, held


def test_recovers_when_its_connection_is_closed_by_the_broker(
    make: Make, queue: str, rabbitmqctl: Callable[..., str]
) -> None:
    transport, producer, held = held_across_a_broker_close(make, queue, rabbitmqctl)
    with pytest.raises(LeaseLost):
        held.ack()  # its channel is gone: never sent on a new one
    producer.publish(queue, Message(b"after"))
    got = [fetch_one(transport, queue), fetch_one(transport, queue)]
    assert sorted(d.message.body for d in got) == [b"after", b"before"]
    assert {d.message.body: d.delivery_count for d in got}[b"before"] == 2
    for delivery in got:
        delivery.ack()
    assert transport.fetch(queue, timeout=0.5) == []


def test_ack_many_acks_the_live_and_names_those_whose_channel_is_gone(
    make: Make, queue: str, rabbitmqctl: Callable[..., str]
) -> None:
    transport, producer, stale = held_across_a_broker_close(make, queue, rabbitmqctl)
    producer.publish(queue, Message(b"after"))
    got = {d.message.body: d for d in (fetch_one(transport, queue), fetch_one(transport, queue))}
    assert sorted(got) == [b"after", b"before"]
    with pytest.raises(LeaseLost) as info:
        transport.ack_many([stale, got[b"after"]])
    assert stale.message.id in str(info.value)
    assert got[b"after"].message.id not in str(info.value)
    assert stale.settled and got[b"after"].settled
    got[b"before"].ack()
    transport.close()  # what was not acked would come back now
    assert make().fetch(queue, timeout=1.0) == []


def test_cut_mid_publish_raises_connection_lost_and_retry_keeps_ids(
    make: Make, amqp_url: str, queue: str
) -> None:
    with proxy_in_front_of(amqp_url) as (proxy, through):
        proxied = make(through.unredacted())
        proxied.size(queue)  # connected before the clock starts
        sent = [Message(b"x" * 512) for _ in range(20_000)]
        errors: list[BaseException] = []

        def publish() -> None:
            try:
                proxied.publish_many(queue, sent)
            except BaseException as exc:
                errors.append(exc)

        checker = make()
        thread = threading.Thread(target=publish)
        thread.start()
        assert wait_until(lambda: checker.size(queue) > 0 or not thread.is_alive(), 10)
        assert proxy.cut() > 0
        thread.join(30)
        assert len(errors) == 1 and isinstance(errors[0], ConnectionLost), errors
        Producer(proxied, Backoff(budget=20)).publish_many(queue, sent)  # the same ids again
    reader = make()
    ids = set()
    deadline = time.monotonic() + 60  # every id, however slowly a loaded machine hands them out
    while len(ids) < len(sent) and time.monotonic() < deadline:
        batch = reader.fetch(queue, max_messages=1000, timeout=2.0)
        ids.update(d.message.id for d in batch)
        reader.ack_many(batch)
    assert ids == {m.id for m in sent}, f"only {len(ids)} of {len(sent)} ids arrived"


def test_failover_to_the_next_host(make: Make, amqp_url: str, queue: str) -> None:
    url = parse_url(amqp_url)
    assert url.host is not None
    with_dead_first = str(url).replace("***", url.password or "")
    first = f"127.0.0.1:1;{url.host}"
    transport = make(with_dead_first.replace(str(url.host), first, 1))
    transport.publish(queue, Message(b"failover"))
    fetch_one(transport, queue).ack()


def test_vhost_from_the_url_path() -> None:
    def vhost(text: str) -> str:
        transport = create_transport(text)
        return str(transport._parameters("publish")[0].virtual_host)

    assert vhost("amqp://127.0.0.1//") == "/"
    assert vhost("amqp://127.0.0.1") == "/"
    assert vhost("amqp://127.0.0.1/sales") == "sales"
    assert vhost("amqp://127.0.0.1/%2Fx") == "/x"


def test_close_returns_unacked_at_once(make: Make, queue: str) -> None:
    holder, other = make(), make()
    holder.publish(queue, Message(b"held"))
    held = fetch_one(holder, queue)
    holder.close()
    back = fetch_one(other, queue, timeout=2.0)
    assert back.message.body == b"held"
    back.ack()
    with pytest.raises(LeaseLost):
        held.ack()


# -- encoding ------------------------------------------------------------------------


def test_properties_beyond_amqp_limits_round_trip(make: Make, queue: str) -> None:
    transport = make()
    message = Message(
        b"",
        headers={"x-custom": "kept", "deep": {"a": [1.5, None, True]}},
        content_type="application/" + "x" * 300,
        correlation_id="é" * 200,  # 400 bytes: over AMQP's short string
        priority=300,
        timestamp=12.345,
    )
    transport.publish(queue, message)
    got = fetch_one(transport, queue)
    assert got.message == message
    got.ack()


def test_foreign_messages_are_read_from_native_properties(make: Make, queue: str) -> None:
    transport = make()
    assert transport.size(queue) == 0  # declares the queue
    params = transport._parameters("foreign-producer")[0]
    with contextlib.closing(pika.BlockingConnection(params)) as connection:
        channel = connection.channel()
        properties = pika.BasicProperties(
            message_id="foreign-1", content_type="text/plain", headers={"k": b"v", "n": 3}
        )
        channel.basic_publish("", queue, b"hello", properties)
    got = fetch_one(transport, queue)
    assert got.message.id == "foreign-1"
    assert got.message.headers == {"k": "v", "n": 3}
    assert got.message.content_type == "text/plain"
    assert got.message.content_encoding == "utf-8"  # text without an encoding
    got.ack()


def test_encode_keeps_bookkeeping_out_of_message_headers() -> None:
    message = Message(b"x", headers={"user": 1})
    properties, _ = codec.encode(message, previous=2, dead=("why", 5.0))
    assert codec.previous_deliveries(properties) == 2
    assert codec.dead_letter_info(properties) == ("why", 5.0)
    assert codec.decode(properties, b"x") == message


# -- a broker in a memory alarm (our own node: the shared one is never touched) --------------


OPENSSL = "/usr/bin/openssl"


class OwnRabbitMQ:
    """A RabbitMQ node of our own (config(port, workdir) -> rabbitmq.conf).

    It has its own node name, ports and directory; it is stopped, or killed and started
    again on the same data, through its own process group only.
    """

    def __init__(self, config: Callable[[int, Path], str], scheme: str = "amqp") -> None:
        if not Path(RABBITMQ_SERVER).exists():
            missing("rabbitmq-server is not installed")
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="conveyor-rabbitmq-"))
        self.command = rabbitmq_command(self.port, self.workdir, config(self.port, self.workdir))
        self.url = f"{scheme}://guest:guest@127.0.0.1:{self.port}//"
        self.server: LocalServer | None = None

    def start(self) -> None:
        with open(self.workdir / "server.log", "ab") as log:
            process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        self.server = LocalServer("amqp", self.url, self.port, process, self.workdir)
        if not wait_until(lambda: port_open("127.0.0.1", self.port), 90, interval=0.25):
            missing("a private rabbitmq-server did not start within 90 s")

    def kill(self) -> None:
        """SIGKILL the node (a crash), keeping its data for `start`."""
        assert self.server is not None
        self.server.kill()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@contextlib.contextmanager
def private_rabbitmq(config: Callable[[int, Path], str], scheme: str = "amqp") -> Iterator[str]:
    node = OwnRabbitMQ(config, scheme)
    try:
        node.start()
        yield node.url
    finally:
        node.stop()


@pytest.fixture
def alarmed_broker_url() -> Iterator[str]:
    """A private node whose memory watermark (1 byte) keeps publishers blocked."""
    with private_rabbitmq(
        lambda port, _dir: (
            f"listeners.tcp.1 = 127.0.0.1:{port}\nvm_memory_high_watermark.absolute = 1\n"
        )
    ) as url:
        yield url


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_broker() -> Iterator[tuple[str, Path]]:
    """A private node that speaks only TLS, with a self-signed certificate for 127.0.0.1."""
    if not Path(OPENSSL).exists():
        missing("openssl is not installed")
    made: list[Path] = []

    def config(port: int, workdir: Path) -> str:
        cert, key = self_signed_certificate(workdir)
        made.append(cert)
        return (
            "listeners.tcp = none\n"
            f"listeners.ssl.1 = 127.0.0.1:{port}\n"
            f"ssl_options.cacertfile = {cert}\n"
            f"ssl_options.certfile = {cert}\n"
            f"ssl_options.keyfile = {key}\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
        )

    with private_rabbitmq(config, scheme="amqps") as url:
        yield url, made[0]


def test_amqps_round_trip_verifies_the_server(make: Make, tls_broker: tuple[str, Path]) -> None:
    url, cert = tls_broker
    transport = make(f"{url}?ssl_ca_certs={cert}")
    transport.publish("tls-queue", Message(b"over tls"))
    got = fetch_one(transport, "tls-queue")
    assert got.message.body == b"over tls"
    got.ack()
    unverified = make(url, connect_timeout=5.0)  # the system CAs do not know this certificate
    with pytest.raises(BrokerUnavailable, match=r"(?i)certificate"):
        unverified.size("tls-queue")


def test_unreadable_tls_files_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="TLS"):
        create_transport("amqps://127.0.0.1//?ssl_ca_certs=/nonexistent/ca.pem")


def test_blocked_connection_makes_publish_raise_in_time(
    make: Make, alarmed_broker_url: str
) -> None:
    transport = make(alarmed_broker_url, blocked_connection_timeout=2.0)
    assert transport.size("blocked") == 0  # connected; only publishing is blocked
    started = time.monotonic()
    with pytest.raises(ConnectionLost, match="blocked"):
        transport.publish("blocked", Message(b"stuck"))
    assert time.monotonic() - started < 6.0


# -- ack coalescing --------------------------------------------------------------------


class RecordingChannel:
    def __init__(self) -> None:
        self.frames: list[tuple[str, int, bool]] = []

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.frames.append(("ack", delivery_tag, multiple))

    def basic_nack(self, delivery_tag: int, requeue: bool = True) -> None:
        self.frames.append(("nack", delivery_tag, False))


def test_coalesced_acks_never_cover_held_or_reuse_settled_tags() -> None:
    channel = RecordingChannel()
    unacked = Unacked(channel)  # type: ignore[arg-type]
    for tag in range(1, 8):
        unacked.delivered(tag)
    unacked.ack([2, 3])  # 1 is held: each alone
    unacked.requeue([5])
    unacked.ack([1])  # 1..3 settled now, but 2 and 3 were acked already
    unacked.ack([4, 6])  # 4..6 settled; 5 was requeued, so 6 is the tag
    unacked.ack([7])
    assert channel.frames == [
        ("ack", 2, False),
        ("ack", 3, False),
        ("nack", 5, False),
        ("ack", 1, True),
        ("ack", 6, True),
        ("ack", 7, True),
    ]


def test_out_of_order_acks_keep_the_channel(make: Make, queue: str) -> None:
    transport = make()
    transport.publish_many(queue, [Message(b"%d" % i) for i in range(4)])
    held: list[Delivery] = []
    while len(held) < 4:
        held += transport.fetch(queue, max_messages=4 - len(held), timeout=2.0)
    channel = held[0].tag.channel
    for index in (1, 2, 0, 3):  # 1 and 2 alone behind 0, then 0, then 3
        held[index].ack()
    transport.publish(queue, Message(b"next"))
    (after,) = transport.fetch(queue, timeout=5.0)
    assert after.message.body == b"next"
    assert after.tag.channel is channel  # the broker did not close it over a bad tag
    after.ack()
    assert make().fetch(queue, timeout=1.0) == []


def test_a_damaged_meta_header_is_read_like_a_foreign_message() -> None:
    properties, _ = codec.encode(Message(b"x", id="abc", headers={"k": 1}))
    properties.headers[codec.META] = "{not json"
    message = codec.decode(properties, b"x")
    assert message.id == "abc"
    assert message.body == b"x"
    assert message.headers == {}  # conveyor's bookkeeping never reaches Message.headers


def test_a_forked_child_connects_afresh_and_leaves_the_parent_alone(make: Make, queue: str) -> None:
    transport = make()
    transport.publish(queue, Message(b"from parent"))
    held = fetch_one(transport, queue)
    pid = os.fork()
    if pid == 0:  # the child: publish through its own connections, then leave at once
        code = 1
        try:
            transport.publish(queue, Message(b"from child"))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    held.ack()  # the parent's connections survived the child
    child = fetch_one(transport, queue)
    assert child.message.body == b"from child"
    child.ack()


def test_a_failed_internal_republish_gives_the_batch_back(
    make: Make, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting a redelivery republishes it; if that fails, nothing stays stuck unacked."""
    make().publish_many(queue, [Message(b"a"), Message(b"b")])
    first = make()
    held: list[Delivery] = []
    while len(held) < 2:
        held += first.fetch(queue, max_messages=2, timeout=2.0)
    first.close()  # both come back flagged as redelivered
    second = make()

    def outage(*_args: object) -> None:
        raise ConnectionLost("publish link down (simulated)")

    monkeypatch.setattr(second, "_publish", outage)
    with pytest.raises(ConnectionLost):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            second.fetch(queue, max_messages=2, timeout=1.0)
    monkeypatch.undo()
    back: list[Delivery] = []
    while len(back) < 2:
        got = second.fetch(queue, max_messages=2, timeout=5.0)
        assert got, "the batch was not given back"
        back += got
    assert sorted(d.message.body for d in back) == [b"a", b"b"]
    assert all(d.delivery_count == 2 for d in back)
    second.ack_many(back)


def test_an_unknown_vhost_is_refused_access_not_unreachable(make: Make, amqp_url: str) -> None:
    url = replace(parse_url(amqp_url), path="/conveyor-no-such-vhost")
    with pytest.raises(AuthenticationFailed, match="virtual host") as info:
        make(url.unredacted(), connect_timeout=2.0).size("anything")
    assert url.password is None or url.password not in str(info.value)


def test_close_ends_a_blocked_fetch_without_reconnecting(
    make: Make, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = make()
    assert transport.fetch(queue, timeout=0.1) == []
    inbox = transport._inbox
    take, waiting = inbox.take, threading.Event()

    def take_and_tell(consumer_tag: str, max_messages: int, deadline: float) -> list[Raw]:
        if deadline > time.monotonic():
            waiting.set()  # about to wait for the broker
        return take(consumer_tag, max_messages, deadline)

    monkeypatch.setattr(inbox, "take", take_and_tell)
    result: list[list[Delivery]] = []
    thread = threading.Thread(target=lambda: result.append(transport.fetch(queue, timeout=10)))
    thread.start()
    assert waiting.wait(5)
    started = time.monotonic()
    transport.close()
    thread.join(5)
    assert result == [[]]
    assert time.monotonic() - started < 3
    assert all(link is None for link in transport._links.values())


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_close_puts_back_untaken_deliveries_uncounted(
    make: Make, queue: str, queue_type: str
) -> None:
    """Pushed by the broker but never taken by a caller: not a delivery, so not counted."""
    make(queue_type=queue_type).publish_many(queue, [Message(b"a"), Message(b"b")])
    worker = make(queue_type=queue_type)
    (first,) = worker.fetch(queue, max_messages=1, timeout=5.0)
    first.ack()  # the fetch's consumer was cancelled before: nothing more is pushed
    assert not wait_until(lambda: worker._inbox.consumer_tags() != [], 0.5)
    assert worker.size(queue) == 1
    worker.close()
    (again,) = make(queue_type=queue_type).fetch(queue, timeout=5.0)
    assert again.message.body == b"b"
    assert again.delivery_count == 1
    again.ack()


def test_delayed_publish_after_another_transport_deleted_the_queue(
    make: Make, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cached route back from a delay queue is renewed: nothing expires into nowhere."""
    monkeypatch.setattr(topology, "DELAY_QUEUE_REFRESH", 0.0)  # renew on every publish
    publisher, other = make(), make()
    publisher.publish(queue, Message(b"first"), delay=0.2)
    fetch_one(publisher, queue).ack()
    other.delete(queue)  # takes the due exchange with it
    publisher.publish(queue, Message(b"second"), delay=0.2)
    assert fetch_one(publisher, queue, timeout=5.0).message.body == b"second"


def test_publish_after_another_transport_deleted_the_queue(make: Make, queue: str) -> None:
    """A cached declaration is stale: the broker returns the message (mandatory) and the
    transport redeclares and sends it again, instead of a confirmed loss."""
    publisher, other = make(), make()
    publisher.publish(queue, Message(b"first"))
    other.delete(queue)
    publisher.publish(queue, Message(b"second"))
    assert fetch_one(other, queue).message.body == b"second"


def test_confirmed_messages_survive_a_broker_crash(make: Make) -> None:
    """Durable queue, persistent messages, confirms: a SIGKILLed broker loses nothing it
    confirmed, and the same transport carries on once the broker is back."""
    node = OwnRabbitMQ(lambda port, _dir: f"listeners.tcp.1 = 127.0.0.1:{port}\n")
    try:
        node.start()
        transport = make(node.url)
        sent = [Message(b"%d" % i) for i in range(200)]
        transport.publish_many("durable", sent)
        transport.publish("durable", Message(b"delayed"), delay=1.0)
        node.kill()
        node.start()
        producer = Producer(transport, Backoff(budget=30))
        producer.publish("durable", Message(b"after"))
        got: list[Delivery] = []
        deadline = time.monotonic() + 30
        while len(got) < 202 and time.monotonic() < deadline:
            with contextlib.suppress(BrokerUnavailable):
                got += transport.fetch("durable", max_messages=100, timeout=1.0)
        bodies = [d.message.body for d in got]
        # The delayed one may come due during recovery, so it can land anywhere.
        assert [b for b in bodies if b not in (b"after", b"delayed")] == [m.body for m in sent]
        assert len(bodies) == 202 and {b"after", b"delayed"} <= set(bodies)
        transport.ack_many(got)
    finally:
        node.stop()


def test_broadcast_channels_are_isolated(make: Make) -> None:
    tag = uuid.uuid4().hex[:8]
    transport = make()
    mine, other = make().subscribe(f"ctl.{tag}"), make().subscribe(f"ctl.{tag}.other")
    try:
        transport.broadcast(f"ctl.{tag}", Message(b"for mine"))
        got = mine.get(timeout=5.0)
        assert got is not None and got.body == b"for mine"
        assert other.get(timeout=0.3) is None
    finally:
        mine.close()
        other.close()


def test_a_subscription_whose_connection_is_closed_raises(
    make: Make, rabbitmqctl: Callable[..., str]
) -> None:
    """The worker's control loop resubscribes on a conveyor error; silence would be forever."""
    name = f"conveyor-test-{uuid.uuid4().hex[:8]}"
    subscription = make(connection_name=name).subscribe(f"ctl-{name}")
    try:
        (pid,) = connection_pids(rabbitmqctl, name)
        rabbitmqctl("close_connection", pid, "closed by test_amqp_specific")
        with pytest.raises(ConnectionLost):
            subscription.get(timeout=10.0)
    finally:
        subscription.close()


# -- dead letters across processes ---------------------------------------------------------


def _exit_right_after(amqp_url: str, name: str, call: str) -> str:
    """Run `transport.<call>` in a child that leaves with os._exit as soon as it returns,
    as a CLI command may; the broker returns whatever the child still held unsettled."""
    code = (
        "import os, sys\n"
        "from conveyor.core.registry import create_transport\n"
        f"transport = create_transport({amqp_url!r}, connection_name={name!r})\n"
        f"print(transport.{call}, flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_dead_letters_browsed_and_replayed_by_exiting_processes_move_once(
    make: Make, amqp_url: str, queue: str, rabbitmqctl: Callable[..., str]
) -> None:
    """`conveyor dead list`, `queues`, then `dead replay`, each its own short-lived process:
    the replay's ack of the original used to be handed to the I/O thread and lost on exit,
    so the original came back next to its replayed copy."""
    transport = make()
    transport.publish_many(queue, [Message(b"%d" % i) for i in range(3)])
    ids: set[str] = set()
    for _ in range(3):
        delivery = fetch_one(transport, queue)
        delivery.nack(requeue=False, reason="test")
        ids.add(delivery.message.id)
    name = f"conveyor-test-{uuid.uuid4().hex[:8]}"
    listed = _exit_right_after(amqp_url, name, f"dead_letters({queue!r})")
    assert listed.count("DeadLetter(") == 3
    assert _exit_right_after(amqp_url, name, f"replay_dead_letters({queue!r})") == "3"
    assert wait_until(lambda: not connection_pids(rabbitmqctl, f"{name}:"), 10)
    assert transport.dead_letters(queue) == [], "an original came back to the dead letters"
    replayed = [fetch_one(transport, queue) for _ in range(3)]
    assert {d.message.id for d in replayed} == ids
    assert transport.fetch(queue, timeout=0.5) == []


def test_a_batch_larger_than_the_socket_buffer_arrives_whole_and_in_order(
    make: Make, queue: str
) -> None:
    """A batch is written as one buffer (amqp_link); the socket takes it in parts."""
    transport = make()
    bodies = [os.urandom(64 * 1024) for _ in range(300)]  # ~19 MB, far beyond a send buffer
    transport.publish_many(queue, [Message(body=body) for body in bodies])
    assert transport.size(queue) == len(bodies)
    received = []
    while len(received) < len(bodies):
        delivery = fetch_one(transport, queue)
        received.append(delivery.message.body)
        delivery.ack()
    assert received == bodies
