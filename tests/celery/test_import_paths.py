"""The import paths Celery code uses, renamed, load and name the same things."""

from __future__ import annotations

import importlib

import pytest

import conveyor
from conveyor import exceptions, states
from conveyor.app import states as app_states
from conveyor.app.result import AsyncResult


def test_celery_alias_is_the_app_class() -> None:
    assert conveyor.Celery is conveyor.Conveyor


def test_states_module_is_the_package_attribute() -> None:
    assert importlib.import_module("conveyor.states") is states
    assert states.SUCCESS == app_states.SUCCESS == "SUCCESS"


def test_celery_states_and_all_states() -> None:
    assert (states.RECEIVED, states.REJECTED, states.IGNORED) == (
        "RECEIVED",
        "REJECTED",
        "IGNORED",
    )
    assert {
        "PENDING",
        "RECEIVED",
        "STARTED",
        "SUCCESS",
        "FAILURE",
        "REVOKED",
        "REJECTED",
        "RETRY",
        "IGNORED",
    } == states.ALL_STATES
    assert states.READY_STATES <= states.ALL_STATES


def test_result_module() -> None:
    from conveyor.result import AsyncResult as Imported

    assert Imported is AsyncResult


@pytest.mark.parametrize(
    "name",
    [
        "Ignore",
        "Reject",
        "Retry",
        "WorkerLostError",
        "MaxRetriesExceededError",
        "SoftTimeLimitExceeded",
        "TimeLimitExceeded",
        "TaskRevokedError",
        "TimeoutError",
        "NotRegistered",
        "AlreadyRegistered",
        "ImproperlyConfigured",
        "QueueNotFound",
        "CeleryError",
        "TaskPredicate",
        "WorkerShutdown",
        "WorkerTerminate",
        "InvalidTaskError",
        "OperationalError",
    ],
)
def test_celery_exception_names(name: str) -> None:
    value = getattr(exceptions, name)
    assert isinstance(value, type) and issubclass(value, BaseException)


def test_every_task_error_is_a_conveyor_error() -> None:
    for name in ("Ignore", "Reject", "WorkerLostError", "Retry"):
        assert issubclass(getattr(exceptions, name), exceptions.CeleryError)
    assert issubclass(exceptions.Ignore, exceptions.TaskPredicate)
    assert issubclass(exceptions.ImproperlyConfigured, ValueError)


def test_reject_keeps_reason_and_requeue() -> None:
    reject = exceptions.Reject("bad input", requeue=True)
    assert reject.reason == "bad input" and reject.requeue is True
    assert "bad input" in str(reject)
    assert exceptions.Reject().requeue is False


def test_task_logger_path() -> None:
    from conveyor.utils.log import get_task_logger

    assert get_task_logger("proj.tasks").name == "conveyor.task.proj.tasks"
