"""Without the `beat` extra (croniter, astral): the worker still runs, and anything that
needs a schedule says which extra to install."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

HIDE = """
import importlib.abc, sys

class _Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("croniter", "astral"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Hidden())
"""


def test_without_the_beat_extra(tmp_path: Path) -> None:
    (tmp_path / "bare.py").write_text("from conveyor import Conveyor\napp = Conveyor('bare')\n")
    script = HIDE + textwrap.dedent(
        """
        import sys
        from click.testing import CliRunner
        from conveyor.cli import main
        from conveyor.worker import worker

        worker.Worker.run = lambda self: print("worker ran")
        result = CliRunner().invoke(main, ["-A", "bare", "worker"])
        print("worker exit", result.exit_code, result.output.strip())
        print("beat loaded", "conveyor.beat.crontab" in sys.modules)
        for command in (["-A", "bare", "beat"], ["-A", "bare", "worker", "-B"]):
            result = CliRunner().invoke(main, command)
            print("needs extra", result.exit_code, "pip install 'conveyor[beat]'" in result.output)
        try:
            from conveyor import crontab
        except Exception as exc:
            print("crontab:", type(exc).__name__, exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    out = result.stdout
    # The worker's stdout goes to its log (worker_redirect_stdouts): the line is in a log line.
    assert re.search(r"worker exit 0 .*worker ran", out), out + result.stderr
    assert "beat loaded False" in out
    assert out.count("needs extra 1 True") == 2, out + result.stderr
    assert "crontab: MissingDependency schedules need croniter" in out
    assert "pip install 'conveyor[beat]'" in out
