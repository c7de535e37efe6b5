"""What a raw baseline's `consume` (raw_redis, raw_amqp, raw_zookeeper) does with each batch.

The transport benchmark only takes and acknowledges (`TAKE_ONLY`); the task benchmark's
floor worker (`benchmarks/tasks/systems/raw_worker.py`) executes each batch before its
acknowledgement and stops on SIGTERM, with `n=None` (no count to reach).
"""

from __future__ import annotations


class Work:
    """Take and acknowledge, nothing else, until the count is reached."""

    def handle(self, bodies: list[bytes]) -> None:
        """Called with each taken batch, before it is acknowledged."""

    def running(self) -> bool:
        """Checked between batches; False ends `consume`."""
        return True


TAKE_ONLY = Work()
