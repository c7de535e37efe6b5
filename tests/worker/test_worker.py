from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor, Task, states
from conveyor.app.exceptions import NotRegistered, SoftTimeLimitExceeded, TaskRevokedError
from conveyor.core.errors import EncodeError
from conveyor.core.message import Message
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


class Boom(Exception):
    pass


def test_add_runs_and_stores_success(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    start_worker()
    result = add.delay(4, 4)
    assert result.get(timeout=5) == 8
    assert result.state == states.SUCCESS and result.successful() and result.ready()


def test_failure_propagates_with_type_message_and_traceback(
    app: Conveyor, start_worker: StartWorker
) -> None:
    @app.task
    def explode() -> None:
        raise Boom("kaboom")

    @app.task
    def divide() -> float:
        return 1 / 0

    start_worker()
    result = explode.delay()
    with pytest.raises(Boom, match="kaboom"):
        result.get(timeout=5)
    assert result.failed() and isinstance(result.result, Boom)
    assert "raise Boom" in (result.traceback or "")
    with pytest.raises(ZeroDivisionError):
        divide.delay().get(timeout=5)
    assert isinstance(divide.delay().get(timeout=5, propagate=False), ZeroDivisionError)


def test_hooks_run_after_the_state_is_stored(app: Conveyor, start_worker: StartWorker) -> None:
    seen: list[tuple[Any, ...]] = []

    class Hooked(Task):
        def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
            seen.append(("success", retval, app.AsyncResult(task_id).state, tuple(args)))

        def on_failure(
            self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
        ) -> None:
            seen.append(
                (
                    "failure",
                    type(exc).__name__,
                    app.AsyncResult(task_id).state,
                    "Boom" in einfo.traceback,
                )
            )

        def after_return(
            self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
        ) -> None:
            seen.append(("after", status))

    @app.task(base=Hooked)
    def good(x: int) -> int:
        return x * 2

    @app.task(base=Hooked)
    def bad() -> None:
        raise Boom("no")

    start_worker(concurrency=1)
    good.delay(21).get(timeout=5)
    assert wait_until(lambda: len(seen) == 2, 5)
    with pytest.raises(Boom):
        bad.delay().get(timeout=5)
    assert wait_until(lambda: len(seen) == 4, 5)
    assert seen == [
        ("success", 42, states.SUCCESS, (21,)),
        ("after", states.SUCCESS),
        ("failure", "Boom", states.FAILURE, True),
        ("after", states.FAILURE),
    ]


def test_bound_request_fields(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task(bind=True)
    def describe(self: Task, a: int, b: int = 0) -> dict[str, Any]:
        r = self.request
        return {
            "id": r.id,
            "args": list(r.args),
            "kwargs": r.kwargs,
            "retries": r.retries,
            "hostname": r.hostname,
            "queue": r.delivery_info["queue"],
            "root_id": r.root_id,
            "parent_id": r.parent_id,
            "delivery_count": r.delivery_count,
            "expires": r.expires,
            "eta": r.eta,
            "called_directly": r.called_directly,
        }

    worker = start_worker()
    result = describe.apply_async((1,), {"b": 2}, expires=60)
    info = result.get(timeout=5)
    assert info["id"] == result.id and info["root_id"] == result.id
    assert (info["args"], info["kwargs"], info["retries"]) == ([1], {"b": 2}, 0)
    assert info["hostname"] == worker.hostname and info["queue"] == "default"
    assert info["parent_id"] is None and info["delivery_count"] == 1
    assert info["expires"] is not None and info["eta"] is None
    assert info["called_directly"] is False


def test_subtasks_record_parent_and_root(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task(bind=True)
    def child(self: Task) -> list[str | None]:
        return [self.request.parent_id, self.request.root_id]

    @app.task(bind=True)
    def parent(self: Task) -> str:
        return child.delay().id

    start_worker()
    top = parent.delay()
    child_id = top.get(timeout=5)
    assert app.AsyncResult(child_id).get(timeout=5) == [top.id, top.id]


def test_progress_is_reported_through_on_message(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task(bind=True)
    def crunch(self: Task) -> str:
        for step in (1, 2, 3):
            self.update_state(state="PROGRESS", meta={"step": step})
            time.sleep(0.05)
        return "done"

    start_worker()
    bodies: list[dict[str, Any]] = []
    result = crunch.delay()
    assert result.get(timeout=5, on_message=bodies.append) == "done"
    progress = [b["result"]["step"] for b in bodies if b["status"] == "PROGRESS"]
    assert progress == [1, 2, 3]
    assert bodies[-1]["status"] == states.SUCCESS and bodies[-1]["result"] == "done"


def test_then_fires_from_the_shared_waiter(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task
    def square(x: int) -> int:
        return x * x

    got: dict[int, tuple[int, str]] = {}
    done = threading.Event()
    results = [square.delay(n) for n in range(5)]
    for n, result in enumerate(results):
        result.then(
            lambda r, n=n: (
                got.__setitem__(n, (r.result, threading.current_thread().name)),
                len(got) == 5 and done.set(),
            )
        )
    start_worker()
    assert done.wait(5)
    assert {n: v for n, (v, _) in got.items()} == {n: n * n for n in range(5)}
    assert {thread for _, thread in got.values()} == {"conveyor-waiter"}


def test_retry_with_countdown_then_success(app: Conveyor, start_worker: StartWorker) -> None:
    attempts: list[float] = []
    retried: list[str] = []

    class Tracking(Task):
        def on_retry(
            self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
        ) -> None:
            retried.append(type(exc).__name__)

    @app.task(bind=True, base=Tracking)
    def flaky(self: Task) -> int:
        attempts.append(time.monotonic())
        if self.request.retries < 2:
            raise self.retry(exc=Boom("again"), countdown=0.3)
        return self.request.retries

    start_worker()
    states_seen: list[str] = []
    result = flaky.delay()
    assert result.get(timeout=10, on_message=lambda b: states_seen.append(b["status"])) == 2
    assert len(attempts) == 3 and retried == ["Boom", "Boom"]
    assert all(b - a >= 0.28 for a, b in itertools.pairwise(attempts)), "countdown is honoured"
    assert states.RETRY in states_seen


def test_retries_exhausted_end_in_failure_with_the_last_error(
    app: Conveyor, start_worker: StartWorker
) -> None:
    calls: list[int] = []

    @app.task(bind=True, max_retries=2)
    def always(self: Task) -> None:
        calls.append(self.request.retries)
        raise self.retry(exc=Boom(f"attempt {self.request.retries}"), countdown=0.01)

    start_worker()
    with pytest.raises(Boom, match="attempt 2"):
        always.delay().get(timeout=10)
    assert calls == [0, 1, 2]


def test_autoretry_with_backoff(app: Conveyor, start_worker: StartWorker) -> None:
    calls: list[int] = []

    @app.task(
        bind=True, autoretry_for=(Boom,), retry_backoff=0.05, retry_jitter=False, max_retries=3
    )
    def shaky(self: Task) -> str:
        calls.append(self.request.retries)
        if len(calls) < 3:
            raise Boom("transient")
        return "ok"

    @app.task(autoretry_for=(Boom,), max_retries=1, retry_backoff=0.01)
    def hopeless() -> None:
        raise Boom("permanent")

    @app.task(autoretry_for=(Boom,), retry_backoff=0.01)
    def other_error() -> None:
        raise KeyError("not retried")

    start_worker()
    assert shaky.delay().get(timeout=10) == "ok" and calls == [0, 1, 2]
    with pytest.raises(Boom, match="permanent"):
        hopeless.delay().get(timeout=10)
    with pytest.raises(KeyError):
        other_error.delay().get(timeout=10)


def test_expired_task_is_revoked_not_run(app: Conveyor, start_worker: StartWorker) -> None:
    ran: list[int] = []

    @app.task
    def late() -> None:
        ran.append(1)

    result = late.apply_async(expires=0.2)  # (an expires before its eta is refused)
    expired_at = time.monotonic() + 0.3
    assert wait_until(lambda: time.monotonic() > expired_at, 2)
    start_worker()
    with pytest.raises(TaskRevokedError):
        result.get(timeout=5)
    assert result.state == states.REVOKED and ran == []


def test_revoke_is_durable_and_honoured_by_a_later_worker(
    app: Conveyor, start_worker: StartWorker
) -> None:
    ran: list[int] = []

    @app.task
    def victim() -> None:
        ran.append(1)

    @app.task
    def marker() -> str:
        return "after"

    result = victim.delay()
    result.revoke()
    app.control.revoke(victim.delay().id)
    after = marker.delay()
    start_worker(concurrency=1)
    assert after.get(timeout=5) == "after"
    assert result.state == states.REVOKED and ran == []
    assert app.transport.size("default") == 0, "revoked messages are acked"


def test_revoke_terminate_stops_a_running_thread_task(
    app: Conveyor, start_worker: StartWorker
) -> None:
    started = threading.Event()
    stopped = threading.Event()

    @app.task
    def spin() -> None:
        started.set()
        try:
            while True:
                time.sleep(0.01)
        finally:
            stopped.set()

    start_worker()
    result = spin.delay()
    assert started.wait(5)
    result.revoke(terminate=True)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=5)
    # The stored REVOKED alone satisfies get(): the task itself must have been stopped.
    assert stopped.wait(5), "terminate did not stop the running task"
    assert wait_until(lambda: app.transport.size("default") == 0, 5)


def test_soft_time_limit_raises_inside_the_task(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task(soft_time_limit=0.2)
    def slow() -> str:
        try:
            while True:
                time.sleep(0.01)
        except SoftTimeLimitExceeded:
            return "cleaned up"

    start_worker()
    assert slow.delay().get(timeout=5) == "cleaned up"


def _publish_raw(
    app: Conveyor, body: bytes, content_type: str = "application/json", task_id: str | None = None
) -> Message:
    message = Message(body, content_type=content_type, correlation_id=task_id)
    app.transport.publish("default", message)
    return message


def test_poison_messages_are_dead_lettered_with_a_reason(
    app: Conveyor, start_worker: StartWorker
) -> None:
    @app.task
    def ok() -> str:
        return "fine"

    sent = {
        "u1": _publish_raw(app, json.dumps({"v": 1, "id": "u1", "task": "no.such"}).encode()),
        "m1": _publish_raw(app, b"{not json", task_id="m1"),
        "v9": _publish_raw(app, json.dumps({"v": 9, "id": "v9", "task": "x"}).encode()),
        "p1": _publish_raw(
            app, b"\x80\x04", content_type="application/x-python-serialize", task_id="p1"
        ),
        "list": _publish_raw(app, json.dumps([1, 2]).encode()),
    }
    start_worker()
    assert ok.delay().get(timeout=5) == "fine", "the worker survives poison"
    assert wait_until(lambda: len(app.transport.dead_letters("default")) == 5, 5)
    by_message = {d.message.id: d.reason for d in app.transport.dead_letters("default")}
    reasons = {key: by_message[message.id] for key, message in sent.items()}
    assert "NotRegistered" in reasons["u1"] and "no.such" in reasons["u1"]
    assert "DecodeError" in reasons["m1"]
    assert "version" in reasons["v9"]
    assert "ContentDisallowed" in reasons["p1"]
    assert "must be an object" in reasons["list"]
    for task_id in ("u1", "m1", "v9", "p1"):
        record = app.AsyncResult(task_id)
        assert record.state == states.FAILURE, task_id


def test_unknown_task_failure_is_readable(app: Conveyor, start_worker: StartWorker) -> None:
    result = app.send_task("missing.task")
    start_worker()
    with pytest.raises(NotRegistered, match=r"missing\.task"):
        result.get(timeout=5)


def test_unencodable_return_value_is_a_failure(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task
    def returns_object() -> object:
        return object()

    start_worker()
    with pytest.raises(EncodeError, match="not JSON"):
        returns_object.delay().get(timeout=5)


def test_link_and_link_error(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def fail() -> None:
        raise Boom("x")

    @app.task
    def record(value: Any, tag: str) -> list[Any]:
        return [value, tag]

    start_worker()
    linked = record.s("ok")
    linked.set(task_id="cb-1")
    add.apply_async((2, 3), link=linked)
    assert app.AsyncResult("cb-1").get(timeout=5) == [5, "ok"]
    errback = record.s("err").set(task_id="eb-1")
    failed = fail.apply_async(link_error=errback)
    assert app.AsyncResult("eb-1").get(timeout=5) == [failed.id, "err"]
    assert app.AsyncResult("cb-1").get() == [5, "ok"]


def test_acks_late_false_acks_before_running(app: Conveyor, start_worker: StartWorker) -> None:
    release = threading.Event()
    running = threading.Event()

    @app.task(acks_late=False)
    def early() -> None:
        running.set()
        release.wait(5)

    worker = start_worker(concurrency=1)
    early.delay()
    assert running.wait(5)
    assert worker.consumer.held == 0, "the message was acked before the task finished"
    release.set()


def test_acks_late_holds_the_message_until_the_result_is_stored(
    app: Conveyor, start_worker: StartWorker
) -> None:
    release = threading.Event()
    running = threading.Event()

    @app.task
    def late() -> None:
        running.set()
        release.wait(5)

    worker = start_worker(concurrency=1)
    result = late.delay()
    assert running.wait(5)
    assert worker.consumer.held == 1
    release.set()
    result.get(timeout=5)
    assert wait_until(lambda: worker.consumer.held == 0, 5)


def test_warm_shutdown_finishes_running_and_returns_prefetched(
    app: Conveyor, start_worker: StartWorker
) -> None:
    running = threading.Event()

    @app.task
    def hold(n: int) -> int:
        running.set()
        time.sleep(0.3)
        return n

    results = [hold.delay(n) for n in range(4)]
    worker = start_worker(concurrency=1, prefetch_multiplier=4)
    assert running.wait(5)
    assert wait_until(lambda: worker.consumer.held == 4, 5)
    worker.stop()
    done = [r for r in results if r.state == states.SUCCESS]
    assert len(done) == 1, "only the running task finished"
    assert app.transport.size("default") == 3, "prefetched work went back to the broker"


def test_track_started(app: Conveyor, start_worker: StartWorker) -> None:
    running = threading.Event()
    release = threading.Event()

    @app.task(track_started=True)
    def tracked() -> None:
        running.set()
        release.wait(5)

    start_worker()
    result = tracked.delay()
    assert running.wait(5)
    assert result.state == states.STARTED
    release.set()
    result.get(timeout=5)


def test_countdown_is_honoured_by_the_worker(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task
    def stamp() -> float:
        return time.time()

    start_worker()
    sent = time.time()
    assert stamp.apply_async(countdown=0.5).get(timeout=5) - sent >= 0.45


def test_solo_pool(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task
    def mul(x: int, y: int) -> int:
        return x * y

    start_worker(pool="solo")
    assert [mul.delay(n, n).get(timeout=5) for n in range(3)] == [0, 1, 4]


def test_ignore_result_stores_nothing(app: Conveyor, start_worker: StartWorker) -> None:
    done = threading.Event()

    @app.task(ignore_result=True)
    def quiet() -> int:
        done.set()
        return 1

    start_worker()
    result = quiet.delay()
    assert done.wait(5)
    assert wait_until(lambda: app.transport.size("default") == 0, 5)
    assert not result.exists() and result.state == states.UNKNOWN


def test_a_retried_task_keeps_its_own_parent(app: Conveyor, start_worker: StartWorker) -> None:
    @app.task(bind=True)
    def retry_once(self: Task) -> list[Any]:
        if self.request.retries == 0:
            raise self.retry(countdown=0.01)
        return [self.request.id, self.request.parent_id, self.request.root_id]

    start_worker()
    result = retry_once.delay()
    assert result.get(timeout=5) == [result.id, None, result.id]


def test_msgpack_when_accepted(app: Conveyor, start_worker: StartWorker) -> None:
    app.conf.update(task_serializer="msgpack", accept_content=["json", "msgpack"])

    @app.task
    def echo(value: Any) -> Any:
        return value

    result = echo.delay({"bytes": "ok", "n": [1, 2]})
    (peek,) = app.transport.fetch("default", max_messages=1, timeout=1.0)
    assert peek.message.content_type == "application/x-msgpack"
    peek.nack(requeue=True)
    start_worker()
    assert result.get(timeout=5) == {"bytes": "ok", "n": [1, 2]}
    assert echo.apply_async((1,), serializer="json").get(timeout=5) == 1


def test_inspect_over_broadcast(app: Conveyor, start_worker: StartWorker) -> None:
    running = threading.Event()
    release = threading.Event()

    @app.task
    def hold() -> None:
        running.set()
        release.wait(5)

    worker = start_worker()
    assert wait_until(
        lambda: app.control.inspect(timeout=0.2).ping() == {worker.hostname: {"ok": "pong"}}, 5
    )
    assert app.control.inspect().registered() == {worker.hostname: [hold.name]}
    result = hold.delay()
    assert running.wait(5)
    (active,) = app.control.inspect().active()[worker.hostname]
    assert (active["id"], active["name"]) == (result.id, hold.name)
    release.set()


def test_warm_shutdown_timeout_returns_the_running_message(
    app: Conveyor, start_worker: StartWorker
) -> None:
    running = threading.Event()
    release = threading.Event()

    @app.task
    def stuck() -> None:
        running.set()
        release.wait(10)

    worker = start_worker(concurrency=1, shutdown_timeout=0.2)
    result = stuck.delay()
    assert running.wait(5)
    worker.stop()
    assert not result.ready()
    assert app.transport.size("default") == 1, "the unfinished message went back"
    release.set()


def test_ready_means_the_queue_exists_on_rabbitmq(
    amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A producer that publishes after the ready line is not dropped by RabbitMQ's default
    exchange: the queue is declared before it (here with the consumer held back)."""
    import uuid

    import pika

    queue = f"ready-{uuid.uuid4().hex[:8]}"
    app = Conveyor("ready", broker=amqp_url, backend="memory://ready")
    worker = Worker(app, queues=[queue], concurrency=1, shutdown_timeout=5.0)

    def held_back() -> threading.Thread:
        thread = threading.Thread(target=lambda: None)
        thread.start()
        return thread

    monkeypatch.setattr(worker.consumer, "start", held_back)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url.rstrip("/") + "/%2F"))
    try:
        worker.start()
        connection.channel().queue_declare(queue, passive=True)  # raises when it is missing
    finally:
        connection.close()
        worker.stop()
        app.transport.delete(queue)
        app.close()
