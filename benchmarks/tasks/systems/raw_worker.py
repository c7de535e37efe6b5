"""The floor's worker: `python -m benchmarks.tasks.systems.raw_worker`.

`benchmarks/raw_<broker>.py`'s `consume` with a handler that executes each taken batch
(`raw_app.execute`) before it is acknowledged; batches of up to BATCH messages. On Redis and
RabbitMQ it runs one consumer process per CPU (forked), like the task queues' pools; on
ZooKeeper one, since two raw consumers would fight over the same lock nodes every listing.
SIGTERM stops each loop between batches; the parent waits for its children and exits 0
when every one did.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from benchmarks import raw_amqp, raw_redis, raw_zookeeper
from benchmarks.raw_work import Work
from benchmarks.tasks.systems import raw_app

BATCH = 100
CONSUMERS = {
    "redis": raw_redis.consume,
    "amqp": raw_amqp.consume,
    "zookeeper": raw_zookeeper.consume,
}


class Tasks(Work):
    """Execute each batch (raw_app.execute); stop once SIGTERM arrived."""

    def __init__(self) -> None:
        self.stopped = False
        signal.signal(signal.SIGTERM, self.stop)

    def stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopped = True

    def handle(self, bodies: list[bytes]) -> None:
        raw_app.execute(bodies)

    def running(self) -> bool:
        return not self.stopped


def serve(work: Tasks) -> None:
    scheme = raw_app.URL.split(":", 1)[0]
    CONSUMERS[scheme](raw_app.URL, raw_app.QUEUE, None, BATCH, work)


def main() -> int:
    work = Tasks()
    scheme = raw_app.URL.split(":", 1)[0]
    processes = 1 if scheme == "zookeeper" else os.cpu_count() or 1
    children = []
    for _ in range(processes - 1):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                serve(work)
                code = 0
            finally:  # never return into the parent's code
                os._exit(code)
        children.append(pid)
    print(f"raw worker ready: {processes} consumer(s) on {scheme}", flush=True)
    serve(work)
    code = 0
    for pid in children:
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        code = code or os.waitstatus_to_exitcode(status)
    return code


if __name__ == "__main__":
    sys.exit(main())
