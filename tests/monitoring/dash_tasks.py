"""The app the monitoring tests run in real processes (`-A tests.monitoring.dash_tasks`).

Broker and backend come from CONVEYOR_BROKER_URL / CONVEYOR_RESULT_BACKEND; each test
gives its worker a queue of its own (task_default_queue from CONVEYOR_TEST_QUEUE).
"""

from __future__ import annotations

import os
import time

from conveyor import Conveyor

app = Conveyor(
    "dash_tasks",
    task_default_queue=os.environ.get("CONVEYOR_TEST_QUEUE", "default"),
    beat_schedule={
        "hourly-add": {
            "task": "tests.monitoring.dash_tasks.add",
            "schedule": 3600.0,
            "args": (1, 1),
        }
    },
)


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def fail(marker: str) -> None:
    raise ValueError(f"broken on purpose {marker}")


@app.task
def sleepy(seconds: float) -> str:
    """Sleeps in short steps, so that a terminate (an exception raised in the thread) lands
    within one of them."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    return "slept"
