"""Under CI=true a skip is a failure unless it is a declared "n/a:" (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DECLARED_NOT_APPLICABLE

PROBE = f'''
import pytest

def test_needs_a_server():
    pytest.skip("no such server: a skip the CI=true hook must turn into a failure")

def test_not_applicable():
    pytest.skip("{DECLARED_NOT_APPLICABLE} no priorities: the one skip CI=true accepts")
'''


def run_probe(ci: str) -> subprocess.CompletedProcess[str]:
    probe_dir = Path(__file__).resolve().parents[1] / "install" / f"_probe_{os.getpid()}"
    probe_dir.mkdir(exist_ok=True)
    probe = probe_dir / "test_probe.py"
    probe.write_text(PROBE)
    try:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs", str(probe)],
            capture_output=True,
            text=True,
            env={**os.environ, "CI": ci},
            cwd=Path(__file__).resolve().parents[2],
            timeout=120,
        )
    finally:
        probe.unlink()
        probe_dir.rmdir()


@pytest.mark.parametrize(("ci", "summary"), [("true", "1 failed, 1 skipped"), ("", "2 skipped")])
def test_only_declared_skips_pass_in_ci(ci: str, summary: str) -> None:
    result = run_probe(ci)
    assert summary in result.stdout, result.stdout + result.stderr
