"""The dashboard over HTTP in-process (Starlette's TestClient): security, actions, metrics.

The browser tests (test_dashboard_browser.py) drive the same app in real processes.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from conveyor import Conveyor
from conveyor.app.events import FALLBACK_STORE, store_url
from conveyor.backends.events import TaskQuery, open_store
from conveyor.core.errors import ConfigurationError
from conveyor.core.message import Message
from conveyor.monitoring.dashboard.app import create_app
from conveyor.monitoring.dashboard.security import CSRF_COOKIE, Auth, check_binding
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

PAGES = ["/", "/workers", "/queues", "/tasks", "/dead", "/schedules", "/metrics"]
BASIC = "Basic " + base64.b64encode(b"admin:s3cret-pass").decode()


@pytest.fixture
def app() -> Iterator[Conveyor]:
    name = uuid.uuid4().hex
    application = Conveyor("tests", broker=f"memory://{name}", backend=f"memory://{name}")

    @application.task(name="dash.add")
    def add(x: int, y: int) -> int:
        return x + y

    @application.task(name="dash.fail")
    def fail() -> None:
        raise ValueError("no")

    yield application
    application.close()


@pytest.fixture
def worker(app: Conveyor) -> Iterator[Worker]:
    running = Worker(app, concurrency=2, shutdown_timeout=5.0, hostname="w@dash")
    running.start()
    yield running
    running.stop()


def _client(app: Conveyor, **options: object) -> TestClient:
    return TestClient(create_app(app, **options), base_url="http://127.0.0.1:5555")  # type: ignore[arg-type]


def _csrf(client: TestClient) -> dict[str, str]:
    client.get("/")
    return {"X-CSRF-Token": client.cookies[CSRF_COOKIE]}


def test_every_page_answers_without_urls_or_passwords(app: Conveyor, worker: Worker) -> None:
    done = app.tasks["dash.add"].delay(1, 2)
    done.get(timeout=5)
    store = app.events.store
    flushed = lambda: app.events.flush() >= 0 and len(store.timeline(done.id)) == 4  # noqa: E731
    assert wait_until(flushed, 5)
    with _client(app) as client:
        for path in PAGES:
            response = client.get(path)
            assert response.status_code == 200, path
            assert "memory://" not in response.text, path
        (row,) = app.events.store.tasks(TaskQuery(name="dash.add"))
        page = client.get(f"/tasks/{row.task_id}")
        assert page.status_code == 200 and "task-succeeded" in page.text
        assert client.get(f"/tasks/{uuid.uuid4()}").status_code == 200  # the "not found" page


def test_credentials_are_required_when_configured(app: Conveyor) -> None:
    auth = Auth.from_options("admin:s3cret-pass", "a-bearer-token-of-some-length")
    with _client(app, auth=auth) as client:
        assert client.get("/tasks").status_code == 401
        assert (
            client.get("/tasks", headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="}).status_code
            == 401
        )
        assert client.get("/tasks", headers={"Authorization": BASIC}).status_code == 200
        bearer = {"Authorization": "Bearer a-bearer-token-of-some-length"}
        assert client.get("/metrics", headers=bearer).status_code == 200
        assert client.get("/static/dashboard.css").status_code == 200  # open: no secrets
        login = client.post(
            "/login", data={"token": "a-bearer-token-of-some-length"}, follow_redirects=False
        )
        assert login.status_code == 303
        assert client.get("/tasks").status_code == 200  # the cookie from /login


def test_binding_elsewhere_needs_an_auth_option() -> None:
    check_binding("127.0.0.1", None)
    check_binding("::1", None)
    with pytest.raises(ConfigurationError, match=r"refusing to serve the dashboard on 0\.0\.0\.0"):
        check_binding("0.0.0.0", None)
    check_binding("0.0.0.0", Auth.from_options("a:b", None))
    with pytest.raises(ConfigurationError, match="--basic-auth takes user:password"):
        Auth.from_options("nocolon", None)
    with pytest.raises(ConfigurationError, match="at least 16"):
        Auth.from_options(None, "short")


def test_actions_need_the_csrf_token_and_a_writable_dashboard(app: Conveyor) -> None:
    task_id = str(uuid.uuid4())
    with _client(app) as client:
        assert client.post(f"/tasks/{task_id}/revoke").status_code == 403
        assert app.backend.get(task_id) is None  # nothing was done
        other = {"Origin": "http://evil.example", **_csrf(client)}
        assert client.post(f"/tasks/{task_id}/revoke", headers=other).status_code == 403
        done = client.post(f"/tasks/{task_id}/revoke", headers=_csrf(client))
        assert done.status_code == 200, done.text
        record = app.backend.get(task_id)
        assert record is not None and record.state == "REVOKED"
    second = str(uuid.uuid4())
    with _client(app, read_only=True) as client:
        refused = client.post(f"/tasks/{second}/revoke", headers=_csrf(client))
        assert refused.status_code == 403 and "read-only" in refused.text
        assert "Revoke" not in client.get(f"/tasks/{task_id}").text
    assert app.backend.get(second) is None


def test_dead_letters_replay_from_the_page(app: Conveyor) -> None:
    queue = app.conf.task_default_queue
    app.transport.publish(queue, Message(b"{}", correlation_id="dead-one"))
    (delivery,) = app.transport.fetch(queue, max_messages=1, timeout=1.0)
    delivery.nack(requeue=False, reason="poisoned on purpose")
    with _client(app) as client:
        page = client.get("/dead")
        assert "poisoned on purpose" in page.text and delivery.message.id in page.text
        replay = client.post(
            f"/dead/{queue}/replay", params={"id": delivery.message.id}, headers=_csrf(client)
        )
        assert replay.status_code == 200 and "1 dead letter(s)" in replay.text
    assert app.transport.dead_letters(queue) == [] and app.transport.size(queue) == 1


def test_task_search_and_bad_search_input(app: Conveyor, worker: Worker) -> None:
    needle = uuid.uuid4().hex
    app.tasks["dash.add"].delay(needle, 1).get(timeout=5, propagate=False)
    app.tasks["dash.add"].delay(1, 2).get(timeout=5)
    with _client(app) as client:

        def rows(**params: str) -> int:
            app.events.flush()
            return client.get("/tasks", params=params).text.count('data-task="')

        assert wait_until(lambda: rows(state="FAILURE") == 1, 5)
        assert rows(q=needle) == 1 and rows(state="SUCCESS") == 1
        bad = client.get("/tasks", params={"state": "DONE"})
        assert bad.status_code == 400 and "unknown task state &#39;DONE&#39;" in bad.text
        assert client.get("/tasks", params={"since": "yesterday"}).status_code == 400
        assert client.get("/tasks", params={"page": "0"}).status_code == 400


def test_metrics_count_a_known_run(app: Conveyor, worker: Worker) -> None:
    with _client(app) as client:
        board = client.app.state.board  # type: ignore[attr-defined]
        wait_until(lambda: board.hub._thread is not None, 2)
        results = [app.tasks["dash.add"].delay(i, i) for i in range(3)]
        failed = app.tasks["dash.fail"].delay()
        assert [r.get(timeout=5) for r in results] == [0, 2, 4]
        failed.get(timeout=5, propagate=False)

        def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            text = client.get("/metrics").text
            return {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }

        def count(name: str, state: str) -> float:
            key = ("conveyor_tasks_total", (("name", name), ("state", state)))
            return samples().get(key, 0.0)

        assert wait_until(lambda: count("dash.fail", "FAILURE") == 1.0, 5)
        assert count("dash.add", "SUCCESS") == 3.0
        assert count("dash.add", "PENDING") == 3.0
        found = samples()
        runtime = ("conveyor_task_runtime_seconds_count", (("name", "dash.add"),))
        assert found[runtime] == 3.0
        assert found[("conveyor_queue_ready", (("queue", "default"),))] == 0.0
        assert found[("conveyor_worker_up", (("hostname", "w@dash"),))] == 1.0


def test_the_command_refuses_an_open_address_without_credentials() -> None:
    from click.testing import CliRunner

    from conveyor.cli import main

    runner = CliRunner()
    refused = runner.invoke(
        main, ["-A", "tests.monitoring.dash_tasks", "dashboard", "--address", "0.0.0.0"]
    )
    assert refused.exit_code != 0
    assert "refusing to serve the dashboard on 0.0.0.0" in refused.output
    short = runner.invoke(
        main, ["-A", "tests.monitoring.dash_tasks", "dashboard", "--auth-token", "abc"]
    )
    assert short.exit_code != 0 and "at least 16 characters" in short.output


def test_worker_buttons_reach_the_worker_and_show_its_answer(app: Conveyor, worker: Worker) -> None:
    with _client(app) as client:
        headers = _csrf(client)
        grow = client.post("/workers/w@dash/pool_grow", params={"n": "1"}, headers=headers)
        assert grow.status_code == 200 and "w@dash:" in grow.text, grow.text
        assert wait_until(lambda: worker.pool.concurrency == 3, 5)
        limited = client.post(
            "/workers/w@dash/rate_limit",
            data={"task": "dash.add", "rate": "10/s"},
            headers=headers,
        )
        assert limited.status_code == 200, limited.text
        refused = client.post(
            "/workers/w@dash/rate_limit",
            data={"task": "dash.add", "rate": "often"},
            headers=headers,
        )
        assert refused.status_code == 400 and "refused rate_limit" in refused.text
        missing = client.post("/workers/w@dash/rate_limit", headers=headers)
        assert missing.status_code == 400 and "needs a task name" in missing.text


def test_servers_that_fail_show_a_page_without_their_urls() -> None:
    name = uuid.uuid4().hex
    down = Conveyor(
        "tests",
        broker="redis://127.0.0.1:1/0",
        backend=f"memory://{name}",
        events_store_url="redis://:hunter2@127.0.0.1:1/0",
    )
    try:
        with _client(down) as client:
            for path in ("/", "/workers", "/tasks"):
                page = client.get(path)
                assert page.status_code == 503, path
                assert "Unavailable" in page.text
                assert "://" not in page.text.replace("http://", "") and "hunter2" not in page.text
            queues = client.get("/queues")  # the queues the history knows are left out
            assert queues.status_code == 200 and 'class="error"' in queues.text
            assert "redis://" not in queues.text and "url hidden" in queues.text
    finally:
        down.close()


def test_without_a_shared_history_the_dashboard_keeps_what_it_hears(
    amqp_url: str, memcached_url: str
) -> None:
    # RabbitMQ with Memcached: no store for the history, so each process keeps its own.
    sender = Conveyor("tests", broker=amqp_url, backend=memcached_url)
    board_app = Conveyor("tests", broker=amqp_url, backend=memcached_url)
    try:
        assert store_url(board_app.conf) == FALLBACK_STORE
        sender.events._store = open_store(f"memory://{uuid.uuid4().hex}")  # another process's
        task_id = str(uuid.uuid4())
        with _client(board_app) as client:
            rows = lambda: client.get("/tasks").text  # noqa: E731

            def heard() -> bool:
                sender.events.send("task-sent", uuid=task_id, name="far.away")
                sender.events.flush()  # again until the hub's subscription is in place
                return f'data-task="{task_id}"' in rows()

            assert wait_until(heard, 10, interval=0.3)
    finally:
        sender.close()
        board_app.close()
