"""The app the fault suite's worker processes run (`-A tests.faults.ledger_tasks`).

Broker and backend come from CONVEYOR_BROKER_URL and CONVEYOR_RESULT_BACKEND; each run is
written to the ledger file named by CONVEYOR_LEDGER_FILE (conveyor.testing.ledger).
"""

from __future__ import annotations

import time

from conveyor import Conveyor
from conveyor.testing.ledger import record_run

app = Conveyor("ledger")


@app.task
def step(key: str, seconds: float = 0.0, payload: str = "") -> int:
    record_run("start", key)
    if seconds:
        time.sleep(seconds)
    record_run("finish", key)
    return len(payload)


@app.task(max_retries=None)
def poison(key: str) -> None:
    record_run("start", key)
    raise RuntimeError(f"poison {key}")
