"""The few file operations the spool is built from. Every move is one atomic `os.rename`."""

from __future__ import annotations

import os
import uuid


def names(directory: str) -> list[str]:
    """The entries of `directory` in name order; a missing directory is empty."""
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


def read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def write_atomic(staging: str, path: str, data: bytes, *, fsync: bool) -> None:
    """Write `data` under a temporary name in `staging`, then rename it to `path`.

    Readers see the whole file or nothing: never a half-written message. `staging` must be
    on the same filesystem as `path` (rename does not cross filesystems).
    """
    temporary = os.path.join(staging, uuid.uuid4().hex)
    with open(temporary, "xb") as file:
        file.write(data)
        if fsync:
            file.flush()
            os.fsync(file.fileno())
    os.rename(temporary, path)


def fsync_directory(directory: str) -> None:
    """Make the renames into `directory` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
