"""Broker and backend URLs: parsed once, validated at construction, redacted when shown.

    scheme://[user[:password]@]host[:port][;host2[:port]...][/path][?option=value&...]

Hosts may also be separated by ',' (ZooKeeper's habit). ``sqlite:///relative.db`` and
``sqlite:////absolute.db`` carry a path and no host. Every repr, str and error shows the
password as ``***``; only `unredacted()` gives it back, for handing to a client library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote

from conveyor.core.errors import InvalidURL

REDACTED = "***"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class Host:
    name: str
    port: int | None = None

    def __str__(self) -> str:
        name = f"[{self.name}]" if ":" in self.name else self.name
        return name if self.port is None else f"{name}:{self.port}"


@dataclass(frozen=True)
class URL:
    """A parsed connection URL. Compare and hash by value; show it redacted."""

    scheme: str
    hosts: tuple[Host, ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    path: str = ""
    query: tuple[tuple[str, str], ...] = ()

    @property
    def host(self) -> Host | None:
        """The first host, or None for host-less URLs (memory://, sqlite:///...)."""
        return self.hosts[0] if self.hosts else None

    @property
    def options(self) -> dict[str, str]:
        return dict(self.query)

    def with_query(self, **options: str) -> URL:
        merged = {**self.options, **{k: str(v) for k, v in options.items()}}
        return URL(
            self.scheme, self.hosts, self.username, self.password, self.path, tuple(merged.items())
        )

    def without_query(self) -> URL:
        return URL(self.scheme, self.hosts, self.username, self.password, self.path)

    def _render(self, password: str | None) -> str:
        auth = ""
        if self.username is not None or self.password is not None:
            auth = quote(self.username or "", safe="")
            if self.password is not None:
                auth += ":" + (password if password == REDACTED else quote(password or "", safe=""))
            auth += "@"
        hosts = ";".join(str(h) for h in self.hosts)
        text = f"{self.scheme}://{auth}{hosts}{self.path}"
        if self.query:
            text += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in self.query)
        return text

    def unredacted(self) -> str:
        """The full URL with its password: for client libraries only, never for display."""
        return self._render(self.password)

    def __str__(self) -> str:
        return self._render(REDACTED)

    def __repr__(self) -> str:
        return f"URL({str(self)!r})"


def parse_url(text: str | URL) -> URL:
    """Parse `text`; a malformed URL raises InvalidURL naming the bad part."""
    if isinstance(text, URL):
        return text
    if not isinstance(text, str) or not text:
        raise InvalidURL(f"a URL must be a non-empty string, got {text!r}")
    match = _SCHEME.match(text)
    if not match:
        raise InvalidURL(
            f"URL {_redact_raw(text)!r} has no scheme: expected 'scheme://...' "
            "(for example redis://localhost:6379/0)"
        )
    scheme = match.group(1).lower()
    rest = text[match.end() :]
    _refuse_raw_specials(rest, text)
    rest, _, query_text = rest.partition("?")
    query_text, _, _fragment = query_text.partition("#")
    slash = rest.find("/")
    netloc, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    username = password = None
    if "@" in netloc:
        auth, _, netloc = netloc.rpartition("@")
        user_text, has_password, password_text = auth.partition(":")
        for part, value in (("user", user_text), ("password", password_text)):
            if _BAD_ESCAPE.search(value):
                raise InvalidURL(
                    f"URL {_redact_raw(text)!r} has a bad percent escape in the {part}: "
                    "'%' must be followed by two hex digits (write '%' itself as %25)"
                )
        username = unquote(user_text) if user_text else None
        password = unquote(password_text) if has_password else None
    hosts = tuple(_parse_host(part, text) for part in re.split(r"[;,]", netloc)) if netloc else ()
    try:
        pairs = parse_qsl(query_text, keep_blank_values=True, strict_parsing=bool(query_text))
        query = tuple(pairs)
    except ValueError:
        shown = _redact_raw(text)
        raise InvalidURL(f"URL {shown!r} has a malformed query {query_text!r}") from None
    return URL(scheme, hosts, username, password, unquote(path), query)


def _refuse_raw_specials(rest: str, text: str) -> None:
    """A password holding a raw '/', '?' or '#' ends the host part early, so the rest of
    the password would be read as path or query (and shown in errors): refuse it, saying
    how to write it. Seen as: an authority 'user:word' that is no host:port, no '@' in
    it, and an '@' further on."""
    end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
    netloc = rest[:end]
    if not netloc or "@" in netloc or "@" not in rest[end:]:
        return
    _user, colon, word = netloc.partition(":")
    if colon and not word.isdigit():
        raise InvalidURL(
            f"URL {_redact_raw(text)!r} has a raw '/', '?' or '#' in its user or password: "
            "percent-encode them ('/' as %2F, '?' as %3F, '#' as %23, '@' as %40)"
        )


def _parse_host(part: str, text: str) -> Host:
    shown = _redact_raw(text)
    if not part:
        raise InvalidURL(f"URL {shown!r} has an empty host in its host list")
    if part.startswith("["):
        end = part.find("]")
        if end < 0:
            raise InvalidURL(f"URL {shown!r} has an unclosed '[' in host {part!r}")
        name, port_text = part[1:end], part[end + 1 :]
        if port_text and not port_text.startswith(":"):
            raise InvalidURL(f"URL {shown!r} has junk after the IPv6 host: {port_text!r}")
        port_text = port_text[1:]
    else:
        name, _, port_text = part.partition(":")
        if ":" in port_text:
            raise InvalidURL(f"URL {shown!r}: put IPv6 hosts in brackets, e.g. [::1]:6379")
    if not name:
        raise InvalidURL(f"URL {shown!r} has a port but no host name in {part!r}")
    if not re.fullmatch(r"[A-Za-z0-9_.\-:%]+", name):
        raise InvalidURL(f"URL {shown!r} has an invalid host name {name!r}")
    if not port_text:
        return Host(name)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidURL(f"URL {shown!r} has an invalid port {port_text!r}: expected 1-65535")
    return Host(name, int(port_text))


def _redact_raw(text: str) -> str:
    """Hide the password of a URL that may not even parse."""
    return re.sub(r"(://[^:/@;?#]*:).*@", rf"\g<1>{REDACTED}@", text)


def redact(text: str) -> str:
    """Replace passwords in any URL inside `text` by ***, for log lines and errors."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@;\s]*:)[^@\s]*@", rf"\g<1>{REDACTED}@", text)
