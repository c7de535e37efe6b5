"""The fault suite: tiers and the printed ledger counts.

Smoke rows run by default (and in CI). `CONVEYOR_FAULTS=full` adds the full matrix (own
PostgreSQL and ZooKeeper, long outages, large messages); `CONVEYOR_SOAK=N` repeats the
seeded rows N times with random fault timing and prints the seed (`CONVEYOR_SOAK_SEED`
replays one).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.testing.fault_servers import (
    OwnServer,
    mariadb_server,
    postgres_cluster,
    rabbitmq_node,
    redis_with_aof,
    zookeeper_node,
)
from conveyor.testing.plugin import missing
from conveyor.testing.servers import ServerUnavailable
from tests.faults.harness import RESULTS

FULL = os.environ.get("CONVEYOR_FAULTS") == "full"
SOAK = int(os.environ.get("CONVEYOR_SOAK") or 0)


full_tier = pytest.mark.full_tier


def tier(smoke: list[str], full: list[str]) -> list[Any]:
    """Parameters of a row: the smoke ones, and the full ones marked `full_tier`."""
    return [*smoke, *(pytest.param(kind, marks=full_tier) for kind in full)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without CONVEYOR_FAULTS=full the full-tier rows are deselected, not skipped (a skip
    would read as a missing server under CI=true)."""
    if FULL:
        return
    full = [item for item in items if item.get_closest_marker("full_tier")]
    if full:
        config.hook.pytest_deselected(items=full)
        items[:] = [item for item in items if not item.get_closest_marker("full_tier")]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    terminalreporter.section("fault ledger")
    repeats = f"{SOAK} repetitions, " if SOAK else ""
    terminalreporter.write_line(f"{repeats}seed {SEED} (CONVEYOR_SOAK_SEED={SEED} replays it)")
    for name, counts in RESULTS:
        verdict = "pass" if counts.passed else "FAIL"
        terminalreporter.write_line(f"{verdict} {name}: {counts}")


def _own(start: object) -> Iterator[OwnServer]:
    try:
        server = start()  # type: ignore[operator]
    except ServerUnavailable as exc:
        missing(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aof_redis() -> Iterator[OwnServer]:
    """A redis-server of the test's own with every write fsynced to its append-only file."""
    yield from _own(redis_with_aof)


@pytest.fixture
def own_postgres() -> Iterator[OwnServer]:
    yield from _own(postgres_cluster)


@pytest.fixture
def own_zookeeper() -> Iterator[OwnServer]:
    yield from _own(zookeeper_node)


@pytest.fixture
def own_rabbitmq() -> Iterator[OwnServer]:
    yield from _own(rabbitmq_node)


@pytest.fixture
def own_mariadb() -> Iterator[OwnServer]:
    yield from _own(mariadb_server)


SEED = int(os.environ.get("CONVEYOR_SOAK_SEED") or random.randrange(2**32))


@pytest.fixture(scope="session")
def soak_seed() -> int:
    """The seed of the random fault timing; printed with the ledger counts."""
    return SEED


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "repetition" in metafunc.fixturenames:
        metafunc.parametrize("repetition", range(max(1, SOAK)))
