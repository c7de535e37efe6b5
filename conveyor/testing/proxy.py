"""A loopback TCP proxy that fault tests put between a client and its server.

`cut()` severs every open connection at once, as a failing network or a restarted load
balancer would; new connections are accepted again right after.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace

from conveyor.core.url import URL, Host, parse_url


class TCPProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = threading.Event()
        self.cuts = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select(timeout=1.0):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        peers[key.fileobj].sendall(data)  # type: ignore[index]
            except OSError:
                return
            finally:
                self._drop(client, upstream)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._sockets.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def cut(self) -> int:
        """Sever every open connection; return how many sockets were cut."""
        with self._lock:
            open_sockets = list(self._sockets)
        self._drop(*open_sockets)
        self.cuts += 1
        return len(open_sockets)

    def close(self) -> None:
        """Stop accepting (waking the blocked accept) and sever what is open."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.cut()


@contextlib.contextmanager
def proxy_in_front_of(url: str | URL) -> Iterator[tuple[TCPProxy, URL]]:
    """A proxy to `url`'s first host and `url` leading through it; the proxy closes on exit."""
    parsed = parse_url(url)
    if parsed.host is None or parsed.host.port is None:
        raise ValueError(f"{parsed} names no host and port to put a proxy in front of")
    proxy = TCPProxy(parsed.host.name, parsed.host.port)
    try:
        yield proxy, replace(parsed, hosts=(Host("127.0.0.1", proxy.port),))
    finally:
        proxy.close()
