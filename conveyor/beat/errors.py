"""Beat's errors: a schedule or an entry that cannot run is refused at start, by name."""

from __future__ import annotations

from conveyor.core.errors import ConfigurationError, MissingDependency


class ScheduleError(ConfigurationError):
    """A schedule that is malformed or never fires; the message names the field."""


class EntryError(ConfigurationError):
    """A `beat_schedule` entry that cannot run; the message names the entry and the part."""


def missing_extra(library: str) -> MissingDependency:
    """The error for a schedule library of the `beat` extra that is not installed."""
    return MissingDependency(
        f"schedules need {library}, which is not installed: pip install 'conveyor[beat]'"
    )
