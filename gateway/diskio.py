"""Bytes written to storage, as the kernel counts them: what this process caused to be written
(``/proc/self/io`` ``write_bytes``, whole pages handed to the block layer) and what the block
device holding a path wrote (``/sys/dev/block/MAJ:MIN/stat``, sectors written, which includes
the filesystem's journal and metadata and every other process writing to that device).

An SD card wears by what its device writes; the process figure tells the store's share.
Both are None where the kernel does not provide them (no procfs, a path on tmpfs or overlay).
"""

from __future__ import annotations

import os

#: /sys/block/*/stat counts sectors of 512 bytes, whatever the device's own sector size.
SECTOR_BYTES = 512
_SECTORS_WRITTEN_FIELD = 6


def process_write_bytes() -> int | None:
    """Bytes this process has caused to be written to storage so far, or None."""
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def block_device_stat(path: str) -> str | None:
    """The sysfs stat file of the block device (or partition) holding ``path``, or None when
    the path is on a filesystem without one (tmpfs, overlay, NFS)."""
    try:
        dev = os.stat(path).st_dev
    except OSError:
        return None
    stat = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/stat"
    return stat if os.path.exists(stat) else None


def device_write_bytes(stat_path: str | None) -> int | None:
    """Bytes written by the device of a stat file from :func:`block_device_stat`, or None."""
    if stat_path is None:
        return None
    try:
        with open(stat_path) as f:
            fields = f.read().split()
        return int(fields[_SECTORS_WRITTEN_FIELD]) * SECTOR_BYTES
    except (OSError, ValueError, IndexError):
        return None
