import uuid

import pytest

from conveyor.core import envelope
from conveyor.core.errors import DecodeError, EncodeError
from conveyor.core.message import Message, new_message_id, new_task_id


def test_round_trip_keeps_every_field() -> None:
    message = Message(
        bytes(range(256)),
        headers={"k": ["é", 1, None]},
        content_type="x/y",
        content_encoding="binary",
        priority=7,
        correlation_id="c",
        reply_to="r",
    )
    assert envelope.unpack(envelope.pack(message)) == message


@pytest.mark.parametrize(
    "data", [b"", b"XYZ\x00\x00\x00\x01{", b"CV1\x00\x00\x00\xff{}", b"CV1\x00\x00\x00\x02{}"]
)
def test_garbage_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        envelope.unpack(data)


def test_headers_must_be_json() -> None:
    with pytest.raises(EncodeError):
        envelope.pack(Message(b"", headers={"x": object()}))


@pytest.mark.parametrize(
    "message",
    [
        Message(b"x"),
        Message(b"", headers={'q"\\\n': ["é", "\u2028", 1.5, None, True]}, id='a"b'),
        Message(b"", correlation_id="c\x00", reply_to="✓🚚", priority=-3, timestamp=1e300),
        Message(b"", priority=True, timestamp=7),  # unusual types: the general path
        Message(b"", timestamp=float("nan")),
    ],
)
def test_fast_head_writes_what_the_json_encoder_writes(message: Message) -> None:
    data = envelope.pack(message)
    assert data[7:].removesuffix(message.body) == envelope._dumps(envelope._meta(message)).encode()


def test_ids_are_random_and_well_formed() -> None:
    task_ids = {new_task_id() for _ in range(1000)}
    message_ids = {new_message_id() for _ in range(1000)}
    assert len(task_ids) == len(message_ids) == 1000
    for task_id in task_ids:
        parsed = uuid.UUID(task_id)
        assert (str(parsed), parsed.version, parsed.variant) == (task_id, 4, uuid.RFC_4122)
    assert all(len(m) == 32 and int(m, 16) >= 0 for m in message_ids)
