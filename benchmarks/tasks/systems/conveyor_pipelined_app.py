"""conveyor with pipelined publisher confirms (`broker_publish_confirm="pipelined"`), run
on RabbitMQ only (elsewhere the setting changes nothing): the speed issue's RabbitMQ
round-trip and enqueue rows are asked of this mode. The enqueue loop's clock stops once
every confirm is in (`flush`), so it counts what the broker accepted."""

from __future__ import annotations

from benchmarks.tasks.systems import conveyor_app
from benchmarks.tasks.systems.conveyor_app import add, app

__all__ = ["add", "app", "client"]

app.conf.broker_publish_confirm = "pipelined"


class Client(conveyor_app.Client):
    name = "conveyor_pipelined"

    def flush(self) -> None:
        app.flush(timeout=60.0)


def client() -> Client:
    return Client()
