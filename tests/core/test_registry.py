import pytest

from conveyor.core.errors import ConfigurationError, InvalidURL, UnknownScheme
from conveyor.core.registry import TRANSPORT_GROUP, create_transport, registrations
from conveyor.transports.memory import MemoryTransport


def test_builtin_scheme_builds_with_typed_options() -> None:
    transport = create_transport("memory://reg?lease_timeout=2.5&max_deliveries=4")
    assert isinstance(transport, MemoryTransport)
    assert transport.options.lease_timeout == 2.5
    assert transport.options.max_deliveries == 4


def test_keyword_overrides_win_over_the_query() -> None:
    assert (
        create_transport("memory://?max_deliveries=4", max_deliveries=9).options.max_deliveries == 9
    )


def test_unknown_scheme_lists_known_ones_and_suggests() -> None:
    with pytest.raises(UnknownScheme) as info:
        create_transport("rediss2://localhost")
    assert "Did you mean 'rediss'?" in str(info.value)
    assert "amqp" in str(info.value)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("memory://?lease_timout=1", "did you mean 'lease_timeout'"),
        ("memory://?lease_timeout=soon", "not a valid float"),
        ("memory://?max_deliveries=0", "at least 1"),
        ("memory://?lease_timeout=-1", "positive"),
    ],
)
def test_bad_options_fail_at_construction(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        create_transport(url)


def test_bad_option_is_an_invalid_url() -> None:
    with pytest.raises(InvalidURL):
        create_transport("memory://?nope=1")


def test_example_plugin_is_registered() -> None:
    found = registrations(TRANSPORT_GROUP)
    assert found["memory"].origin == "built-in"
    assert found["spool"].origin.startswith("plugin")
