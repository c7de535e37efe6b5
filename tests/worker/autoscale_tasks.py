"""Tasks for the autoscaling tests (`-A` path tests.worker.autoscale_tasks, so process-pool
children load them too). Broker and backend come from CONVEYOR_BROKER_URL and
CONVEYOR_RESULT_BACKEND. `hold` runs until its gate is opened: a counter in the result
backend, which the children reach as well as the test."""

from __future__ import annotations

import time

from conveyor import Conveyor

app = Conveyor("autoscale")
HOLD_LIMIT = 60.0  # a gate nobody opens ends the task (a failing test must not hang)


@app.task
def hold(gate: str) -> str:
    deadline = time.monotonic() + HOLD_LIMIT
    while app.backend.incr(gate, 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    return gate


def open_gate(gate: str) -> None:
    app.backend.incr(gate, 1)
