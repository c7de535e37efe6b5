"""What a schedule is to beat, the interval schedule, and reading a schedule from config.

A schedule answers one question: the first fire time strictly after a given instant
(`next_after`). Beat keeps, per entry, the last fire time it accounted for, so everything it
needs follows: the entry is due when `next_after(last)` has passed, and after a time with no
beat alive it fires once, for the latest missed fire time (`latest_due`), not once per missed
tick. Instants are aware datetimes; `tz` is the app's zone, used by schedules that read a wall
clock (crontab) and ignored by the others.

An interval fires every `run_every` after the last fire time, so the fire times of an entry
form one grid from its first anchor: every beat process computes the same ones, which is what
lets the store refuse a second claim of the same tick.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from datetime import datetime, timedelta, tzinfo

from conveyor.beat.errors import ScheduleError

STEP_LIMIT = 100_000
"""Fire times `latest_due` walks through before it restarts from a day before `now`."""


class Schedule(ABC):
    """A schedule: when an entry fires."""

    @abstractmethod
    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        """The first fire time strictly after `after` (aware), or None if there is none."""

    def latest_due(self, last: datetime, now: datetime, tz: tzinfo) -> datetime | None:
        """The latest fire time after `last` and not after `now`, or None when none is due."""
        due = self.next_after(last, tz)
        steps = 0
        while due is not None and due <= now:
            following = self.next_after(due, tz)
            if following is None or following > now:
                return due
            due, steps = following, steps + 1
            if steps == STEP_LIMIT:  # years missed: only the last day can hold the answer
                due = self.next_after(max(due, now - timedelta(days=1)), tz) or due
        return None

    def check(self, now: datetime, tz: tzinfo) -> None:
        """Raise ScheduleError when the schedule never fires after `now`."""
        if self.next_after(now, tz) is None:
            raise ScheduleError(f"{self!r} never fires")


class schedule(Schedule):  # Celery's lowercase name
    """Every `run_every` (a timedelta, or seconds) after the last fire time."""

    def __init__(self, run_every: timedelta | float) -> None:
        if isinstance(run_every, bool) or not isinstance(run_every, (timedelta, int, float)):
            raise ScheduleError(
                f"an interval must be a timedelta or a number of seconds, not {run_every!r}"
            )
        seconds = run_every.total_seconds() if isinstance(run_every, timedelta) else run_every
        if not math.isfinite(seconds) or seconds <= 0:
            raise ScheduleError(f"an interval must be positive, not {run_every!r}")
        self.run_every = timedelta(seconds=seconds)

    @property
    def seconds(self) -> float:
        return self.run_every.total_seconds()

    def next_after(self, after: datetime, tz: tzinfo) -> datetime:
        return after + self.run_every

    def latest_due(self, last: datetime, now: datetime, tz: tzinfo) -> datetime | None:
        ticks = math.floor((now - last) / self.run_every)
        return last + ticks * self.run_every if ticks >= 1 else None

    def __repr__(self) -> str:
        return f"<schedule every {self.seconds:g} s>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, schedule) and other.run_every == self.run_every

    def __hash__(self) -> int:
        return hash(self.run_every)
