"""The `conveyor transports` and `conveyor conformance` commands, run as a user runs them."""

import subprocess
import sys

CONVEYOR = [sys.executable, "-m", "conveyor.cli"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONVEYOR, *args], capture_output=True, text=True, timeout=timeout)


def test_transports_lists_builtins_and_plugins() -> None:
    result = run("transports")
    assert result.returncode == 0
    assert "redis://" in result.stdout and "built-in" in result.stdout
    assert "spool://" in result.stdout and "plugin (conveyor-spool)" in result.stdout


def test_conformance_prints_a_table_and_exits_zero() -> None:
    result = run("conformance", "--broker", "memory://cli-test", "-k", "round_trip or names")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "T1   Round trip is byte-exact" in result.stdout
    assert "T20" in result.stdout
    assert "2 passed, 0 failed" in result.stdout


def test_backend_conformance_prints_b_clauses() -> None:
    result = run("conformance", "--backend", "memory://cli-test", "-k", "round_trip or forget")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "B1 " in result.stdout and "B7 " in result.stdout
    assert "2 passed, 0 failed" in result.stdout


def test_conformance_fails_on_a_broken_clause() -> None:
    # An unreachable broker fails every clause that needs it, and the exit code says so.
    result = run(
        "conformance", "--broker", "redis://127.0.0.1:1/0?connect_timeout=0.5", "-k", "round_trip"
    )
    assert result.returncode == 1
    assert "FAIL" in result.stdout


def test_conformance_rejects_unknown_schemes_clearly() -> None:
    result = run("conformance", "--broker", "redsi://localhost")
    assert result.returncode == 2
    assert "Did you mean 'redis'?" in result.stderr


def test_conformance_needs_a_url() -> None:
    result = run("conformance")
    assert result.returncode == 2
    assert "--broker" in result.stderr
