"""Beat's entries: read from `beat_schedule` (or Celery's CELERYBEAT_SCHEDULE) and from
`app.add_periodic_task`, and checked before anything runs.

Everything that can be known at start is checked at start, and the error names the entry
and the part: a schedule that is malformed or never fires, a task the app does not know, an
option `send_task` does not take, args that are not a list.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from conveyor.app.base import Conveyor
from conveyor.app.call_options import CALL_OPTIONS
from conveyor.app.periodic import send_configured
from conveyor.beat.crontab import crontab
from conveyor.beat.errors import EntryError, ScheduleError
from conveyor.beat.schedules import Schedule, schedule
from conveyor.core.errors import ConveyorError

KEYS = frozenset({"task", "schedule", "args", "kwargs", "options"})
# send_task's parameters that beat sets itself or that describe a task's place in a workflow.
_NOT_OPTIONS = frozenset(
    {"name", "args", "kwargs", "task", "task_id", "record_pending", "retries", "root_id"}
    | {"parent_id", "group_id"}
)


@dataclass(frozen=True)
class Entry:
    """One periodic task: what to send and when."""

    name: str
    task: str
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def maybe_schedule(value: Any) -> Schedule:
    """A config value as a Schedule: a Schedule, a timedelta, seconds, or a cron string."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, str):
        return crontab.from_string(value)
    if isinstance(value, (timedelta, int, float)) and not isinstance(value, bool):
        return schedule(value)
    raise ScheduleError(
        "a schedule is a timedelta, a number of seconds, a cron string, crontab(...) or "
        f"solar(...), not {value!r}"
    )


def send_options(app: Conveyor) -> frozenset[str]:
    """The call options an entry's `options` may hold: what `app.send_task` takes by name,
    and Celery's other call options (`conveyor.app.call_options`)."""
    parameters = inspect.signature(app.send_task).parameters.values()
    named = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD}
    return frozenset(named | CALL_OPTIONS) - _NOT_OPTIONS


def entry(app: Conveyor, name: str, spec: Any, now: datetime, tz: tzinfo) -> Entry:
    """Build and check one entry; every failure is an EntryError naming `name`."""
    if not isinstance(spec, Mapping):
        raise EntryError(f"beat entry {name!r}: must be a dict with 'task' and 'schedule'")
    unknown = set(spec) - KEYS
    if unknown:
        raise EntryError(
            f"beat entry {name!r}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"an entry has {', '.join(sorted(KEYS))}"
        )
    for key in ("task", "schedule"):
        if key not in spec:
            raise EntryError(f"beat entry {name!r}: no {key!r}")
    task = spec["task"]
    if not isinstance(task, str) or task not in app.tasks:
        raise EntryError(
            f"beat entry {name!r}: task {task!r} is not registered with {app!r} "
            "(import its module in the app, or list it in the `imports` setting)"
        )
    try:
        when = maybe_schedule(spec["schedule"])
        when.check(now, tz)
    except ScheduleError as exc:
        raise EntryError(f"beat entry {name!r}: schedule: {exc}") from None
    args, kwargs, options = spec.get("args", ()), spec.get("kwargs", {}), spec.get("options", {})
    if not isinstance(args, (list, tuple)):
        raise EntryError(f"beat entry {name!r}: args must be a list or tuple, not {args!r}")
    for key, value in (("kwargs", kwargs), ("options", options)):
        if not isinstance(value, Mapping):
            raise EntryError(f"beat entry {name!r}: {key} must be a dict, not {value!r}")
    bad = set(options) - send_options(app)
    if bad:
        raise EntryError(
            f"beat entry {name!r}: unknown option(s) {', '.join(sorted(bad))}; "
            f"options are those of send_task: {', '.join(sorted(send_options(app)))}"
        )
    codec = options.get("serializer") or app.tasks[task].serializer or app.conf.task_serializer
    try:
        app.serializer.encode([list(args), dict(kwargs)], codec)
    except ConveyorError as exc:
        raise EntryError(f"beat entry {name!r}: args and kwargs cannot be sent: {exc}") from None
    return Entry(name, task, when, tuple(args), dict(kwargs), dict(options))


def load(app: Conveyor, now: datetime, tz: tzinfo) -> list[Entry]:
    """Every entry of the app, checked: `beat_schedule`, then `add_periodic_task`'s (which
    `on_after_configure` and `on_after_finalize` receivers add, so those run first)."""
    for signal, receiver, error in send_configured(app):
        name = getattr(receiver, "__qualname__", repr(receiver))
        raise EntryError(f"{signal.name} receiver {name} raised: {error!r}") from error
    configured = app.conf.beat_schedule or {}
    if not isinstance(configured, Mapping):
        raise EntryError(f"beat_schedule must be a dict of entries, not {configured!r}")
    both = {**configured, **app.periodic_tasks}
    return [entry(app, str(name), spec, now, tz) for name, spec in both.items()]
