"""Pieces both conformance suites (transports and result backends) use.

* `not_applicable`: how a clause reports a capability the target declares it lacks.
* `faulty_url`: the three bad connections every networked target must report in time.
* `closing_factory`: build targets during a test and close them all at its end.
* `closing_builder`: the same for `create(url, **options)` with a default URL and options.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import pytest

from conveyor.core.errors import ConveyorError
from conveyor.core.url import URL, Host, parse_url

FAULTS = ("refused port", "wrong password", "unknown host")
WRONG_USER, WRONG_PASSWORD = "conveyor_wrong_user", "wrong-password"


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


def not_applicable(reason: str) -> None:
    """Report the running clause as "n/a: <reason>" (a skip the conformance table reads)."""
    pytest.skip(f"n/a: {reason}")


def faulty_url(url: str | URL, fault: str) -> URL:
    """`url` with a refused port (1 on loopback), wrong credentials or an unknown host."""
    parsed = parse_url(url)
    if fault == "refused port":
        return replace(parsed, hosts=(Host("127.0.0.1", 1),))
    if fault == "unknown host":
        port = parsed.host.port if parsed.host else None
        return replace(parsed, hosts=(Host("nonexistent.invalid", port),))
    if fault == "wrong password":
        return replace(parsed, username=WRONG_USER, password=WRONG_PASSWORD)
    raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")


@contextlib.contextmanager
def closing_factory(build: Callable[..., C]) -> Iterator[Callable[..., C]]:
    """`build`, remembering what it made; on exit everything made is closed, newest first."""
    made: list[C] = []

    def make(*args: object, **kwargs: object) -> C:
        target = build(*args, **kwargs)
        made.append(target)
        return target

    try:
        yield make
    finally:
        for target in reversed(made):
            with contextlib.suppress(ConveyorError):
                target.close()


@contextlib.contextmanager
def closing_builder(
    create: Callable[..., object], kind: type, url: str | URL, **defaults: object
) -> Iterator[Callable[..., Any]]:
    """A `closing_factory` of ``make(url=None, **options)``: `create` on `url` (or the one
    given) with `defaults` under the given options, checked to be a `kind`.

    `kind` may be abstract (Transport), so the result is typed by the caller's fixture.
    """

    def build(other: str | URL | None = None, **options: object) -> Any:
        target = create(other or url, **{**defaults, **options})
        assert isinstance(target, kind), f"{target!r} is not a {kind.__name__}"
        return target

    with closing_factory(build) as make:
        yield make
