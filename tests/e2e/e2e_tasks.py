"""The app the end-to-end tests run in real worker processes (`-A tests.e2e.e2e_tasks`).

Broker and backend come from CONVEYOR_BROKER_URL / CONVEYOR_RESULT_BACKEND. Hooks and
side effects write records to the result backend, where the test process can see them.
"""

from __future__ import annotations

import os
import time
from typing import Any

from conveyor import Conveyor, Task, states
from conveyor.app.exceptions import SoftTimeLimitExceeded
from conveyor.backends.base import ResultRecord
from conveyor.testing.waiting import wait_until

app = Conveyor("e2e")


class Boom(Exception):
    pass


def mark(key: str, value: Any) -> None:
    app.backend.store(ResultRecord(key, states.SUCCESS, result=value))


class Recording(Task):
    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        mark(f"hook-success-{task_id}", {"retval": retval, "args": list(args)})

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        mark(f"hook-failure-{task_id}", {"exc": type(exc).__name__, "tb": einfo.traceback})


@app.task(base=Recording)
def add(x: int, y: int) -> int:
    return x + y


@app.task(base=Recording)
def explode(message: str) -> None:
    raise Boom(message)


@app.task(bind=True)
def describe(self: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    r = self.request
    return {
        "id": r.id,
        "args": list(r.args),
        "kwargs": r.kwargs,
        "retries": r.retries,
        "hostname": r.hostname,
        "queue": r.delivery_info.get("queue"),
        "root_id": r.root_id,
        "parent_id": r.parent_id,
        "delivery_count": r.delivery_count,
        "expires": r.expires,
    }


@app.task(bind=True)
def progress(self: Task, steps: int) -> str:
    for step in range(1, steps + 1):
        self.update_state(state="PROGRESS", meta={"step": step})
        time.sleep(0.05)
    return "done"


@app.task(bind=True, max_retries=3)
def flaky(self: Task, failures: int) -> dict[str, Any]:
    if self.request.retries < failures:
        raise self.retry(exc=Boom(f"attempt {self.request.retries}"), countdown=0.5)
    return {"retries": self.request.retries, "at": time.time()}


@app.task(bind=True)
def side_effect(self: Task) -> str:
    mark(f"ran-{self.request.id}", time.time())
    return "ran"


@app.task
def stamp() -> float:
    return time.time()


@app.task(bind=True)
def sleep(self: Task, seconds: float) -> float:
    mark(f"started-{self.request.id}", time.time())
    time.sleep(seconds)
    return seconds


@app.task(bind=True)
def held(self: Task, deadline: float = 60.0) -> str:
    """Runs until the test stores `release-<task id>` (see `release`), or `deadline` seconds:
    a running task for as long as a test needs one, however slow the machine."""
    mark(f"started-{self.request.id}", time.time())
    released = wait_until(lambda: app.AsyncResult(f"release-{self.request.id}").exists(), deadline)
    return "released" if released else "not released"


def release(task_id: str) -> None:
    """Let a `held` task return."""
    mark(f"release-{task_id}", time.time())


@app.task(soft_time_limit=0.5)
def soft_limited() -> str:
    try:
        time.sleep(30)
    except SoftTimeLimitExceeded:
        return "soft limit handled"
    return "not interrupted"


@app.task(time_limit=1.0)
def hard_limited() -> None:
    time.sleep(60)


class RetriedWhenLost(Task):
    """Opts into a retry when the task's process dies (Celery's option name)."""

    reject_on_worker_lost = True


@app.task(base=RetriedWhenLost, bind=True)
def crash_once(self: Task) -> int:
    """Kills its own process on the first delivery (a segfault, an OOM kill); opted into
    a retry, so it runs again."""
    if self.request.delivery_count == 1:
        os._exit(1)
    return self.request.delivery_count


# -- canvas (tests/e2e/test_canvas_e2e.py) -------------------------------------------------


@app.task
def tsum(values: list[int]) -> int:
    return sum(values)


@app.task
def collect(values: Any, tag: str) -> Any:
    """A chord body that counts its runs in the result backend, under `tag`."""
    app.backend.incr(f"runs-{tag}")
    return values


@app.task(bind=True)
def stall_first(self: Task, value: Any, tag: str) -> Any:
    """Stalls on its first delivery, for a test to SIGKILL the worker; returns at once when
    the message comes back."""
    if self.request.delivery_count == 1:
        mark(f"stalled-{tag}", self.request.id)
        time.sleep(60)
    return value
