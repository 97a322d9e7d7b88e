"""Pulse counts kept across restarts: one small JSON file in the data directory, replaced
atomically (write a temporary file, fsync it, rename it over the old one, fsync the directory),
so a power cut leaves either the old counts or the new ones, never a torn file."""

from __future__ import annotations

import json
import logging
import os
import pathlib

log = logging.getLogger("gateway.readers.gpio")

FILE_NAME = "gpio-counters.json"
FORMAT_VERSION = 1


class CounterFile:
    def __init__(self, data_dir: str | os.PathLike) -> None:
        self.path = pathlib.Path(data_dir) / FILE_NAME

    def load(self) -> dict[str, int]:
        """The saved counts by input name; an unreadable file is reported and yields no counts."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as e:
            log.error("cannot read %s: %s; counters start from zero", self.path, e.strerror)
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
            log.error("%s is not a valid counter file (%s); counters start from zero", self.path, e)
            return {}

    def save(self, counts: dict[str, int]) -> None:
        """Replaces the file atomically. Raises OSError (the caller counts and logs it)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{FILE_NAME}.tmp")
        data = json.dumps({"version": FORMAT_VERSION, "counts": counts}, sort_keys=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
