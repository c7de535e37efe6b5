"""The transport conformance suite: every clause of CONFORMANCE.md (beside it) is one test.

Bind it to a transport by subclassing with a `broker_url` fixture:

    class TestMyBroker(TransportContract):
        @pytest.fixture(scope="class")
        def broker_url(self) -> str:
            return "mybroker://127.0.0.1:1234"

`conveyor conformance --broker URL` runs the same class and prints a table by clause id.
A clause whose capability the transport declares it lacks is reported "n/a: <reason>"
(a pytest skip carrying that text), never a pass.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from conveyor.core.consumer import Consumer
from conveyor.core.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    ConveyorError,
    InvalidQueueName,
    MessageTooLarge,
)
from conveyor.core.message import Delivery, Message
from conveyor.core.names import RULES
from conveyor.core.producer import Producer
from conveyor.core.registry import create_transport
from conveyor.core.retry import Backoff
from conveyor.core.transport import MAX_DELIVERIES_REASON, Transport
from conveyor.core.url import parse_url
from conveyor.testing.proxy import proxy_in_front_of
from conveyor.testing.suite_support import (
    FAULTS,
    WRONG_PASSWORD,
    closing_builder,
    faulty_url,
    not_applicable,
)
from conveyor.testing.waiting import wait_until

LEASE = 2.0
MAX_DELIVERIES = 3
CRASH_SLACK = 3.0  # T17: noticing a dead consumer may take this long past its lease
COUNTING_LEASE = 60.0
"""The lease of T15, which counts deliveries and waits on no lease. A short one would measure
the machine instead: on a loaded 2-core box, renewals queued behind SQLite's one write lock
took up to 2.7 s, past LEASE, and live consumers lost their messages to each other."""
clause = pytest.mark.clause
MakeTransport = Callable[..., Transport]


def fetch_n(transport: Transport, queue: str, n: int, timeout: float = 10.0) -> list[Delivery]:
    """Fetch until `n` deliveries arrived or `timeout` passed."""
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        wait = max(0.05, min(1.0, deadline - time.monotonic()))
        got += transport.fetch(queue, max_messages=n - len(got), timeout=wait)
    return got


def fetch_after_delay(transport: Transport, queue: str, since: float, delay: float) -> Delivery:
    """The one delivery due `delay` s after `since`: none until 0.5 s before, then within 1 s."""
    assert transport.fetch(queue, timeout=delay - 0.5) == []
    (delivery,) = fetch_n(transport, queue, 1, timeout=delay + 1.0)
    arrived = time.monotonic() - since
    assert delay - 0.05 <= arrived <= delay + 1.0, f"arrived after {arrived:.2f} s"
    return delivery


def bodies(deliveries: list[Delivery]) -> list[bytes]:
    return [d.message.body for d in deliveries]


def numbered(n: int, prefix: str = "m") -> list[Message]:
    return [Message(f"{prefix}{i}".encode()) for i in range(n)]


class TransportContract:
    """The contract every transport passes. Subclasses provide the `broker_url` fixture."""

    @pytest.fixture
    def broker_url(self) -> str:
        raise NotImplementedError("bind the suite with a broker_url fixture")

    @pytest.fixture
    def make_transport(self, broker_url: str) -> Iterator[MakeTransport]:
        defaults = {"lease_timeout": LEASE, "max_deliveries": MAX_DELIVERIES}
        with closing_builder(create_transport, Transport, broker_url, **defaults) as make:
            yield make

    @pytest.fixture
    def transport(self, make_transport: MakeTransport) -> Transport:
        return make_transport()

    @pytest.fixture
    def queue(self, transport: Transport) -> Iterator[str]:
        name = f"conformance-{uuid.uuid4().hex[:12]}"
        yield name
        with contextlib.suppress(ConveyorError):
            transport.delete(name)

    # -- T1-T5: moving messages --------------------------------------------------------

    @clause("T1", "Round trip is byte-exact: body, headers, properties")
    def test_round_trip_is_byte_exact(self, transport: Transport, queue: str) -> None:
        sent = [
            Message(b""),
            Message(
                bytes(range(256)) * 4,
                content_type="application/octet-stream",
                content_encoding="binary",
            ),
            Message(
                "héllo wörld ✓ 東京 🚚".encode(),
                headers={
                    "text": "naïve ✓",
                    "int": -7,
                    "float": 1.25,
                    "bool": True,
                    "none": None,
                    "list": [1, "a", None],
                    "nested": {"k": [1, {"x": "y"}]},
                },
                correlation_id="corr-1",
                reply_to="replies",
                timestamp=1700000000.125,
            ),
        ]
        for message in sent:
            transport.publish(queue, message)
        got = fetch_n(transport, queue, len(sent))
        assert [d.message for d in got] == sent
        for delivery in got:
            delivery.ack()

    @clause("T2", "One producer, one consumer: messages arrive in publish order")
    def test_publish_order(self, transport: Transport, queue: str) -> None:
        sent = numbered(30)
        for message in sent:
            transport.publish(queue, message)
        received = []
        for _ in sent:
            (delivery,) = fetch_n(transport, queue, 1)
            received.append(delivery.message.id)
            delivery.ack()
        assert received == [m.id for m in sent]

    @clause("T3", "publish_many of 1,000 messages: all arrive, in order, once")
    def test_publish_many(self, transport: Transport, queue: str) -> None:
        sent = numbered(1000)
        transport.publish_many(queue, sent)
        received: list[str] = []
        deadline = time.monotonic() + 60
        while len(received) < 1000 and time.monotonic() < deadline:
            batch = transport.fetch(queue, max_messages=100, timeout=1.0)
            received += [d.message.id for d in batch]
            for delivery in batch:
                delivery.ack()
        assert received == [m.id for m in sent]
        assert transport.fetch(queue, max_messages=10, timeout=0.5) == []

    @clause("T4", "fetch on an empty queue returns nothing within its timeout and does not spin")
    def test_empty_fetch_is_idle(self, transport: Transport, queue: str) -> None:
        transport.fetch(queue, timeout=0.1)  # connect and declare outside the measurement
        wall, cpu = time.monotonic(), time.process_time()
        for _ in range(2):
            started = time.monotonic()
            assert transport.fetch(queue, max_messages=5, timeout=1.0) == []
            assert time.monotonic() - started <= 1.5
        used = (time.process_time() - cpu) / (time.monotonic() - wall)
        assert used < 0.05, f"an idle fetch used {used:.0%} of a core"

    @clause("T5", "fetch(max=k) never returns more than k")
    def test_fetch_max(self, transport: Transport, queue: str) -> None:
        transport.publish_many(queue, numbered(10))
        for k in (1, 3, 4):
            batch = fetch_n(transport, queue, 1)
            batch += transport.fetch(queue, max_messages=k - 1, timeout=0.2) if k > 1 else []
            assert 1 <= len(batch) <= k
            for delivery in batch:
                delivery.ack()
        for k in (1, 2, 5):
            assert len(transport.fetch(queue, max_messages=k, timeout=1.0)) <= k

    # -- T6-T11: settling -----------------------------------------------------------

    @clause("T6", "ack is final: never comes back, also after the consumer reconnects")
    def test_ack_is_final(self, make_transport: MakeTransport, queue: str) -> None:
        first = make_transport()
        first.publish(queue, Message(b"once"))
        (delivery,) = fetch_n(first, queue, 1)
        delivery.ack()
        first.close()
        again = make_transport()
        assert again.fetch(queue, max_messages=5, timeout=LEASE + 1.0) == []
        assert again.size(queue) == 0

    @clause("T7", "nack(requeue=True) brings it back with the delivery count raised by one")
    def test_nack_requeue_raises_count(self, transport: Transport, queue: str) -> None:
        transport.publish(queue, Message(b"again"))
        (first,) = fetch_n(transport, queue, 1)
        assert first.delivery_count == 1
        first.nack(requeue=True)
        (second,) = fetch_n(transport, queue, 1)
        assert second.message == first.message
        assert second.delivery_count == first.delivery_count + 1
        second.ack()

    @clause("T8", "nack(requeue=True, delay=d): invisible before d, delivered within 1 s after")
    def test_nack_with_delay(self, transport: Transport, queue: str) -> None:
        transport.publish(queue, Message(b"later"))
        (first,) = fetch_n(transport, queue, 1)
        nacked_at = time.monotonic()
        first.nack(requeue=True, delay=2.0)
        second = fetch_after_delay(transport, queue, nacked_at, 2.0)
        assert second.delivery_count == 2
        second.ack()

    @clause("T9", "nack(requeue=False) dead-letters with the reason; body and headers intact")
    def test_nack_dead_letters(self, transport: Transport, queue: str) -> None:
        message = Message(b"\x00poison\xff", headers={"task": "x", "n": [1, 2]})
        transport.publish(queue, message)
        (delivery,) = fetch_n(transport, queue, 1)
        delivery.nack(requeue=False, reason="malformed body")
        dead = transport.dead_letters(queue)
        assert len(dead) == 1
        assert dead[0].message == message
        assert "malformed body" in dead[0].reason
        assert transport.fetch(queue, timeout=0.5) == []

    @clause("T10", "Exceeding max_deliveries dead-letters it with the reason 'max deliveries'")
    def test_max_deliveries(self, transport: Transport, queue: str) -> None:
        transport.publish(queue, Message(b"flaky"))
        counts = []
        for _ in range(MAX_DELIVERIES):
            (delivery,) = fetch_n(transport, queue, 1)
            counts.append(delivery.delivery_count)
            delivery.nack(requeue=True)
        assert counts == list(range(1, MAX_DELIVERIES + 1))
        assert transport.fetch(queue, timeout=0.5) == []
        dead = transport.dead_letters(queue)
        assert [d.message.body for d in dead] == [b"flaky"]
        assert MAX_DELIVERIES_REASON in dead[0].reason

    @clause("T11", "Dead letters can be listed and replayed; a replayed message is delivered again")
    def test_replay_dead_letters(self, transport: Transport, queue: str) -> None:
        transport.publish_many(queue, numbered(3, "dead"))
        for delivery in fetch_n(transport, queue, 3):
            delivery.nack(requeue=False, reason="test")
        dead = transport.dead_letters(queue)
        assert sorted(d.message.body for d in dead) == [b"dead0", b"dead1", b"dead2"]
        chosen = next(d.message for d in dead if d.message.body == b"dead1")
        assert transport.replay_dead_letters(queue, ids=[chosen.id]) == 1
        (replayed,) = fetch_n(transport, queue, 1)
        assert replayed.message == chosen
        replayed.ack()
        # Replay moves, never copies: the replayed one is gone from the dead letters and
        # comes once.
        assert sorted(d.message.body for d in transport.dead_letters(queue)) == [b"dead0", b"dead2"]
        assert transport.replay_dead_letters(queue) == 2
        rest = fetch_n(transport, queue, 2)
        assert sorted(bodies(rest)) == [b"dead0", b"dead2"]
        for delivery in rest:
            delivery.ack()
        assert transport.fetch(queue, max_messages=5, timeout=0.5) == [], "a duplicate came"
        assert transport.dead_letters(queue) == []

    # -- T12-T14: delays and administration -----------------------------------------

    @clause("T12", "publish(delay=d): invisible before d, delivered within 1 s after")
    def test_delayed_publish(self, transport: Transport, queue: str) -> None:
        published = time.monotonic()
        transport.publish(queue, Message(b"delayed"), delay=2.0)
        delivery = fetch_after_delay(transport, queue, published, 2.0)
        assert delivery.delivery_count == 1
        delivery.ack()

    @clause("T13", "Delays are ordered by due time: 1 s published after 5 s arrives first")
    def test_delays_in_due_order(self, transport: Transport, queue: str) -> None:
        published = time.monotonic()
        transport.publish(queue, Message(b"five"), delay=5.0)
        transport.publish(queue, Message(b"one"), delay=1.0)
        (first,) = fetch_n(transport, queue, 1, timeout=3.0)
        assert first.message.body == b"one"
        assert time.monotonic() - published <= 2.0
        first.ack()
        (second,) = fetch_n(transport, queue, 1, timeout=6.0)
        assert second.message.body == b"five"
        assert 5.0 - 0.05 <= time.monotonic() - published <= 6.0
        second.ack()

    @clause("T14", "purge returns the number removed; size counts ready messages")
    def test_purge_and_size(self, transport: Transport, queue: str) -> None:
        assert transport.size(queue) == 0
        transport.publish_many(queue, numbered(7))
        transport.publish(queue, Message(b"delayed"), delay=30.0)
        assert transport.size(queue) == 7
        (held,) = fetch_n(transport, queue, 1)
        assert transport.size(queue) == 6
        assert transport.purge(queue) == 6
        assert transport.size(queue) == 0
        assert transport.fetch(queue, timeout=0.5) == []
        held.ack()

    # -- T15-T19: consumers -----------------------------------------------------------

    @clause("T15", "Competing consumers: 4 consumers, 2,000 messages, each delivered exactly once")
    def test_competing_consumers(self, make_transport: MakeTransport, queue: str) -> None:
        producer = make_transport(lease_timeout=COUNTING_LEASE)
        sent = numbered(2000)
        for start in range(0, 2000, 500):
            producer.publish_many(queue, sent[start : start + 500])
        seen: list[str] = []
        lock = threading.Lock()
        done = threading.Event()
        errors: list[BaseException] = []

        def consume(transport: Transport) -> None:
            try:
                while not done.is_set():
                    batch = transport.fetch(queue, max_messages=10, timeout=0.5)
                    with lock:
                        seen.extend(d.message.id for d in batch)
                        if len(seen) >= 2000:
                            done.set()
                    for delivery in batch:
                        delivery.ack()
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)
                done.set()

        threads = [
            threading.Thread(
                target=consume, args=(make_transport(lease_timeout=COUNTING_LEASE),), daemon=True
            )
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        assert done.wait(120), f"only {len(seen)} of 2000 delivered"
        for thread in threads:
            thread.join(10)
        assert errors == []
        assert len(seen) == len(set(seen)) == 2000
        assert set(seen) == {m.id for m in sent}
        assert producer.fetch(queue, timeout=0.5) == []

    @clause("T16", "Prefetch: a consumer holding its limit receives no more until it acks")
    def test_prefetch_limit(self, transport: Transport, queue: str) -> None:
        transport.publish_many(queue, numbered(6))
        held: list[Delivery] = []
        consumer = Consumer(transport, [queue], held.append, prefetch=3, poll_timeout=0.2)
        thread = consumer.start()
        try:
            assert wait_until(lambda: len(held) == 3, 10)
            assert not wait_until(lambda: len(held) > 3, 1.0)
            assert transport.size(queue) == 3, "the transport took more than was fetched"
            held[0].ack()
            assert wait_until(lambda: len(held) == 4, 10)
            assert not wait_until(lambda: len(held) > 4, 0.5)
            assert transport.size(queue) == 2, "the transport took more than was fetched"
        finally:
            consumer.stop()
            thread.join(5)
        for delivery in held[1:]:
            delivery.ack()
        assert bodies(held) == [b"m0", b"m1", b"m2", b"m3"]

    @clause(
        "T17", "Crash: a SIGKILLed consumer's messages come back within the lease, count raised"
    )
    def test_killed_consumer(self, transport: Transport, broker_url: str, queue: str) -> None:
        if not transport.capabilities.crosses_processes:
            not_applicable("the transport does not share queues across processes")
        transport.publish_many(queue, numbered(3))
        child = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(parse_url(broker_url).unredacted()), queue],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = child.stdout.readline() if child.stdout else ""
            assert line.startswith("held 3"), f"consumer process said {line!r}"
            assert transport.fetch(queue, timeout=0.5) == []
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        killed = time.monotonic()
        back = fetch_n(transport, queue, 3, timeout=3 * LEASE + 5)
        elapsed = time.monotonic() - killed
        assert sorted(bodies(back)) == [b"m0", b"m1", b"m2"], f"after {elapsed:.1f} s"
        assert elapsed <= LEASE + CRASH_SLACK, f"back after {elapsed:.1f} s, lease {LEASE} s"
        assert all(d.delivery_count == 2 for d in back)
        for delivery in back:
            delivery.ack()

    @clause("T18", "Liveness: a live consumer holding a message for 3 x lease keeps it")
    def test_live_consumer_keeps_lease(self, make_transport: MakeTransport, queue: str) -> None:
        holder, other = make_transport(), make_transport()
        holder.publish(queue, Message(b"long task"))
        (held,) = fetch_n(holder, queue, 1)
        deadline = time.monotonic() + 3 * LEASE
        while time.monotonic() < deadline:
            stolen = other.fetch(queue, timeout=0.5)
            assert stolen == [], "a message held by a live consumer was delivered again"
        held.ack()
        assert other.fetch(queue, timeout=LEASE) == []

    @clause("T19", "ack/nack from another thread than the one that fetched")
    def test_settle_from_other_thread(self, make_transport: MakeTransport, queue: str) -> None:
        transport = make_transport()
        transport.publish_many(queue, numbered(2))
        first, second = fetch_n(transport, queue, 2)
        errors: list[BaseException] = []

        def settle() -> None:
            try:
                first.ack()
                second.nack(requeue=True)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=settle)
        thread.start()
        thread.join(10)
        assert errors == []
        (again,) = fetch_n(transport, queue, 1)
        assert again.message == second.message
        assert again.delivery_count == 2
        again.ack()
        # A lost ack returns the message once its lease ends or its connection closes.
        assert transport.fetch(queue, timeout=LEASE + 1.0) == []
        transport.close()  # a connection-bound lease ends here: an unsent ack shows at once
        fresh = make_transport()
        assert fresh.fetch(queue, timeout=1.0) == []
        assert fresh.size(queue) == 0

    # -- T20-T22: refusing bad input ------------------------------------------------

    @clause("T20", "Queue names: the valid grammar works; bad names are refused citing the rule")
    def test_queue_names(self, transport: Transport) -> None:
        tag = uuid.uuid4().hex[:8]
        for name in (f"q{tag}", f"A-b_c.d-{tag}", f"_{tag}", f"9lives{tag}", "x" * 192 + tag):
            try:
                transport.publish(name, Message(name.encode()))
                (delivery,) = fetch_n(transport, name, 1)
                assert delivery.message.body == name.encode()
                delivery.ack()
            finally:
                transport.delete(name)
        bad = [
            "",
            "has space",
            "a/b",
            "a*b",
            "nul\x00",
            "tab\tname",
            "bell\x07",
            "x" * 300,
            "a..b",
            "amq.gen",
            "conveyor.internal",
            ".hidden",
            "-dash",
            "ünïcode",
        ]
        for name in bad:
            for operation in (
                lambda n=name: transport.publish(n, Message(b"x")),
                lambda n=name: transport.fetch(n, timeout=0.1),
                lambda n=name: transport.size(n),
            ):
                with pytest.raises(InvalidQueueName) as info:
                    operation()
                assert any(rule in str(info.value) for rule in RULES)

    @clause("T21", "A message over the size limit raises MessageTooLarge before anything is sent")
    def test_oversized_message(self, transport: Transport, queue: str) -> None:
        limit = transport.capabilities.max_message_size
        with pytest.raises(MessageTooLarge):
            transport.publish(queue, Message(b"x" * (limit + 1)))
        with pytest.raises(MessageTooLarge):
            transport.publish_many(queue, [Message(b"small"), Message(b"x" * (limit + 1))])
        assert transport.size(queue) == 0
        assert transport.fetch(queue, timeout=0.5) == []

    @clause("T22", "Refused port, wrong password and unknown host raise conveyor errors in time")
    @pytest.mark.parametrize("fault", FAULTS)
    def test_bad_connections(
        self, make_transport: MakeTransport, broker_url: str, fault: str
    ) -> None:
        capabilities = create_transport(broker_url).capabilities
        if not capabilities.networked:
            not_applicable("the transport does not connect over a network")
        if fault == "wrong password" and not capabilities.authenticates:
            not_applicable("the server does not check credentials")
        url = faulty_url(broker_url, fault)
        expected = AuthenticationFailed if fault == "wrong password" else BrokerUnavailable
        started = time.monotonic()
        with pytest.raises(expected) as info:
            transport = make_transport(url, connect_timeout=2.0)
            transport.publish("conformance-unreachable", Message(b"x"))
        assert time.monotonic() - started < 15
        assert WRONG_PASSWORD not in str(info.value)

    # -- T23-T26: capabilities ------------------------------------------------------

    @clause("T23", "Priorities: higher priority first among ready messages")
    def test_priorities(self, transport: Transport, queue: str) -> None:
        if not transport.capabilities.priorities:
            not_applicable("the transport does not declare priorities")
        transport.publish_many(queue, [Message(f"low{i}".encode(), priority=1) for i in range(3)])
        transport.publish(queue, Message(b"high", priority=9))
        got = fetch_n(transport, queue, 4)
        assert got[0].message.body == b"high"
        assert bodies(got[1:]) == [b"low0", b"low1", b"low2"]
        for delivery in got:
            delivery.ack()

    @clause("T24", "Broadcast: every live subscriber receives a broadcast message once")
    def test_broadcast(self, transport: Transport, make_transport: MakeTransport) -> None:
        if not transport.capabilities.broadcast:
            not_applicable("the transport does not declare broadcast")
        channel = f"broadcast-{uuid.uuid4().hex[:8]}"
        subscriptions = [make_transport().subscribe(channel) for _ in range(3)]
        try:
            message = Message(b"ping", headers={"cmd": "ping"})
            transport.broadcast(channel, message)
            for subscription in subscriptions:
                assert subscription.get(timeout=5.0) == message
                assert subscription.get(timeout=0.3) is None
        finally:
            for subscription in subscriptions:
                subscription.close()

    @clause("T25", "Queues are isolated; delete removes a queue, its delayed and dead messages")
    def test_isolation_and_delete(self, transport: Transport, queue: str) -> None:
        other = f"{queue}-other"
        try:
            transport.publish(queue, Message(b"mine"))
            transport.publish(other, Message(b"theirs"))
            (mine,) = fetch_n(transport, queue, 1)
            assert mine.message.body == b"mine"
            mine.nack(requeue=False, reason="parked")
            transport.publish(queue, Message(b"soon"), delay=1.0)
            transport.publish(queue, Message(b"ready"))
            transport.delete(queue)
            assert transport.size(queue) == 0
            assert transport.dead_letters(queue) == []
            assert transport.fetch(queue, timeout=2.0) == []
            (theirs,) = fetch_n(transport, other, 1)
            assert theirs.message.body == b"theirs"
            theirs.ack()
        finally:
            transport.delete(other)

    @clause("T26", "Connection cut: consumers and producers carry on; nothing acked is lost")
    def test_connection_cut(
        self, make_transport: MakeTransport, broker_url: str, queue: str
    ) -> None:
        probe = make_transport()
        if not (probe.capabilities.networked and probe.capabilities.connection_cut):
            not_applicable("the transport does not declare surviving cut connections")
        with proxy_in_front_of(broker_url) as (proxy, through):
            proxied = make_transport(through)
            producer = Producer(proxied, Backoff(budget=30))
            sent = numbered(40)
            acked: list[str] = []
            for message in sent[:20]:
                producer.publish(queue, message)
            for delivery in fetch_n(proxied, queue, 10):
                delivery.ack()
                acked.append(delivery.message.id)
            assert proxy.cut() > 0
            for message in sent[20:]:
                producer.publish(queue, message)
            deadline = time.monotonic() + 60
            while len(set(acked)) < 40 and time.monotonic() < deadline:
                try:
                    batch = proxied.fetch(queue, max_messages=10, timeout=1.0)
                    for delivery in batch:
                        delivery.ack()
                        acked.append(delivery.message.id)
                except BrokerUnavailable:
                    time.sleep(0.2)  # reconnecting: the next fetch retries
            assert set(acked) == {m.id for m in sent}

    # -- T27-T31: holding only what was fetched ------------------------------------------

    @clause("T27", "An idle consumer holds nothing it did not fetch; killing it counts nothing")
    def test_idle_consumer_holds_nothing(
        self, make_transport: MakeTransport, broker_url: str, queue: str
    ) -> None:
        other = make_transport()
        other.publish(queue, Message(b"m0"))
        idle: subprocess.Popen[str] | Transport
        if other.capabilities.crosses_processes:
            url = str(parse_url(broker_url).unredacted())
            idle = subprocess.Popen(
                [sys.executable, "-c", _IDLE, url, queue], stdout=subprocess.PIPE, text=True
            )
            line = idle.stdout.readline() if idle.stdout else ""
            assert line.startswith("idle"), f"consumer process said {line!r}"
        else:
            idle = make_transport()
            _fetch_then_idle(idle, queue)
        try:
            other.publish_many(queue, [Message(f"m{i}".encode()) for i in (1, 2, 3)])
            started = time.monotonic()
            (first,) = fetch_n(other, queue, 1, timeout=2.0)
            assert first.message.body == b"m1", "an idle consumer held the next message"
            assert time.monotonic() - started <= 1.0
            first.ack()
        finally:
            if isinstance(idle, subprocess.Popen):
                os.kill(idle.pid, signal.SIGKILL)
                idle.wait(10)
        rest = fetch_n(other, queue, 2, timeout=3 * LEASE + 5)
        assert bodies(rest) == [b"m2", b"m3"]
        assert [d.delivery_count for d in rest] == [1, 1], "a message nobody fetched was counted"
        for delivery in rest:
            delivery.ack()

    @clause("T28", "size and purge right after a partial fetch count exactly the unfetched")
    def test_size_and_purge_after_partial_fetch(self, transport: Transport, queue: str) -> None:
        _warm_up(transport, queue)
        transport.publish_many(queue, numbered(3))
        (held,) = fetch_n(transport, queue, 1)
        assert held.message.body == b"m0"
        assert transport.size(queue) == 2
        assert transport.purge(queue) == 2
        assert transport.size(queue) == 0
        held.ack()
        assert transport.fetch(queue, max_messages=5, timeout=1.0) == []

    @clause("T29", "Due order when all are due: 2 s, 1 s, 3 s arrive in due-time order")
    def test_due_order_when_all_due(self, transport: Transport, queue: str) -> None:
        published = time.monotonic()
        for body, delay in ((b"two", 2.0), (b"one", 1.0), (b"three", 3.0)):
            transport.publish(queue, Message(body), delay=delay)
        time.sleep(max(0.0, published + 3.2 - time.monotonic()))  # until all three are due
        received = []
        for _ in range(3):
            (delivery,) = fetch_n(transport, queue, 1, timeout=3.0)
            received.append(delivery.message.body)
            delivery.ack()
        assert received == [b"one", b"two", b"three"]

    @clause("T30", "fetch(timeout=0) right after nack(requeue=True) returns the message")
    def test_fetch_now_after_requeue(self, transport: Transport, queue: str) -> None:
        transport.publish(queue, Message(b"again"))
        (first,) = fetch_n(transport, queue, 1)
        first.nack(requeue=True)
        again = transport.fetch(queue, max_messages=5, timeout=0)
        assert [d.message for d in again] == [first.message]
        assert again[0].delivery_count == 2
        again[0].ack()

    @clause("T31", "Priorities on a warm consumer: highest priority first")
    def test_priorities_on_warm_consumer(self, transport: Transport, queue: str) -> None:
        if not transport.capabilities.priorities:
            not_applicable("the transport does not declare priorities")
        _warm_up(transport, queue)
        transport.publish_many(queue, [Message(f"low{i}".encode(), priority=1) for i in range(3)])
        transport.publish(queue, Message(b"high", priority=9))
        received = []
        for _ in range(4):
            (delivery,) = fetch_n(transport, queue, 1)
            received.append(delivery.message.body)
            delivery.ack()
        assert received == [b"high", b"low0", b"low1", b"low2"]


def _warm_up(transport: Transport, queue: str) -> None:
    """A fetch and an ack before the clause: the consumer side is running, its credit used."""
    transport.publish(queue, Message(b"warm-up"))
    (delivery,) = fetch_n(transport, queue, 1)
    delivery.ack()


def _fetch_then_idle(transport: Transport, queue: str) -> None:
    """T27's idle consumer: fetch one and ack it, then a fetch that finds nothing."""
    (delivery,) = fetch_n(transport, queue, 1)
    delivery.ack()
    assert transport.fetch(queue, max_messages=4, timeout=0.3) == []


_HOLDER = f"""
import sys, time
from conveyor.core.registry import create_transport
url, queue = sys.argv[1], sys.argv[2]
transport = create_transport(url, lease_timeout={LEASE}, max_deliveries={MAX_DELIVERIES})
held = []
deadline = time.monotonic() + 30
while len(held) < 3 and time.monotonic() < deadline:
    held += transport.fetch(queue, max_messages=3 - len(held), timeout=1.0)
print("held", len(held), flush=True)
time.sleep(3600)
"""


_IDLE = f"""
import sys, time
from conveyor.core.registry import create_transport
from conveyor.testing.transport_suite import _fetch_then_idle
url, queue = sys.argv[1], sys.argv[2]
transport = create_transport(url, lease_timeout={LEASE}, max_deliveries={MAX_DELIVERIES})
_fetch_then_idle(transport, queue)
print("idle", flush=True)
time.sleep(3600)
"""
