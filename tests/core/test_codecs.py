import pickle

import pytest

from conveyor.core.codecs import Serializer
from conveyor.core.errors import ContentDisallowed, DecodeError, EncodeError, MessageTooLarge


def test_json_round_trip() -> None:
    serializer = Serializer()
    body, content_type = serializer.encode({"a": [1, "é", None, 2.5]})
    assert content_type == "application/json"
    assert serializer.decode(body, content_type) == {"a": [1, "é", None, 2.5]}


def test_pickle_is_refused_before_decoding() -> None:
    exploded = []

    class Bomb:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (exploded.append, (True,))

    with pytest.raises(ContentDisallowed, match="not accepted"):
        Serializer().decode(pickle.dumps(Bomb()), "application/x-python-serialize")
    assert exploded == []


def test_pickle_works_only_when_accepted() -> None:
    serializer = Serializer(accept=["json", "pickle"])
    body, content_type = serializer.encode({1, 2}, "pickle")
    assert serializer.decode(body, content_type) == {1, 2}


def test_msgpack_round_trip() -> None:
    serializer = Serializer(accept=["msgpack"])
    body, content_type = serializer.encode({"b": b"\x00\xff"}, "msgpack")
    assert serializer.decode(body, content_type) == {"b": b"\x00\xff"}


def test_unserializable_value_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match="cannot encode"):
        Serializer().encode({"f": object()})


def test_size_limits_on_both_sides() -> None:
    serializer = Serializer(max_size=10)
    with pytest.raises(MessageTooLarge):
        serializer.encode("x" * 20)
    with pytest.raises(DecodeError, match="over the limit"):
        serializer.decode(b'"' + b"x" * 20 + b'"', "application/json")


def test_nesting_limits_on_both_sides() -> None:
    serializer = Serializer(max_depth=5)
    deep: list = []
    node = deep
    for _ in range(10):
        node.append([])
        node = node[0]
    with pytest.raises(EncodeError, match="deeper"):
        serializer.encode(deep)
    with pytest.raises(DecodeError, match="deeper"):
        serializer.decode(b"[" * 10 + b"]" * 10, "application/json")
    with pytest.raises(DecodeError):
        Serializer().decode(b"[" * 100000 + b"]" * 100000, "application/json")
    with pytest.raises(EncodeError, match="deeper"):
        Serializer().encode(_nested(100000))


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_depth_is_counted_in_levels_not_brackets(codec: str) -> None:
    """Brackets inside strings do not count as levels; exactly the limit passes."""
    serializer = Serializer(accept=["json", "msgpack"], max_depth=5)
    shallow = {"text": "[{" * 50, "items": ["]" * 20, {"k": "{"}]}
    body, content_type = serializer.encode(shallow, codec)
    assert serializer.decode(body, content_type) == shallow
    body, content_type = serializer.encode(_nested(5), codec)
    assert serializer.decode(body, content_type) == _nested(5)
    with pytest.raises(EncodeError, match="deeper"):
        serializer.encode(_nested(6), codec)


def test_malformed_body_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        Serializer().decode(b"{not json", "application/json")
