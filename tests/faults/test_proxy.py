"""The fault proxy's own races: a connection reset before its pump thread starts."""

from __future__ import annotations

import socket

from conveyor.testing.proxy import TCPProxy


def test_a_pump_whose_sockets_were_reset_before_it_started_ends_quietly() -> None:
    """reset() can close both sockets between accept and the pump's first line: the pump
    must end (dropping them) rather than raise from selector.register on fd -1."""
    with socket.create_server(("127.0.0.1", 0)) as target:
        proxy = TCPProxy("127.0.0.1", target.getsockname()[1])
        try:
            client, upstream = socket.socketpair()
            client.close()
            upstream.close()
            proxy._pump(client, upstream)  # returns; before the fix: ValueError
        finally:
            proxy.close()
