"""solar: fire at a sun event (sunrise, sunset, solar noon, dawn and dusk) at a place.

The event times come from astral, a maintained astronomy library. Sunrise and sunset are
when the sun's upper edge meets the horizon with standard refraction (astral's definition,
which published almanacs use too); dawn and dusk are when its centre is 6 (civil),
12 (nautical) or 18 (astronomical) degrees below the horizon. Near the poles an event can be
missing on some days (midnight sun, polar night): those days are skipped, and a place where
the event never happens within a year is refused at start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from functools import partial

from conveyor.beat import walltime
from conveyor.beat.errors import ScheduleError, missing_extra
from conveyor.beat.schedules import Schedule

try:
    from astral import Observer
    from astral import sun as astral_sun
except ImportError as exc:  # the `beat` extra is not installed
    raise missing_extra("astral") from exc

_Event = Callable[[Observer, date], datetime]


def _sun(function: Callable[..., datetime], **fixed: float) -> _Event:
    return lambda observer, day: function(observer, day, tzinfo=walltime.UTC, **fixed)


EVENTS: dict[str, _Event] = {
    "dawn_astronomical": _sun(astral_sun.dawn, depression=18),
    "dawn_nautical": _sun(astral_sun.dawn, depression=12),
    "dawn_civil": _sun(astral_sun.dawn, depression=6),
    "sunrise": _sun(astral_sun.sunrise),
    "solar_noon": _sun(astral_sun.noon),
    "sunset": _sun(astral_sun.sunset),
    "dusk_civil": _sun(astral_sun.dusk, depression=6),
    "dusk_nautical": _sun(astral_sun.dusk, depression=12),
    "dusk_astronomical": _sun(astral_sun.dusk, depression=18),
}
SEARCH_DAYS = 370
"""Days looked through for the next event: a year, so polar seasons are crossed."""


def _coordinate(name: str, value: object, limit: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (-limit <= value <= limit)
    ):
        raise ScheduleError(f"solar {name}={value!r} must be a number from {-limit:g} to {limit:g}")
    return float(value)


class solar(Schedule):  # Celery's lowercase name
    """``solar("sunset", lat, lon)``: every day at that event at that place (degrees, north
    and east positive)."""

    def __init__(self, event: str, lat: float, lon: float) -> None:
        if event not in EVENTS:
            raise ScheduleError(
                f"solar event {event!r} is not known; use one of {', '.join(EVENTS)}"
            )
        self.event = event
        self.lat = _coordinate("lat", lat, 90)
        self.lon = _coordinate("lon", lon, 180)
        self._compute = partial(EVENTS[event], Observer(latitude=self.lat, longitude=self.lon))

    def on(self, day: date) -> datetime | None:
        """The event on the UTC date `day` (aware, UTC), or None when it does not happen."""
        try:
            return self._compute(day)
        except ValueError:  # astral: the sun does not reach that elevation that day
            return None

    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        after = walltime.aware(after)
        day = after.date() - timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            at = self.on(day)
            if at is not None and at > after:
                return at
            day += timedelta(days=1)
        return None

    def __repr__(self) -> str:
        return f"<solar {self.event} at {self.lat:g}, {self.lon:g}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, solar) and (other.event, other.lat, other.lon) == (
            self.event,
            self.lat,
            self.lon,
        )

    def __hash__(self) -> int:
        return hash((self.event, self.lat, self.lon))
