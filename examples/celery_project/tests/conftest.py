import pytest

pytest_plugins = ("conveyor.contrib.pytest",)


@pytest.fixture(scope="session")
def conveyor_config():
    return {"broker_url": "memory://", "result_backend": "memory://"}


@pytest.fixture
def eager():
    """The project's own app in eager mode: tasks run in the test's process."""
    from proj.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager = False
