"""Untrusted bytes are never turned into code: pickle and YAML stay undecoded unless
enabled by name, and stored failure metadata never imports or calls anything."""

from __future__ import annotations

import pickle
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.backends.base import ResultRecord
from conveyor.backends.errors import RemoteError
from conveyor.core.codecs import Serializer
from conveyor.core.errors import ContentDisallowed
from conveyor.core.message import Message
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]


class _CreatesFile:
    """Unpickling this opens (so creates) a file: the classic pickle payload, harmless."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def _dead_reasons(app: Conveyor, queue: str, count: int) -> list[str]:
    assert wait_until(lambda: len(app.transport.dead_letters(queue)) >= count, 10)
    return [d.reason for d in app.transport.dead_letters(queue)]


def test_a_pickle_payload_is_refused_unread(tmp_path: Path) -> None:
    target = tmp_path / "created-by-pickle"
    payload = pickle.dumps(_CreatesFile(target))
    with pytest.raises(ContentDisallowed, match="not accepted"):
        Serializer().decode(payload, "application/x-python-serialize")
    assert not target.exists()
    # The control: enabled by name, the same payload does run (so the check above matters).
    Serializer(accept=["json", "pickle"]).decode(payload, "application/x-python-serialize")
    assert target.exists()


def test_a_worker_dead_letters_pickle_and_yaml_without_decoding(
    app: Conveyor, start_worker: StartWorker, tmp_path: Path
) -> None:
    target = tmp_path / "created-by-worker"
    yaml_payload = f'!!python/object/apply:builtins.open ["{target}", "w"]'.encode()
    app.transport.publish(
        "default",
        Message(pickle.dumps(_CreatesFile(target)), content_type="application/x-python-serialize"),
    )
    app.transport.publish("default", Message(yaml_payload, content_type="application/x-yaml"))
    start_worker()
    reasons = _dead_reasons(app, "default", 2)
    assert all("ContentDisallowed" in reason for reason in reasons), reasons
    assert not target.exists()


def test_stored_failure_metadata_imports_and_calls_nothing(
    app: Conveyor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "created-by-metadata"
    # A module of the test's own, importable and leaving a mark if imported: no other test
    # can have imported it first (a stdlib module might have been, by another library).
    unimported = f"conveyor_untrusted_{uuid.uuid4().hex[:8]}"
    imported_mark = tmp_path / "imported"
    (tmp_path / f"{unimported}.py").write_text(
        f"open({str(imported_mark)!r}, 'w').close()\nclass WSGIServer(Exception): pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert unimported not in sys.modules
    records = {
        "call": {"exc_module": "os", "exc_type": "system", "exc_message": f"touch {target}"},
        "import": {"exc_module": unimported, "exc_type": "WSGIServer", "exc_message": "x"},
        "builtin call": {"exc_module": "builtins", "exc_type": "exec", "exc_message": "1/0"},
    }
    for task_id, info in records.items():
        app.backend.store(ResultRecord(task_id, "FAILURE", result=info, traceback="tb"))
        with pytest.raises(RemoteError) as raised:
            app.AsyncResult(task_id).get(timeout=1)
        assert info["exc_type"] in str(raised.value)
    assert not target.exists()
    assert unimported not in sys.modules and not imported_mark.exists()
