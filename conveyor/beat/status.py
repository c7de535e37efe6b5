"""What beat is doing, for a dashboard or a command: the leader, and per entry its schedule,
last fire time and next fire time, read from the store every beat of the app shares."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from conveyor.app.base import Conveyor
from conveyor.beat import entries, walltime
from conveyor.beat.stores import open_store, store_url


@dataclass(frozen=True)
class EntryStatus:
    name: str
    task: str
    schedule: str
    last_run: datetime | None
    """The last fire time accounted for (for a new entry: when a leader first saw it)."""
    next_run: datetime | None


@dataclass(frozen=True)
class BeatStatus:
    leader: str | None
    """The holder of the lease ("host:pid:tag"), or None when no beat leads."""
    entries: list[EntryStatus]


def beat_status(app: Conveyor, schedule_file: str | None = None) -> BeatStatus:
    """Read the state; raises EntryError for an entry beat would refuse to start with."""
    tz = walltime.app_zone(app.conf)
    now = datetime.fromtimestamp(time.time(), walltime.UTC)
    store = open_store(
        store_url(app.conf, schedule_file), app.main or "conveyor", prefix=app.namespace
    )
    try:
        found = []
        for entry in entries.load(app, now, tz):
            stored = store.last_run(entry.name)
            last = None if stored is None else datetime.fromtimestamp(stored, walltime.UTC)
            following = entry.schedule.next_after(last or now, tz)
            found.append(EntryStatus(entry.name, entry.task, repr(entry.schedule), last, following))
        return BeatStatus(store.leader(now.timestamp()), found)
    finally:
        store.close()
