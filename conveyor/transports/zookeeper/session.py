"""One kazoo client per transport: connecting, credentials and ACLs, and error translation.

The ZooKeeper session is the lease: its timeout is the transport's `lease_timeout`, and the
ephemeral lock nodes a consumer creates vanish when its session ends. Digest credentials
from the URL (``zookeeper://user:password@host/root``) are sent as auth data, and every node
conveyor creates carries a digest ACL for that user only.

ZooKeeper never refuses digest credentials at connect time: a wrong password only shows
when a node's ACL does not grant the identity it computes to. So the session checks its
access to the root path right after connecting (creating the root with its own ACL if it
is missing): NoAuth there, or a root whose ACL names other digest users but not this one,
is `AuthenticationFailed`. A root with an open ACL accepts any credentials; there is
nothing to check them against.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NoAuthError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    SessionExpiredError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.interfaces import IAsyncResult
from kazoo.protocol.states import KazooState
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl, make_digest_acl_credential

from conveyor.core.errors import (
    AuthenticationFailed,
    BrokerError,
    BrokerUnavailable,
    ConnectionLost,
    ConveyorError,
    InvalidURL,
)
from conveyor.core.transport import TransportOptions
from conveyor.core.url import URL, Host
from conveyor.utils.redact import redacting_logger

DEFAULT_PORT = 2181
DEFAULT_ROOT = "/conveyor"
_LOST = (
    ConnectionLoss,
    ConnectionClosedError,
    SessionExpiredError,
    OperationTimeoutError,
    KazooTimeoutError,
)


def translate(exc: BaseException, what: str) -> ConveyorError:
    """The conveyor error for a kazoo exception raised while doing `what`."""
    if isinstance(exc, ConveyorError):
        return exc
    if isinstance(exc, (NoAuthError, AuthFailedError)):
        return AuthenticationFailed(
            f"{what}: ZooKeeper refused access (NoAuth): the node's ACL does not grant "
            "these credentials; give the right user:password in the URL"
        )
    if isinstance(exc, SessionExpiredError):
        return ConnectionLost(f"{what}: the ZooKeeper session expired")
    if isinstance(exc, _LOST):
        return ConnectionLost(f"{what}: the connection to ZooKeeper was lost ({exc!r})")
    return BrokerError(f"{what}: ZooKeeper failed: {exc!r}")


@contextlib.contextmanager
def translating(what: str) -> Iterator[None]:
    """Re-raise any kazoo exception inside the block as its conveyor error."""
    try:
        yield
    except ConveyorError:
        raise
    except (KazooException, KazooTimeoutError) as exc:
        raise translate(exc, what) from exc


def root_of(url: URL) -> str:
    """The root path every node lives under: the URL's path, or /conveyor.

    A path ZooKeeper would refuse is an InvalidURL at construction, before any I/O.
    """
    path = url.path.rstrip("/")
    if not path:
        return DEFAULT_ROOT
    segments = path.split("/")[1:]
    for segment in segments:
        if segment in ("", ".", "..") or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in segment):
            raise InvalidURL(
                f"{url}: the root path {path!r} has an empty, '.', '..' or control-character "
                "segment, which ZooKeeper refuses"
            )
    if segments[0] == "zookeeper":
        raise InvalidURL(f"{url}: the root path may not be under /zookeeper (reserved)")
    return path


def _hosts_text(url: URL) -> str:
    return ",".join(str(Host(h.name, h.port or DEFAULT_PORT)) for h in url.hosts)


def _diagnose(url: URL) -> str:
    """Why no host answers: unknown name or refused port, for the error message."""
    reasons = []
    for host in url.hosts:
        address = (host.name, host.port or DEFAULT_PORT)
        try:
            socket.getaddrinfo(*address, type=socket.SOCK_STREAM)
        except OSError as exc:
            reasons.append(f"{host.name}: unknown host ({exc.strerror or exc})")
            continue
        try:
            with socket.create_connection(address, timeout=0.5):
                reasons.append(f"{host}: accepts TCP but ZooKeeper did not answer")
        except OSError as exc:
            reasons.append(f"{host}: {exc.strerror or exc}")
    return "; ".join(reasons)


class ZooKeeperSession:
    """A lazily connected kazoo client with a known session and bounded waits."""

    def __init__(self, url: URL, options: TransportOptions) -> None:
        self.url = url
        self.options = options
        self.root = root_of(url) + (f"/{options.namespace}" if options.namespace else "")
        # Bounds every wait on a reply: a reconnect within the session timeout, plus slack.
        self.op_timeout = options.connect_timeout + options.lease_timeout
        self._lock = threading.Lock()
        self._client: KazooClient | None = None
        self._closed = False
        self._connected = threading.Event()
        self._listeners: list[Callable[[], None]] = []

    # -- connecting ---------------------------------------------------------------------

    @property
    def client(self) -> KazooClient:
        """The connected client; connects on first use (BrokerUnavailable within deadline)."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._closed:
                raise ConnectionLost(f"the transport for {self.url} is closed")
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _acl_and_auth(self) -> tuple[list[Any], list[tuple[str, str]]]:
        user, password = self.url.username, self.url.password
        if user is None:
            return list(OPEN_ACL_UNSAFE), []
        password = password or ""
        return [make_digest_acl(user, password, all=True)], [("digest", f"{user}:{password}")]

    def _connect(self) -> KazooClient:
        if not self.url.hosts:
            raise BrokerUnavailable(f"{self.url} names no ZooKeeper host")
        acl, auth = self._acl_and_auth()
        client = KazooClient(
            hosts=_hosts_text(self.url),
            timeout=self.options.lease_timeout,
            default_acl=acl,
            auth_data=auth,
            connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 2, "max_delay": 1.0},
            logger=redacting_logger("kazoo.client", [self.url.password or ""]),
        )
        client.add_listener(self._on_state)
        timeout = self.options.connect_timeout
        try:
            client.start(timeout=timeout)  # stops and closes the client itself on timeout
        except KazooTimeoutError:
            raise BrokerUnavailable(
                f"cannot connect to ZooKeeper at {_hosts_text(self.url)} within {timeout:g} s: "
                f"{_diagnose(self.url)}"
            ) from None
        except Exception as exc:
            self._discard(client)
            raise translate(exc, f"connecting to {self.url}") from exc
        self._connected.set()
        try:
            self._check_root(client)
        except BaseException:
            self._discard(client)
            raise
        return client

    def _check_root(self, client: KazooClient) -> None:
        """Create the root if missing; prove these credentials may use it."""
        what = f"checking access to {self.root!r} on {self.url}"
        with translating(what):
            self.wait(client.ensure_path_async(self.root))
            acls, _stat = self.wait(client.get_acls_async(self.root))
        if self.url.username is None:
            return
        ours = make_digest_acl_credential(self.url.username, self.url.password or "")
        digests = [acl.id.id for acl in acls if acl.id.scheme == "digest"]
        if digests and ours not in digests:
            raise AuthenticationFailed(
                f"{what}: the root's ACL grants other digest users, not "
                f"{self.url.username!r} with this password"
            )

    @staticmethod
    def _discard(client: KazooClient) -> None:
        with contextlib.suppress(Exception):
            client.stop()
        with contextlib.suppress(Exception):
            client.close()

    # -- session state ----------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        """Kazoo's state listener (its own thread, must not block)."""
        if state == KazooState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        for listener in list(self._listeners):
            listener()

    def on_state_change(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (from kazoo's thread) whenever the connection state changes."""
        self._listeners.append(listener)

    def session_id(self) -> int | None:
        """The current session's id, or None while disconnected or closed."""
        client = self._client
        client_id = None if client is None else client.client_id
        return None if client_id is None else int(client_id[0])

    def await_session(self) -> int | None:
        """The session id once connected again, or None if not within `op_timeout`."""
        if not self._closed:
            self._connected.wait(self.op_timeout)
        return self.session_id()

    def wait(self, result: IAsyncResult) -> Any:
        """The reply of an async request, or its kazoo exception (a timeout past op_timeout)."""
        return result.get(timeout=self.op_timeout)

    def delete_tree(self, path: str, attempts: int = 5) -> None:
        """Delete `path` and everything under it, retrying while others create beneath it."""
        client = self.client
        for _ in range(attempts):
            try:
                children = self.wait(client.get_children_async(path))
            except NoNodeError:
                return
            pending = [(f"{path}/{c}", client.delete_async(f"{path}/{c}")) for c in children]
            for child, result in pending:
                try:
                    self.wait(result)
                except NoNodeError:
                    pass
                except NotEmptyError:
                    self.delete_tree(child, attempts)
            try:
                self.wait(client.delete_async(path))
                return
            except NoNodeError:
                return
            except NotEmptyError:
                continue
        raise BrokerError(f"could not delete {path}: nodes kept appearing under it")

    def close(self) -> None:
        """End the session: its ephemeral locks vanish and held messages come back at once."""
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            self._discard(client)
