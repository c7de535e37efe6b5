"""Tasks that kill their own process, for the process-pool tests (`-A` path
tests.faults.crashing_tasks). Broker and backend come from CONVEYOR_BROKER_URL and
CONVEYOR_RESULT_BACKEND, so pool children load the same app."""

from __future__ import annotations

import os
import signal

from conveyor import Conveyor, Task

app = Conveyor("crashing")


class RetriedWhenLost(Task):
    """Opts into a retry when its process dies (Celery's option name)."""

    reject_on_worker_lost = True


@app.task
def exit_hard(code: int) -> None:
    os._exit(code)


@app.task
def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(base=RetriedWhenLost, bind=True)
def exit_once(self: Task) -> int:
    if self.request.delivery_count == 1:
        os._exit(1)
    return self.request.delivery_count


@app.task
def add(x: int, y: int) -> int:
    return x + y
