"""Fresh machine, fresh venv: the package as a user installs it, not the editable test venv.

A copy of the repository's tracked files is built into a wheel and an sdist by
``python -m build`` (checked with twine); a venv with that wheel and no extras runs the
command line, the conformance suite on SQLite and the quickstart; the README's first command
runs verbatim in another fresh copy; and a venv with each extra alone talks to its server
(``examples/hello.py``) and runs a task round trip with the SQLite result backend (Memcached,
a backend only, with the SQLite broker).

Every venv is built with uv from its cache, so a run costs seconds per venv, not minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import conveyor

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OPTIONAL = ("redis", "hiredis", "pika", "kazoo", "pymemcache", "psycopg", "pymysql", "msgpack")


def run(cmd: list[str], cwd: Path, timeout: float = 300, **env: str) -> str:
    """Run a command with a clean environment (no CONVEYOR_* settings); its output on success."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    clean.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        cmd,
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"{cmd} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout + result.stderr


def copy_of_repo(dest: Path) -> Path:
    """The repository's tracked files (with their working-tree content), as a fresh clone has."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / name.decode()
        if source.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    return dest


def uv_venv(where: Path, *requirements: str) -> Path:
    """A new venv at `where` with exactly `requirements` installed; its bin directory."""
    uv = str(BIN / "uv")
    run([uv, "venv", "-q", "--python", sys.executable, str(where)], cwd=where.parent)
    run(
        [uv, "pip", "install", "-q", "-p", str(where / "bin" / "python"), *requirements],
        cwd=where.parent,
    )
    return where / "bin"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = copy_of_repo(tmp_path_factory.mktemp("source"))
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out)], cwd=source)
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("conveyor-*.whl")
    return found


@pytest.fixture(scope="module")
def bare(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a venv holding the wheel and no extras."""
    return uv_venv(tmp_path_factory.mktemp("bare") / "venv", str(wheel))


def test_the_distributions_pass_twine_check(dist: Path) -> None:
    files = sorted(str(p) for p in dist.glob("conveyor-*"))
    assert len(files) == 2, files
    out = run([str(BIN / "twine"), "check", "--strict", *files], cwd=dist)
    assert out.count("PASSED") == 2, out


def test_the_wheel_holds_every_tracked_file_of_the_package(wheel: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "conveyor"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    with zipfile.ZipFile(wheel) as archive:
        packed = set(archive.namelist())
    missing = [name for name in tracked if name not in packed]
    assert not missing, f"tracked under conveyor/ but not in the wheel: {missing}"
    assert f"conveyor-{conveyor.__version__}.dist-info/METADATA" in packed


def installed(venv_bin: Path) -> set[str]:
    """The distribution names installed in a venv."""
    listed = run([str(BIN / "uv"), "pip", "freeze", "-p", str(venv_bin / "python")], cwd=venv_bin)
    return {re.split(r"[=@ ]", line)[0].lower() for line in listed.splitlines() if line.strip()}


def test_the_base_install_holds_no_optional_library(bare: Path) -> None:
    names = installed(bare)
    assert {"conveyor", "click", "sqlalchemy"} <= names, names
    assert not names & set(OPTIONAL), names & set(OPTIONAL)


def test_the_base_install_runs_the_command_line(bare: Path, tmp_path: Path) -> None:
    assert run([str(bare / "conveyor"), "--version"], cwd=tmp_path).strip() == (
        f"conveyor, version {conveyor.__version__}"
    )
    listing = run([str(bare / "conveyor"), "transports"], cwd=tmp_path)
    assert "sqlite" in listing and "redis" in listing
    table = run(
        [str(bare / "conveyor"), "conformance", "--broker", f"sqlite:///{tmp_path / 'b.db'}"],
        cwd=tmp_path,
        timeout=600,
    )
    assert " 0 failed" in table, table


def run_quickstart(cmd: list[str], cwd: Path, log: Path, **env: str) -> str:
    """Run the quickstart; on failure the worker's log is part of the message."""
    try:
        return run(cmd, cwd=cwd, timeout=600, **env)
    except AssertionError as exc:
        worker_log = log.read_text()[-4000:] if log.exists() else "(no worker log)"
        raise AssertionError(f"{exc}\nworker.log:\n{worker_log}") from None


def test_the_base_install_runs_the_quickstart(bare: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "quickstart"
    shutil.copytree(
        REPO / "examples" / "quickstart", workdir, ignore=shutil.ignore_patterns("*.db*", "*.log")
    )
    path = f"{bare}{os.pathsep}{os.environ['PATH']}"
    out = run_quickstart(["bash", "run.sh"], workdir, workdir / "worker.log", PATH=path)
    assert "add(4, 4)      -> 8" in out
    assert "worker stopped cleanly" in out


def readme_first_command() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## The two commands") :]
    match = re.search(r"```bash\n(.+?)\n```", section, re.S)
    assert match, "no bash block under 'The two commands'"
    return match.group(1)


def test_the_readme_first_command_runs_verbatim_in_a_fresh_copy(tmp_path: Path) -> None:
    command = readme_first_command()
    assert "pip install -e ." in command and "[" not in command, "the first command names no extra"
    clone = copy_of_repo(tmp_path / "conveyor")
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != BIN)
    log = clone / "examples" / "quickstart" / "worker.log"
    out = run_quickstart(["bash", "-euo", "pipefail", "-c", command], clone, log, PATH=path)
    assert "add(4, 4)      -> 8" in out
    assert "worker stopped cleanly" in out


ROUND_TRIP = """
import sys, uuid
from conveyor import Conveyor
from conveyor.worker.worker import Worker

broker, backend = sys.argv[1], sys.argv[2]
app = Conveyor("fresh", broker=broker, backend=backend)
app.conf.task_default_queue = f"fresh-{uuid.uuid4().hex[:8]}"

@app.task
def add(x, y):
    return x + y

pending = add.delay(20, 22)
worker = Worker(app, concurrency=1, pool="threads")
worker.start()
try:
    print("result", pending.get(timeout=60))
finally:
    worker.stop()
"""

#: extra -> (the fixture giving its server's URL, where that URL goes, the libraries it brings)
EXTRAS = {
    "redis": ("redis_url", "broker", {"redis", "hiredis"}),
    "amqp": ("amqp_url", "broker", {"pika"}),
    "zookeeper": ("zookeeper_url", "broker", {"kazoo"}),
    "postgresql": ("postgres_url", "broker", {"psycopg"}),
    "mysql": ("mysql_url", "broker", {"pymysql"}),
    "memcached": ("memcached_url", "backend", {"pymemcache"}),
}


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_each_extra_alone_reaches_its_server(
    extra: str,
    wheel: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    fixture, role, own = EXTRAS[extra]
    url = request.getfixturevalue(fixture)
    venv = uv_venv(tmp_path / "venv", f"{wheel}[{extra}]")
    present = installed(venv) & set(OPTIONAL)
    assert present == own, f"[{extra}] installed {present}, expected exactly {own}"

    sqlite = f"sqlite:///{tmp_path / 'local.db'}"
    if role == "broker":
        tour = run([str(venv / "python"), str(REPO / "examples" / "hello.py"), url], cwd=tmp_path)
        assert "dead" in tour.lower(), tour
        broker, backend = url, f"sqlite:///{tmp_path / 'results.db'}"
    else:
        broker, backend = sqlite, url
    script = tmp_path / "round_trip.py"
    script.write_text(textwrap.dedent(ROUND_TRIP))
    out = run([str(venv / "python"), str(script), broker, backend], cwd=tmp_path)
    assert "result 42" in out, out
