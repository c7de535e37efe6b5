"""A worker imports what its configured URLs need and nothing else (docs/worker.md,
"Start-up"): every module imported costs every worker start, which an autoscaler pays for
each worker it adds. Each test runs the real `conveyor worker` command in one process and
reads `sys.modules` at its `worker_ready` signal (tests/worker/startup_app.py); no timing.

What a client library imports by itself is not conveyor's to decide (redis-py 8 imports
the OpenTelemetry SDK when it is installed), so what a bare `import redis` loads is
allowed in the Redis worker; conveyor's own modules for other features never are.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conveyor.testing.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
#: Libraries of other brokers, stores and features (msgpack: a codec nobody asked for).
LIBRARIES = {
    "sqlalchemy",
    "psycopg",
    "pymysql",
    "pymemcache",
    "pika",
    "kazoo",
    "redis",
    "hiredis",
    "msgpack",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "opentelemetry",
}
#: conveyor's modules for features a plain worker does not use.
FEATURES = (
    "conveyor.monitoring",
    "conveyor.beat",
    "conveyor.testing",
    "conveyor.transports.amqp",
    "conveyor.transports.zookeeper",
    "conveyor.backends.memcached",
    "conveyor.cli.beat",
    "conveyor.cli.control",
    "conveyor.cli.monitoring",
    "conveyor.cli.conformance",
)


def worker_modules(broker: str, tmp_path: Path) -> set[str]:
    """sys.modules of a one-process worker on `broker` (also the backend), once ready."""
    dump = tmp_path / "modules"
    env = dict(
        os.environ,
        CONVEYOR_BROKER_URL=broker,
        CONVEYOR_RESULT_BACKEND=broker,
        CONVEYOR_WORKER_PROCESSES="1",
        STARTUP_MODULES=str(dump),
    )
    command = [sys.executable, "-m", "conveyor.cli", "-A", "tests.worker.startup_app", "worker"]
    process = subprocess.Popen([*command, "-c", "1", "-l", "warning"], env=env, cwd=ROOT)
    written = dump.with_name(f"modules.{process.pid}")
    try:
        assert wait_until(lambda: written.exists() or process.poll() is not None, 60)
        assert written.exists(), f"the worker exited ({process.returncode}) before ready"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    return set(written.read_text().split())


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def conveyor_features(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith(FEATURES)}


def imported_by(code: str) -> set[str]:
    """The top-level packages `python -c code` imports."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}; import sys; print(*sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return packages(set(out.split()))


def test_a_redis_worker_imports_no_other_store_or_feature(redis_url: str, tmp_path: Path) -> None:
    modules = worker_modules(redis_url, tmp_path)
    assert {"redis", "conveyor.transports.redis", "conveyor.backends.redis"} <= modules
    own = imported_by("import redis")  # redis-py's own imports are its business
    assert (packages(modules) & LIBRARIES) - own == set()
    assert conveyor_features(modules) == set()
    assert not {
        m for m in modules if m.startswith(("conveyor.transports.sql", "conveyor.backends.sql"))
    }


def test_a_sqlite_worker_imports_no_other_store_or_feature(tmp_path: Path) -> None:
    modules = worker_modules(f"sqlite:///{tmp_path / 'conveyor.db'}", tmp_path)
    assert {"sqlalchemy", "conveyor.transports.sql", "conveyor.backends.sql"} <= modules
    assert packages(modules) & LIBRARIES == {"sqlalchemy"}
    assert conveyor_features(modules) == set()
    assert not {
        m for m in modules if m.startswith(("conveyor.clients.redis", "conveyor.transports.redis"))
    }


def test_every_lazy_command_loads_under_its_name() -> None:
    """The sub-commands the CLI imports on demand are all there, each under its name."""
    import click

    from conveyor.cli import LAZY_COMMANDS, main

    with click.Context(main) as ctx:
        assert set(LAZY_COMMANDS) <= set(main.list_commands(ctx))
        for name in LAZY_COMMANDS:
            command = main.get_command(ctx, name)
            assert command is not None and command.name == name, name
