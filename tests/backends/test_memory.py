"""The in-memory result backend beyond the conformance suite, and the contract's helpers."""

from __future__ import annotations

import threading
import uuid

import pytest

from conveyor.backends.base import (
    FAILURE,
    PENDING,
    STARTED,
    SUCCESS,
    ResultRecord,
    ResultTimeout,
    bounded_key,
)
from conveyor.backends.errors import ResultTooLarge
from conveyor.backends.memory import MemoryBackend
from conveyor.core.errors import ConfigurationError, EncodeError, InvalidURL
from conveyor.core.registry import create_backend
from conveyor.testing.waiting import wait_until


def memory(name: str | None = None, **options: float) -> MemoryBackend:
    backend: MemoryBackend = create_backend(f"memory://{name or uuid.uuid4().hex}", **options)
    return backend


def test_backends_with_one_name_share_one_store() -> None:
    name = uuid.uuid4().hex
    first, second, other = memory(name), memory(name), memory()
    assert first.store(ResultRecord("t", SUCCESS, result=1))
    assert second.get("t") == ResultRecord("t", SUCCESS, result=1)
    assert other.get("t") is None


def test_records_read_back_are_copies() -> None:
    backend = memory()
    record = ResultRecord("t", STARTED, meta={"items": [1]})
    backend.store(record)
    record.meta["items"].append(2)
    assert backend.get("t") == ResultRecord("t", STARTED, meta={"items": [1]})


def test_wait_sees_every_state_even_written_back_to_back() -> None:
    """Unlike a polling backend, memory hands the waiter each write, however quick."""
    backend = memory()
    seen: list[str] = []
    waiting = threading.Event()

    def on_message(record: ResultRecord) -> None:
        seen.append(record.meta.get("step", record.state))

    def write() -> None:
        waiting.wait(5)
        for step in range(50):
            backend.store(ResultRecord("t", "PROGRESS", meta={"step": step}))
        backend.store(ResultRecord("t", SUCCESS))

    thread = threading.Thread(target=write)
    thread.start()
    backend.store(ResultRecord("t", PENDING))
    waiting.set()
    assert backend.wait("t", timeout=10, on_message=on_message).state == SUCCESS
    thread.join(10)
    assert seen == [PENDING, *range(50), SUCCESS]


def test_waiters_are_removed_after_wait_and_timeout() -> None:
    backend = memory()
    backend.store(ResultRecord("done", SUCCESS))
    backend.wait("done", timeout=1)
    with pytest.raises(ResultTimeout):
        backend.wait("never", timeout=0.05)
    assert backend._store.watchers == {}


def test_many_waiters_on_one_id_all_return() -> None:
    backend = memory()
    results: list[ResultRecord] = []
    threads = [
        threading.Thread(target=lambda: results.append(backend.wait("t", timeout=10)))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: len(backend._store.watchers.get("t", ())) == 5, 5)
    backend.store(ResultRecord("t", FAILURE, result={"exc_type": "ValueError"}))
    for thread in threads:
        thread.join(10)
    assert [r.state for r in results] == [FAILURE] * 5


def test_result_expires_zero_keeps_records() -> None:
    backend = memory(result_expires=0)
    backend.store(ResultRecord("t", SUCCESS))
    assert backend.expires_at() is None
    assert backend._store.records["t"][2] is None


def test_a_non_json_result_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        memory().store(ResultRecord("t", SUCCESS, result=object()))


def test_an_oversized_progress_raises_and_keeps_the_task_running() -> None:
    backend = memory(max_result_size=200)
    backend.store(ResultRecord("t", STARTED))
    with pytest.raises(ResultTooLarge):
        backend.store(ResultRecord("t", "PROGRESS", meta={"blob": "x" * 500}))
    assert backend.get("t") == ResultRecord("t", STARTED)
    assert backend.store(ResultRecord("t", SUCCESS, result=1))


@pytest.mark.parametrize(
    "option", [{"result_expires": -1}, {"poll_interval": 0}, {"max_result_size": -5}]
)
def test_bad_options_are_refused(option: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        create_backend("memory://bad-options", **option)


def test_unknown_url_option_is_refused() -> None:
    with pytest.raises(InvalidURL, match="result_expires"):
        create_backend("memory://x?result_expire=5")


def test_bounded_key_keeps_plain_names_and_hashes_the_rest() -> None:
    assert bounded_key("p:", "abc-123", 250, plain_ascii=True) == "p:abc-123"
    long = bounded_key("p:", "x" * 300, 250)
    assert long.startswith("p:#sha256:") and len(long) < 250
    assert bounded_key("p:", "a b", 250, plain_ascii=True) != bounded_key("p:", "a_b", 250)
    assert bounded_key("p:", "naïve", 250) == "p:naïve"
    assert bounded_key("p:", "naïve", 250, plain_ascii=True).startswith("p:#sha256:")
    assert bounded_key("", "tab\there", 255).startswith("#sha256:")
