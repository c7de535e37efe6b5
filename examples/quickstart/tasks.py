"""The quickstart tasks. With no configuration, conveyor uses SQLite files in this folder.

Start a worker:   conveyor -A tasks worker --loglevel=info
Then trigger:     python trigger.py
"""

from __future__ import annotations

import time
from typing import Any

from conveyor import Conveyor, Task
from conveyor.utils.log import get_task_logger

app = Conveyor("tasks")  # no broker or backend given: sqlite:///conveyor.db and friends
logger = get_task_logger(__name__)


@app.task
def add(x: int, y: int) -> int:
    return x + y


class Audited(Task):
    """A base class whose hooks run in the worker after each outcome."""

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        logger.info("%s succeeded with %r", self.name, retval)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        logger.warning("%s failed: %r", self.name, exc)


@app.task(base=Audited)
def divide(x: float, y: float) -> float:
    return x / y


@app.task(bind=True)
def whoami(self: Task) -> dict[str, Any]:
    logger.info(
        "request: id=%s retries=%s queue=%s delivery=%s",
        self.request.id,
        self.request.retries,
        self.request.delivery_info.get("queue"),
        self.request.delivery_count,
    )
    return {"id": self.request.id, "hostname": self.request.hostname}


@app.task(bind=True)
def crunch(self: Task, steps: int = 20) -> str:
    for step in range(1, steps + 1):
        time.sleep(0.05)  # stands in for real work
        self.update_state(state="PROGRESS", meta={"done": step, "total": steps})
    return f"crunched {steps} steps"
