"""ZooKeeper-only behaviour: session-bound leases, watches, digest ACLs, the size cap, faults.

Every test works under its own root path (a fresh chroot) on the shared server given by the
`zookeeper_url` fixture, and removes it afterwards. The server is never stopped or
flushed; lost sessions come from a paused consumer process or the standard expiry trick.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from conveyor.core.envelope import packed_size
from conveyor.core.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    InvalidURL,
    LeaseLost,
    MessageTooLarge,
)
from conveyor.core.message import Delivery, Message
from conveyor.core.registry import create_transport
from conveyor.core.url import URL, Host, parse_url
from conveyor.testing.frozen import frozen_consumer
from conveyor.testing.suite_support import closing_builder
from conveyor.testing.waiting import wait_until
from conveyor.transports.base import MAX_DELIVERIES_REASON
from conveyor.transports.zookeeper.transport import (
    MAX_MESSAGE_SIZE,
    ZooKeeperTransport,
)

LEASE = 2.0
USER, PASSWORD = "conveyor", "zk-s3cret"
MakeTransport = Callable[..., ZooKeeperTransport]


def _hosts(url: URL) -> str:
    return ",".join(str(h) for h in url.hosts)


def _raw_client(url: URL, credentials: str | None = None) -> KazooClient:
    auth = [("digest", credentials)] if credentials else None
    client = KazooClient(_hosts(url), auth_data=auth)
    client.start(timeout=10)
    return client


@pytest.fixture
def base_url(zookeeper_url: str) -> Iterator[URL]:
    """The shared server under a fresh root path, removed after the test."""
    url = replace(parse_url(zookeeper_url), path=f"/conveyor-zk-test-{uuid.uuid4().hex[:10]}")
    yield url
    client = _raw_client(url, f"{USER}:{PASSWORD}")
    try:
        client.delete(url.path, recursive=True)
    finally:
        client.stop()
        client.close()


@pytest.fixture
def make_transport(base_url: URL) -> Iterator[MakeTransport]:
    defaults = {"lease_timeout": LEASE, "max_deliveries": 3}
    with closing_builder(create_transport, ZooKeeperTransport, base_url, **defaults) as make:
        yield make


@pytest.fixture
def queue() -> str:
    return f"zk-{uuid.uuid4().hex[:12]}"


def fetch_one(transport: ZooKeeperTransport, queue: str, timeout: float = 10.0) -> Delivery:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = transport.fetch(queue, timeout=max(0.05, deadline - time.monotonic()))
        if got:
            (delivery,) = got
            return delivery
    raise AssertionError(f"nothing arrived on {queue!r} within {timeout} s")


# -- leases are sessions ---------------------------------------------------------------


def test_a_paused_consumer_loses_its_session_and_its_late_ack_is_refused(
    make_transport: MakeTransport, base_url: URL, queue: str
) -> None:
    """A consumer frozen past the session timeout (SIGSTOP: a GC pause, a stalled VM) loses
    the message to another consumer, count raised; when it wakes, its ack is refused."""
    other = make_transport()
    other.publish(queue, Message(b"work"))
    with frozen_consumer(base_url, queue, LEASE) as child:
        assert child.held == 1
        again = fetch_one(other, queue, timeout=LEASE + 5)
        assert time.monotonic() - child.frozen_at < LEASE + 3
        assert again.delivery_count == 2
        assert child.wake_and_ack() == "LeaseLost"
        again.ack()
        assert other.fetch(queue, timeout=0.5) == []


def _expire_session(transport: ZooKeeperTransport, base_url: URL) -> None:
    """The standard trick: a second client joins the session and closes it; wait until
    the transport has a new session."""
    client_id = transport._session.client.client_id
    assert client_id is not None
    intruder = KazooClient(_hosts(base_url), client_id=client_id)
    intruder.start(timeout=10)
    intruder.stop()
    intruder.close()
    assert wait_until(lambda: transport._session.session_id() not in (None, client_id[0]), 10)


def test_expired_session_refuses_the_late_ack_and_the_consumer_carries_on(
    make_transport: MakeTransport, base_url: URL, queue: str
) -> None:
    """The server expires the consumer's session; the consumer reconnects with a new one."""
    consumer = make_transport()
    consumer.publish(queue, Message(b"work"))
    held = fetch_one(consumer, queue)
    _expire_session(consumer, base_url)
    with pytest.raises(LeaseLost):
        held.ack()
    again = fetch_one(consumer, queue)
    assert again.message == held.message
    assert again.delivery_count == 2
    again.ack()


def test_closing_a_consumer_returns_its_messages_at_once(
    make_transport: MakeTransport, queue: str
) -> None:
    holder, other = make_transport(), make_transport()
    holder.publish_many(queue, [Message(b"a"), Message(b"b")])
    held = holder.fetch(queue, max_messages=2, timeout=5)
    assert len(held) == 2
    assert other.fetch(queue, timeout=0.3) == []
    holder.close()  # ends the session: the ephemeral locks go now, not after the timeout
    closed_at = time.monotonic()
    back = other.fetch(queue, max_messages=2, timeout=LEASE)
    assert time.monotonic() - closed_at < 1.0
    assert sorted(d.message.body for d in back) == [b"a", b"b"]
    assert all(d.delivery_count == 2 for d in back)
    with pytest.raises(LeaseLost):
        held[0].ack()


def test_ack_many_acks_the_held_and_names_the_lost(
    make_transport: MakeTransport, queue: str
) -> None:
    first, second = make_transport(), make_transport()
    first.publish_many(queue, [Message(b"a"), Message(b"b"), Message(b"c")])
    held = first.fetch(queue, max_messages=3, timeout=5)
    assert len(held) == 3
    stale = held[2]
    first.nack(stale, requeue=True, delay=0.0, reason="")  # behind its back: no longer held
    taken = fetch_one(second, queue)
    with pytest.raises(LeaseLost) as info:
        first.ack_many(held)
    assert stale.message.id in str(info.value)
    assert all(d.settled for d in held)
    taken.ack()
    assert second.fetch(queue, timeout=0.5) == []
    assert second.size(queue) == 0


def test_a_message_past_max_deliveries_held_by_a_dead_consumer_is_dead_lettered(
    make_transport: MakeTransport, queue: str
) -> None:
    first = make_transport(max_deliveries=1)
    first.publish(queue, Message(b"fatal"))
    assert fetch_one(first, queue).delivery_count == 1
    first.close()
    other = make_transport(max_deliveries=1)
    assert other.fetch(queue, timeout=1.0) == []
    (dead,) = other.dead_letters(queue)
    assert dead.message.body == b"fatal"
    assert dead.reason == MAX_DELIVERIES_REASON
    assert dead.delivery_count == 1


def test_nack_with_delay_keeps_the_count(make_transport: MakeTransport, queue: str) -> None:
    transport = make_transport(max_deliveries=5)
    transport.publish(queue, Message(b"retry"))
    for expected in (1, 2, 3):
        delivery = fetch_one(transport, queue)
        assert delivery.delivery_count == expected
        delivery.nack(requeue=True, delay=0.2)
    fetch_one(transport, queue).ack()


def test_a_requeued_message_comes_back_while_the_consumer_drains_a_backlog(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = make_transport()
    transport.publish_many(queue, [Message(f"m{i}".encode()) for i in range(50)])
    first = fetch_one(transport, queue)
    first.nack(requeue=True)
    counts: dict[bytes, int] = {}
    deadline = time.monotonic() + 10
    while len(counts) < 50 and time.monotonic() < deadline:
        batch = transport.fetch(queue, max_messages=7, timeout=1.0)
        counts.update((d.message.body, d.delivery_count) for d in batch)
        transport.ack_many(batch)
    assert len(counts) == 50
    assert counts[first.message.body] == 2
    assert transport.size(queue) == 0


# -- watches, not polling ---------------------------------------------------------------


def test_a_publish_wakes_an_idle_consumer_quickly(
    make_transport: MakeTransport, queue: str
) -> None:
    consumer, producer = make_transport(), make_transport()
    consumer.fetch(queue, timeout=0.1)  # connected and watching
    arrived: list[float] = []

    def wait_for_it() -> None:
        got = consumer.fetch(queue, timeout=10.0)
        arrived.append(time.monotonic())
        for delivery in got:
            delivery.ack()

    thread = threading.Thread(target=wait_for_it)
    thread.start()
    time.sleep(0.5)  # let the consumer settle into its wait; the bound below is what counts
    cpu = time.process_time()
    sent_at = time.monotonic()
    producer.publish(queue, Message(b"wake up"))
    thread.join(10)
    assert arrived and arrived[0] - sent_at < 0.5
    assert time.process_time() - cpu < 0.5


def test_an_idle_consumer_waits_for_the_earliest_due_time(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = make_transport()
    transport.publish(queue, Message(b"late"), delay=3.0)
    transport.publish(queue, Message(b"soon", priority=1), delay=1.0)
    transport.publish(queue, Message(b"first"))
    assert fetch_one(transport, queue, timeout=1.0).message.body == b"first"
    started = time.monotonic()
    cpu = time.process_time()
    soon = fetch_one(transport, queue, timeout=5.0)
    assert soon.message.body == b"soon"
    assert 0.8 <= time.monotonic() - started <= 1.6
    assert time.process_time() - cpu < 0.2
    assert fetch_one(transport, queue, timeout=5.0).message.body == b"late"


# -- broadcast ------------------------------------------------------------------------


def test_broadcast_skips_and_clears_the_inbox_of_a_dead_subscriber(
    make_transport: MakeTransport, base_url: URL
) -> None:
    channel = f"bc-{uuid.uuid4().hex[:8]}"
    live = make_transport().subscribe(channel)
    doomed_transport = make_transport()
    doomed_transport.subscribe(channel)
    doomed_transport.close()  # dies without unsubscribing: its inbox stays behind
    sender = make_transport()
    sender.broadcast(channel, Message(b"one"))
    assert (message := live.get(timeout=5)) is not None and message.body == b"one"
    assert live.get(timeout=0.2) is None
    raw = _raw_client(base_url)
    try:
        assert len(raw.get_children(f"{base_url.path}/channels/{channel}/i")) == 1
    finally:
        raw.stop()
        raw.close()
    live.close()
    sender.broadcast(channel, Message(b"to nobody"))


def test_a_subscription_outlives_its_session(make_transport: MakeTransport, base_url: URL) -> None:
    channel = f"bc-{uuid.uuid4().hex[:8]}"
    subscriber = make_transport()
    subscription = subscriber.subscribe(channel)
    sender = make_transport()
    _expire_session(subscriber, base_url)
    sender.broadcast(channel, Message(b"missed"))  # takes the subscriber for dead: inbox gone
    assert subscription.get(timeout=0.2) is None  # notices the new session, registers again
    sender.broadcast(channel, Message(b"after"))
    assert (message := subscription.get(timeout=5)) is not None and message.body == b"after"
    subscription.close()


# -- digest credentials and ACLs ------------------------------------------------------


def test_credentials_put_digest_acls_on_every_node(
    make_transport: MakeTransport, base_url: URL, queue: str
) -> None:
    authed = make_transport(replace(base_url, username=USER, password=PASSWORD))
    assert not make_transport().capabilities.authenticates  # the class's own stays as it is
    assert authed.capabilities.authenticates
    authed.publish(queue, Message(b"secret"))
    owner = _raw_client(base_url, f"{USER}:{PASSWORD}")
    stranger = _raw_client(base_url)
    try:
        entries = f"{base_url.path}/queues/{queue}/e"
        (entry,) = owner.get_children(entries)
        for path in (base_url.path, entries, f"{entries}/{entry}"):
            acls, _ = owner.get_acls(path)
            assert [(a.id.scheme, a.id.id.split(":")[0]) for a in acls] == [("digest", USER)]
        with pytest.raises(NoAuthError):
            stranger.get(f"{entries}/{entry}")
    finally:
        for client in (owner, stranger):
            client.stop()
            client.close()
    assert fetch_one(authed, queue).message.body == b"secret"


@pytest.mark.parametrize(
    ("username", "password"),
    [("conveyor_wrong_user", "wrong-password"), (USER, "wrong-password"), (None, None)],
)
def test_wrong_or_missing_credentials_are_refused(
    make_transport: MakeTransport,
    base_url: URL,
    queue: str,
    username: str | None,
    password: str | None,
) -> None:
    make_transport(replace(base_url, username=USER, password=PASSWORD)).publish(
        queue, Message(b"x")
    )  # creates the root with the owner's ACL
    intruder = make_transport(replace(base_url, username=username, password=password))
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed) as info:
        intruder.fetch(queue, timeout=0.1)
    assert time.monotonic() - started < 5
    assert "wrong-password" not in str(info.value)


def test_without_credentials_nothing_is_checked(make_transport: MakeTransport) -> None:
    plain = make_transport()
    assert type(plain) is ZooKeeperTransport
    assert not plain.capabilities.authenticates


# -- the size cap ---------------------------------------------------------------------


def _message_of_packed_size(size: int) -> Message:
    """A message whose envelope is exactly `size` bytes."""
    overhead = packed_size(Message(b"", id="fixed", timestamp=1.0))
    return Message(b"z" * (size - overhead), id="fixed", timestamp=1.0)


def test_a_message_at_the_limit_travels_and_one_byte_more_is_refused_before_sending(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = make_transport()
    biggest = _message_of_packed_size(MAX_MESSAGE_SIZE)
    transport.publish(queue, biggest)
    delivery = fetch_one(transport, queue)
    assert delivery.message == biggest
    delivery.nack(requeue=False, reason="r" * 5000)  # the dead letter adds its own header
    (dead,) = transport.dead_letters(queue)
    assert dead.message == biggest
    with pytest.raises(MessageTooLarge):
        transport.publish(queue, _message_of_packed_size(MAX_MESSAGE_SIZE + 1))
    transport.publish(queue, Message(b"still connected"))
    assert fetch_one(transport, queue).message.body == b"still connected"


def test_publish_many_splits_large_batches_and_keeps_order(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = make_transport()
    sent = [Message(bytes([i]) * 400_000) for i in range(5)] + [Message(b"tail")]
    transport.publish_many(queue, sent)
    got = transport.fetch(queue, max_messages=10, timeout=5)
    assert [d.message.id for d in got] == [m.id for m in sent]


# -- connecting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "reason"),
    [(Host("127.0.0.1", 1), "refused"), (Host("nonexistent.invalid", 2181), "unknown host")],
)
def test_unreachable_servers_fail_fast_and_leave_no_threads(
    make_transport: MakeTransport, base_url: URL, host: Host, reason: str
) -> None:
    threads_before = threading.active_count()
    transport = make_transport(replace(base_url, hosts=(host,)), connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        transport.publish("q", Message(b"x"))
    assert time.monotonic() - started < 3
    assert reason in str(info.value).lower()
    assert wait_until(lambda: threading.active_count() <= threads_before, 5)


@pytest.mark.parametrize("path", ["/a//b", "/a/./b", "/zookeeper/x"])
def test_root_paths_zookeeper_refuses_are_invalid_urls(base_url: URL, path: str) -> None:
    with pytest.raises(InvalidURL):
        create_transport(replace(base_url, path=path))


def test_the_queue_folders_are_made_once_not_per_publish(
    make_transport: MakeTransport, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing checks the queue's folders once; after a delete it makes them again."""
    from conveyor.transports.zookeeper import transport as zookeeper

    made: list[str] = []
    original = zookeeper.ensure_queue

    def spy(session: object, paths: object) -> None:
        made.append(queue)
        original(session, paths)  # type: ignore[arg-type]

    monkeypatch.setattr(zookeeper, "ensure_queue", spy)
    transport = make_transport()
    for i in range(5):
        transport.publish(queue, Message(f"m{i}".encode()))
    assert made == [queue]
    transport.delete(queue)
    transport.publish(queue, Message(b"after delete"))
    assert len(made) == 2
    assert fetch_one(transport, queue).message.body == b"after delete"


def test_ready_stops_at_the_limit_and_skips_what_it_must() -> None:
    from conveyor.transports.zookeeper.layout import EntryName
    from conveyor.transports.zookeeper.view import ready

    def entry(sequence: int, due_ms: int = 0) -> EntryName:
        parsed = EntryName.parse(EntryName.prefix(0, due_ms, 0) + f"{sequence:010d}")
        assert parsed is not None
        return parsed

    first, second, far, fourth, fifth = (
        entry(1),
        entry(2),
        entry(3, due_ms=2**62),
        entry(4),
        entry(5),
    )
    entries = sorted([first, second, far, fourth, fifth])  # due order: `far` sorts last
    locked, skip = frozenset({second.name}), {fourth.name}
    assert ready(entries, locked, skip) == [first, fifth]
    assert ready(entries, locked, skip, limit=1) == [first]
    assert ready(entries, frozenset(), None, limit=3) == [first, second, fourth]


def test_a_batch_with_losers_costs_one_more_multi_per_loser(
    make_transport: MakeTransport, base_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items that lose a race come back False, the rest True, and only the losers cost
    extra multis (not one multi per item)."""
    from conveyor.transports.zookeeper import batch as zookeeper_batch

    transport = make_transport()
    session = transport._session
    folder = f"{base_url.path}/batch-{uuid.uuid4().hex[:8]}"
    session.client.ensure_path(folder)
    paths = [f"{folder}/n{i}" for i in range(10)]
    for taken in (paths[2], paths[7]):
        session.client.create(taken)
    multis: list[int] = []
    original = zookeeper_batch._send

    def counting(*args: object) -> object:
        multis.append(1)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(zookeeper_batch, "_send", counting)
    outcome = zookeeper_batch.commit_each(session, paths, lambda tx, path: tx.create(path))
    assert outcome == [i not in (2, 7) for i in range(10)]
    assert len(multis) == 3
    assert sorted(session.client.get_children(folder)) == sorted(p.rsplit("/", 1)[1] for p in paths)
