"""The ZooKeeper schedule store: the lease is an ephemeral node, so it lasts exactly as long
as the leader's session (whose timeout is the store's `lease_timeout`), and each entry's
last fire time is a node written with a version check.

Nodes under the URL's root (and ``<prefix>/`` under it with a prefix):
``beat/<namespace>/leader`` (ephemeral, data = holder) and
``beat/<namespace>/runs/e-<entry, %-quoted>`` (data = the fire time as text). A claim reads
the node and sets it only at the version it read (BadVersion: someone else wrote first,
read again), so two claims of one tick cannot both succeed. The session (connecting, ACLs,
error translation) is the transport's ZooKeeperSession.
"""

from __future__ import annotations

import contextlib
import dataclasses
from urllib.parse import quote

from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from conveyor.beat.store import ScheduleStore
from conveyor.core.errors import BrokerError
from conveyor.core.url import URL
from conveyor.transports.base import TransportOptions
from conveyor.transports.zookeeper.session import ZooKeeperSession, translating

_RACES = 20  # lost version races before a claim gives up (each means another beat wrote)


class ZooKeeperScheduleStore(ScheduleStore):
    Options = TransportOptions
    expires_unrenewed = False

    def __init__(
        self, url: URL, namespace: str, options: TransportOptions, prefix: str = ""
    ) -> None:
        # The session puts the prefix under the root, as it does for the transport.
        self._session = ZooKeeperSession(url, dataclasses.replace(options, namespace=prefix))
        base = f"{self._session.root}/beat/{quote(namespace, safe='')}"
        self._leader, self._runs = f"{base}/leader", f"{base}/runs"

    def _holder_node(self) -> tuple[str, int] | None:
        session = self._session
        try:
            data, stat = session.wait(session.client.get_async(self._leader))
        except NoNodeError:
            return None
        return data.decode(), stat.version

    def acquire(self, holder: str, ttl: float, now: float) -> bool:
        session = self._session
        with translating("taking the beat lease"):
            current = self._holder_node()
            if current is not None:
                return current[0] == holder
            node = session.client.create_async(
                self._leader, holder.encode(), ephemeral=True, makepath=True
            )
            try:
                session.wait(node)
            except NodeExistsError:
                return False
            return True

    def release(self, holder: str) -> None:
        with translating("releasing the beat lease"):
            current = self._holder_node()
            if current is None or current[0] != holder:
                return
            deleting = self._session.client.delete_async(self._leader, version=current[1])
            with contextlib.suppress(NoNodeError, BadVersionError):  # gone already
                self._session.wait(deleting)

    def leader(self, now: float) -> str | None:
        with translating("reading the beat lease"):
            current = self._holder_node()
        return None if current is None else current[0]

    def _path(self, entry: str) -> str:
        return f"{self._runs}/e-{quote(entry, safe='')}"

    def claim(self, entry: str, fire_time: float) -> bool:
        session, path, text = self._session, self._path(entry), repr(float(fire_time)).encode()
        with translating("claiming a beat tick"):
            client = session.client
            for _ in range(_RACES):
                try:
                    data, stat = session.wait(client.get_async(path))
                except NoNodeError:
                    try:
                        session.wait(client.create_async(path, text, makepath=True))
                        return True
                    except NodeExistsError:
                        continue
                if float(data) >= fire_time:
                    return False
                try:
                    session.wait(client.set_async(path, text, version=stat.version))
                    return True
                except BadVersionError:
                    continue
        raise BrokerError(f"claiming {entry!r}: lost {_RACES} version races in a row")

    def last_run(self, entry: str) -> float | None:
        session = self._session
        with translating("reading a beat entry's last run"):
            try:
                data, _stat = session.wait(session.client.get_async(self._path(entry)))
            except NoNodeError:
                return None
        return float(data)

    def close(self) -> None:
        """End the session: the lease node vanishes with it, so a follower takes over at once."""
        self._session.close()
