"""Event stores on every kind of storage: memory, SQLite, and the real servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.backends.events import EventStore, open_store

STORES = ["memory", "sqlite", "redis", "postgres", "mysql"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    kind = request.param
    if kind == "memory":
        url = f"memory://{uuid.uuid4().hex}"
    elif kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        url = request.getfixturevalue(f"{kind}_url")
    opened = open_store(url, expires=3600.0, max_tasks=1000)
    yield opened
    opened.close()
