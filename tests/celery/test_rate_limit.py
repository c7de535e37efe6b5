"""Rate limits in Celery's syntax: parsed at declaration, a bad one refused there."""

from __future__ import annotations

import pytest

from conveyor import Conveyor
from conveyor.app.rate_limit import InvalidRateLimit, TokenBucket, parse_rate
from conveyor.core.errors import ConfigurationError


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("10/s", 10.0),
        ("100/m", 100 / 60),
        ("1000/h", 1000 / 3600),
        ("5", 5.0),
        (" 2 / m ", 2 / 60),
        ("0.5/s", 0.5),
        (3, 3.0),
        (0.25, 0.25),
    ],
)
def test_rates_in_celery_syntax(text: str | float, per_second: float) -> None:
    rate = parse_rate(text)
    assert rate is not None
    assert rate.per_second == pytest.approx(per_second)
    assert rate.text == str(text)


@pytest.mark.parametrize("value", [None, "", "0", "0/s", 0])
def test_no_limit(value: str | int | None) -> None:
    assert parse_rate(value) is None


@pytest.mark.parametrize("value", ["10/x", "ten/s", "10/", "/s", "-1/s", "10/s/m"])
def test_bad_rate_names_the_value(value: str) -> None:
    with pytest.raises(InvalidRateLimit, match="rate limit") as caught:
        parse_rate(value)
    assert repr(value) in str(caught.value)
    assert isinstance(caught.value, ConfigurationError)


def test_wrong_type_and_negative_number() -> None:
    with pytest.raises(InvalidRateLimit, match="list"):
        parse_rate([10])  # type: ignore[arg-type]
    with pytest.raises(InvalidRateLimit, match="negative"):
        parse_rate(-2)


def test_task_keeps_its_rate_limit(app: Conveyor) -> None:
    @app.task(rate_limit="10/m")
    def slow() -> None: ...

    assert slow.rate_limit == "10/m"
    rate = parse_rate(slow.rate_limit)
    assert rate is not None and rate.per_second == pytest.approx(1 / 6)


def test_task_with_bad_rate_limit_is_refused(app: Conveyor) -> None:
    with pytest.raises(InvalidRateLimit, match="'10/day'"):

        @app.task(rate_limit="10/day")
        def bad() -> None: ...

    assert not any(name.endswith(".bad") for name in app.tasks)


def test_bucket_allows_a_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, capacity=2.0)
    assert bucket.take() == 0.0
    assert bucket.take() == 0.0
    wait = bucket.take()
    assert 0.0 < wait <= 0.5


def test_bucket_from_a_slow_rate_holds_one_token() -> None:
    rate = parse_rate("1/h")
    assert rate is not None
    bucket = rate.bucket()
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(3600.0, rel=0.01)
