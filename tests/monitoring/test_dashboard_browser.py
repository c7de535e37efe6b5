"""The dashboard in a real browser (Debian's chromium driven by Playwright), on real
worker and dashboard processes, on the SQLite default and on Redis.

Screenshots of every page go to test-artifacts/dashboard/ (gitignored; CI keeps them).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from conveyor import Conveyor
from conveyor.testing.plugin import missing
from conveyor.testing.waiting import wait_until
from tests.monitoring.bulk import first_paint_ms, store_bulk_events
from tests.monitoring.cluster import PASSWORD, ROOT, USER, Cluster

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("CONVEYOR_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboard"
PAGES = {
    "/": "Overview",
    "/workers": "Workers",
    "/queues": "Queues",
    "/tasks": "Tasks",
    "/dead": "Dead letters",
    "/schedules": "Schedules",
}
LIVE_TIMEOUT = 20.0


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp(f"dash-{request.param}")
    if request.param == "sqlite":
        broker, backend = f"sqlite:///{workdir}/broker.db", f"sqlite:///{workdir}/results.db"
    else:
        # A database of its own: the shared server's db 0 holds everyone's events.
        shared = urlsplit(request.getfixturevalue("redis_url"))
        broker = backend = urlunsplit(shared._replace(path="/9"))
    running = Cluster(broker, backend, workdir)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        missing(f"no {CHROMIUM}: scripts/ensure-browser.sh installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, cluster: Cluster) -> Iterator[Any]:
    context = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD},
        viewport={"width": 1200, "height": 900},
        base_url=cluster.url,
    )
    opened = context.new_page()
    opened.on("dialog", lambda dialog: dialog.accept())
    yield opened
    context.close()


@pytest.fixture
def app(cluster: Cluster) -> Iterator[Conveyor]:
    application = cluster.client_app()
    yield application
    application.close()


def _shot(page: Any, cluster: Cluster, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kind = "sqlite" if cluster.broker.startswith("sqlite") else "redis"
    page.screenshot(path=str(ARTIFACTS / f"{kind}-{name}.png"), full_page=True)


def test_every_page_loads_shows_no_urls_and_fits_a_phone(
    browser: Any, page: Any, cluster: Cluster, app: Conveyor
) -> None:
    assert app.tasks["tests.monitoring.dash_tasks.add"].delay(1, 2).get(timeout=20) == 3
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    for path, title in PAGES.items():
        response = page.goto(path)
        assert response.status == 200, path
        assert page.locator("h1").inner_text() == title
        html = page.content()
        assert cluster.broker not in html and "://" + "127.0.0.1" not in html, path
        _shot(page, cluster, title.lower().replace(" ", "-"))
    assert errors == []
    page.goto("/schedules")
    assert "hourly-add" in page.locator('tr[data-entry="hourly-add"]').inner_text()
    assert page.locator("#beat-leader").inner_text().startswith("none")
    phone = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD},
        viewport={"width": 390, "height": 844},
        base_url=cluster.url,
    )
    small = phone.new_page()
    for path in PAGES:
        small.goto(path)
        overflow = small.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} is {overflow}px wider than a phone"
    _shot(small, cluster, "phone-tasks")
    phone.close()


def test_a_task_appears_live_and_is_found_by_its_arguments(
    page: Any, cluster: Cluster, app: Conveyor
) -> None:
    page.goto("/tasks")
    page.evaluate("window.notReloaded = true")
    number = random.randrange(10**11, 10**12)
    result = app.tasks["tests.monitoring.dash_tasks.add"].delay(number, 1)
    assert result.get(timeout=20) == number + 1
    row = f'tr[data-task="{result.id}"] td.state.SUCCESS'
    page.wait_for_selector(row, timeout=LIVE_TIMEOUT * 1000)
    assert page.evaluate("window.notReloaded") is True  # it came in without a reload
    page.fill('input[name="q"]', str(number))
    page.click('form.search button[type="submit"]')
    page.wait_for_url("**/tasks?*")
    rows = page.locator("tr[data-task]")
    assert rows.count() == 1 and rows.first.get_attribute("data-task") == result.id
    page.click(f'tr[data-task="{result.id}"] a')
    page.wait_for_selector("ol.timeline")
    timeline = page.locator("ol.timeline").inner_text()
    for kind in ("task-sent", "task-received", "task-started", "task-succeeded"):
        assert kind in timeline
    _shot(page, cluster, "task")


def test_revoke_and_terminate_from_the_task_page(
    page: Any, cluster: Cluster, app: Conveyor
) -> None:
    later = app.tasks["tests.monitoring.dash_tasks.add"].apply_async((1, 1), countdown=300)
    page.goto(f"/tasks/{later.id}")
    page.click("text=Revoke")
    page.wait_for_selector("#flash .flash.ok")
    assert later.state == "REVOKED"
    running = app.tasks["tests.monitoring.dash_tasks.sleepy"].delay(60)
    page.goto(f"/tasks/{running.id}")
    page.wait_for_selector("#task-state.STARTED", timeout=LIVE_TIMEOUT * 1000)
    page.goto("/workers")  # the worker's row lists it among its running tasks
    assert page.locator(f'a[data-running="{running.id}"]').count() == 1
    page.goto(f"/tasks/{running.id}")
    page.click("text=Terminate")
    page.wait_for_selector("#flash .flash.ok")
    assert wait_until(lambda: running.state == "REVOKED", 15), running.state
    page.wait_for_selector("#task-state.REVOKED", timeout=LIVE_TIMEOUT * 1000)


def test_a_dead_letter_is_replayed_from_its_page(
    page: Any, cluster: Cluster, app: Conveyor
) -> None:
    unknown = app.send_task("tests.monitoring.dash_tasks.nope", (1,))
    transport = app.transport

    def dead() -> list[Any]:
        found = transport.dead_letters(cluster.queue)
        return [d for d in found if d.message.correlation_id == unknown.id]

    assert wait_until(lambda: len(dead()) == 1, 20), cluster.logs()
    page.goto("/dead")
    row = page.locator(f'tr[data-message="{dead()[0].message.id}"]')
    assert "NotRegistered" in row.inner_text()
    _shot(page, cluster, "dead-letter")
    row.locator("text=Replay").click()
    page.wait_for_selector("#flash .flash.ok")
    assert "1 dead letter(s)" in page.locator("#flash").inner_text()
    # Back in the queue, the worker rejects it again: a second task-rejected.
    store = app.events.store
    rejected = lambda: [e for e in store.timeline(unknown.id) if e["type"] == "task-rejected"]  # noqa: E731
    assert wait_until(lambda: len(rejected()) == 2, 20)


def test_refused_without_credentials(browser: Any, cluster: Cluster) -> None:
    # Chromium answers a page's 401 with a login prompt (an error when headless), so the
    # refusals are read through the browser context's own HTTP client.
    anonymous = browser.new_context(base_url=cluster.url)
    refused = anonymous.request.get("/tasks")
    assert refused.status == 401 and refused.text() == "authentication required"
    assert anonymous.request.get("/metrics").status == 401
    anonymous.close()
    wrong = browser.new_context(
        base_url=cluster.url, http_credentials={"username": USER, "password": "nope"}
    )
    assert wrong.request.get("/").status == 401
    wrong.close()


def test_every_page_works_with_100000_stored_events(
    page: Any, cluster: Cluster, app: Conveyor
) -> None:
    """The pages render, search and page through a long history. How fast they paint
    (the aim: under a second) is measured by benchmarks/dashboard_paint.py, not here."""
    store_bulk_events(app)
    for path, title in PAGES.items():
        assert first_paint_ms(page, path) >= 0
        assert page.locator("h1").inner_text() == title, path
    # The newest task: Redis's text search reads the newest first, within a time budget.
    first_paint_ms(page, "/tasks?q=24999")
    found = page.locator("table.tasks td.args").all_inner_texts()
    assert found and all("(24999,)" in args for args in found)
    first_paint_ms(page, "/tasks?name=bulk.task3&page=3")
    names = page.locator("table.tasks tbody tr td:first-child").all_inner_texts()
    assert names and set(names) == {"bulk.task3"}
    assert "page 3" in page.locator("p.pager").inner_text()
    page.goto("/")
    page.wait_for_timeout(500)  # the charts draw after the page
    _shot(page, cluster, "overview-100k")
