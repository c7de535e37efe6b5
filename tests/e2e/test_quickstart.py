"""The README's first command: the quickstart on the embedded SQLite default, no server."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart"


def test_quickstart_runs_end_to_end_on_the_sqlite_default(tmp_path: Path) -> None:
    workdir = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, workdir, ignore=shutil.ignore_patterns("*.db*", "*.log"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "run.sh"], cwd=workdir, env=env, capture_output=True, text=True, timeout=180
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "add(4, 4)      -> 8" in out
    assert "divide(1, 4)   -> 0.25" in out
    assert "divide(1, 0)   -> raised ZeroDivisionError" in out
    assert "add(2, 3) in 1 s -> 5" in out
    assert "crunch [" in out, "no PROGRESS state reached on_message"
    assert "crunch(20)     -> crunched 20 steps" in out
    assert "worker stopped cleanly" in out
    assert (workdir / "conveyor.db").exists()  # the embedded default broker
    log = (workdir / "worker.log").read_text()
    assert "tasks.whoami" in log and "succeeded" in log
