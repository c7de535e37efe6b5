#!/usr/bin/env python3
"""Print a pip/uv constraints file pinning every direct dependency of conveyor to its floor.

Reads `pyproject.toml`: the base dependencies and every extra a user installs (not the
`test` and `bench` tools), and turns each `name>=X` into `name==X`. `scripts/test-lowest`
installs conveyor with these constraints, so each lower bound the project declares is run.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

TOOLS = {"test", "bench"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)")


def floors(pyproject: Path) -> dict[str, str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra, listed in project["optional-dependencies"].items():
        if extra not in TOOLS:
            requirements += listed
    pinned: dict[str, str] = {}
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        if match is None:
            continue  # a marker-only dependency such as tzdata on Windows has no floor
        name, version = match.group(1).lower(), match.group(2)
        if pinned.setdefault(name, version) != version:
            sys.exit(f"{name}: two floors in pyproject.toml ({pinned[name]} and {version})")
    return pinned


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    for name, version in sorted(floors(root / "pyproject.toml").items()):
        print(f"{name}=={version}")
