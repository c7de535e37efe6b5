import threading

import pytest

from conveyor.core.consumer import Consumer
from conveyor.core.errors import AlreadySettled, AuthenticationFailed, BrokerUnavailable
from conveyor.core.message import Delivery, Message
from conveyor.core.producer import Producer
from conveyor.core.registry import create_transport
from conveyor.core.retry import Backoff, call_with_retry
from conveyor.testing.waiting import wait_until


def test_retry_gives_up_with_broker_unavailable_in_bounded_time() -> None:
    calls = []

    def down() -> None:
        calls.append(1)
        raise BrokerUnavailable("connection refused")

    with pytest.raises(BrokerUnavailable, match="giving up"):
        call_with_retry(down, Backoff(initial=0.01, maximum=0.05, budget=0.3), "publish")
    assert 3 <= len(calls) <= 40


def test_retry_does_not_retry_wrong_credentials() -> None:
    calls = []

    def refused() -> None:
        calls.append(1)
        raise AuthenticationFailed("bad password")

    with pytest.raises(AuthenticationFailed):
        call_with_retry(refused, Backoff(budget=5), "publish")
    assert calls == [1]


def test_retried_publish_reuses_the_message_id() -> None:
    transport = create_transport("memory://producer-retry")
    attempts: list[str] = []
    original = transport.publish_many

    def flaky(queue, messages, *, delay=0.0):  # type: ignore[no-untyped-def]
        attempts.append(messages[0].id)
        if len(attempts) == 1:
            raise BrokerUnavailable("lost")
        original(queue, messages, delay=delay)

    transport.publish_many = flaky  # type: ignore[method-assign]
    message = Producer(transport, Backoff(initial=0.01)).publish("q", Message(b"x"))
    assert attempts == [message.id, message.id]
    (delivery,) = transport.fetch("q", timeout=1)
    assert delivery.message.id == message.id


def test_consumer_feeds_callback_and_respects_prefetch() -> None:
    transport = create_transport("memory://consumer")
    transport.publish_many("work", [Message(str(i).encode()) for i in range(5)])
    got: list[Delivery] = []
    consumer = Consumer(transport, ["work"], got.append, prefetch=2, poll_timeout=0.1)
    thread = consumer.start()
    try:
        assert wait_until(lambda: len(got) == 2, 5)
        assert consumer.held == 2
        assert not wait_until(lambda: len(got) > 2, 0.3)
        for delivery in list(got):
            threading.Thread(target=delivery.ack).start()
        assert wait_until(lambda: len(got) == 4, 5)
    finally:
        consumer.stop()
        thread.join(5)
    assert [d.message.body for d in got] == [b"0", b"1", b"2", b"3"]


def test_a_delivery_settles_once() -> None:
    transport = create_transport("memory://settle")
    transport.publish("q", Message(b"x"))
    (delivery,) = transport.fetch("q", timeout=1)
    delivery.ack()
    with pytest.raises(AlreadySettled):
        delivery.nack()
