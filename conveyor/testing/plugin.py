"""The pytest plugin (entry point ``pytest11``): server fixtures and the conformance options.

Session fixtures `redis_url`, `amqp_url`, `zookeeper_url`, `postgres_url`, `mysql_url` and
`memcached_url` give a URL of a real server (see conveyor.testing.servers). A server that
cannot be found skips the test on a laptop and fails it under ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from conveyor.testing.servers import KINDS, ServerUnavailable, env_name, find_server


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """A server or tool a test needs is absent: skip on a laptop, fail under CI=true."""
    if in_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conveyor")
    group.addoption("--conveyor-broker", default=None, help="transport URL for the suite")
    group.addoption("--conveyor-backend", default=None, help="result backend URL for the suite")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(id, title): the conformance clause a test proves")


def _server_fixture(kind: str) -> object:
    @pytest.fixture(scope="session", name=f"{kind}_url")
    def fixture() -> Iterator[str]:
        try:
            url, stop = find_server(kind)
        except (ServerUnavailable, OSError) as exc:
            missing(f"no {kind} server ({exc}); set {env_name(kind)}")
        try:
            yield url
        finally:
            stop()

    return fixture


for _kind in KINDS:
    globals()[f"{_kind}_url"] = _server_fixture(_kind)
