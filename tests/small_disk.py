"""A small tmpfs to fill up (needs the right to mount: root, as `make test` runs) and a filler."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess


@contextlib.contextmanager
def mounted_tmpfs(path, size: str):
    """Mounts a tmpfs of ``size`` on the existing directory ``path``; None when that is not
    allowed (the caller decides whether that skips or fails)."""
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        yield None, r.stderr.strip()
        return
    try:
        yield str(path), None
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: str) -> str:
    """Fills the file system; returns the filler's path."""
    filler = os.path.join(path, "filler")
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\xff" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler
