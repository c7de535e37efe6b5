"""Leases that follow liveness: a consumer holds its messages exactly as long as it lives.

Each consumer owns a directory ``consumers/<id>/`` holding the messages it claimed and a
``.lock`` file on which it keeps an exclusive ``flock`` for its whole life. The kernel drops
a flock when its process dies, however it dies (SIGKILL included), so "can I flock it?" is an
exact liveness test: no heartbeat, no clock, and a task that runs for hours keeps its lease.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
import weakref
from collections.abc import Callable
from contextlib import suppress

from conveyor_spool.files import names

LOCK = ".lock"  # queue names cannot start with '.', so this never clashes with a queue


class Lease:
    """The consumer side: create the directory, lock it, keep the lock until `release`."""

    def __init__(self, consumers: str, staging: str) -> None:
        self.id = uuid.uuid4().hex
        self.pid = os.getpid()
        self.staging = staging
        building = os.path.join(staging, self.id)
        os.mkdir(building)
        self.fd = os.open(os.path.join(building, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        # Renamed into consumers/ already locked: a reaper never sees it unlocked.
        self.path = os.path.join(consumers, self.id)
        os.rename(building, self.path)
        _leases.add(self)

    @property
    def mine(self) -> bool:
        """False in a forked child: the lease (and the messages under it) is the parent's."""
        return self.pid == os.getpid()

    def release(self, give_back: Callable[[str], None]) -> None:
        """Give back the held messages and remove the directory, then let go of the lock.

        Should giving back fail, the lock is let go all the same and a reaper finishes.
        """
        try:
            _dispose(self.path, self.staging, give_back)
        finally:
            os.close(self.fd)


def reap(consumers: str, staging: str, give_back: Callable[[str], None]) -> None:
    """Call `give_back(directory)` for each consumer whose process is gone, then remove it.

    flock locks belong to an open file, not to a process, so a live consumer's lock
    refuses even a reaper in its own process. A dead consumer is reaped while holding its
    lock, so two reapers never work on the same one: the second to get the lock finds the
    directory already gone.
    """
    for owner in names(consumers):
        path = os.path.join(consumers, owner)
        try:
            fd = os.open(os.path.join(path, LOCK), os.O_RDWR)
        except FileNotFoundError:
            continue  # another reaper removed it since the listing
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # its owner is alive
        try:
            _dispose(path, staging, give_back)
        finally:
            os.close(fd)


def _dispose(path: str, staging: str, give_back: Callable[[str], None]) -> None:
    """With the consumer's lock held: give back its messages, then remove its directory.

    The directory leaves consumers/ in one rename, so consumers/ never holds a directory
    without its lock file, whatever point a crash interrupts this at.
    """
    give_back(path)
    doomed = os.path.join(staging, uuid.uuid4().hex)
    with suppress(FileNotFoundError):  # a reaper before us removed it already
        os.rename(path, doomed)
        shutil.rmtree(doomed)


_leases: weakref.WeakSet[Lease] = weakref.WeakSet()


def _close_inherited_locks() -> None:
    """A forked child shares its parent's open files, flocks included. Close the child's
    copies, or a child that outlives a killed parent would keep the parent's lease alive."""
    for lease in list(_leases):
        os.close(lease.fd)
    _leases.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)
