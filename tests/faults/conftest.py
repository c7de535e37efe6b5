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

import pytest

from conveyor.testing.fault_servers import (
    OwnServer,
    postgres_cluster,
    redis_with_aof,
    zookeeper_node,
)
from conveyor.testing.plugin import missing
from conveyor.testing.servers import ServerUnavailable
from tests.faults.harness import RESULTS

FULL = os.environ.get("CONVEYOR_FAULTS") == "full"
SOAK = int(os.environ.get("CONVEYOR_SOAK") or 0)


def tier(smoke: list[str], full: list[str]) -> list[str]:
    """The rows to collect: the smoke ones, and the full ones too under CONVEYOR_FAULTS=full
    (left out, not skipped: a skip would read as a missing server)."""
    return smoke + full if FULL else smoke


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    terminalreporter.section("fault ledger")
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


@pytest.fixture(scope="session")
def soak_seed() -> int:
    seed = int(os.environ.get("CONVEYOR_SOAK_SEED") or random.randrange(2**32))
    print(f"\nfault soak seed: {seed} (CONVEYOR_SOAK_SEED={seed} replays it)")
    return seed


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "repetition" in metafunc.fixturenames:
        metafunc.parametrize("repetition", range(max(1, SOAK)))
