"""crontab: Celery's crontab fields, evaluated by croniter on the app's wall clock.

croniter (a maintained parser of the cron grammar) walks naive wall times in the app's zone;
walltime.instant turns each into one instant, so a daylight-saving change neither doubles nor
drops a fire (see walltime). Fields take Celery's forms: "*", numbers, "*/15", "1-5",
"mon-fri", "monday", lists of numbers. As in Celery (and unlike Vixie cron), a restricted
day_of_month and a restricted day_of_week must both match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, tzinfo
from typing import Any

from conveyor.beat import walltime
from conveyor.beat.errors import ScheduleError, missing_extra
from conveyor.beat.schedules import Schedule

try:
    from croniter import CroniterBadDateError, croniter
except ImportError as exc:  # the `beat` extra is not installed
    raise missing_extra("croniter") from exc

FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
"""The fields in the order a cron string writes them."""
_RANGES = {
    "minute": "0-59",
    "hour": "0-23",
    "day_of_month": "1-31",
    "month_of_year": "1-12 or jan-dec",
    "day_of_week": "0-6 (0 is Sunday) or sun-sat",
}
_LONG_NAMES = re.compile(
    r"\b(sun|mon|tue|wed|thu|fri|sat)(?:day|sday|nesday|rsday|urday)\b"
    r"|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b",
    re.IGNORECASE,
)
MAX_YEARS = 30
"""How far croniter looks for a match: Feb 29 on a given weekday recurs within 28 years."""


def _field_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        raise ScheduleError(f"crontab field {name}={value!r} is not valid ({_RANGES[name]})")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value.strip().lower()
        return _LONG_NAMES.sub(lambda m: m.group(1) or m.group(2), text)
    if isinstance(value, Iterable):
        items = list(value)
        if items and all(isinstance(i, int) and not isinstance(i, bool) for i in items):
            return ",".join(str(i) for i in sorted(set(items)))
    raise ScheduleError(
        f"crontab field {name}={value!r} is not valid: use a number, a list of numbers or "
        f"cron text ({_RANGES[name]})"
    )


class crontab(Schedule):  # Celery's lowercase name
    """``crontab(minute="*/15", hour="9-17", day_of_week="mon-fri")`` in the app's zone."""

    def __init__(
        self,
        minute: Any = "*",
        hour: Any = "*",
        day_of_week: Any = "*",
        day_of_month: Any = "*",
        month_of_year: Any = "*",
    ) -> None:
        given = {
            "minute": minute,
            "hour": hour,
            "day_of_month": day_of_month,
            "month_of_year": month_of_year,
            "day_of_week": day_of_week,
        }
        self.fields = {name: _field_text(name, given[name]) for name in FIELDS}
        for name, text in self.fields.items():
            alone = " ".join(text if other == name else "*" for other in FIELDS)
            if not croniter.is_valid(alone):
                raise ScheduleError(
                    f"crontab field {name}={given[name]!r} is not valid ({_RANGES[name]})"
                )
        self.expression = " ".join(self.fields[name] for name in FIELDS)

    @classmethod
    def from_string(cls, text: str) -> crontab:
        """A five-field cron string: minute hour day-of-month month day-of-week."""
        parts = text.split()
        if len(parts) != len(FIELDS):
            raise ScheduleError(
                f"cron string {text!r} has {len(parts)} fields; expected 5 "
                "(minute hour day_of_month month_of_year day_of_week)"
            )
        return cls(**dict(zip(FIELDS, parts, strict=True)))

    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        after = walltime.aware(after)
        wall = after.astimezone(tz).replace(tzinfo=None)
        walk = croniter(self.expression, wall, day_or=False, max_years_between_matches=MAX_YEARS)
        try:
            while True:
                # The wall clock may read earlier than `after` once more (the hour repeated
                # when clocks go back): skip the fire times that already passed.
                at = walltime.instant(walk.get_next(datetime), tz)
                if at > after:
                    return at
        except CroniterBadDateError:
            return None

    def __repr__(self) -> str:
        return f"<crontab {self.expression!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, crontab) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(self.expression)
