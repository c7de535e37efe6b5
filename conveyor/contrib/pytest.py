"""Pytest fixtures for testing an app, as Celery's ``celery.contrib.pytest``.

Enable with ``pytest_plugins = ("conveyor.contrib.pytest",)`` in a conftest.py.

* ``conveyor_config`` (session): the settings of the test app; override it in your
  conftest. By default an in-process broker and result store (``memory://``), each test
  app with its own.
* ``conveyor_parameters`` (session): keyword arguments of ``Conveyor(...)``.
* ``conveyor_includes`` (session): modules whose tasks the app imports.
* ``conveyor_worker_pool`` / ``conveyor_worker_parameters`` (session): the test worker's
  pool ("solo") and extra Worker arguments.
* ``conveyor_app``: an app for one test, with ``@pytest.mark.conveyor(**settings)`` on a
  test adding settings for it.
* ``conveyor_worker``: a worker for `conveyor_app`, started before the test and stopped
  after it (conveyor.contrib.testing.worker.start_worker).
* ``conveyor_session_app`` / ``conveyor_session_worker``: the same, once per session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from conveyor.app.base import Conveyor
from conveyor.contrib.testing.worker import TestWorker, start_worker

MARKER = "conveyor"
_MEMORY = "memory://"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(**settings): settings of the conveyor_app fixture for this test"
    )


def _private_memory(settings: dict[str, Any]) -> dict[str, Any]:
    """A bare ``memory://`` broker or backend becomes one of this app's own."""
    name = uuid.uuid4().hex
    for key in ("broker_url", "result_backend"):
        if settings.get(key) == _MEMORY:
            settings[key] = f"{_MEMORY}{name}"
    return settings


def make_app(
    config: Mapping[str, Any], parameters: Mapping[str, Any], includes: list[str]
) -> Conveyor:
    settings = _private_memory(dict(config))
    app = Conveyor(parameters.get("main", "conveyor.tests"), **{**settings, **parameters})
    if includes:
        app.conf.include = [*app.conf.include, *includes]
        app.import_task_modules()
    return app


@pytest.fixture(scope="session")
def conveyor_config() -> dict[str, Any]:
    return {"broker_url": _MEMORY, "result_backend": _MEMORY}


@pytest.fixture(scope="session")
def conveyor_parameters() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="session")
def conveyor_includes() -> list[str]:
    return []


@pytest.fixture(scope="session")
def conveyor_worker_pool() -> str:
    return "solo"


@pytest.fixture(scope="session")
def conveyor_worker_parameters() -> dict[str, Any]:
    return {}


@pytest.fixture
def conveyor_app(
    request: pytest.FixtureRequest,
    conveyor_config: dict[str, Any],
    conveyor_parameters: dict[str, Any],
    conveyor_includes: list[str],
) -> Iterator[Conveyor]:
    config = dict(conveyor_config)
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        config.update(marker.kwargs)
    app = make_app(config, conveyor_parameters, conveyor_includes)
    yield app
    app.close()


def _running(app: Conveyor, pool: str, parameters: dict[str, Any]) -> Iterator[TestWorker]:
    with start_worker(app, pool=pool, **parameters) as worker:
        yield worker


@pytest.fixture
def conveyor_worker(
    conveyor_app: Conveyor,
    conveyor_worker_pool: str,
    conveyor_worker_parameters: dict[str, Any],
) -> Iterator[TestWorker]:
    yield from _running(conveyor_app, conveyor_worker_pool, conveyor_worker_parameters)


@pytest.fixture(scope="session")
def conveyor_session_app(
    conveyor_config: dict[str, Any],
    conveyor_parameters: dict[str, Any],
    conveyor_includes: list[str],
) -> Iterator[Conveyor]:
    app = make_app(conveyor_config, conveyor_parameters, conveyor_includes)
    yield app
    app.close()


@pytest.fixture(scope="session")
def conveyor_session_worker(
    conveyor_session_app: Conveyor,
    conveyor_worker_pool: str,
    conveyor_worker_parameters: dict[str, Any],
) -> Iterator[TestWorker]:
    yield from _running(conveyor_session_app, conveyor_worker_pool, conveyor_worker_parameters)
