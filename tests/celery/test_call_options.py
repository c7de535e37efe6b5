"""Celery's apply_async options: mapped onto conveyor's message, or refused by name."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conveyor import Conveyor
from conveyor.app import protocol
from conveyor.app.call_options import InvalidCallOption, publish_backoff
from conveyor.app.exceptions import SoftTimeLimitExceeded
from conveyor.core.errors import BrokerUnavailable, DecodeError, EncodeError
from conveyor.core.message import Message
from conveyor.core.retry import Backoff, call_with_retry
from conveyor.worker.worker import Worker
from tests.celery.conftest import fetch_message, fetch_task


def test_unknown_option_raises_naming_it(app: Conveyor) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(TypeError, match="quue"):
        add.apply_async((1, 2), quue="fast")
    assert app.transport.size("default") == 0


def test_time_limits_and_shadow_travel_in_headers(app: Conveyor) -> None:
    @app.task
    def work() -> None: ...

    work.apply_async(time_limit=30, soft_time_limit=20.5, shadow="work[user 7]")
    headers = fetch_message(app).headers
    assert headers["timelimit"] == [30.0, 20.5]
    assert headers["shadow"] == "work[user 7]"
    work.apply_async(soft_time_limit=5)
    assert fetch_message(app).headers["timelimit"] == [None, 5.0]
    work.apply_async()
    assert "timelimit" not in fetch_message(app).headers


def test_per_call_soft_limit_reaches_the_worker(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def slow() -> str:
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.01)
        except SoftTimeLimitExceeded:
            return "stopped"
        return "ran out"

    result = slow.apply_async(soft_time_limit=0.2)
    start_worker()
    assert result.get(timeout=10) == "stopped"


@pytest.mark.parametrize(
    ("option", "value"),
    [("time_limit", 0), ("soft_time_limit", "10"), ("shadow", ""), ("reply_to", 5)],
)
def test_bad_option_values_are_refused_by_name(app: Conveyor, option: str, value: object) -> None:
    @app.task
    def work() -> None: ...

    with pytest.raises(InvalidCallOption, match=option):
        work.apply_async(**{option: value})  # type: ignore[arg-type]
    assert app.transport.size("default") == 0
    assert app.backend.get_many([]) == {}


def test_routing_key_and_exchange_name_the_queue(app: Conveyor) -> None:
    @app.task
    def work() -> None: ...

    work.apply_async(routing_key="images")
    assert fetch_task(app, "images").task == work.name
    work.apply_async(exchange="video")
    assert fetch_task(app, "video").task == work.name
    work.apply_async(exchange="media", routing_key="audio")
    assert fetch_task(app, "audio").task == work.name
    work.apply_async(queue="explicit", routing_key="ignored")
    assert fetch_task(app, "explicit").task == work.name


def test_route_with_celery_routing_key(app: Conveyor) -> None:
    app.conf.task_routes = {"tests.*": {"exchange": "feeds", "routing_key": "feeds.import"}}

    @app.task(name="tests.feed")
    def feed() -> None: ...

    feed.delay()
    assert fetch_task(app, "feeds.import").task == "tests.feed"


def test_reply_to_is_the_message_property(app: Conveyor) -> None:
    @app.task
    def work() -> None: ...

    work.apply_async(reply_to="answers")
    assert fetch_message(app).reply_to == "answers"


def test_zlib_compressed_body_round_trips(app: Conveyor) -> None:
    @app.task
    def echo(text: str) -> str:
        return text

    text = "conveyor " * 1000
    echo.apply_async((text,), compression="zlib")
    message = fetch_message(app)
    assert message.headers["compression"] == "application/zlib"
    assert len(message.body) < len(text) / 10
    assert b"conveyor" in zlib.decompress(message.body)
    assert message.content_type == "application/json"
    assert protocol.decode(message, app.serializer).args == [text]


@pytest.mark.parametrize("method", ["gzip", "bzip2", "lzma"])
def test_other_methods_round_trip(app: Conveyor, method: str) -> None:
    @app.task
    def echo(text: str) -> str:
        return text

    echo.apply_async(("x" * 500,), compression=method)
    assert fetch_task(app).args == ["x" * 500]


def test_task_and_setting_compression_defaults(app: Conveyor) -> None:
    @app.task(compression="zlib")
    def packed() -> None: ...

    @app.task
    def plain() -> None: ...

    packed.delay()
    assert fetch_message(app).headers["compression"] == "application/zlib"
    plain.delay()
    assert "compression" not in fetch_message(app).headers
    app.conf.task_compression = "bzip2"
    plain.delay()
    assert fetch_message(app).headers["compression"] == "application/x-bz2"


def test_unknown_compression_is_refused_before_sending(app: Conveyor) -> None:
    @app.task
    def work() -> None: ...

    with pytest.raises(EncodeError, match="'brotli'"):
        work.apply_async(compression="brotli")
    assert app.transport.size("default") == 0


def test_a_compression_bomb_is_refused(app: Conveyor) -> None:
    body = zlib.compress(b"[" + b" " * (app.serializer.max_size + 10) + b"]")
    message = Message(body=body, headers={"compression": "application/zlib"})
    with pytest.raises(DecodeError, match="expands past the limit"):
        protocol.decode(message, app.serializer)
    with pytest.raises(DecodeError, match="unknown compression"):
        protocol.decode(Message(body=b"{}", headers={"compression": "x/y"}), app.serializer)
    with pytest.raises(DecodeError, match="cannot decompress"):
        protocol.decode(
            Message(body=b"nope", headers={"compression": "application/zlib"}), app.serializer
        )


def test_compressed_task_runs_on_a_worker(
    app: Conveyor, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def length(text: str) -> int:
        return len(text)

    result = length.apply_async(("y" * 5000,), compression="zlib")
    start_worker()
    assert result.get(timeout=10) == 5000


def test_retry_policy_is_celery_linear_backoff() -> None:
    backoff = publish_backoff(True, {"max_retries": 2, "interval_start": 0, "interval_step": 0.01})
    assert backoff is not None and backoff.retries == 2
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise BrokerUnavailable("down")

    with pytest.raises(BrokerUnavailable, match="2 retries"):
        call_with_retry(down, backoff, "publish")
    assert len(calls) == 3
    assert publish_backoff(False, None) == Backoff(retries=0)
    assert publish_backoff(None, None) is None
    assert publish_backoff(True, None) is None


@pytest.mark.parametrize(
    ("retry", "policy", "match"),
    [
        ("yes", None, "retry must be"),
        (True, {"max_retry": 1}, "max_retry"),
        (True, {"max_retries": -1}, "max_retries"),
        (True, {"interval_step": "soon"}, "intervals"),
        (True, {"retry_errors": (OSError,)}, "retry_errors"),
        (True, [1], "dict"),
    ],
)
def test_bad_retry_policy(retry: object, policy: object, match: str) -> None:
    with pytest.raises(InvalidCallOption, match=match):
        publish_backoff(retry, policy)


def test_retry_false_publishes_once_on_a_down_broker() -> None:
    app = Conveyor("down", broker="redis://127.0.0.1:1/0", backend="memory://down")

    @app.task
    def work() -> None: ...

    try:
        with pytest.raises(BrokerUnavailable, match="0 retries"):
            work.apply_async(retry=False, ignore_result=True)
    finally:
        app.close()


def test_naive_eta_is_in_the_app_timezone(app: Conveyor) -> None:
    # One hour ahead on a UTC wall clock is thirteen hours past in UTC+14.
    app.conf.timezone = "Etc/GMT-14"

    @app.task
    def work() -> None: ...

    naive = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=1)
    work.apply_async(eta=naive)
    assert fetch_task(app).eta is not None
    app.conf.timezone = "UTC"
    work.apply_async(eta=naive)
    assert app.transport.fetch("default", max_messages=1, timeout=0) == []


def test_naive_expires_is_in_the_app_timezone(app: Conveyor) -> None:
    app.conf.timezone = "Asia/Tokyo"

    @app.task
    def work() -> None: ...

    naive = datetime(2030, 1, 1, 9, 0)
    work.apply_async(expires=naive)
    expires = fetch_task(app).expires
    assert expires is not None
    assert protocol.parse_time(expires) == naive.replace(tzinfo=ZoneInfo("Asia/Tokyo")).timestamp()
