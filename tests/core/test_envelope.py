import pytest

from conveyor.core import envelope
from conveyor.core.errors import DecodeError, EncodeError
from conveyor.core.message import Message


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
