"""Time zones for schedules: which zone the app's wall clock is in, and how a wall time
becomes one instant when daylight-saving time makes it ambiguous or skips it.

Wall times are turned into instants by one rule, used by crontab: a wall time that happens
twice (clocks set back) is its first occurrence; a wall time that never happens (clocks set
forward) is the moment the clocks jump. So "every day at 02:30" fires once on both change
days, and "every 15 minutes" fires once at the jump for the whole skipped hour.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conveyor.beat.errors import ScheduleError

UTC = timezone.utc
_MINUTE = timedelta(minutes=1)
_LONGEST_GAP = timedelta(days=2)  # Samoa skipped a whole day in 2011; nothing skipped more


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` ("Asia/Shanghai"), or a ScheduleError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"timezone {name!r} is not a known IANA time zone: {exc}") from None


def local_zone() -> tzinfo:
    """The host's zone with its daylight-saving rules (TZ, else /etc/localtime), falling back
    to its current fixed offset where neither names a zone."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        return zone(name)
    try:
        with open("/etc/localtime", "rb") as data:
            return ZoneInfo.from_file(data, key="localtime")
    except (OSError, ValueError):
        return datetime.now().astimezone().tzinfo or UTC


def app_zone(conf: Any) -> tzinfo:
    """The zone schedules are read in, as Celery decides it: the `timezone` setting when set;
    otherwise UTC with `enable_utc` (the default), or the host's zone without it."""
    if conf.is_set("timezone") and conf.timezone:
        name = conf.timezone
        return name if isinstance(name, tzinfo) else zone(str(name))
    return UTC if conf.enable_utc else local_zone()


def exists(wall: datetime, tz: tzinfo) -> bool:
    """True when the naive wall time `wall` happens in `tz` (is not in a forward gap)."""
    instant = wall.replace(tzinfo=tz, fold=0)
    return instant.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def instant(wall: datetime, tz: tzinfo) -> datetime:
    """The instant of the naive wall time `wall` in `tz` under the rule above (aware, UTC)."""
    if exists(wall, tz):
        return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    step = wall.replace(second=0, microsecond=0) + _MINUTE
    limit = wall + _LONGEST_GAP
    while not exists(step, tz):
        if step > limit:
            raise ScheduleError(f"{wall} does not exist in {tz} and no wall time follows it")
        step += _MINUTE
    return step.replace(tzinfo=tz, fold=0).astimezone(UTC)


def aware(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
