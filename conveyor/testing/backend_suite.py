"""The result-backend conformance suite: every clause of CONFORMANCE.md (beside it) is one test.

Bind it to a backend by subclassing with a `backend_url` fixture:

    class TestMyStore(BackendContract):
        @pytest.fixture(scope="class")
        @classmethod
        def backend_url(cls) -> str:
            return "mystore://127.0.0.1:1234"

`conveyor conformance --backend URL` runs the same class and prints a table by clause id.
A clause whose capability the backend declares it lacks (attributes `networked`,
`authenticates`, `crosses_processes`, readable before any I/O) is reported "n/a: <reason>"
(a pytest skip carrying that text), never a pass.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conveyor.backends.base import (
    FAILURE,
    PENDING,
    READY_STATES,
    RETRY,
    REVOKED,
    STARTED,
    SUCCESS,
    ResultBackend,
    ResultRecord,
    ResultTimeout,
)
from conveyor.backends.errors import RemoteError, ResultTooLarge, rebuild_exception
from conveyor.core.errors import AuthenticationFailed, BackendUnavailable
from conveyor.core.registry import create_backend
from conveyor.testing.suite_support import (
    FAULTS,
    WRONG_PASSWORD,
    closing_builder,
    faulty_url,
    not_applicable,
)
from conveyor.testing.waiting import wait_until

EXPIRES = 2.0
PROGRESS = "PROGRESS"
clause = pytest.mark.clause
MakeBackend = Callable[..., ResultBackend]


def new_id(label: str = "task") -> str:
    return f"conformance-{label}-{uuid.uuid4().hex}"


def count_in_process(url: str, key: str, times: int, go: Any, out: Any) -> None:
    """B9's worker process: `times` increments of `key` once `go` is set; sends the values."""
    backend = create_backend(url)
    try:
        if go.wait(60):
            out.put([backend.incr(key) for _ in range(times)])
    finally:
        backend.close()


def _process_context() -> Any:
    """Where B9's processes come from: a fork server that has imported this module, so the
    runs of every backend pay for one interpreter start-up, not four each, and no process
    is forked from the test process and its threads. Spawned where there is no fork server
    (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


class BackendContract:
    """The contract every result backend passes. Subclasses provide the `backend_url` fixture."""

    @pytest.fixture(scope="class")
    @classmethod
    def backend_url(cls) -> str:
        raise NotImplementedError("bind the suite with a backend_url fixture")

    @pytest.fixture
    def make_backend(self, backend_url: str) -> Iterator[MakeBackend]:
        defaults = {"result_expires": 60.0, "poll_interval": 0.05}
        with closing_builder(create_backend, ResultBackend, backend_url, **defaults) as make:
            yield make

    @pytest.fixture
    def backend(self, make_backend: MakeBackend) -> ResultBackend:
        return make_backend()

    # -- B1-B4: storing ------------------------------------------------------------------

    @clause(
        "B1",
        "Store and get round-trip the whole record: state, result, traceback, meta, "
        "children, parent, group, date done",
    )
    def test_round_trip(self, backend: ResultBackend) -> None:
        done = time.time()
        success = ResultRecord(
            task_id=new_id("b1"),
            state=SUCCESS,
            result={"text": "naïve ✓ 日本", "nested": [1, 2.5, None, True, {"k": []}], "n": 2**53},
            meta={"progress": 1.0, "note": "ok"},
            children=[new_id("child"), new_id("child")],
            parent_id=new_id("parent"),
            group_id=new_id("group"),
            date_done=done,
        )
        failure = ResultRecord(
            task_id=new_id("b1"),
            state=FAILURE,
            result={"exc_type": "ValueError", "exc_message": "bad ✗", "exc_module": "builtins"},
            traceback='Traceback (most recent call last):\n  File "t.py", line 1\nValueError',
            date_done=done,
        )
        progress = ResultRecord(task_id=new_id("b1"), state=PROGRESS, meta={"done": 3, "of": 7})
        for record in (success, failure, progress):
            assert backend.store(record) is True
            assert backend.get(record.task_id) == record

    @clause("B2", "An unknown id reads as unknown, distinguishable from pending")
    def test_unknown_is_not_pending(self, backend: ResultBackend) -> None:
        pending, unknown = new_id("b2-pending"), new_id("b2-unknown")
        assert backend.store(ResultRecord(pending, PENDING))
        got = backend.get(pending)
        assert got is not None and got.state == PENDING
        assert backend.get(unknown) is None

    @clause("B3", "A ready state (SUCCESS, FAILURE, REVOKED) is never replaced by a non-ready one")
    @pytest.mark.parametrize("ready_state", sorted(READY_STATES))
    def test_ready_is_final(self, backend: ResultBackend, ready_state: str) -> None:
        task_id = new_id("b3")
        ready = ResultRecord(task_id, ready_state, result="first", date_done=time.time())
        assert backend.store(ready) is True
        for state in (PENDING, STARTED, RETRY, PROGRESS):
            assert backend.store(ResultRecord(task_id, state, meta={"late": True})) is False
        # The first ready state wins: a late duplicate cannot replace it either.
        assert backend.store(replace(ready, state=SUCCESS, result="second")) is False
        assert backend.get(task_id) == ready

    @clause("B4", "8 threads storing states for one id end in one consistent final record")
    def test_concurrent_stores(self, make_backend: MakeBackend) -> None:
        task_id = new_id("b4")
        backends = [make_backend() for _ in range(8)]
        start = threading.Barrier(len(backends), timeout=30)
        outcomes: list[tuple[ResultRecord, bool]] = []
        errors: list[BaseException] = []
        ready_states = (SUCCESS, FAILURE, REVOKED)

        def run(i: int, backend: ResultBackend) -> None:
            try:
                start.wait()
                for step in range(5):
                    backend.store(ResultRecord(task_id, PROGRESS, meta={"thread": i, "step": step}))
                final = ResultRecord(
                    task_id, ready_states[i % 3], result={"thread": i}, date_done=time.time()
                )
                outcomes.append((final, backend.store(final)))
                late = backend.store(ResultRecord(task_id, RETRY, meta={"thread": i}))
                outcomes.append((ResultRecord(task_id, RETRY), late))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i, b)) for i, b in enumerate(backends)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert all(not thread.is_alive() for thread in threads)
        winners = [record for record, stored in outcomes if stored and record.ready]
        assert len(winners) == 1, f"{len(winners)} ready stores succeeded, expected exactly 1"
        assert not [record for record, stored in outcomes if stored and not record.ready]
        for backend in backends:
            assert backend.get(task_id) == winners[0]

    # -- B5-B8: reading, waiting, forgetting, expiring ----------------------------------

    @clause(
        "B5",
        "wait returns when ready, reports intermediate states in order through on_message, "
        "and raises a timeout error within its deadline when not ready",
    )
    def test_wait(self, make_backend: MakeBackend) -> None:
        waiter, writer = make_backend(), make_backend()
        task_id = new_id("b5")
        steps = [
            ResultRecord(task_id, STARTED),
            ResultRecord(task_id, PROGRESS, meta={"done": 1}),
            ResultRecord(task_id, PROGRESS, meta={"done": 2}),
            ResultRecord(task_id, SUCCESS, result=42, date_done=time.time()),
        ]
        seen: list[ResultRecord] = []
        reported = [threading.Event() for _ in steps]

        def on_message(record: ResultRecord) -> None:
            seen.append(record)
            if record in steps:
                reported[steps.index(record)].set()

        def write() -> None:
            # Each state is written once the waiter reported the previous one, so a polling
            # backend sees every state and the order check is exact, with no sleeps.
            for step, event in zip(steps, reported, strict=True):
                writer.store(step)
                if not event.wait(10):
                    return

        thread = threading.Thread(target=write)
        thread.start()
        try:
            final = waiter.wait(task_id, timeout=30, on_message=on_message)
        finally:
            thread.join(30)
        assert final == steps[-1]
        assert seen == steps

        # Already ready: returns at once, reporting the ready record.
        again: list[ResultRecord] = []
        started = time.monotonic()
        assert waiter.wait(task_id, timeout=5, on_message=again.append) == steps[-1]
        assert again == [steps[-1]] and time.monotonic() - started < 2

        # Not ready (pending, or unknown): the timeout error comes within its deadline.
        pending = new_id("b5-pending")
        writer.store(ResultRecord(pending, PENDING))
        for task in (pending, new_id("b5-unknown")):
            started = time.monotonic()
            with pytest.raises(ResultTimeout):
                waiter.wait(task, timeout=0.5)
            elapsed = time.monotonic() - started
            assert 0.45 <= elapsed < 2.0, f"timeout of 0.5 s took {elapsed:.2f} s"

    @clause("B6", "get_many returns records for known ids and 'unknown' for the rest")
    def test_get_many(self, backend: ResultBackend) -> None:
        known = [ResultRecord(new_id("b6"), SUCCESS, result=i) for i in range(3)]
        for record in known:
            assert backend.store(record)
        unknown = [new_id("b6-unknown") for _ in range(2)]
        ids = [known[0].task_id, unknown[0], known[1].task_id, known[2].task_id, unknown[1]]
        got = backend.get_many(ids)
        assert set(got) == set(ids)
        for record in known:
            assert got[record.task_id] == record
        assert got[unknown[0]] is None and got[unknown[1]] is None
        assert backend.get_many([]) == {}

    @clause("B7", "forget removes a record")
    def test_forget(self, backend: ResultBackend) -> None:
        task_id, other = new_id("b7"), new_id("b7-other")
        assert backend.store(ResultRecord(task_id, SUCCESS, result="x"))
        assert backend.store(ResultRecord(other, SUCCESS, result="y"))
        backend.forget(task_id)
        assert backend.get(task_id) is None
        assert backend.get(other) is not None
        backend.forget(task_id)  # forgetting an unknown id is not an error
        # Gone for good: the ready rule no longer holds the id.
        assert backend.store(ResultRecord(task_id, STARTED)) is True

    @clause("B8", "Records expire after result_expires with no other process running")
    def test_expiry(self, make_backend: MakeBackend) -> None:
        backend = make_backend(result_expires=EXPIRES)
        task_id, counter = new_id("b8"), new_id("b8-counter")
        record = ResultRecord(task_id, SUCCESS, result="soon gone", date_done=time.time())
        assert backend.incr(counter) == 1  # first, so it expires no later than the record
        assert backend.store(record)
        assert backend.get(task_id) == record
        assert wait_until(lambda: backend.get(task_id) is None, EXPIRES + 4, interval=0.1)
        assert backend.get_many([task_id]) == {task_id: None}
        # Counters expire too: a new count starts from zero.
        assert backend.incr(counter) == 1
        # An expired ready record no longer holds the id.
        assert backend.store(ResultRecord(task_id, STARTED)) is True

    # -- B9-B12: counters, limits, safety, faults -----------------------------------------

    @clause("B9", "Group counters: 100 concurrent increments from 4 processes give exactly 100")
    def test_counters(self, backend: ResultBackend, backend_url: str) -> None:
        key = new_id("b9")
        if backend.crosses_processes:
            values = self._count_in_processes(backend_url, key)
        else:  # an in-process store: its workers are threads
            values = self._count_in_threads(backend, key)
        assert sorted(values) == list(range(1, 101)), "every increment saw a distinct value"
        assert backend.incr(key, 0) == 100
        assert backend.incr(key, 5) == 105

    def _count_in_processes(self, url: str, key: str) -> list[int]:
        context = _process_context()
        go, out = context.Event(), context.Queue()
        workers = [
            context.Process(target=count_in_process, args=(url, key, 25, go, out)) for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        try:
            go.set()
            return [value for _ in workers for value in out.get(timeout=120)]
        finally:
            for worker in workers:
                worker.join(10)
                if worker.is_alive():
                    worker.kill()
                    worker.join(10)

    def _count_in_threads(self, backend: ResultBackend, key: str) -> list[int]:
        start = threading.Barrier(4, timeout=30)
        values: list[int] = []

        def run() -> None:
            start.wait()
            values.extend(backend.incr(key) for _ in range(25))

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return values

    @clause("B10", "A result over the store's limit becomes a FAILURE record saying so")
    def test_result_too_large(self, make_backend: MakeBackend) -> None:
        backend = make_backend()
        if backend.value_limit > 16 * 1024 * 1024:
            # Too big to send in a test: prove the mechanism under a lowered limit.
            backend = make_backend(max_result_size=256 * 1024)
        limit = backend.value_limit

        def sized(task_id: str, size: int, state: str = SUCCESS) -> ResultRecord:
            record = ResultRecord(task_id, state, result="", date_done=time.time())
            padding = size - len(record.to_bytes())
            return replace(record, result="x" * padding)

        fits = sized(new_id("b10-fits"), limit)
        assert len(fits.to_bytes()) == limit
        assert backend.store(fits) is True
        assert backend.get(fits.task_id) == fits

        too_large = sized(new_id("b10-large"), limit + 1)
        assert backend.store(too_large) is True
        got = backend.get(too_large.task_id)
        assert got is not None and got.state == FAILURE
        assert got.result["exc_type"] == "ResultTooLarge"
        assert str(limit) in got.result["exc_message"]
        assert isinstance(rebuild_exception(got), ResultTooLarge)

        progress = sized(new_id("b10-progress"), limit + 1, state=PROGRESS)
        with pytest.raises(ResultTooLarge):
            backend.store(progress)
        assert backend.get(progress.task_id) is None

    @clause(
        "B11",
        'A stored failure naming exc_module="os", exc_type="system" is not imported or called; '
        "reading it gives a generic remote error",
    )
    def test_stored_failure_is_inert(self, backend: ResultBackend, tmp_path: Path) -> None:
        canary = tmp_path / "b11-canary"
        hostile = {"exc_type": "system", "exc_module": "os", "exc_message": f"touch {canary}"}
        record = ResultRecord(
            new_id("b11"), FAILURE, result=hostile, traceback="Traceback: remote", date_done=1.0
        )
        assert backend.store(record)
        got = backend.get(record.task_id)
        assert got == record  # the backend hands back data, nothing rebuilt
        error = rebuild_exception(got)
        assert isinstance(error, RemoteError)
        assert error.exc_type == "os.system" and error.exc_message == f"touch {canary}"
        assert error.remote_traceback == "Traceback: remote"
        assert not canary.exists()

        # A module named by stored data is never imported ("this" prints when imported).
        imported_before = "this" in sys.modules
        named = replace(record, task_id=new_id("b11"), result={**hostile, "exc_module": "this"})
        assert backend.store(named)
        assert isinstance(rebuild_exception(backend.get(named.task_id)), RemoteError)  # type: ignore[arg-type]
        assert ("this" in sys.modules) == imported_before

        # Known built-ins are rebuilt as themselves.
        builtin = replace(
            record,
            task_id=new_id("b11"),
            result={"exc_type": "ValueError", "exc_module": "builtins", "exc_message": "bad"},
        )
        assert backend.store(builtin)
        rebuilt = rebuild_exception(backend.get(builtin.task_id))  # type: ignore[arg-type]
        assert type(rebuilt) is ValueError and str(rebuilt) == "bad"

    @clause(
        "B12",
        "Refused port, wrong password and unknown host raise conveyor's own errors within a "
        "deadline",
    )
    @pytest.mark.parametrize("fault", FAULTS)
    def test_bad_connections(self, make_backend: MakeBackend, backend_url: str, fault: str) -> None:
        probe = make_backend()  # capabilities are known before any I/O
        name = type(probe).__name__
        if not probe.networked:
            not_applicable(f"{name} for {probe.url.scheme}:// does not connect over a network")
        if fault == "wrong password" and not probe.authenticates:
            not_applicable(f"{name}'s server has no notion of credentials")
        url = faulty_url(backend_url, fault)
        expected = AuthenticationFailed if fault == "wrong password" else BackendUnavailable
        started = time.monotonic()
        with pytest.raises(expected) as info:
            backend = make_backend(url, connect_timeout=2.0, timeout=2.0)
            backend.get(new_id("b12"))
        assert time.monotonic() - started < 10
        assert WRONG_PASSWORD not in str(info.value)
