from __future__ import annotations

import threading

import pytest

from conveyor import AsyncResult, Conveyor, states
from conveyor.app.exceptions import TaskRevokedError, TimeoutError
from conveyor.backends.base import ResultRecord
from conveyor.backends.errors import RemoteError, describe_exception


def test_unknown_id_is_not_pending(app: Conveyor) -> None:
    result = app.AsyncResult("never-sent")
    assert not result.exists()
    assert result.state == states.UNKNOWN and not result.ready()
    assert result.result is None


def test_get_times_out(app: Conveyor) -> None:
    with pytest.raises(TimeoutError):
        app.AsyncResult("never-sent").get(timeout=0.1)


def test_success_failure_and_custom_states(app: Conveyor) -> None:
    store = app.backend.store
    store(ResultRecord("ok", states.SUCCESS, result={"a": 1}))
    store(ResultRecord("p", states.PROGRESS, result={"done": 3}))
    store(
        ResultRecord(
            "bad", states.FAILURE, result=describe_exception(ValueError("v")), traceback="tb"
        )
    )
    store(
        ResultRecord(
            "odd",
            states.FAILURE,
            result={"exc_type": "system", "exc_module": "os", "exc_message": "rm"},
        )
    )
    ok = AsyncResult("ok", app=app)
    assert ok.get(timeout=1) == {"a": 1} and ok.successful() and ok.status == states.SUCCESS
    assert app.AsyncResult("p").info == {"done": 3} and app.AsyncResult("p").state == "PROGRESS"
    bad = app.AsyncResult("bad")
    with pytest.raises(ValueError, match="v"):
        bad.get(timeout=1)
    assert bad.failed() and bad.traceback == "tb"
    assert isinstance(bad.get(propagate=False), ValueError)
    with pytest.raises(RemoteError, match=r"os\.system"):
        app.AsyncResult("odd").get(timeout=1)


def test_revoke_and_forget(app: Conveyor) -> None:
    result = app.send_task("some.task")
    result.revoke()
    assert result.state == states.REVOKED
    with pytest.raises(TaskRevokedError):
        result.get(timeout=1)
    result.forget()
    assert not result.exists()


def test_then_without_blocking(app: Conveyor) -> None:
    fired = threading.Event()
    seen: list[object] = []
    result = app.send_task("some.task")
    assert result.then(lambda r: (seen.append(r.result), fired.set())) is result
    assert not fired.wait(0.1)
    app.backend.store(ResultRecord(result.id, states.SUCCESS, result=7))
    assert fired.wait(5) and seen == [7]


def test_equality_and_default_app(app: Conveyor) -> None:
    assert AsyncResult("x", app=app) == AsyncResult("x", app=app) == "x"
    assert AsyncResult("y").app is app
