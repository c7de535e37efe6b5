import re

import pytest

from conveyor.core.errors import InvalidURL
from conveyor.core.url import Host, parse_url, redact


def test_parses_every_part() -> None:
    url = parse_url("redis://alice:s%40cret@h1:6380;[::1]:6381/2?lease_timeout=3&x=a%20b")
    assert url.scheme == "redis"
    assert url.hosts == (Host("h1", 6380), Host("::1", 6381))
    assert (url.username, url.password) == ("alice", "s@cret")
    assert url.path == "/2"
    assert url.options == {"lease_timeout": "3", "x": "a b"}


def test_password_is_redacted_everywhere_but_unredacted() -> None:
    url = parse_url("amqp://guest:topsecret@rabbit:5672//")
    for shown in (str(url), repr(url), f"{url}", str([url])):
        assert "topsecret" not in shown
        assert "***" in shown
    assert "topsecret" in url.unredacted()
    assert parse_url(url.unredacted()) == url


def test_hostless_and_comma_separated_urls() -> None:
    assert parse_url("sqlite:///relative.db").path == "/relative.db"
    assert parse_url("sqlite:////abs/q.db").path == "//abs/q.db"
    assert parse_url("memory://").hosts == ()
    zk = parse_url("zookeeper://a:2181,b:2182/chroot")
    assert zk.hosts == (Host("a", 2181), Host("b", 2182))
    assert zk.path == "/chroot"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("redis//localhost", "no scheme"),
        ("redis://h:99999", "invalid port '99999'"),
        ("redis://h:port", "invalid port 'port'"),
        ("redis://h1;;h2", "empty host"),
        ("redis://:6379", "no host name"),
        ("redis://[::1:6379", "unclosed '['"),
        ("redis://::1:6379", "IPv6"),
        ("redis://bad host:1", "invalid host name"),
        ("", "non-empty"),
    ],
)
def test_malformed_urls_name_the_bad_part(text: str, names: str) -> None:
    with pytest.raises(InvalidURL, match=re.escape(names)):
        parse_url(text)


def test_errors_never_show_the_password() -> None:
    with pytest.raises(InvalidURL) as info:
        parse_url("redis://u:hunter2@h:notaport/0")
    assert "hunter2" not in str(info.value)


def test_redact_free_text() -> None:
    assert (
        redact("cannot reach amqp://u:pw@h:5672// now") == "cannot reach amqp://u:***@h:5672// now"
    )
