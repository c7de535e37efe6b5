"""A controlled clock and a recording sender for driving Beat tick by tick."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.beat.entries import Entry
from conveyor.beat.scheduler import Beat
from conveyor.beat.stores import open_store
from conveyor.beat.stores.memory import MemoryScheduleStore


@dataclass
class Clock:
    now: float = 1_767_225_600.0  # 2026-01-01 00:00 UTC

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sent:
    """What the beats under test sent: (entry, fire time, task id) in order."""

    items: list[tuple[str, datetime, str]] = field(default_factory=list)

    def __call__(self, entry: Entry, due: datetime, task_id: str) -> None:
        self.items.append((entry.name, due, task_id))

    def times(self, name: str) -> list[float]:
        return [due.timestamp() for entry, due, _ in self.items if entry == name]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def app() -> Iterator[Conveyor]:
    application = Conveyor("beat-tests", broker="memory://beat", backend="memory://beat")

    @application.task(name="tasks.ping")
    def ping(*args: Any) -> str:
        return "pong"

    yield application
    application.close()


MakeBeat = Callable[..., Beat]


@pytest.fixture
def make_beat(app: Conveyor, clock: Clock, sent: Sent) -> Iterator[MakeBeat]:
    """Beats on one fresh in-memory store (like beat processes sharing a broker)."""
    url = f"memory://beat-{uuid.uuid4().hex}"
    made: list[Beat] = []

    def make(schedule: dict[str, Any] | None = None, **options: Any) -> Beat:
        if schedule is not None:
            app.conf.beat_schedule = schedule
        store = open_store(url, options.setdefault("namespace", "beat-tests"))
        assert isinstance(store, MemoryScheduleStore)
        options.setdefault("lease_timeout", 6.0)
        options.setdefault("send", sent)  # send=None: the real app.send_task
        beat = Beat(app, store, clock=clock, **options)
        made.append(beat)
        return beat

    yield make
