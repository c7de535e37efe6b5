"""The dashboard's first paint with 100,000 stored events, page by page, in Debian's
chromium (the monitoring issue's aim: every page under a second).

A `conveyor worker` and `conveyor dashboard` run on SQLite files of a temporary folder, or
on database 9 of the Redis at CONVEYOR_TEST_REDIS_URL (flushed first); 25,000 tasks of
four events each are stored, then each page is opened `--reps` times in a fresh browser
context and its median first contentful paint printed beside the aim.

    .venv/bin/python -m benchmarks.dashboard_paint               # sqlite and redis
    .venv/bin/python -m benchmarks.dashboard_paint --store sqlite --reps 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.monitoring.bulk import first_paint_ms, store_bulk_events
from tests.monitoring.cluster import PASSWORD, USER, Cluster

CHROMIUM = "/usr/bin/chromium"
AIM_MS = 1000.0
PATHS = (
    "/", "/workers", "/queues", "/tasks", "/dead", "/schedules",
    "/tasks?q=24999", "/tasks?name=bulk.task3&page=3",
)  # fmt: skip


def _cluster(store: str, workdir: Path) -> Cluster:
    if store == "sqlite":
        return Cluster(f"sqlite:///{workdir}/broker.db", f"sqlite:///{workdir}/results.db", workdir)
    import redis

    shared = urlsplit(os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    url = urlunsplit(shared._replace(path="/9"))
    redis.Redis.from_url(url).flushdb()
    return Cluster(url, url, workdir)


def measure(store: str, reps: int) -> dict[str, float]:
    """Median first paint (ms) per page of a dashboard on `store` with the bulk history."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        cluster = _cluster(store, Path(folder))
        cluster.start()
        app = cluster.client_app()
        try:
            store_bulk_events(app)
            paints: dict[str, list[float]] = {path: [] for path in PATHS}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox"]
                )
                for _ in range(reps):
                    for path in PATHS:
                        context = browser.new_context(
                            http_credentials={"username": USER, "password": PASSWORD},
                            base_url=cluster.url,
                        )
                        paints[path].append(first_paint_ms(context.new_page(), path))
                        context.close()
                browser.close()
        finally:
            app.close()
            cluster.stop()
    return {path: statistics.median(values) for path, values in paints.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "redis"], action="append")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    stores = args.store or ["sqlite", "redis"]
    results = {store: measure(store, args.reps) for store in stores}
    print(f"first contentful paint, ms (median of {args.reps}; aim < {AIM_MS:.0f})")
    print(f"| page | {' | '.join(stores)} |")
    print(f"|---|{'---:|' * len(stores)}")
    for path in PATHS:
        cells = " | ".join(
            f"{results[s][path]:.0f}{'' if results[s][path] < AIM_MS else ' (over)'}"
            for s in stores
        )
        print(f"| `{path}` | {cells} |")


if __name__ == "__main__":
    main()
