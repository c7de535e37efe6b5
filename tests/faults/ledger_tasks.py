"""The app the fault suite's worker processes run (`-A tests.faults.ledger_tasks`).

Broker and backend come from CONVEYOR_BROKER_URL and CONVEYOR_RESULT_BACKEND; each run is
written to the ledger file named by CONVEYOR_LEDGER_FILE (conveyor.testing.ledger).
"""

from __future__ import annotations

import os
import time

from conveyor import Conveyor
from conveyor.testing.ledger import record_run

app = Conveyor("ledger")


@app.task
def step(key: str, seconds: float = 0.0, payload: str = "", result_size: int = 0) -> int | str:
    """One ledger run: `seconds` of work; returns `result_size` bytes (for eviction rows)
    or the payload's length."""
    record_run("start", key)
    if seconds:
        time.sleep(seconds)
    record_run("finish", key)
    return "r" * result_size if result_size else len(payload)


@app.task
def kill_worker(key: str) -> None:
    """Poison: takes its (threads-pool) worker down on every run (not in the ledger: its
    runs are counted by the deaths of its workers)."""
    os._exit(1)
