from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.app.loader import load_app
from conveyor.core.errors import ConfigurationError


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package in a temp working directory: an app module and a task module it includes."""
    name = f"proj_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text(
        "from conveyor import Conveyor\n"
        f"app = Conveyor('{name}', broker='memory://', backend='memory://',"
        f" include=['{name}.tasks'])\n"
        "other = Conveyor('other', broker='memory://', backend='memory://')\n"
    )
    (package / "tasks.py").write_text(
        f"from {name}.main import app\n\n@app.task\ndef mul(x, y):\n    return x * y\n"
    )
    (package / "broken.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


def test_load_by_module_imports_included_task_modules(project: str) -> None:
    app = load_app(f"{project}.main")
    assert app.main == project
    user_tasks = sorted(name for name in app.tasks if not name.startswith("conveyor."))
    assert user_tasks == [f"{project}.tasks.mul"]  # besides the built-in conveyor.map/starmap


def test_load_by_attribute(project: str) -> None:
    assert load_app(f"{project}.main:other").main == "other"


def test_load_errors_name_the_problem(project: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot import app module"):
        load_app(f"{project}.nope")
    with pytest.raises(ConfigurationError, match="no Conveyor app"):
        load_app(f"{project}.broken")
