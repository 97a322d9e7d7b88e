"""Making changes to the file system survive a power cut."""

from __future__ import annotations

import os


def sync_directory(path: str | os.PathLike) -> None:
    """fsync of a directory: a file created, renamed or removed in it stays so after a power
    cut (syncing the file itself does not make its name durable). Raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
