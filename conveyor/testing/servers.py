"""Find or start the real servers the conformance suites and fault tests run against.

For each kind, in order: a URL from the environment (``CONVEYOR_TEST_REDIS_URL``, ...); a
container through testcontainers when a Docker engine answers; a local server binary started
on a free loopback port in a temporary directory. When none works the caller skips on a laptop
and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("redis", "amqp", "zookeeper", "postgres", "mysql", "memcached")


class ServerUnavailable(RuntimeError):
    """No server of this kind could be found or started."""


def env_name(kind: str) -> str:
    return f"CONVEYOR_TEST_{kind.upper()}_URL"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class LocalServer:
    """A server process this code started; `stop()` ends it by PID, and only it."""

    kind: str
    url: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server (a crash), keeping its directory for a restart."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def redis_command(port: int, workdir: Path, *, aof: bool = False) -> list[str]:
    """redis-server on `port` with its files in `workdir`; with `aof`, every write is
    fsynced to the append-only file before Redis replies (so a kill loses nothing acked)."""
    durability = (
        ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
    )
    return [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        *durability,
        "--dir",
        str(workdir),
    ]


def _memcached_command(port: int, workdir: Path) -> list[str]:
    return ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root"]


ZOOKEEPER_SCRIPT = "/usr/share/zookeeper/bin/zkServer.sh"


def _zookeeper_command(port: int, workdir: Path) -> list[str]:
    config = workdir / "zoo.cfg"
    config.write_text(zookeeper_config(port, workdir / "data"))
    return [ZOOKEEPER_SCRIPT, "start-foreground", str(config)]


def zookeeper_config(port: int, data_dir: Path) -> str:
    """A single-node config whose session timeouts go down to 1 s (the suite uses 2 s)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return "\n".join(
        [
            "tickTime=500",
            "initLimit=10",
            "syncLimit=5",
            f"dataDir={data_dir}",
            f"clientPort={port}",
            "clientPortAddress=127.0.0.1",
            "minSessionTimeout=1000",
            "maxSessionTimeout=120000",
            "maxClientCnxns=0",
            "admin.enableServer=false",
            "4lw.commands.whitelist=*",
            "",
        ]
    )


RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def rabbitmq_command(port: int, workdir: Path, config: str | None = None) -> list[str]:
    """A private RabbitMQ node (own name, ports, config and data in `workdir`).

    `config` replaces the default rabbitmq.conf (a plain TCP listener on `port`).
    """
    if config is None:
        config = f"listeners.tcp.1 = 127.0.0.1:{port}\n"
    (workdir / "rabbitmq.conf").write_text(config)
    (workdir / "enabled_plugins").write_text("[].\n")
    settings = {
        "HOME": workdir,
        "RABBITMQ_NODENAME": f"conveyor-{port}@localhost",
        "RABBITMQ_NODE_PORT": port,
        "RABBITMQ_DIST_PORT": free_port(),
        "RABBITMQ_CONFIG_FILE": workdir / "rabbitmq",
        "RABBITMQ_ADVANCED_CONFIG_FILE": workdir / "advanced.config",
        "RABBITMQ_ENABLED_PLUGINS_FILE": workdir / "enabled_plugins",
        "RABBITMQ_MNESIA_BASE": workdir / "mnesia",
        "RABBITMQ_LOG_BASE": workdir / "log",
        "RABBITMQ_GENERATED_CONFIG_DIR": workdir / "generated",
        "RABBITMQ_PID_FILE": workdir / "pid",
    }
    return ["env", *(f"{name}={value}" for name, value in settings.items()), RABBITMQ_SERVER]


_LOCAL: dict[str, tuple[str, Callable[[int, Path], list[str]], Callable[[int], str]]] = {
    "amqp": (
        RABBITMQ_SERVER,
        rabbitmq_command,
        lambda p: f"amqp://guest:guest@127.0.0.1:{p}//",
    ),
    "redis": ("redis-server", redis_command, lambda p: f"redis://127.0.0.1:{p}/0"),
    "memcached": ("memcached", _memcached_command, lambda p: f"memcached://127.0.0.1:{p}"),
    "zookeeper": (
        ZOOKEEPER_SCRIPT,
        _zookeeper_command,
        lambda p: f"zookeeper://127.0.0.1:{p}/conveyor",
    ),
}


def start_local_server(kind: str, port: int | None = None, timeout: float = 60.0) -> LocalServer:
    """Start a server binary of `kind` on a free loopback port in a temporary directory."""
    if kind not in _LOCAL:
        raise ServerUnavailable(
            f"conveyor cannot start a local {kind} server; set {env_name(kind)}"
        )
    binary, command, make_url = _LOCAL[kind]
    if shutil.which(binary) is None and not Path(binary).exists():
        raise ServerUnavailable(f"{binary} is not installed")
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"conveyor-{kind}-"))
    env = {**os.environ, "JMXDISABLE": "true", "JVMFLAGS": "-Xmx256m"}
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        command(port, workdir),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=workdir,
        start_new_session=True,
    )
    server = LocalServer(kind, make_url(port), port, process, workdir)
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise ServerUnavailable(f"local {kind} on port {port} did not start")
        time.sleep(0.05)
    return server


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


_IMAGES = {
    "redis": ("redis:7", 6379, lambda h, p: f"redis://{h}:{p}/0"),
    "amqp": ("rabbitmq:3.13", 5672, lambda h, p: f"amqp://guest:guest@{h}:{p}//"),
    "zookeeper": ("zookeeper:3.9", 2181, lambda h, p: f"zookeeper://{h}:{p}/conveyor"),
    "memcached": ("memcached:1.6", 11211, lambda h, p: f"memcached://{h}:{p}"),
    "postgres": (
        "postgres:16",
        5432,
        lambda h, p: f"sql+postgresql://postgres:conveyor@{h}:{p}/test",
    ),
    "mysql": ("mariadb:11", 3306, lambda h, p: f"sql+mysql://root:conveyor@{h}:{p}/test"),
}


def start_container(kind: str) -> tuple[str, Callable[[], None]]:
    """Start `kind` in a container through testcontainers; return (url, stop)."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    image, port, make_url = _IMAGES[kind]
    container = DockerContainer(image).with_exposed_ports(port)
    container = container.with_env("POSTGRES_PASSWORD", "conveyor").with_env("POSTGRES_DB", "test")
    container = container.with_env("MARIADB_ROOT_PASSWORD", "conveyor").with_env(
        "MARIADB_DATABASE", "test"
    )
    container.start()
    host, mapped = container.get_container_host_ip(), int(container.get_exposed_port(port))
    deadline = time.monotonic() + 90
    while not port_open(host, mapped) and time.monotonic() < deadline:
        time.sleep(0.2)
    if kind in ("postgres", "mysql"):
        wait_for_logs(container, "ready for connections", timeout=90)
    return make_url(host, mapped), container.stop


def find_server(kind: str) -> tuple[str, Callable[[], None]]:
    """A URL for a real server of `kind`, and how to stop it if conveyor started it."""
    from_env = os.environ.get(env_name(kind))
    if from_env:
        return from_env, lambda: None
    if docker_available() and kind in _IMAGES:
        return start_container(kind)
    server = start_local_server(kind)
    return server.url, server.stop
