"""The base install works alone: with every optional client library made unimportable, the
SQLite default publishes, runs and stores a task, and a URL whose extra is missing raises
conveyor's own error naming the `pip install` line.

This runs in the test venv (which has every extra) by hiding the optional libraries behind
an import hook in a subprocess; `test_fresh_venvs.py` proves the same in a real venv built
with no extras.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

OPTIONAL = ("redis", "hiredis", "pika", "kazoo", "pymemcache", "psycopg", "pymysql", "msgpack")

BLOCKER = f"""
import importlib.abc, sys

class _Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Hidden())
"""


def run_hidden(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = BLOCKER + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_sqlite_default_runs_a_task_without_any_optional_library(tmp_path: Path) -> None:
    result = run_hidden(
        """
        import sys
        from conveyor import Conveyor
        from conveyor.worker.worker import Worker

        app = Conveyor("bare")

        @app.task
        def add(x, y):
            return x + y

        pending = add.delay(4, 4)
        worker = Worker(app, concurrency=1, pool="threads")
        worker.start()
        try:
            print("result", pending.get(timeout=30))
        finally:
            worker.stop()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in OPTIONAL)
        print("loaded", loaded)
        """.replace("OPTIONAL", repr(OPTIONAL)),
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "result 8" in result.stdout
    assert "loaded []" in result.stdout


def test_a_url_whose_extra_is_missing_names_the_pip_line(tmp_path: Path) -> None:
    result = run_hidden(
        """
        from conveyor import create_transport
        from conveyor.core.registry import create_backend
        from conveyor.core.errors import ConveyorError

        for make, url, extra in [
            (create_transport, "redis://127.0.0.1:6379/0", "redis"),
            (create_transport, "amqp://guest:guest@127.0.0.1//", "amqp"),
            (create_transport, "zookeeper://127.0.0.1:2181/c", "zookeeper"),
            (create_transport, "sql+postgresql://127.0.0.1/test", "postgresql"),
            (create_backend, "redis://127.0.0.1:6379/0", "redis"),
            (create_backend, "memcached://127.0.0.1:11211", "memcached"),
        ]:
            try:
                make(url)
            except ConveyorError as exc:
                assert f"pip install 'conveyor[{extra}]'" in str(exc), (url, str(exc))
                print("ok", url)
            else:
                raise AssertionError(f"{url} was accepted without its client library")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == 6
