"""Fixtures shared by several test packages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.testing.plugin import in_ci, missing
from conveyor.testing.servers import LocalServer, ServerUnavailable, start_local_server

#: The one kind of skip a CI run accepts: a conformance clause a transport declares it cannot
#: meet (its capabilities say so). Anything else skipped under CI=true is a failure.
DECLARED_NOT_APPLICABLE = "n/a:"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true, turn every skip that is not a declared "n/a:" into a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not (in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    if not reason.startswith(DECLARED_NOT_APPLICABLE):
        report.outcome = "failed"
        report.longrepr = f"CI=true: skipped without a declared n/a: {reason}"


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
