"""The beat loop with a controlled clock on the in-memory store: each tick once, restarts
without bursts or gaps, one catch-up fire, one leader, and the hand-over."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from conveyor.beat.scheduler import tick_id
from conveyor.core.errors import BrokerUnavailable
from conveyor.schedules import crontab
from tests.beat.conftest import Clock, MakeBeat, Sent

EVERY_SECOND = {"ping": {"task": "tasks.ping", "schedule": 1.0, "args": [1]}}


def run_for(beats: list, clock: Clock, seconds: float, step: float = 0.25) -> None:
    """Tick every beat each `step` of controlled time for `seconds`."""
    for _ in range(round(seconds / step)):
        for beat in beats:
            beat.tick()
        clock.advance(step)


def test_a_new_entry_counts_from_when_it_is_first_seen(
    make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    start = clock.now
    beat = make_beat(EVERY_SECOND)
    assert beat.tick() <= 1.0
    assert sent.items == []  # nothing fires at first sight
    run_for([beat], clock, 5.0)
    assert sent.times("ping") == [start + n for n in range(1, 5)]


def test_each_tick_has_one_deterministic_task_id(
    make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    beat = make_beat(EVERY_SECOND)
    run_for([beat], clock, 3.0)
    name, due, task_id = sent.items[0]
    assert task_id == tick_id("beat-tests", name, due)
    assert len({task_id for _, _, task_id in sent.items}) == len(sent.items)


def test_two_beats_on_one_store_send_each_tick_once(
    make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    first, second = make_beat(EVERY_SECOND), make_beat()
    run_for([first, second], clock, 30.0)
    times = sent.times("ping")
    assert len(times) == 29
    assert len(set(times)) == len(times)
    assert first.leading and not second.leading


def test_a_leader_that_dies_is_replaced_within_the_lease(
    make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    leader, follower = make_beat(EVERY_SECOND), make_beat()
    run_for([leader, follower], clock, 5.0)
    died_at = clock.now
    run_for([follower], clock, 12.0)  # the leader stops renewing: killed
    assert follower.leading
    times = sent.times("ping")
    assert len(times) == len(set(times))
    took_over = min(t for t in times if t > died_at)
    # lease_timeout 6 s: expiry after 6 s, noticed within one renew interval (2 s); the
    # tick missed meanwhile fires once, then every second again.
    assert took_over - died_at <= 6.0 + 2.0
    assert times[-1] >= clock.now - 1.0


def test_a_clean_stop_hands_over_at_once(make_beat: MakeBeat, clock: Clock) -> None:
    leader, follower = make_beat(EVERY_SECOND), make_beat()
    leader.tick()
    follower.tick()
    assert leader.leading and not follower.leading
    leader.close()
    follower.tick()
    assert follower.leading


def test_a_paused_leader_cannot_double_a_tick(
    make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    """The old leader wakes after the new one sent the ticks it had due: its claims fail."""
    old, new = make_beat(EVERY_SECOND), make_beat()
    run_for([old, new], clock, 3.0)
    run_for([new], clock, 10.0)  # old is frozen; new takes over
    old._last.clear()  # it still believes in its own past: worst case, it recomputes
    old.store.acquire = lambda *a: True  # type: ignore[method-assign]  # and thinks it leads
    run_for([old, new], clock, 3.0)
    times = sent.times("ping")
    assert len(times) == len(set(times))


def test_a_restart_neither_bursts_nor_skips(make_beat: MakeBeat, clock: Clock, sent: Sent) -> None:
    beat = make_beat(EVERY_SECOND)
    run_for([beat], clock, 4.0)
    beat.close()
    clock.advance(0.5)  # restarted within the same second: the next tick is not lost
    again = make_beat()
    run_for([again], clock, 3.0)
    times = sent.times("ping")
    assert times == [times[0] + n for n in range(len(times))]


def test_runs_missed_while_no_beat_ran_fire_once(
    make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    beat = make_beat({"hourly": {"task": "tasks.ping", "schedule": crontab(minute=0)}})
    beat.tick()
    beat.close()
    clock.advance(3600 * 5 + 60)  # five top-of-the-hour fire times pass with no beat alive
    beat = make_beat()
    beat.tick()
    beat.tick()
    assert len(sent.items) == 1
    assert sent.items[0][1].timestamp() == 1_767_225_600.0 + 5 * 3600
    clock.advance(3600)
    beat.tick()
    assert len(sent.items) == 2


def test_sleep_is_capped_by_max_interval_and_the_lease_renewal(make_beat: MakeBeat) -> None:
    hourly = {"hourly": {"task": "tasks.ping", "schedule": 3600}}
    assert make_beat(hourly, max_interval=1.5).tick() == 1.5
    follower = make_beat(hourly)
    assert follower.tick() == follower.renew_every == 2.0  # lease_timeout / 3


def test_sleep_is_until_the_next_fire(make_beat: MakeBeat, clock: Clock) -> None:
    beat = make_beat({"fast": {"task": "tasks.ping", "schedule": 0.5}})
    assert beat.tick() == pytest.approx(0.5)
    clock.advance(0.2)
    assert beat.tick() == pytest.approx(0.3)


def test_a_failed_publish_is_logged_and_loses_only_that_tick(
    make_beat: MakeBeat, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[float] = []

    def flaky(entry: object, due: object, task_id: str) -> None:
        calls.append(clock.now)
        if len(calls) == 1:
            raise BrokerUnavailable("the broker is down")

    beat = make_beat(EVERY_SECOND, send=flaky)
    with caplog.at_level(logging.ERROR, logger="conveyor.beat"):
        run_for([beat], clock, 3.0)
    assert len(calls) == 2
    assert "it is lost" in caplog.text and "the broker is down" in caplog.text


def test_a_store_error_makes_beat_follow_until_the_store_answers(
    make_beat: MakeBeat, clock: Clock
) -> None:
    import threading

    beat = make_beat(EVERY_SECOND)
    failures = [BrokerUnavailable("store down")]

    real = beat.store.acquire

    def acquire(*args: object) -> bool:
        if failures:
            raise failures.pop()
        return real(*args)  # type: ignore[arg-type]

    beat.store.acquire = acquire  # type: ignore[method-assign]
    stop = threading.Event()
    ticks = [0]
    original_tick = beat.tick

    def tick() -> float:
        ticks[0] += 1
        if ticks[0] == 2:
            stop.set()
        return original_tick()

    beat.tick = tick  # type: ignore[method-assign]
    beat.run(stop)
    assert ticks[0] == 2


def test_crontab_entries_across_a_dst_change_fire_at_the_right_wall_times(
    make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    """Beat itself, ticked every minute of controlled time through Berlin's spring change
    (2026-03-29 02:00 CET -> 03:00 CEST) and its autumn change (2026-10-25 03:00 CEST ->
    02:00 CET)."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    schedule = {
        "nightly": {"task": "tasks.ping", "schedule": crontab(minute=30, hour=2)},
        "half-hourly": {"task": "tasks.ping", "schedule": "*/30 1-3 * * *"},
    }

    def walls(name: str) -> list[str]:
        return [
            due.astimezone(berlin).strftime("%d %H:%M %Z")
            for entry, due, _ in sent.items
            if entry == name
        ]

    for day in (28, 24):  # from the evening before each change, in steps of 5 minutes
        month = 3 if day == 28 else 10
        clock.now = datetime(2026, month, day, 20, tzinfo=timezone.utc).timestamp()
        sent.items.clear()
        beat = make_beat(schedule, tz=berlin, namespace=f"dst-{month}")
        run_for([beat], clock, 30 * 3600, step=300.0)
        beat.close()
        if month == 3:
            assert walls("nightly") == ["29 03:00 CEST", "30 02:30 CEST"]
            assert walls("half-hourly")[:5] == [
                "29 01:00 CET",
                "29 01:30 CET",
                "29 03:00 CEST",  # 02:00 and 02:30 do not exist: once, at the jump
                "29 03:30 CEST",
                "30 01:00 CEST",
            ]
        else:
            assert walls("nightly") == ["25 02:30 CEST", "26 02:30 CET"]
            assert walls("half-hourly")[:7] == [
                "25 01:00 CEST",
                "25 01:30 CEST",
                "25 02:00 CEST",
                "25 02:30 CEST",  # the repeated 02:00-03:00 CET does not fire again
                "25 03:00 CET",
                "25 03:30 CET",
                "26 01:00 CET",
            ]


def test_a_due_tick_is_published_with_its_tick_id_and_options(
    app: object, make_beat: MakeBeat, clock: Clock
) -> None:
    from conveyor import Conveyor

    assert isinstance(app, Conveyor)
    queue = "beat-sent"
    spec = {"task": "tasks.ping", "schedule": 1.0, "args": [7], "options": {"queue": queue}}
    beat = make_beat({"ping": spec}, send=None)
    beat.tick()
    clock.advance(1.0)
    beat.tick()
    (delivery,) = app.transport.fetch(queue, timeout=1.0)
    body = delivery.message.body.decode()
    due = datetime.fromtimestamp(clock.now, timezone.utc)
    assert tick_id("beat-tests", "ping", due) in body and '"tasks.ping"' in body
    delivery.ack()


def test_a_leader_that_fell_behind_sends_each_tick_it_owes(
    make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    """A slow publish (the first connection to a loaded database) while the leader keeps the
    lead: the ticks that fell due meanwhile are sent, oldest first, not collapsed."""

    def slow_first(entry: object, due: datetime, task_id: str) -> None:
        sent(entry, due, task_id)  # type: ignore[arg-type]
        if len(sent.items) == 1:
            clock.advance(4.5)

    beat = make_beat(EVERY_SECOND, send=slow_first)
    run_for([beat], clock, 8.0)
    times = sent.times("ping")
    assert times == [times[0] + n for n in range(len(times))]
    assert len(times) >= 11


def test_a_leader_far_behind_fires_once(make_beat: MakeBeat, clock: Clock, sent: Sent) -> None:
    beat = make_beat(EVERY_SECOND)
    run_for([beat], clock, 3.0)
    before = len(sent.items)
    clock.advance(60.0)  # a stall of 60 ticks, more than MAX_OWED
    beat.tick()
    assert len(sent.items) == before + 1


def test_an_entry_is_looked_at_only_when_its_time_comes(make_beat: MakeBeat, clock: Clock) -> None:
    """Rounds between fire times cost a lease renewal each, not a walk of every schedule."""
    beat = make_beat({"hourly": {"task": "tasks.ping", "schedule": crontab(minute=0)}})
    (entry,) = beat.entries
    calls: list[object] = []
    real = entry.schedule.next_after

    def counted(*args: object) -> object:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]

    entry.schedule.next_after = counted  # type: ignore[method-assign]
    run_for([beat], clock, 600.0, step=2.0)  # 300 rounds, all before the next fire time
    assert 0 < len(calls) <= 3


def test_an_entry_whose_send_raises_does_not_stop_the_others(
    make_beat: MakeBeat, clock: Clock, sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    def send(entry: object, due: datetime, task_id: str) -> None:
        if getattr(entry, "name", "") == "broken":
            raise TypeError("a bug in a publish hook")
        sent(entry, due, task_id)  # type: ignore[arg-type]

    schedule = {**EVERY_SECOND, "broken": {"task": "tasks.ping", "schedule": 1.0}}
    beat = make_beat(schedule, send=send)
    with caplog.at_level(logging.ERROR, logger="conveyor.beat"):
        run_for([beat], clock, 4.0)
    assert len(sent.times("ping")) == 3
    assert "a bug in a publish hook" in caplog.text


def test_a_cron_run_later_than_the_starting_deadline_is_skipped(
    app: object, make_beat: MakeBeat, clock: Clock, sent: Sent
) -> None:
    """beat_cron_starting_deadline, as in Celery: a crontab run found more than that many
    seconds late is not sent (an interval entry is not affected)."""
    from conveyor import Conveyor

    assert isinstance(app, Conveyor)
    app.conf.beat_cron_starting_deadline = 120
    schedule = {
        "hourly": {"task": "tasks.ping", "schedule": crontab(minute=0)},
        "every-hour": {"task": "tasks.ping", "schedule": 3600},
    }
    beat = make_beat(schedule)
    beat.tick()
    beat.close()
    clock.advance(3600 + 60)  # 00:00 -> 01:01: the 01:00 runs are 60 s late
    beat = make_beat()
    beat.tick()
    assert sorted(name for name, _, _ in sent.items) == ["every-hour", "hourly"]
    beat.close()
    sent.items.clear()
    clock.advance(3600 + 600)  # 02:11: the 02:00 runs are 660 s late
    beat = make_beat()
    beat.tick()
    assert [name for name, _, _ in sent.items] == ["every-hour"]  # the crontab one skipped
    clock.advance(3600 - 660)  # 03:00, on time again
    beat.tick()
    assert sorted(name for name, _, _ in sent.items) == ["every-hour", "every-hour", "hourly"]


def test_celerys_zero_max_loop_interval_means_not_set(app: object, make_beat: MakeBeat) -> None:
    from conveyor import Conveyor

    assert isinstance(app, Conveyor)
    app.conf.beat_max_loop_interval = 0  # Celery's default, as a full config module lists it
    assert make_beat({"e": {"task": "tasks.ping", "schedule": 60}}).max_interval is None
