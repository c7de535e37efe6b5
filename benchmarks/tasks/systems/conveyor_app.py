"""conveyor: the benchmark task and its client (`-A benchmarks.tasks.systems.conveyor_app`).

The app runs with its safe defaults: late acks, publisher confirms, a PENDING record per
sent task. `send_batch` is the batched path: there is no app-level group or publish_many
yet, so it encodes task messages with `conveyor.app.protocol` (`messages`) and sends them
through `Producer.publish_many` (`publish_batch`; no PENDING records, which `delay()` writes
one by one).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from benchmarks.tasks import counter
from conveyor import Conveyor, signals
from conveyor.app import protocol
from conveyor.app.result import AsyncResult
from conveyor.core.message import Message

QUEUE = os.environ["BENCH_QUEUE"]

app = Conveyor(
    "bench",
    broker=os.environ["BENCH_BROKER_URL"],
    backend=os.environ["BENCH_RESULT_URL"],
    task_default_queue=QUEUE,
    result_expires=600.0,
)


@app.task(name="bench.add")
def add(x: int, y: int) -> int:
    counter.hit()
    return x + y


@signals.worker_ready.connect
def _stamp_ready(sender: Any = None, **_: Any) -> None:
    """The harness's spawn-to-ready line: the first worker process consuming."""
    counter.ready()


class Client:
    name = "conveyor"

    def send(self, i: int) -> AsyncResult:
        return add.delay(i, i)

    def wait(self, handle: AsyncResult, timeout: float) -> Any:
        return handle.get(timeout=timeout)

    def pending(self) -> int:
        return app.transport.size(QUEUE)

    def problems(self) -> list[str]:
        dead = app.transport.dead_letters(QUEUE, limit=10)
        return [f"dead letter: {letter.reason}" for letter in dead]

    def messages(self, values: list[int]) -> list[Message]:
        """Task messages for add(i, i), as `delay()` would encode them."""
        return [
            protocol.encode(
                protocol.TaskMessage(
                    id=(task_id := str(uuid.uuid4())), task=add.name, args=[i, i], root_id=task_id
                ),
                app.serializer,
            )
            for i in values
        ]

    def publish_batch(self, queue: str, messages: list[Message]) -> None:
        app.producer.publish_many(queue, messages)

    def send_batch(self, queue: str, values: list[int]) -> None:
        self.publish_batch(queue, self.messages(values))

    def bodies(self, values: list[int]) -> list[bytes]:
        """The bodies `send_batch` would send, for a raw client's baseline."""
        return [message.body for message in self.messages(values)]

    def size(self, queue: str) -> int:
        return app.transport.size(queue)

    def delete(self, queue: str) -> None:
        app.transport.delete(queue)

    def cleanup(self) -> None:
        app.transport.delete(QUEUE)
        app.close()


def client() -> Client:
    return Client()
