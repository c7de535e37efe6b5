"""The dashboard's gate: who may see it (basic auth or a bearer token), and CSRF on actions.

* Loopback by default. Binding any other address without an auth option is refused at start
  (`check_binding`): the dashboard can revoke tasks and purge queues.
* `Auth`: HTTP basic (``user:password``) and/or a bearer token. A browser that logs in with
  the token on /login gets it back as an HttpOnly, SameSite=Strict cookie. Comparisons are
  constant-time. /static is open (it holds only the vendored libraries and the style).
* `public`: error messages shown on a page lose every URL they name.
* CSRF: every POST must carry the session's token (double submit: the ``conveyor_csrf``
  cookie, and the same value in the ``X-CSRF-Token`` header, which the pages' htmx sends),
  and an Origin header, when sent, must be this host's. A cross-site form cannot set the
  header, and the cookie is SameSite=Strict.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.core.errors import ConfigurationError

CSRF_COOKIE = "conveyor_csrf"
CSRF_HEADER = "x-csrf-token"
TOKEN_COOKIE = "conveyor_token"
OPEN_PATHS = ("/static/", "/login")


_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def public(text: object) -> str:
    """An error message fit for a page: every URL in it (a broker's or backend's, redacted
    or not) replaced, since no page shows where the servers are."""
    return _URL.sub("<url hidden>", str(text))


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Auth:
    basic: tuple[str, str] | None = None
    token: str | None = None

    @classmethod
    def from_options(cls, basic: str | None, token: str | None) -> Auth | None:
        if basic is not None and ":" not in basic:
            raise ConfigurationError("--basic-auth takes user:password")
        if token is not None and len(token) < 16:
            raise ConfigurationError("--auth-token must be at least 16 characters")
        if basic is None and token is None:
            return None
        user, _, password = (basic or "").partition(":")
        return cls((user, password) if basic else None, token)

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def allows(self, headers: Headers, cookies: dict[str, str]) -> bool:
        authorization = headers.get("authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(value.strip()):
            return True
        if scheme.lower() == "basic" and self.basic is not None:
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user.encode(), self.basic[0].encode()) & hmac.compare_digest(
                password.encode(), self.basic[1].encode()
            )
        return self.token_matches(cookies.get(TOKEN_COOKIE, ""))


def check_binding(address: str, auth: Auth | None) -> None:
    if auth is None and not is_loopback(address):
        raise ConfigurationError(
            f"refusing to serve the dashboard on {address} without --basic-auth or "
            "--auth-token: anyone who can reach it could revoke tasks and purge queues"
        )


class Gate:
    """ASGI middleware: authentication, then the CSRF check on POSTs."""

    def __init__(self, app: ASGIApp, auth: Auth | None) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        path = request.url.path
        refused = self._refuse(request, path)
        if refused is not None:
            await refused(scope, receive, send)
            return
        if request.method == "POST" and not path.startswith("/login"):
            problem = csrf_problem(request)
            if problem:
                await PlainTextResponse(problem, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refuse(self, request: Request, path: str) -> Response | None:
        if self.auth is None or path.startswith(OPEN_PATHS):
            return None
        if self.auth.allows(request.headers, request.cookies):
            return None
        wants_page = "text/html" in request.headers.get("accept", "")
        if wants_page and self.auth.token is not None and self.auth.basic is None:
            return RedirectResponse("/login", status_code=303)
        headers = {"WWW-Authenticate": 'Basic realm="conveyor"'} if self.auth.basic else {}
        return PlainTextResponse("authentication required", status_code=401, headers=headers)


def csrf_problem(request: Request) -> str | None:
    """Why a POST fails the CSRF check, or None when it passes."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        return f"cross-origin request from {origin} refused"
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return "missing or wrong CSRF token: reload the page and try again"
    return None


def csrf_token(request: Request) -> tuple[str, bool]:
    """The session's CSRF token, and whether it is new (then the response sets it)."""
    found = request.cookies.get(CSRF_COOKIE)
    return (found, False) if found else (secrets.token_urlsafe(32), True)
