import pytest

from conveyor.core.errors import InvalidQueueName
from conveyor.core.names import RULES, validate_queue_name


@pytest.mark.parametrize("name", ["a", "tasks", "A-b_c.d", "_private", "9", "x" * 200])
def test_valid_names(name: str) -> None:
    assert validate_queue_name(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", 0),
        ("x" * 201, 0),
        ("a b", 1),
        ("a/b", 1),
        ("a*", 1),
        ("nul\x00", 1),
        ("é", 1),
        (".x", 2),
        ("-x", 2),
        ("a..b", 3),
        ("amq.x", 4),
        ("conveyor.dead", 4),
        ("zookeeper", 4),
    ],
)
def test_bad_names_cite_their_rule(name: str, rule: int) -> None:
    with pytest.raises(InvalidQueueName) as info:
        validate_queue_name(name)
    assert RULES[rule] in str(info.value)


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidQueueName):
        validate_queue_name(42)  # type: ignore[arg-type]
