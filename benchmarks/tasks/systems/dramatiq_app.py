"""Dramatiq: the benchmark actor and its client, with Dramatiq's defaults (its Redis or
RabbitMQ broker, Results middleware on Redis)."""

from __future__ import annotations

import os
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import Message
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from benchmarks.tasks import counter

QUEUE = os.environ["BENCH_QUEUE"]
URL = os.environ["BENCH_BROKER_URL"]

broker: RedisBroker | RabbitmqBroker = (
    RedisBroker(url=URL) if URL.startswith("redis") else RabbitmqBroker(url=URL)
)
broker.add_middleware(Results(backend=RedisBackend(url=os.environ["BENCH_RESULT_URL"])))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, store_results=True)
def add(x: int, y: int) -> int:
    counter.hit()
    return x + y


class Client:
    name = "dramatiq"

    def send(self, i: int) -> Message[Any]:
        return add.send(i, i)

    def wait(self, handle: Message[Any], timeout: float) -> Any:
        return handle.get_result(block=True, timeout=int(timeout * 1000))

    def pending(self) -> int:
        if isinstance(broker, RabbitmqBroker):
            return sum(broker.get_queue_message_counts(QUEUE))
        client = redis.Redis.from_url(URL)
        try:
            return int(client.llen(f"dramatiq:{QUEUE}") + client.hlen(f"dramatiq:{QUEUE}.msgs"))
        finally:
            client.close()

    def problems(self) -> list[str]:
        return []

    def cleanup(self) -> None:
        if isinstance(broker, RabbitmqBroker):
            for name in (QUEUE, f"{QUEUE}.DQ", f"{QUEUE}.XQ"):
                broker.channel.queue_delete(name)
        else:
            client = redis.Redis.from_url(URL)
            names = list(client.scan_iter(match=f"dramatiq:{QUEUE}*"))
            if names:
                client.delete(*names)
            client.close()
        broker.close()


def client() -> Client:
    return Client()
