"""Schedules: intervals, crontab fields and cron strings, wall times across daylight-saving
changes, solar events against a published table, and the errors that name the bad part."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from conveyor.beat import walltime
from conveyor.beat.errors import ScheduleError
from conveyor.schedules import crontab, schedule, solar

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def fire_times(when: object, start: datetime, end: datetime, tz: object) -> list[datetime]:
    """Every fire time in (start, end], walking next_after as beat does."""
    found, at = [], start
    while True:
        at = when.next_after(at, tz)  # type: ignore[attr-defined]
        if at is None or at > end:
            return found
        found.append(at)


def walls(times: list[datetime], tz: ZoneInfo) -> list[str]:
    return [t.astimezone(tz).strftime("%m-%d %H:%M %Z") for t in times]


# -- intervals ---------------------------------------------------------------------------


def test_interval_from_timedelta_and_seconds() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert schedule(timedelta(minutes=5)).next_after(start, UTC) == start + timedelta(minutes=5)
    assert schedule(1.5).next_after(start, UTC) == start + timedelta(seconds=1.5)


def test_interval_catch_up_is_one_fire_at_the_latest_missed_tick() -> None:
    every = schedule(10)
    last = datetime(2026, 1, 1, tzinfo=UTC)
    assert every.latest_due(last, last + timedelta(seconds=9.9), UTC) is None
    assert every.latest_due(last, last + timedelta(seconds=95), UTC) == last + timedelta(seconds=90)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "10", True, timedelta(0)])
def test_interval_refuses_what_never_fires(bad: object) -> None:
    with pytest.raises(ScheduleError, match="interval"):
        schedule(bad)  # type: ignore[arg-type]


# -- crontab -----------------------------------------------------------------------------


def test_crontab_fields_in_celery_forms() -> None:
    weekdays = crontab(minute=0, hour=[9, 17], day_of_week="monday-friday")
    assert weekdays.expression == "0 9,17 * * mon-fri"
    start = datetime(2026, 3, 6, 18, tzinfo=UTC)  # a Friday evening
    assert walls(fire_times(weekdays, start, start + timedelta(days=4), UTC), UTC) == [
        "03-09 09:00 UTC",
        "03-09 17:00 UTC",
        "03-10 09:00 UTC",
        "03-10 17:00 UTC",
    ]


def test_cron_string_is_minute_hour_day_month_weekday() -> None:
    every_five = crontab.from_string("*/5 * * * *")
    start = datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert every_five.next_after(start, UTC) == datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    assert crontab.from_string("0 4 1 * *") == crontab(minute=0, hour=4, day_of_month=1)


def test_day_of_month_and_day_of_week_must_both_match_as_in_celery() -> None:
    friday_13 = crontab(minute=0, hour=0, day_of_month=13, day_of_week="fri")
    assert friday_13.next_after(datetime(2026, 1, 1, tzinfo=UTC), UTC) == datetime(
        2026, 2, 13, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"minute": 60}, "minute=60"),
        ({"hour": "25"}, "hour='25'"),
        ({"day_of_week": "funday"}, "day_of_week='funday'"),
        ({"month_of_year": 13}, "month_of_year=13"),
        ({"day_of_month": "0"}, "day_of_month='0'"),
        ({"minute": "*/0"}, "minute='\\*/0'"),
        ({"hour": 3.5}, "hour=3.5"),
    ],
)
def test_invalid_crontab_field_is_named(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ScheduleError, match=f"crontab field {named}"):
        crontab(**fields)  # type: ignore[arg-type]


def test_cron_string_with_the_wrong_number_of_fields() -> None:
    with pytest.raises(ScheduleError, match="has 3 fields; expected 5"):
        crontab.from_string("* * *")


def test_crontab_that_never_fires_is_refused() -> None:
    never = crontab(minute=0, hour=0, day_of_month=30, month_of_year=2)
    with pytest.raises(ScheduleError, match="never fires"):
        never.check(datetime(2026, 1, 1, tzinfo=UTC), UTC)


# -- daylight-saving time ------------------------------------------------------------------


def test_daily_wall_time_across_both_berlin_changes() -> None:
    """02:30 does not exist on 2026-03-29 (clocks jump 02:00 -> 03:00) and happens twice on
    2026-10-25 (03:00 -> 02:00): one fire each day, at the jump and at the first 02:30."""
    daily = crontab(minute=30, hour=2)
    spring = fire_times(
        daily, datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC), BERLIN
    )
    assert walls(spring, BERLIN) == [
        "03-27 02:30 CET",
        "03-28 02:30 CET",
        "03-29 03:00 CEST",
        "03-30 02:30 CEST",
    ]
    autumn = fire_times(
        daily, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC), BERLIN
    )
    assert walls(autumn, BERLIN) == ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"]
    assert autumn[1] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30


def test_every_quarter_hour_through_the_new_york_changes() -> None:
    """The skipped hour (2026-03-08 02:00-03:00 EST) fires once, at the jump; the repeated
    hour (2026-11-01 01:00-02:00) fires in its first pass only: no double, no burst."""
    quarter = crontab(minute="*/15")
    spring = fire_times(
        quarter,
        datetime(2026, 3, 8, 6, 30, tzinfo=UTC),  # 01:30 EST
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # 03:30 EDT
        NEW_YORK,
    )
    assert walls(spring, NEW_YORK) == [
        "03-08 01:45 EST",
        "03-08 03:00 EDT",
        "03-08 03:15 EDT",
        "03-08 03:30 EDT",
    ]
    autumn = fire_times(
        quarter,
        datetime(2026, 11, 1, 4, 40, tzinfo=UTC),  # 00:40 EDT
        datetime(2026, 11, 1, 7, 20, tzinfo=UTC),  # 02:20 EST
        NEW_YORK,
    )
    assert walls(autumn, NEW_YORK) == [
        "11-01 00:45 EDT",
        "11-01 01:00 EDT",
        "11-01 01:15 EDT",
        "11-01 01:30 EDT",
        "11-01 01:45 EDT",
        "11-01 02:00 EST",
        "11-01 02:15 EST",
    ]
    assert len(set(autumn)) == len(autumn)


def test_from_inside_the_repeated_hour_the_next_fire_is_after_it() -> None:
    """A beat that starts (or was last run) during the second pass of the repeated hour does
    not fire the first pass's times again: they already happened."""
    second_pass = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)  # 01:10 EST, after 01:10 EDT
    following = crontab(minute="*/15").next_after(second_pass, NEW_YORK)
    assert following == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # 02:00 EST


def test_wall_time_rule_for_gaps_and_repeats() -> None:
    gap = datetime(2026, 3, 29, 2, 30)
    assert not walltime.exists(gap, BERLIN)
    assert walltime.instant(gap, BERLIN) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    repeated = datetime(2026, 10, 25, 2, 30)
    assert walltime.instant(repeated, BERLIN) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


# -- solar ---------------------------------------------------------------------------------

# The U.S. Naval Observatory's "Sun and Moon Data for One Day" for Atlanta (lat 33.8, lon
# -84.4), Sunday 6 September 2009, Eastern Daylight Time (UTC-4), as printed in PyEphem's
# documentation (http://rhodesmill.org/pyephem/rise-set.html). The table gives whole minutes.
ATLANTA = (33.8, -84.4)
EDT = timezone(timedelta(hours=-4))
USNO_2009_09_06 = {
    "dawn_civil": "06:50",
    "sunrise": "07:15",
    "solar_noon": "13:36",
    "sunset": "19:56",
}


@pytest.mark.parametrize(("event", "published"), sorted(USNO_2009_09_06.items()))
def test_solar_matches_the_published_table_within_a_minute(event: str, published: str) -> None:
    day = date(2009, 9, 6)
    expected = datetime.combine(day, datetime.strptime(published, "%H:%M").time(), EDT)
    fires = solar(event, *ATLANTA).next_after(datetime.combine(day, time(0), EDT), UTC)
    assert fires is not None
    assert abs((fires - expected).total_seconds()) <= 60, fires.astimezone(EDT)


def test_solar_fires_daily_and_skips_polar_days() -> None:
    sunset = solar("sunset", 51.5, -0.13)
    start = datetime(2026, 6, 1, 12, tzinfo=UTC)
    first = sunset.next_after(start, UTC)
    second = sunset.next_after(first, UTC)  # type: ignore[arg-type]
    assert first is not None and second is not None
    assert timedelta(hours=23, minutes=58) < second - first < timedelta(hours=24, minutes=2)
    svalbard = solar("sunrise", 78.2, 15.6).next_after(start, UTC)  # midnight sun until August
    assert svalbard is not None and svalbard.month == 8


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("moonrise", 0, 0), "solar event 'moonrise'"),
        (("sunset", 91, 0), "solar lat=91"),
        (("sunset", 0, -181), "solar lon=-181"),
        (("sunset", "north", 0), "solar lat='north'"),
    ],
)
def test_solar_refuses_bad_arguments_by_name(args: tuple[object, ...], named: str) -> None:
    with pytest.raises(ScheduleError, match=named):
        solar(*args)  # type: ignore[arg-type]
