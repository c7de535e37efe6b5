"""Celery: the benchmark task and its client, with Celery's defaults (early acks,
prefork pool) but the prefetch its "Optimizing" guide advises for many short tasks (a
higher `worker_prefetch_multiplier`). Results go to Redis like everyone else's; they
expire after 10 minutes so repeated runs do not pile up keys for a day."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.result import AsyncResult

from benchmarks.tasks import counter

QUEUE = os.environ["BENCH_QUEUE"]

app = Celery("bench", broker=os.environ["BENCH_BROKER_URL"], backend=os.environ["BENCH_RESULT_URL"])
app.conf.update(task_default_queue=QUEUE, result_expires=600, worker_prefetch_multiplier=64)


@app.task(name="bench.add")
def add(x: int, y: int) -> int:
    counter.hit()
    return x + y


class Client:
    name = "celery"

    def send(self, i: int) -> AsyncResult:
        return add.delay(i, i)

    def wait(self, handle: AsyncResult, timeout: float) -> Any:
        return handle.get(timeout=timeout)

    def pending(self) -> int:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            if connection.transport_cls == "redis":
                # kombu's Redis queue is a list that vanishes when empty, so a passive
                # declare of a drained queue fails; its size sums the priority lists.
                return int(channel._size(QUEUE))
            return int(channel.queue_declare(QUEUE, passive=True).message_count)

    def problems(self) -> list[str]:
        return []

    def cleanup(self) -> None:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            channel.queue_delete(QUEUE)
            if connection.transport_cls == "redis":
                # kombu keeps the exchange's bindings in sets that queue_delete leaves behind
                bindings = [f"_kombu.binding{kind}.{QUEUE}" for kind in ("", "_permanent")]
                channel.client.delete(*bindings)
            elif connection.transport_cls == "zookeeper":
                channel._delete(QUEUE)  # queue_delete leaves the empty queue znode
            elif connection.transport_cls in ("amqp", "pyamqp"):
                channel.exchange_delete(QUEUE)  # Celery names the default exchange after it
        app.close()


def client() -> Client:
    return Client()
