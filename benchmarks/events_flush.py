"""What flushing task events costs, per task: the flush thread's CPU and Redis's.

    redis-server --port 6391 --save '' &   # a server of your own: INFO cpu counts only this
    .venv/bin/python -m benchmarks.events_flush --redis redis://127.0.0.1:6391/0 -n 500 -b 20

Sends the four events of `-n` tasks (task-sent, task-received, task-started,
task-succeeded, with the fields the client and worker send) through an app's EventSender
and flushes them as one batch, `-b` times; prints the flushing process's CPU per task
(time.process_time, so load on the machine hardly moves it) and the Redis server's
(INFO cpu, user + sys) per task. `-n 500` is about one 0.25 s flush of a worker doing
2,000 tasks/s. Run it under `valgrind --tool=callgrind` for instruction counts.
"""

from __future__ import annotations

import argparse
import time
import uuid

import redis

from conveyor import Conveyor
from conveyor.app import events
from conveyor.app.events import Lazy, task_fields
from conveyor.app.protocol import TaskMessage


def server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def send_tasks(app: Conveyor, count: int) -> None:
    """The events of `count` tasks, as the client and a worker send them."""
    host = "celery@bench"
    for _ in range(count):
        body = TaskMessage(id=str(uuid.uuid4()), task="tasks.add", args=(2, 3), kwargs={})
        app.events.send("task-sent", **task_fields(body, "celery"))
        app.events.send("task-received", hostname=host, **task_fields(body, "celery"))
        app.events.send("task-started", uuid=body.id, name=body.task, hostname=host)
        app.events.send(
            "task-succeeded", uuid=body.id, hostname=host, result=Lazy(5), runtime=0.0001
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--redis", default="redis://127.0.0.1:6391/0")
    p.add_argument("-n", "--tasks", type=int, default=500, help="tasks per flush")
    p.add_argument("-b", "--batches", type=int, default=20)
    args = p.parse_args()
    events.FLUSH_INTERVAL = 3600.0  # only this loop flushes: one batch each time
    client = redis.Redis.from_url(args.redis)
    client.flushdb()
    app = Conveyor("bench", broker=args.redis, backend=args.redis)
    send_tasks(app, 10)  # connect, load the script
    app.events.flush()
    ours = theirs = 0.0
    for _ in range(args.batches):
        send_tasks(app, args.tasks)
        before, server = time.process_time(), server_cpu(client)
        app.events.flush()
        ours += time.process_time() - before
        theirs += server_cpu(client) - server
    app.events.close()
    total = args.tasks * args.batches
    print(f"flush CPU {ours / total * 1e6:.1f} us/task, Redis CPU {theirs / total * 1e6:.1f}")


if __name__ == "__main__":
    main()
