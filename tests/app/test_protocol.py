from __future__ import annotations

import json
import pathlib

import pytest

from conveyor.app import protocol
from conveyor.core.codecs import Serializer
from conveyor.core.errors import ContentDisallowed, DecodeError
from conveyor.core.message import Message

SCHEMA = json.loads(
    (pathlib.Path(__file__).parents[2] / "docs" / "task-message.schema.json").read_text()
)
JSON = Serializer()


def _message(body: object) -> Message:
    return Message(json.dumps(body).encode())


def test_round_trip_keeps_every_field() -> None:
    task = protocol.TaskMessage(
        id="i",
        task="t.x",
        args=[1, "é"],
        kwargs={"k": None},
        retries=2,
        eta="2026-01-01T00:00:00+00:00",
        expires=None,
        root_id="r",
        parent_id="p",
        callbacks=[{"task": "t.cb", "args": [], "kwargs": {}, "options": {}, "immutable": False}],
        ignore_result=True,
    )
    message = protocol.encode(task, JSON, priority=3, headers={"h": 1})
    assert (message.content_type, message.correlation_id, message.priority) == (
        "application/json",
        "i",
        3,
    )
    assert protocol.decode(message, JSON) == task
    assert set(task.to_dict()) == {"v", *protocol.TaskMessage.__dataclass_fields__}


def test_a_hand_written_minimal_body_is_accepted() -> None:
    decoded = protocol.decode(
        _message({"v": 1, "id": "x", "task": "t.y", "extra": "ignored"}), JSON
    )
    assert (decoded.args, decoded.kwargs, decoded.retries, decoded.callbacks) == ([], {}, 0, [])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"id": "x", "task": "t"}, "version None"),
        ({"v": 2, "id": "x", "task": "t"}, "version 2"),
        ({"v": 1, "task": "t"}, "no 'id'"),
        ({"v": 1, "id": "", "task": "t"}, "non-empty"),
        ({"v": 1, "id": "x", "task": "t", "args": {"a": 1}}, "'args'"),
        ({"v": 1, "id": "x", "task": "t", "retries": True}, "'retries'"),
        ({"v": 1, "id": "x", "task": "t", "eta": "tomorrow"}, "ISO 8601"),
        ([1, 2], "must be an object"),
    ],
)
def test_invalid_bodies_raise_protocol_errors(body: object, reason: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=reason):
        protocol.decode(_message(body), JSON)


def test_undecodable_and_disallowed_bodies() -> None:
    with pytest.raises(DecodeError):
        protocol.decode(Message(b"{nope"), JSON)
    with pytest.raises(ContentDisallowed):
        protocol.decode(Message(b"x", content_type="application/x-python-serialize"), JSON)


def test_times_are_iso_8601_utc() -> None:
    assert protocol.format_time(0.5) == "1970-01-01T00:00:00.500000+00:00"
    assert protocol.parse_time("1970-01-01T00:00:01Z") == 1.0
    assert protocol.parse_time("1970-01-01T00:00:01") == 1.0
    assert protocol.parse_time("1970-01-01T01:00:01+01:00") == 1.0


def test_the_published_schema_matches_the_code() -> None:
    fields = set(protocol.TaskMessage.__dataclass_fields__)
    assert set(SCHEMA["properties"]) == fields | {"v"}
    assert SCHEMA["required"] == ["v", "id", "task"]
    assert SCHEMA["properties"]["v"]["const"] == protocol.VERSION
