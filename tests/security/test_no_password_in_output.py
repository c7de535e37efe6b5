"""A password given in a broker or backend URL never appears in what conveyor shows: a
repr, a log line (any logger, DEBUG included), an error with its whole chain, CLI output.

Each URL gets a known password; the fault it meets is either a refused port or the real
server refusing (or, with trust authentication, accepting) the password.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import traceback
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.core.errors import ConveyorError
from conveyor.core.registry import create_backend, create_transport
from conveyor.core.url import Host, parse_url

PASSWORD = "Known-PW-4417-conveyor"
BROKERS = ["redis_url", "amqp_url", "postgres_url", "mysql_url", "zookeeper_url"]
BACKENDS = ["redis_url", "postgres_url", "mysql_url", "memcached_url"]


def _with_password(url: str, *, refused: bool) -> str:
    parsed = replace(parse_url(url), username=parse_url(url).username or "conveyor")
    parsed = replace(parsed, password=PASSWORD)
    if refused:
        parsed = replace(parsed, hosts=(Host("127.0.0.1", 1),))
    return parsed.unredacted()


def _everything_shown(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return "".join(traceback.format_exception(exc)) + repr(exc)


@pytest.mark.parametrize("refused", [False, True], ids=["server", "refused port"])
@pytest.mark.parametrize("fixture", BROKERS)
def test_a_transport_never_shows_the_password(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture, fixture: str, refused: bool
) -> None:
    url = _with_password(request.getfixturevalue(fixture), refused=refused)
    shown: list[str] = []
    with caplog.at_level(logging.DEBUG):
        error: BaseException | None = None
        transport = create_transport(url, connect_timeout=2.0)
        shown += [repr(transport), str(transport.url), repr(transport.url)]
        try:
            transport.size("password-check")
        except ConveyorError as exc:
            error = exc
        finally:
            with contextlib.suppress(ConveyorError):
                transport.close()
    shown += [_everything_shown(error), caplog.text]
    assert refused is False or error is not None, "a refused port raised nothing"
    for text in shown:
        assert PASSWORD not in text


@pytest.mark.parametrize("refused", [False, True], ids=["server", "refused port"])
@pytest.mark.parametrize("fixture", BACKENDS)
def test_a_result_backend_never_shows_the_password(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture, fixture: str, refused: bool
) -> None:
    url = _with_password(request.getfixturevalue(fixture), refused=refused)
    shown: list[str] = []
    with caplog.at_level(logging.DEBUG):
        error: BaseException | None = None
        try:
            backend = create_backend(url, connect_timeout=2.0)
            shown.append(repr(backend))
            backend.get("password-check")
        except ConveyorError as exc:
            error = exc
    shown += [_everything_shown(error), caplog.text]
    assert refused is False or error is not None, "a refused port raised nothing"
    for text in shown:
        assert PASSWORD not in text


def test_the_cli_never_shows_the_password(redis_url: str, amqp_url: str, tmp_path: Path) -> None:
    broker = _with_password(amqp_url, refused=False)
    backend = _with_password(redis_url, refused=False)
    (tmp_path / "pwapp.py").write_text(
        "from conveyor import Conveyor\n"
        f"app = Conveyor('pwapp', broker={broker!r}, backend={backend!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    outputs = []
    for args in (["queues"], ["result", "no-such-id"], ["dead", "list", "default"]):
        done = subprocess.run(
            [sys.executable, "-m", "conveyor", "-A", "pwapp", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        outputs.append(done)
        assert PASSWORD not in done.stdout + done.stderr, args
    assert any(done.returncode != 0 for done in outputs), "no command met the bad password"
