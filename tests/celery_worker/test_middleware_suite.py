"""The middleware contract suite, bound to a user-style middleware and to a broken one."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conveyor.testing.middleware_suite import MiddlewareContract
from conveyor.worker.middleware import Middleware, Outcome


class Timing(Middleware):
    """A middleware as a user writes one: state per run in request.scratch, a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, int] = {}

    def before_task(self, task: Any, request: Any) -> None:
        request.scratch["seen"] = True

    def around_task(self, task: Any, request: Any, call: Callable[[], Any]) -> Any:
        return call()

    def after_task(self, task: Any, request: Any, outcome: Outcome) -> None:
        with self.lock:
            self.seen[outcome.state] = self.seen.get(outcome.state, 0) + 1


class TestTimingMiddleware(MiddlewareContract):
    @pytest.fixture
    def middleware(self) -> Middleware:
        return Timing()


BROKEN = """
import pytest
from conveyor.testing.middleware_suite import MiddlewareContract
from conveyor.worker.middleware import Middleware

class Broken(Middleware):
    def after_task(self, task, request, outcome):
        raise RuntimeError("bug in the middleware")

class TestBroken(MiddlewareContract):
    @pytest.fixture
    def middleware(self):
        return Broken()
"""


def test_the_suite_fails_a_middleware_whose_hook_raises(tmp_path: Path) -> None:
    (tmp_path / "test_broken.py").write_text(BROKEN)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "M1 or success"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout
    assert "a hook of the middleware raised" in done.stdout
    assert "Broken.after_task raised" in done.stdout
