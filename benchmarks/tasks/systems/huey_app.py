"""Huey: the benchmark task and its client. Huey keeps queue and results in one storage
(Redis or SQLite), so BENCH_RESULT_URL is not used; it has no AMQP storage. The huey name
is the run's queue, so `flush()` removes only this run's keys. On Redis `notify_result=True`:
Huey's documented way to make a blocking `result.get()` wait on a BLPOP instead of polling
with a 50 ms backoff."""

from __future__ import annotations

import os
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Result

from benchmarks.tasks import counter

QUEUE = os.environ["BENCH_QUEUE"]
URL = os.environ["BENCH_BROKER_URL"]

huey = (
    SqliteHuey(QUEUE, filename=URL.removeprefix("sqlite:///"))
    if URL.startswith("sqlite")
    else RedisHuey(QUEUE, url=URL, notify_result=True)
)


@huey.task()
def add(x: int, y: int) -> int:
    counter.hit()
    return x + y


class Client:
    name = "huey"

    def send(self, i: int) -> Result:
        return add(i, i)

    def wait(self, handle: Result, timeout: float) -> Any:
        return handle.get(blocking=True, timeout=timeout)

    def pending(self) -> int:
        return int(huey.pending_count())

    def problems(self) -> list[str]:
        return []

    def cleanup(self) -> None:
        huey.flush()


def client() -> Client:
    return Client()
