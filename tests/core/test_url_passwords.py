"""Raw special characters and bad escapes in a URL's password (issue 12, defect 7): the
error names the problem and never shows the password."""

from __future__ import annotations

import pytest

from conveyor.core.errors import InvalidURL
from conveyor.core.url import parse_url, redact

SECRET = "hun/ter?2#x"


@pytest.mark.parametrize(
    "text",
    [
        "redis://u:hun/ter2@h:6379/0",
        "redis://u:hunter?2@h:6379/0",
        "amqp://guest:pw/xyz?abc@rabbit:5672//",
        "sql+postgresql://u:p/a@db:5432/test",
        "redis://u:hunter#2@h/0",
    ],
)
def test_a_raw_special_character_in_the_password_is_refused_without_showing_it(
    text: str,
) -> None:
    password = text.split("://", 1)[1].split(":", 1)[1].rsplit("@", 1)[0]
    with pytest.raises(InvalidURL, match="percent-encode") as info:
        parse_url(text)
    assert password not in str(info.value)
    for piece in password.replace("?", "/").replace("#", "/").split("/"):
        assert len(piece) < 3 or piece not in str(info.value), str(info.value)


@pytest.mark.parametrize("part", ["user", "password"])
def test_a_bad_percent_escape_in_the_credentials_is_refused(part: str) -> None:
    text = "redis://u%zz:pw@h/0" if part == "user" else "redis://u:p%zzw@h/0"
    with pytest.raises(InvalidURL, match=f"bad percent escape in the {part}") as info:
        parse_url(text)
    assert "p%zzw" not in str(info.value)


def test_percent_encoded_specials_are_accepted() -> None:
    url = parse_url("redis://u:hun%2Fter%3F2%23x@h:6379/0")
    assert url.password == SECRET
    assert parse_url(url.unredacted()) == url


def test_redact_hides_a_raw_password_with_a_slash() -> None:
    assert SECRET not in redact(f"cannot reach redis://u:{SECRET}@h:6379/0 now")
    assert "hun/ter" not in redact("amqp://u:hun/ter@h:5672// is down")


def test_an_at_sign_in_a_hostless_path_is_still_a_path() -> None:
    assert parse_url("sqlite:///home/me@work/conveyor.db").path == "/home/me@work/conveyor.db"
