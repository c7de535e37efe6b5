"""conveyor-spool: an example third-party transport for conveyor.

A queue is a directory; every process on the machine can share it, with no server.
conveyor finds it through the entry point ``spool`` in the group ``conveyor.transports``
(see ../pyproject.toml), so ``spool:///var/spool/conveyor`` works as a broker URL.
"""

from conveyor_spool.transport import SpoolOptions, SpoolTransport

__all__ = ["SpoolOptions", "SpoolTransport"]
