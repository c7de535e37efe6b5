"""Optional message signing: HMAC-SHA256 with key ids, issue time and expiry (signing.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from conveyor import Conveyor
from conveyor.app import protocol
from conveyor.app.signing import HEADER, InvalidSignature, Signer
from conveyor.core.errors import ConfigurationError
from conveyor.core.message import Message, new_task_id
from conveyor.testing.waiting import wait_until
from conveyor.worker.worker import Worker

StartWorker = Callable[..., Worker]
OLD, NEW = "old-secret-0123456789", "new-secret-9876543210"


@pytest.fixture
def signed_app(app: Conveyor) -> Conveyor:
    app.conf.update(
        message_signing_keys={"2025": OLD, "2026": NEW},
        message_signing_key_id="2026",
        message_signing_ttl=60.0,
    )
    return app


def _task_message(app: Conveyor, name: str, **kwargs: object) -> Message:
    body = protocol.TaskMessage(id=new_task_id(), task=name, kwargs=dict(kwargs))
    return protocol.encode(body, app.serializer)


def _with_body(message: Message, **kwargs: object) -> Message:
    data = json.loads(message.body)
    data["kwargs"].update(kwargs)
    return replace(message, body=json.dumps(data).encode())


def test_signed_tasks_run_and_bad_ones_are_dead_lettered_unrun(
    signed_app: Conveyor, start_worker: StartWorker
) -> None:
    app = signed_app
    ran: list[str] = []
    lock = threading.Lock()

    @app.task
    def record(label: str) -> str:
        with lock:
            ran.append(label)
        return label

    signer = app.signer
    old = Signer(signer.keys, "2025", 60.0)
    stranger = Signer({"2024": b"a-key-nobody-trusts-1234"}, "2024", 60.0)
    good = signer.sign(_task_message(app, record.name, label="good"))
    bad = {
        "unsigned": _task_message(app, record.name, label="unsigned"),
        "tampered body": _with_body(good, label="tampered body"),
        "tampered header": replace(good, headers={**good.headers, "x-extra": 1}),
        "unknown key": stranger.sign(_task_message(app, record.name, label="unknown key")),
        "replayed": signer.sign(
            _task_message(app, record.name, label="replayed"), now=time.time() - 3600
        ),
    }
    for message in bad.values():
        app.transport.publish("default", message)
    app.transport.publish("default", good)
    app.transport.publish("default", old.sign(_task_message(app, record.name, label="old key")))
    start_worker()
    assert record.delay("sent").get(timeout=10) == "sent"  # send_task signs
    assert wait_until(lambda: len(app.transport.dead_letters("default")) >= len(bad), 10)
    assert wait_until(lambda: len(ran) == 3, 10)
    assert sorted(ran) == ["good", "old key", "sent"]
    dead = app.transport.dead_letters("default")
    assert len(dead) == len(bad)
    # The tampered copies keep the good message's id: tell them apart by their content.
    reasons = {label: [d.reason for d in dead if d.message == m] for label, m in bad.items()}
    for label, found in reasons.items():
        assert len(found) == 1 and found[0].startswith("InvalidSignature"), (label, found)
    assert "does not match" in reasons["tampered body"][0]
    assert "does not match" in reasons["tampered header"][0]
    assert "expired" in reasons["replayed"][0]
    assert "unknown signing key id '2024'" in reasons["unknown key"][0]
    assert "not signed" in reasons["unsigned"][0]


def test_every_signed_part_is_checked() -> None:
    signer = Signer({"k": b"0123456789abcdef0123"}, "k", 60.0)
    message = signer.sign(Message(b"body", headers={"h": [1, 2]}, correlation_id="c"))
    signer.verify(message)
    changes = {
        "body": {"body": b"bodx"},
        "id": {"id": "another"},
        "headers": {"headers": {**message.headers, "h": [1, 3]}},
        "content type": {"content_type": "application/x-msgpack"},
        "correlation id": {"correlation_id": "d"},
        "expiry": {"headers": {HEADER: {**message.headers[HEADER], "exp": 9e9}, "h": [1, 2]}},
    }
    for part, change in changes.items():
        with pytest.raises(InvalidSignature, match="does not match"):
            signer.verify(replace(message, **change))  # type: ignore[arg-type]
            pytest.fail(f"a changed {part} passed")
    with pytest.raises(InvalidSignature, match="expired"):
        signer.verify(message, now=time.time() + 61)
    with pytest.raises(InvalidSignature, match="future"):
        signer.verify(signer.sign(Message(b"x"), now=time.time() + 3600))
    delayed = signer.sign(Message(b"later"), delay=600)
    signer.verify(delayed, now=time.time() + 620)  # the lifetime starts when it is due


@pytest.mark.parametrize(
    ("keys", "key_id", "ttl", "named"),
    [
        ({"k": "short"}, "k", 60, "shorter than 16 bytes"),
        ({"k": "long-enough-secret-1"}, "other", 60, "message_signing_key_id 'other'"),
        ({"": "long-enough-secret-1"}, None, 60, "key id ''"),
        (["k"], None, 60, "must map key ids"),
        ({"k": "long-enough-secret-1"}, "k", 0, "message_signing_ttl"),
    ],
)
def test_bad_signing_settings_are_named_without_the_secret(
    keys: object, key_id: object, ttl: object, named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named) as raised:
        Signer.from_settings(keys, key_id, ttl)
    assert "long-enough-secret-1" not in str(raised.value)


def test_no_secret_in_the_signers_repr(signed_app: Conveyor) -> None:
    text = repr(signed_app.signer)
    assert "2026" in text
    assert OLD not in text and NEW not in text
