from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from conveyor import Conveyor, Task, states
from conveyor.app import protocol
from conveyor.core.errors import EncodeError
from conveyor.testing.waiting import wait_until


def _fetch_one(app: Conveyor, queue: str = "default") -> protocol.TaskMessage:
    (delivery,) = app.transport.fetch(queue, max_messages=1, timeout=1.0)
    delivery.ack()
    return protocol.decode(delivery.message, app.serializer)


def test_task_decorator_registers_under_module_and_function_name(app: Conveyor) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    assert add.name == f"{__name__}.add"
    assert app.tasks[add.name] is add
    assert isinstance(add, Task)
    assert add(2, 3) == 5


def test_task_options_and_bound_tasks(app: Conveyor) -> None:
    class Base(app.Task):
        marker = "base"

    @app.task(bind=True, base=Base, name="custom.name", queue="q1", max_retries=7, acks_late=False)
    def who(self: Task) -> str:
        return f"{self.name}:{type(self).marker}"  # type: ignore[attr-defined]

    assert who() == "custom.name:base" and isinstance(who, Task)
    assert (who.queue, who.max_retries, who.acks_late) == ("q1", 7, False)
    with pytest.raises(TypeError, match="unknown task options: colour"):
        app.task(colour="blue")(lambda: None)


def test_delay_publishes_a_version_1_json_message_and_records_pending(app: Conveyor) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    result = add.delay(2, 2)
    assert result.state == states.PENDING and result.exists()
    (delivery,) = app.transport.fetch("default", max_messages=1, timeout=1.0)
    assert delivery.message.content_type == "application/json"
    assert delivery.message.correlation_id == result.id
    body = json.loads(delivery.message.body)
    assert body["v"] == 1
    assert (body["id"], body["task"], body["args"], body["kwargs"]) == (
        result.id,
        add.name,
        [2, 2],
        {},
    )
    assert body["retries"] == 0 and body["root_id"] == result.id and body["parent_id"] is None


def test_apply_async_options_reach_the_message(app: Conveyor) -> None:
    @app.task
    def echo(value: object) -> object:
        return value

    expires_at = datetime.now(timezone.utc) + timedelta(hours=1)
    result = echo.apply_async(
        ("a",),
        {},
        queue="other",
        priority=5,
        headers={"trace": "t1"},
        expires=expires_at,
        task_id="fixed-id",
        link=echo.s(),
        link_error=echo.si("failed"),
        ignore_result=True,
    )
    assert result.id == "fixed-id"
    assert not result.exists(), "ignore_result stores nothing"
    (delivery,) = app.transport.fetch("other", max_messages=1, timeout=1.0)
    assert delivery.message.priority == 5
    assert delivery.message.headers == {"trace": "t1"}
    body = protocol.decode(delivery.message, app.serializer)
    assert abs(protocol.parse_time(body.expires or "") - expires_at.timestamp()) < 0.001
    # Each callback gets its own task id, so one resent after a crash is the same task.
    (callback,) = body.callbacks
    assert callback["options"].pop("task_id")
    assert callback == {
        "task": echo.name,
        "args": [],
        "kwargs": {},
        "options": {},
        "immutable": False,
    }
    assert body.errbacks[0]["immutable"] is True and body.errbacks[0]["args"] == ["failed"]
    assert body.ignore_result is True


def test_countdown_is_a_broker_side_delay(app: Conveyor) -> None:
    @app.task
    def noop() -> None: ...

    sent = time.time()
    noop.apply_async(countdown=0.5)
    assert app.transport.size("default") == 0, "the message must wait in the broker"
    assert wait_until(lambda: app.transport.size("default") == 1, timeout=3.0)
    assert time.time() - sent >= 0.45
    body = _fetch_one(app)
    assert protocol.parse_time(body.eta or "") == pytest.approx(sent + 0.5, abs=0.05)


def test_eta_in_the_past_is_sent_now(app: Conveyor) -> None:
    @app.task
    def noop() -> None: ...

    noop.apply_async(eta=datetime.now(timezone.utc) - timedelta(seconds=10))
    assert app.transport.size("default") == 1


def test_unserializable_arguments_raise_encode_error_and_send_nothing(app: Conveyor) -> None:
    @app.task
    def take(value: object) -> None: ...

    with pytest.raises(EncodeError):
        take.delay(object())
    with pytest.raises(EncodeError):
        take.apply_async(kwargs={"value": {1, 2}})
    assert app.transport.size("default") == 0
    assert app.backend.get("anything") is None


def test_routing_order(app: Conveyor) -> None:
    app.conf.task_routes = {"images.*": {"queue": "images"}, "exact.name": "exact"}

    @app.task(name="images.resize")
    def resize() -> None: ...

    @app.task(name="exact.name")
    def exact() -> None: ...

    @app.task(name="plain", queue="own")
    def plain() -> None: ...

    @app.task(name="fallback")
    def fallback() -> None: ...

    resize.delay()
    exact.delay()
    plain.delay()
    fallback.delay()
    resize.apply_async(queue="forced")
    sizes = {q: app.transport.size(q) for q in ("images", "exact", "own", "default", "forced")}
    assert sizes == {"images": 1, "exact": 1, "own": 1, "default": 1, "forced": 1}


def test_callable_route(app: Conveyor) -> None:
    app.conf.task_routes = [lambda name, args, kwargs, options: "big" if args[0] > 10 else None]

    @app.task
    def work(n: int) -> None: ...

    work.delay(50)
    work.delay(1)
    assert (app.transport.size("big"), app.transport.size("default")) == (1, 1)


def test_send_task_by_name_needs_no_local_task(app: Conveyor) -> None:
    result = app.send_task("remote.only", [1], {"k": 2})
    body = _fetch_one(app)
    assert (body.id, body.task, body.args, body.kwargs) == (result.id, "remote.only", [1], {"k": 2})
