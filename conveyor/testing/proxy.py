"""A loopback TCP proxy that fault tests put between a client and its server.

`cut()` severs every open connection at once, as a failing network or a restarted load
balancer would; new connections are accepted again right after. `reset()` does the same
with a TCP RST instead of a FIN. The other faults are settings that apply from the next
chunk of data on, in both directions:

* `latency` (seconds) with `jitter` (up to that many more, random per chunk);
* `blackhole`: bytes are read and dropped, nothing answers, connections stay open (a
  partitioned network; new connections are accepted and swallowed too);
* `slice_size`: each chunk is forwarded in segments of at most that many bytes, so a
  large frame arrives in many reads;
* `cut_after`: once that many more bytes went through, cut every connection (mid-frame).
"""

from __future__ import annotations

import contextlib
import queue
import random
import selectors
import socket
import struct
import threading
import time
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
        self.latency = 0.0
        self.jitter = 0.0
        self.blackhole = False
        self.slice_size = 0
        self.cut_after: int | None = None
        self._lines: dict[socket.socket, queue.SimpleQueue[tuple[float, bytes]]] = {}
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
            try:
                for sock in peers:  # reset() may have closed them already (fd -1)
                    selector.register(sock, selectors.EVENT_READ)
                while True:
                    for key, _ in selector.select(timeout=1.0):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        self._forward(peers[key.fileobj], data)  # type: ignore[index]
            except (OSError, ValueError):  # ValueError: a socket closed by reset()
                return
            finally:
                self._drop(client, upstream)

    def _forward(self, peer: socket.socket, data: bytes) -> None:
        if self.blackhole:
            return
        if self.latency or self.jitter:
            # Delayed, not serialised: each chunk leaves `latency` (+ jitter) after it
            # arrived, so pipelined requests overlap as they would on a slow link.
            due = time.monotonic() + self.latency + random.uniform(0.0, self.jitter)
            self._delayed(peer).put((due, data))
            return
        self._send(peer, data)

    def _delayed(self, peer: socket.socket) -> queue.SimpleQueue[tuple[float, bytes]]:
        with self._lock:
            line = self._lines.get(peer)
            if line is None:
                line = self._lines[peer] = queue.SimpleQueue()
                threading.Thread(target=self._drain, args=(peer, line), daemon=True).start()
        return line

    def _drain(self, peer: socket.socket, line: queue.SimpleQueue[tuple[float, bytes]]) -> None:
        last = 0.0
        while True:
            due, data = line.get()
            if not data:  # the connection was dropped
                return
            due = max(due, last)  # bytes keep their order whatever the jitter
            last = due
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                self._send(peer, data)
            except OSError:
                return

    def _send(self, peer: socket.socket, data: bytes) -> None:
        if self.cut_after is not None:
            if len(data) >= self.cut_after:
                peer.sendall(data[: self.cut_after])
                self.cut_after = None
                threading.Thread(target=self.cut, daemon=True).start()
                return
            self.cut_after -= len(data)
        step = self.slice_size or len(data)
        for start in range(0, len(data), step):
            peer.sendall(data[start : start + step])

    @property
    def open_sockets(self) -> int:
        """Sockets open now (two per proxied connection)."""
        with self._lock:
            return len(self._sockets)

    def reset(self) -> int:
        """Abort every open connection with a TCP RST; return how many sockets."""
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._lock:
            for sock in open_sockets:
                self._sockets.discard(sock)
                sock.close()
        self.cuts += 1
        return len(open_sockets)

    def heal(self) -> None:
        """Back to a plain pass-through."""
        self.latency = self.jitter = 0.0
        self.blackhole = False
        self.slice_size = 0
        self.cut_after = None

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._sockets.discard(sock)
                line = self._lines.pop(sock, None)
                if line is not None:
                    line.put((0.0, b""))
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
