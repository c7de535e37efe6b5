"""The app of the beat end-to-end test (`-A tests.beat.beat_e2e_tasks`): one entry every
second whose task counts its runs per tick id in the result backend.

Broker and backend come from CONVEYOR_BROKER_URL / CONVEYOR_RESULT_BACKEND; the run's id
(BEAT_E2E_RUN) names the app, so each run has its own beat namespace and counters.
"""

from __future__ import annotations

import os

from conveyor import Conveyor, Task

RUN = os.environ.get("BEAT_E2E_RUN", "manual")
app = Conveyor(f"beat-e2e-{RUN}")
app.conf.task_default_queue = f"beat_e2e_{RUN}"
app.conf.beat_schedule = {"every-second": {"task": "beat_e2e.tick", "schedule": 1.0}}


@app.task(name="beat_e2e.tick", bind=True)
def tick(self: Task) -> int:
    """Count this tick's runs; a second run of one tick is a double."""
    runs = app.backend.incr(f"{RUN}:runs:{self.request.id}")
    app.backend.incr(f"{RUN}:total")
    if runs > 1:
        app.backend.incr(f"{RUN}:doubles")
    return runs
