"""Fixtures shared by several test packages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.testing.plugin import missing
from conveyor.testing.servers import LocalServer, ServerUnavailable, start_local_server


@pytest.fixture
def own_redis() -> Iterator[LocalServer]:
    """A redis-server of the test's own, for tests that count commands or restart it."""
    try:
        server = start_local_server("redis")
    except ServerUnavailable as exc:
        missing(f"no redis-server binary: {exc}")
    try:
        yield server
    finally:
        server.stop()
