"""A dashboard with a long history: 100,000 stored events (25,000 tasks of four events
each over the last 50 minutes), for the browser test and benchmarks/dashboard_paint.py."""

from __future__ import annotations

import time
import uuid
from typing import Any

from conveyor import Conveyor
from conveyor.app.events import store_url
from conveyor.backends.events import open_store

TASKS = 25_000
KINDS = ("task-sent", "task-received", "task-started", "task-succeeded")


def store_bulk_events(app: Conveyor, tasks: int = TASKS) -> None:
    """Store four events for each of `tasks` tasks named bulk.task0 .. bulk.task6, the
    n-th with args "(n,)", in the app's event history."""
    store = open_store(store_url(app.conf))
    now = time.time()
    batch: list[dict[str, Any]] = []
    try:
        for number in range(tasks):
            task_id = str(uuid.uuid4())
            at = now - 3000 + number * 0.12
            for step, kind in enumerate(KINDS):
                batch.append(
                    {
                        "type": kind,
                        "uuid": task_id,
                        "timestamp": at + step * 0.01,
                        "name": f"bulk.task{number % 7}",
                        "args": f"({number},)",
                        "hostname": "bulk@test",
                        "runtime": 0.01,
                    }
                )
            if len(batch) >= 10_000:
                store.add(batch)
                batch = []
        store.add(batch)
    finally:
        store.close()


def first_paint_ms(page: Any, path: str) -> float:
    """Open `path` in a Playwright page and return its first contentful paint (ms)."""
    page.goto(path)
    page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length")
    paint: float = page.evaluate(
        "performance.getEntriesByName('first-contentful-paint')[0].startTime"
    )
    return paint
