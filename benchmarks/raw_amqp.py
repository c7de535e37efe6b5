"""The raw pika baseline for transport_bench.py: the same work, no conveyor.

Publish: a durable queue, persistent messages, the channel in confirm mode, so every
basic_publish waits for its broker confirm (pika's BlockingChannel confirms one message at
a time; `batch` does not change that). Consume: basic_consume with a prefetch of `batch`,
one basic_ack(multiple=True) per `batch` messages, or sooner when no further delivery is
waiting in pika's buffer (so a trickle is not held back). The task benchmark's floor worker
(`benchmarks/tasks/systems/raw_worker.py`) runs the same `consume` with a `Work` that
executes each batch before it is acknowledged.

`unconfirmed_rate` is the task benchmark's ceiling for a batched publish: the same
persistent messages with no confirm mode, each basic_publish returning once its frames are
written to the socket.
"""

from __future__ import annotations

import time

import pika

from benchmarks.raw_work import TAKE_ONLY, Work
from conveyor.core.url import parse_url

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def connect(url: str) -> pika.BlockingConnection:
    parsed = parse_url(url)
    host = parsed.host
    vhost = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    params = pika.ConnectionParameters(
        host=host.name if host else "127.0.0.1",
        port=(host.port if host else None) or 5672,
        virtual_host=vhost or "/",
        credentials=pika.PlainCredentials(parsed.username or "guest", parsed.password or "guest"),
    )
    return pika.BlockingConnection(params)


def _declare(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> None:
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "classic"})


def publish(url: str, queue: str, bodies: list[bytes], batch: int) -> None:
    connection = connect(url)
    channel = connection.channel()
    _declare(channel, queue)
    channel.confirm_delivery()
    for body in bodies:
        channel.basic_publish("", queue, body, PERSISTENT, mandatory=True)
    connection.close()


def declare(url: str, queue: str) -> None:
    """The durable classic queue `publish` and `consume` use."""
    connection = connect(url)
    _declare(connection.channel(), queue)
    connection.close()


def consume(url: str, queue: str, n: int | None, batch: int, work: Work = TAKE_ONLY) -> None:
    """`n` messages (None: until `work.running()` is false); see raw_work."""
    connection = connect(url)
    channel = connection.channel()
    _declare(channel, queue)
    channel.basic_qos(prefetch_count=batch)
    received = 0
    bodies: list[bytes] = []
    for method, _properties, body in channel.consume(queue, inactivity_timeout=0.5):
        if method is not None:
            received += 1
            bodies.append(body)
            done = n is not None and received >= n
            if len(bodies) >= batch or done or not channel.get_waiting_message_count():
                work.handle(bodies)
                channel.basic_ack(method.delivery_tag, multiple=True)
                bodies = []
            if done:
                break
        if not bodies and not work.running():
            break
    channel.cancel()
    connection.close()


def cleanup(url: str, queue: str) -> None:
    connection = connect(url)
    connection.channel().queue_delete(queue)
    connection.close()


def unconfirmed_rate(url: str, queue: str, bodies: list[bytes], timeout: float) -> float:
    """Messages per second of a basic_publish loop without confirms into a fresh `queue`.

    The clock covers the loop alone (connected and declared before). The queue is then
    counted until it holds every message (within `timeout`) and deleted.
    """
    connection = connect(url)
    try:
        channel = connection.channel()
        _declare(channel, queue)
        try:
            start = time.perf_counter()
            for body in bodies:
                channel.basic_publish("", queue, body, PERSISTENT)
            seconds = time.perf_counter() - start
            _wait_for_count(channel, queue, len(bodies), timeout)
        finally:
            channel.queue_delete(queue)
    finally:
        connection.close()
    return len(bodies) / seconds


def _wait_for_count(
    channel: pika.adapters.blocking_connection.BlockingChannel,
    queue: str,
    n: int,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        count = channel.queue_declare(queue, passive=True).method.message_count
        if count == n:
            return
        if count > n or time.monotonic() > deadline:
            raise AssertionError(f"raw publish left {count} messages in {queue}, expected {n}")
        time.sleep(0.01)
