"""Celery's signals, sent at Celery's places with Celery's argument names."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conveyor import Conveyor, states
from conveyor import signals as conveyor_signals
from conveyor.core.message import Message
from conveyor.signals.dispatch import Signal
from conveyor.testing.waiting import wait_until
from conveyor.worker.logs import setup as setup_logging
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


class Recorder:
    """Connects to signals for one test and records (signal name, kwargs)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._connected: list[tuple[Signal, Callable[..., None]]] = []

    def watch(self, *sigs: Signal) -> None:
        for sig in sigs:

            def receiver(signal: Signal, **kwargs: Any) -> None:
                self.seen.append((signal.name, kwargs))

            sig.connect(receiver, weak=False)
            self._connected.append((sig, receiver))

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    def get(self, name: str) -> dict[str, Any]:
        return next(kwargs for seen, kwargs in self.seen if seen == name)

    def close(self) -> None:
        for sig, receiver in self._connected:
            sig.disconnect(receiver)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    watching = Recorder()
    yield watching
    watching.close()


TASK_SIGNALS = (
    conveyor_signals.task_received,
    conveyor_signals.task_prerun,
    conveyor_signals.task_success,
    conveyor_signals.task_failure,
    conveyor_signals.task_retry,
    conveyor_signals.task_postrun,
    conveyor_signals.task_revoked,
)


def test_success_sends_received_prerun_success_postrun_in_order(
    app: Conveyor, start_worker: StartWorker, recorder: Recorder
) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    recorder.watch(*TASK_SIGNALS)
    worker = start_worker()
    result = add.delay(2, 3)
    assert result.get(timeout=5) == 5
    assert wait_until(lambda: "task_postrun" in recorder.names(), 5)
    assert recorder.names() == ["task_received", "task_prerun", "task_success", "task_postrun"]
    received = recorder.get("task_received")
    assert received["sender"] is worker and received["request"].id == result.id
    prerun = recorder.get("task_prerun")
    assert prerun["sender"] is add and prerun["task"] is add
    assert (prerun["task_id"], prerun["args"], prerun["kwargs"]) == (result.id, (2, 3), {})
    assert recorder.get("task_success") == {"sender": add, "result": 5}
    postrun = recorder.get("task_postrun")
    assert (postrun["retval"], postrun["state"], postrun["task_id"]) == (
        5,
        states.SUCCESS,
        result.id,
    )


def test_failure_is_sent_after_the_failure_is_stored(
    app: Conveyor, start_worker: StartWorker, recorder: Recorder
) -> None:
    stored_state: list[str] = []

    @app.task
    def explode() -> None:
        raise ValueError("no")

    def on_failure(sender: Any, task_id: str, **kwargs: Any) -> None:
        stored_state.append(app.AsyncResult(task_id).state)

    conveyor_signals.task_failure.connect(on_failure)
    recorder.watch(*TASK_SIGNALS)
    try:
        start_worker()
        result = explode.delay()
        with pytest.raises(ValueError):
            result.get(timeout=5)
        assert wait_until(lambda: "task_postrun" in recorder.names(), 5)
    finally:
        conveyor_signals.task_failure.disconnect(on_failure)
    failure = recorder.get("task_failure")
    assert failure["sender"] is explode and failure["task_id"] == result.id
    assert isinstance(failure["exception"], ValueError)
    assert failure["args"] == () and failure["kwargs"] == {}
    assert failure["traceback"] is not None and "ValueError" in failure["einfo"].traceback
    assert recorder.get("task_postrun")["state"] == states.FAILURE
    assert stored_state == [states.FAILURE]


def test_retry_sends_task_retry_with_the_reason(
    app: Conveyor, start_worker: StartWorker, recorder: Recorder
) -> None:
    @app.task(bind=True, max_retries=1)
    def flaky(self: Any) -> str:
        if self.request.retries == 0:
            raise self.retry(exc=OSError("later"), countdown=0.01)
        return "done"

    recorder.watch(*TASK_SIGNALS)
    start_worker()
    assert flaky.delay().get(timeout=5) == "done"
    assert wait_until(lambda: recorder.names().count("task_postrun") == 2, 5)
    retry = recorder.get("task_retry")
    assert retry["sender"] is flaky and isinstance(retry["reason"], OSError)
    assert retry["request"].retries == 0 and "OSError" in retry["einfo"].traceback
    assert [kw["state"] for name, kw in recorder.seen if name == "task_postrun"] == [
        states.RETRY,
        states.SUCCESS,
    ]


def test_revoked_and_expired_tasks_send_task_revoked_and_never_prerun(
    app: Conveyor, start_worker: StartWorker, recorder: Recorder
) -> None:
    @app.task
    def noop() -> None:
        return None

    recorder.watch(*TASK_SIGNALS)
    revoked = noop.apply_async(countdown=0.3)
    app.control.revoke(revoked.id)
    expired = noop.apply_async(expires=-1)
    start_worker()
    assert wait_until(lambda: recorder.names().count("task_revoked") == 2, 5)
    by_id = {kw["request"].id: kw for name, kw in recorder.seen if name == "task_revoked"}
    assert by_id[revoked.id]["expired"] is False and by_id[revoked.id]["terminated"] is False
    assert by_id[expired.id]["expired"] is True and by_id[expired.id]["sender"] is noop
    assert "task_prerun" not in recorder.names()


def test_unknown_and_rejected_messages_send_their_signals(
    app: Conveyor, start_worker: StartWorker, recorder: Recorder
) -> None:
    recorder.watch(conveyor_signals.task_unknown, conveyor_signals.task_rejected)
    app.send_task("nobody.knows", task_id="t-unknown")
    app.transport.publish("default", Message(b"\x00not json", content_type="application/json"))
    start_worker()
    assert wait_until(lambda: len(recorder.seen) == 2, 5)
    unknown = recorder.get("task_unknown")
    assert (unknown["name"], unknown["id"]) == ("nobody.knows", "t-unknown")
    assert "nobody.knows" in str(unknown["exc"]) and unknown["message"] is not None
    rejected = recorder.get("task_rejected")
    assert rejected["message"].body == b"\x00not json" and rejected["exc"] is not None


def test_a_raising_receiver_never_breaks_the_task(
    app: Conveyor, start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task
    def ok() -> str:
        return "fine"

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver is broken")

    hooked = (conveyor_signals.task_prerun, conveyor_signals.task_success)
    for sig in hooked:
        sig.connect(broken)
    try:
        start_worker()
        with caplog.at_level(logging.ERROR, "conveyor.signals"):
            assert ok.delay().get(timeout=5) == "fine"
    finally:
        for sig in hooked:
            sig.disconnect(broken)
    assert "receiver is broken" in caplog.text


def test_publish_signals_see_the_headers_and_may_add_one(
    app: Conveyor, start_worker: StartWorker, recorder: Recorder
) -> None:
    @app.task(bind=True)
    def echo(self: Any) -> Any:
        return self.request.headers.get("trace")

    def add_header(headers: dict[str, Any], **kwargs: Any) -> None:
        headers["trace"] = "abc"

    conveyor_signals.before_task_publish.connect(add_header, sender=echo.name)
    recorder.watch(conveyor_signals.before_task_publish, conveyor_signals.after_task_publish)
    try:
        start_worker()
        result = echo.delay()
        assert result.get(timeout=5) == "abc"
    finally:
        conveyor_signals.before_task_publish.disconnect(add_header, sender=echo.name)
    before = recorder.get("before_task_publish")
    assert before["sender"] == echo.name and before["routing_key"] == "default"
    assert before["headers"]["id"] == result.id and before["body"]["id"] == result.id
    after = recorder.get("after_task_publish")
    assert after["headers"]["task"] == echo.name and after["headers"]["trace"] == "abc"


def test_worker_lifecycle_signals(app: Conveyor, recorder: Recorder) -> None:
    recorder.watch(
        conveyor_signals.worker_init,
        conveyor_signals.worker_ready,
        conveyor_signals.worker_shutdown,
        conveyor_signals.import_modules,
    )
    app.conf.imports = ["json"]
    worker = Worker(app, concurrency=1, shutdown_timeout=2.0)
    worker.start()
    worker.stop()
    assert recorder.names() == ["import_modules", "worker_init", "worker_ready", "worker_shutdown"]
    assert recorder.get("import_modules")["sender"] is app
    assert all(kw["sender"] is worker for name, kw in recorder.seen[1:])


def test_setup_logging_receiver_replaces_conveyors_logging(recorder: Recorder) -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        recorder.watch(
            conveyor_signals.after_setup_logger, conveyor_signals.after_setup_task_logger
        )
        setup_logging("debug")
        assert recorder.get("after_setup_logger")["logger"] is root
        assert recorder.get("after_setup_task_logger")["loglevel"] == "DEBUG"
        recorder.close()
        recorder.seen.clear()
        recorder.watch(conveyor_signals.setup_logging)
        marker = logging.NullHandler()
        root.handlers[:] = [marker]
        setup_logging("info")
        assert root.handlers == [marker]  # left alone: the receiver owns logging
        assert recorder.get("setup_logging")["loglevel"] == "INFO"
    finally:
        root.handlers[:], _ = before[0], root.setLevel(before[1])
