"""Runs a conformance suite against one URL and gathers an outcome per clause."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TARGETS = Path(__file__).with_name("cli_targets.py")


@dataclass
class ClauseResult:
    id: str
    title: str
    outcomes: list[str] = field(default_factory=list)  # "passed" | "failed" | "n/a: ..."
    details: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if "failed" in self.outcomes:
            return "FAIL"
        if self.outcomes and all(o.startswith("n/a") for o in self.outcomes):
            return self.outcomes[0]
        return "pass" if self.outcomes else "not run"

    @property
    def ok(self) -> bool:
        return self.status == "pass" or self.status.startswith("n/a")


def _clause_order(clause_id: str) -> tuple[str, int]:
    return clause_id[0], int(clause_id[1:])


class _Recorder:
    """A pytest plugin object that maps each test report to its clause marker."""

    def __init__(self) -> None:
        self.clauses: dict[str, ClauseResult] = {}
        self._by_node: dict[str, ClauseResult] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            marker = item.get_closest_marker("clause")
            if marker is None:
                continue
            clause_id, title = marker.args
            result = self.clauses.setdefault(clause_id, ClauseResult(clause_id, title))
            self._by_node[item.nodeid] = result

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self._by_node.get(report.nodeid)
        if result is None:
            return
        if report.when == "call" or report.outcome != "passed":
            if report.skipped:
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
                reason = reason.removeprefix("Skipped: ")
                result.outcomes.append(reason if reason.startswith("n/a") else "failed")
                if not reason.startswith("n/a"):
                    result.details.append(reason)
            elif report.failed:
                result.outcomes.append("failed")
                result.details.append(f"{report.when}: {report.longreprtext[-1500:]}")
            else:
                result.outcomes.append("passed")


def run_suite(kind: str, url: str, extra_args: list[str] | None = None) -> list[ClauseResult]:
    """Run the transport ('broker') or backend suite against `url`; return clause results."""
    recorder = _Recorder()
    test_class = "TestTransportConformance" if kind == "broker" else "TestBackendConformance"
    args = [
        f"{TARGETS}::{test_class}",
        f"--conveyor-{kind}",
        url,
        "-q",
        "--no-header",
        "-p",
        "no:cacheprovider",
        "--tb=no",
        "-rN",
        "--rootdir",
        str(TARGETS.parent),
        *(extra_args or []),
    ]
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    pytest.main(args, plugins=[recorder])
    return sorted(recorder.clauses.values(), key=lambda c: _clause_order(c.id))
