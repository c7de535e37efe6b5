"""Entries from `beat_schedule`, CELERYBEAT_SCHEDULE and add_periodic_task, the app's zone,
and the errors at start that name the entry and the part."""

from __future__ import annotations

import gc
import types
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conveyor import Conveyor
from conveyor.beat import entries, walltime
from conveyor.beat.errors import EntryError, ScheduleError
from conveyor.schedules import crontab, schedule, solar
from conveyor.signals import Signal
from tests.beat.conftest import Clock, MakeBeat, Sent

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def load(app: Conveyor) -> list[entries.Entry]:
    return entries.load(app, NOW, walltime.app_zone(app.conf))


def test_celery_config_module_with_every_schedule_kind(app: Conveyor) -> None:
    config = types.SimpleNamespace(
        CELERY_TIMEZONE="Asia/Shanghai",
        CELERYBEAT_SCHEDULE={
            "every-30-s": {"task": "tasks.ping", "schedule": timedelta(seconds=30)},
            "seconds": {"task": "tasks.ping", "schedule": 10.0, "args": (1, 2)},
            "mornings": {
                "task": "tasks.ping",
                "schedule": crontab(hour=7, minute=30, day_of_week=1),
                "kwargs": {"x": 1},
                "options": {"queue": "morning", "expires": 60},
            },
            "cron-text": {"task": "tasks.ping", "schedule": "*/5 * * * *"},
            "sunset": {"task": "tasks.ping", "schedule": solar("sunset", 31.23, 121.47)},
        },
    )
    app.config_from_object(config)
    found = {entry.name: entry for entry in load(app)}
    assert found["every-30-s"].schedule == schedule(30)
    assert found["seconds"].args == (1, 2)
    assert found["mornings"].options == {"queue": "morning", "expires": 60}
    assert found["cron-text"].schedule == crontab(minute="*/5")
    assert isinstance(found["sunset"].schedule, solar)


def test_crontab_is_read_in_the_app_timezone(app: Conveyor) -> None:
    app.conf.timezone = "Asia/Shanghai"
    tz = walltime.app_zone(app.conf)
    assert tz == ZoneInfo("Asia/Shanghai")
    seven_thirty = crontab(hour=7, minute=30).next_after(NOW, tz)
    assert seven_thirty == datetime(2026, 1, 1, 23, 30, tzinfo=timezone.utc)


def test_enable_utc_decides_the_zone_when_timezone_is_not_set(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert walltime.app_zone(app.conf) == timezone.utc
    app.conf.enable_utc = False
    monkeypatch.setenv("TZ", "America/Chicago")
    assert walltime.app_zone(app.conf) == ZoneInfo("America/Chicago")


def test_an_unknown_timezone_is_named(app: Conveyor) -> None:
    app.conf.timezone = "Mars/Olympus_Mons"
    with pytest.raises(ScheduleError, match="timezone 'Mars/Olympus_Mons'"):
        walltime.app_zone(app.conf)


def test_add_periodic_task_from_on_after_configure(
    app: Conveyor, make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    ping = app.tasks["tasks.ping"]
    calls: list[Any] = []

    @app.on_after_configure.connect
    def setup_periodic_tasks(sender: Conveyor, **kwargs: Any) -> None:
        calls.append(sender)
        sender.add_periodic_task(2.0, ping.s("hello"), name="hello every 2 s")

    @app.on_after_finalize.connect()
    def more_periodic_tasks(sender: Conveyor, **kwargs: Any) -> None:
        sender.add_periodic_task(crontab(minute=0), ping, expires=30)

    beat = make_beat()
    assert calls == [app]
    by_name = {entry.name: entry for entry in beat.entries}
    assert by_name["hello every 2 s"].args == ("hello",)
    hourly = next(e for e in beat.entries if e.name != "hello every 2 s")
    assert hourly.options == {"expires": 30}
    for _ in range(10):
        beat.tick()
        clock.advance(0.5)
    assert [name for name, _, _ in sent.items] == ["hello every 2 s"] * 2
    make_beat()
    assert calls == [app]  # sent once per app


def test_on_after_configure_is_a_conveyor_signal_holding_its_receivers(
    app: Conveyor, make_beat: MakeBeat
) -> None:
    """Sent through conveyor.signals with Celery's arguments; a receiver connected inside a
    factory function (nothing else refers to it) still runs when beat starts."""
    ping = app.tasks["tasks.ping"]
    seen: list[Any] = []

    def factory() -> None:
        @app.on_after_configure.connect
        def setup(sender: Conveyor, signal: Signal, source: Any, **kwargs: Any) -> None:
            seen.append((sender, signal, source))
            sender.add_periodic_task(1.0, ping.s(), name="from a factory")

    factory()
    gc.collect()
    assert isinstance(app.on_after_configure, Signal)
    beat = make_beat()
    assert seen == [(app, app.on_after_configure, app.conf)]
    assert [entry.name for entry in beat.entries] == ["from a factory"]


def test_a_setup_receiver_that_raises_stops_beat_naming_it(
    app: Conveyor, make_beat: MakeBeat
) -> None:
    @app.on_after_finalize.connect
    def broken_setup(sender: Conveyor, **kwargs: Any) -> None:
        raise KeyError("tasks.gone")

    with pytest.raises(EntryError, match=r"on_after_finalize receiver .*broken_setup raised"):
        make_beat()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"task": "tasks.nope", "schedule": 1},
            r"entry 'bad': task 'tasks.nope' is not registered",
        ),
        ({"schedule": 1}, r"entry 'bad': no 'task'"),
        ({"task": "tasks.ping"}, r"entry 'bad': no 'schedule'"),
        (
            {"task": "tasks.ping", "schedule": crontab(0, 0, day_of_month=31, month_of_year=4)},
            r"entry 'bad': schedule: <crontab '0 0 31 4 \*'> never fires",
        ),
        (
            {"task": "tasks.ping", "schedule": "61 * * * *"},
            r"entry 'bad': schedule: crontab field minute='61'",
        ),
        ({"task": "tasks.ping", "schedule": -5}, r"entry 'bad': schedule: an interval must be"),
        ({"task": "tasks.ping", "schedule": [1]}, r"entry 'bad': schedule: a schedule is"),
        ({"task": "tasks.ping", "schedule": 1, "args": 5}, r"entry 'bad': args must be a list"),
        ({"task": "tasks.ping", "schedule": 1, "kwargs": [1]}, r"entry 'bad': kwargs must be"),
        (
            {"task": "tasks.ping", "schedule": 1, "options": {"queeue": "x"}},
            r"entry 'bad': unknown option\(s\) queeue",
        ),
        ({"task": "tasks.ping", "schedule": 1, "every": 2}, r"entry 'bad': unknown key\(s\) every"),
        ("tasks.ping", r"entry 'bad': must be a dict"),
        (
            {"task": "tasks.ping", "schedule": 1, "args": [object()]},
            r"entry 'bad': args and kwargs cannot be sent: cannot encode with json",
        ),
    ],
)
def test_an_entry_that_cannot_run_fails_at_start_naming_it(
    app: Conveyor, spec: Any, message: str
) -> None:
    app.conf.beat_schedule = {"fine": {"task": "tasks.ping", "schedule": 1}, "bad": spec}
    with pytest.raises(EntryError, match=message):
        load(app)


def test_beat_settings_are_read_from_the_config(app: Conveyor, make_beat: MakeBeat) -> None:
    app.config_from_object(
        types.SimpleNamespace(CELERYBEAT_MAX_LOOP_INTERVAL=0.75, beat_lease_timeout=4.5)
    )
    beat = make_beat({"e": {"task": "tasks.ping", "schedule": 60}}, lease_timeout=None)
    assert beat.lease_timeout == 4.5
    assert beat.tick() == 0.75


def test_celerys_other_call_options_are_accepted(app: Conveyor) -> None:
    options = {"time_limit": 30, "soft_time_limit": 20, "shadow": "nightly", "queue": "q"}
    app.conf.beat_schedule = {"e": {"task": "tasks.ping", "schedule": 5, "options": options}}
    (entry,) = load(app)
    assert entry.options == options


def test_the_config_module_in_the_docs_loads() -> None:
    """docs/beat.md's celeryconfig.py, run as it is written there."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "beat.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "celeryconfig" in b)
    config: dict[str, Any] = {}
    exec(block, config)  # the docs' own code, nothing else
    docs_app = Conveyor("tasks", broker="memory://docs", backend="memory://docs")
    for name in ("add", "report", "poll"):
        docs_app.task(name=f"tasks.{name}")(lambda *a: None)
    docs_app.config_from_object({k: v for k, v in config.items() if not k.startswith("__")})
    tz = walltime.app_zone(docs_app.conf)
    assert str(tz) == "Asia/Shanghai"
    loaded = {e.name: e for e in entries.load(docs_app, NOW, tz)}
    assert sorted(loaded) == [
        "add-every-30-seconds",
        "every-five-minutes",
        "report-on-monday-morning",
    ]
    monday = loaded["report-on-monday-morning"].schedule.next_after(NOW, tz)
    assert monday == datetime(2026, 1, 4, 23, 30, tzinfo=timezone.utc)  # Mon 07:30 in Shanghai


def test_an_entry_added_to_the_default_schedule_stays_in_its_app() -> None:
    """`app.conf.beat_schedule["x"] = ...` on an app that never set it changes that app's
    copy of the default, not every app's."""
    first = Conveyor("first", broker="memory://first")
    first.conf.beat_schedule["x"] = {"task": "t", "schedule": 1}
    assert Conveyor("second").conf.beat_schedule == {}
    assert first.conf.beat_schedule == {"x": {"task": "t", "schedule": 1}}
