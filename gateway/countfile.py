"""Small named counts kept across restarts and power cuts: one JSON file replaced atomically
(write a temporary file, fsync it, rename it over the old one, fsync the directory), so a power
cut leaves either the old counts or the new ones, never a torn file.

Used for the GPIO reader's pulse counts and the store's replication cursors.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib

from gateway.durable import sync_directory

FORMAT_VERSION = 1


class CountFile:
    """A file of ``name -> non-negative integer``. ``what`` names the counts in log lines."""

    def __init__(self, path: str | os.PathLike, what: str, log: logging.Logger) -> None:
        self.path = pathlib.Path(path)
        self.what = what
        self.log = log

    def load(self) -> dict[str, int]:
        """The saved counts; a missing file is none, an unreadable one is reported and none."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as e:
            self.log.error("cannot read %s: %s; %s start from zero", self.path, e.strerror, self.what)
            return {}
        try:
            doc = json.loads(raw)
            counts = doc["counts"]
            if doc.get("version") != FORMAT_VERSION or not isinstance(counts, dict):
                raise ValueError("unknown layout")
            bad = [k for k, v in counts.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
            if bad:
                raise ValueError(f"count of {bad[0]!r} is not a non-negative integer")
            return dict(counts)
        except (ValueError, KeyError, TypeError) as e:
            self.log.error("%s is not a valid file of %s (%s); they start from zero",
                           self.path, self.what, e)
            return {}

    def save(self, counts: dict[str, int]) -> None:
        """Replaces the file atomically. Raises OSError (the caller counts and logs it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        data = json.dumps({"version": FORMAT_VERSION, "counts": counts}, sort_keys=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        sync_directory(self.path.parent)
