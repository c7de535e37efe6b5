"""The floor: the broker's raw client doing the benchmark's work, no task queue at all.

Beside every row of the table this "system" shows what the broker and its Python client
allow on this machine, so each ratio to the limit is visible. A task is a small JSON body
{"id", "args"} sent the simplest durable way (Redis: one LPUSH; RabbitMQ: a persistent
basic_publish on a confirmed channel; ZooKeeper: one sequential create); the worker
(`raw_worker.py`) takes batches the way `benchmarks/raw_<broker>.py` does, runs `add`
(with its ledger write, like every system), pushes each result onto a Redis list named after
the task, then acknowledges the batch; `wait` is one BLPOP on that list. Results live in
Redis as for every system but Huey.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import redis

from benchmarks import raw_amqp, raw_redis, raw_zookeeper
from benchmarks.tasks import counter

QUEUE = os.environ["BENCH_QUEUE"]
URL = os.environ["BENCH_BROKER_URL"]
RESULTS = redis.Redis.from_url(os.environ["BENCH_RESULT_URL"])
RESULT_TTL = 600


def result_key(task_id: str) -> str:
    return f"bench:raw:{QUEUE}:{task_id}"


def body(task_id: str, i: int) -> bytes:
    return json.dumps({"id": task_id, "args": [i, i]}).encode()


def add(x: int, y: int) -> int:
    counter.hit()
    return x + y


def execute(bodies: list[bytes]) -> None:
    """Run a taken batch and write its results in one pipeline (before the batch's ack)."""
    results = RESULTS.pipeline(transaction=False)
    for raw in bodies:
        task = json.loads(raw)
        key = result_key(task["id"])
        results.lpush(key, add(*task["args"]))
        results.expire(key, RESULT_TTL)
    results.execute()


class Client:
    """The parts every broker shares: results are waited for on Redis."""

    name = "raw"

    def send(self, i: int) -> str:
        task_id = uuid.uuid4().hex
        self.put(body(task_id, i))
        return task_id

    def put(self, message: bytes) -> None:
        raise NotImplementedError

    def wait(self, handle: str, timeout: float) -> Any:
        reply = RESULTS.blpop([result_key(handle)], timeout=max(timeout, 0.01))
        if reply is None:
            raise TimeoutError(f"no result for {handle} within {timeout:.1f} s")
        return int(reply[1])

    def problems(self) -> list[str]:
        return []


class RedisClient(Client):
    def __init__(self) -> None:
        self.redis = redis.Redis.from_url(URL)

    def put(self, message: bytes) -> None:
        self.redis.lpush(QUEUE, message)

    def pending(self) -> int:
        return int(self.redis.llen(QUEUE) + self.redis.llen(f"{QUEUE}:in-flight"))

    def cleanup(self) -> None:
        raw_redis.cleanup(URL, QUEUE)
        self.redis.close()


class AmqpClient(Client):
    def __init__(self) -> None:
        self.connection = raw_amqp.connect(URL)
        self.channel = self.connection.channel()
        raw_amqp.declare(URL, QUEUE)
        self.channel.confirm_delivery()

    def put(self, message: bytes) -> None:
        self.channel.basic_publish("", QUEUE, message, raw_amqp.PERSISTENT, mandatory=True)

    def pending(self) -> int:
        return int(self.channel.queue_declare(QUEUE, passive=True).method.message_count)

    def cleanup(self) -> None:
        self.channel.queue_delete(QUEUE)
        self.connection.close()


class ZooKeeperClient(Client):
    def __init__(self) -> None:
        self.zk, root = raw_zookeeper.connect(URL)
        self.entries = f"{root}/{QUEUE}/e"
        self.zk.ensure_path(self.entries)

    def put(self, message: bytes) -> None:
        self.zk.create(f"{self.entries}/m", message, sequence=True)

    def pending(self) -> int:
        return len(self.zk.get_children(self.entries))

    def cleanup(self) -> None:
        self.zk.stop()
        self.zk.close()
        raw_zookeeper.cleanup(URL, QUEUE)


def client() -> Client:
    scheme = URL.split(":", 1)[0]
    clients: dict[str, type[Client]] = {
        "redis": RedisClient,
        "amqp": AmqpClient,
        "zookeeper": ZooKeeperClient,
    }
    return clients[scheme]()
