"""Server instances of the fault suite's own: started on a free loopback port in a private
directory, killed (SIGKILL, a crash) and restarted on the same port and data, stopped by
PID. Never a shared server.

* Redis with the append-only file fsynced on every write (``appendfsync always``): a write
  Redis acknowledged survives a kill, which is what "publish returned" promises.
* PostgreSQL, a cluster of its own made by ``initdb`` (run as the ``postgres`` user when
  this process is root, as initdb refuses root; in this process group, so a kill reaches it).
* ZooKeeper, single node, its data directory kept across restarts.
* RabbitMQ, a node of its own (name, ports, data), its queues and messages kept across
  restarts.
* MariaDB, a data directory of its own made by ``mariadb-install-db``.
* Memcached with a memory limit (for eviction).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.testing.servers import (
    RABBITMQ_SERVER,
    ZOOKEEPER_SCRIPT,
    ServerUnavailable,
    free_port,
    port_open,
    rabbitmq_command,
    redis_command,
    zookeeper_config,
)

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class OwnServer:
    """One server process on `port` with its data in `workdir`; restartable after a kill."""

    kind: str
    url: str
    port: int
    workdir: Path
    command: list[str]
    user: str | None = None
    #: A command that succeeds once the server takes requests (an open port may come first).
    ready: list[str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 60.0) -> OwnServer:
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - owned by the process
        env = {**os.environ, "JMXDISABLE": "true", "JVMFLAGS": "-Xmx256m"}
        self.process = subprocess.Popen(
            self.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
            user=self.user,
            group=None if self.user is None else pwd.getpwnam(self.user).pw_gid,
            extra_groups=None if self.user is None else [],
        )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerUnavailable(f"own {self.kind} on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        if not port_open("127.0.0.1", self.port):
            return False
        return self.ready is None or subprocess.run(self.ready, capture_output=True).returncode == 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal(self, signum: int, wait: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signum)
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the server (a crash); its data stays for `restart`."""
        self._signal(signal.SIGKILL, 10)

    def restart(self) -> None:
        self.kill()
        while port_open("127.0.0.1", self.port, timeout=0.1):
            time.sleep(0.05)
        self.start()

    def stop(self) -> None:
        """End the server by its process group and remove its data."""
        self._signal(signal.SIGTERM, 10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _workdir(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"conveyor-fault-{kind}-"))


def redis_with_aof() -> OwnServer:
    if shutil.which("redis-server") is None:
        raise ServerUnavailable("redis-server is not installed")
    port, workdir = free_port(), _workdir("redis")
    command = redis_command(port, workdir, aof=True)
    return OwnServer("redis", f"redis://127.0.0.1:{port}/0", port, workdir, command).start()


def postgres_cluster() -> OwnServer:
    initdb = POSTGRES_BIN / "initdb"
    if not initdb.exists():
        raise ServerUnavailable(f"{initdb} is not installed")
    port, workdir = free_port(), _workdir("postgres")
    data = workdir / "data"
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
    init = [str(initdb), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
    if user is None:
        subprocess.run(init, check=True, capture_output=True, cwd=workdir)
    else:
        subprocess.run(
            init, check=True, capture_output=True, cwd=workdir, user=user, group=entry.pw_gid
        )
    command = [
        str(POSTGRES_BIN / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
        "-k",
        str(workdir),
        "-c",
        "max_connections=100",
    ]
    url = f"sql+postgresql://postgres@127.0.0.1:{port}/postgres"
    ready = [str(POSTGRES_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
    return OwnServer("postgres", url, port, workdir, command, user=user, ready=ready).start()


def zookeeper_node() -> OwnServer:
    if not Path(ZOOKEEPER_SCRIPT).exists():
        raise ServerUnavailable(f"{ZOOKEEPER_SCRIPT} is not installed")
    port, workdir = free_port(), _workdir("zookeeper")
    config = workdir / "zoo.cfg"
    config.write_text(zookeeper_config(port, workdir / "data"))
    command = [ZOOKEEPER_SCRIPT, "start-foreground", str(config)]
    url = f"zookeeper://127.0.0.1:{port}/conveyor"
    return OwnServer("zookeeper", url, port, workdir, command).start()


def memcached_with_limit(megabytes: int = 64) -> OwnServer:
    """Memcached with `megabytes` of memory (at least 2: an item may be 1 MB, half of it)."""
    if shutil.which("memcached") is None:
        raise ServerUnavailable("memcached is not installed")
    port, workdir = free_port(), _workdir("memcached")
    command = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", str(megabytes)]
    if os.geteuid() == 0:
        command += ["-u", "root"]
    return OwnServer("memcached", f"memcached://127.0.0.1:{port}", port, workdir, command).start()


def rabbitmq_node() -> OwnServer:
    if not Path(RABBITMQ_SERVER).exists():
        raise ServerUnavailable(f"{RABBITMQ_SERVER} is not installed")
    port, workdir = free_port(), _workdir("rabbitmq")
    command = rabbitmq_command(port, workdir)
    url = f"amqp://guest:guest@127.0.0.1:{port}//"
    return OwnServer("amqp", url, port, workdir, command).start(timeout=120)


def rabbitmqctl(node: OwnServer, *args: str) -> None:
    """Run a rabbitmqctl command against `node` (a rabbitmq_node), with its own cookie."""
    cookie = (node.workdir / ".erlang.cookie").read_text().strip()
    name = f"conveyor-{node.port}@localhost"
    command = ["rabbitmqctl", "--erlang-cookie", cookie, "-n", name, *args]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def mariadb_server() -> OwnServer:
    """MariaDB with its own data directory (made by mariadb-install-db) and a `test`
    database; root with no password, as the shared test server."""
    if shutil.which("mariadbd") is None or shutil.which("mariadb-install-db") is None:
        raise ServerUnavailable("mariadbd or mariadb-install-db is not installed")
    port, workdir = free_port(), _workdir("mariadb")
    data = workdir / "data"
    init = ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--skip-test-db"]
    init += ["--auth-root-authentication-method=normal", "--user=root"]
    subprocess.run(init, check=True, capture_output=True, cwd=workdir)
    (workdir / "init.sql").write_text("CREATE DATABASE IF NOT EXISTS test;\n")
    command = ["mariadbd", "--no-defaults", f"--datadir={data}", f"--port={port}"]
    command += ["--bind-address=127.0.0.1", f"--socket={workdir / 'sock'}", "--user=root"]
    command += [f"--pid-file={workdir / 'pid'}", f"--init-file={workdir / 'init.sql'}"]
    command += ["--skip-log-bin"]
    url = f"sql+mysql://root@127.0.0.1:{port}/test"
    return OwnServer("mariadb", url, port, workdir, command).start()
