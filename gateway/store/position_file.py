"""The replication positions of a bucket's streams, durable with one ``fdatasync`` a write.

A stream records its position after every batch the upstream acknowledged; a transaction of the
block index (an fsync'd SQLite journal and database) or a file replaced by rename (two fsyncs
and a directory entry) costs several syncs each time. This file is written in place instead:
it holds two slots of SLOT_BYTES, each write fills the slot the previous write did not use with
a generation number one higher and syncs it, so a write torn by a power cut leaves the other
slot, the positions before it, readable. The file never changes size after it is created, so
a sync writes one page and no metadata. Format: docs/format/positions.md.
"""

from __future__ import annotations

import json
import logging
import os
import struct

from gateway.durable import sync_directory
from gateway.errors import StoreError
from gateway.store.native import crc32c

MAGIC = b"GWPOS001"
SLOT_BYTES = 4096
#: magic, generation, payload length, crc32c of the generation, length and payload
_HEADER = struct.Struct("<8sQII")

#: A stream's position in a bucket: (block sequence number, WAL LSN).
Position = tuple[int, int]


class PositionFile:
    def __init__(self, path: str, log: logging.Logger) -> None:
        self.path = path
        self.log = log
        self._fd: int | None = None
        self._generation = 0   # of the slot written last (or found newest)

    def load(self) -> dict[str, Position]:
        """The positions of the newest intact slot; none when the file is missing. A file
        whose slots are both damaged is reported (the streams then start from the block
        index's cursors)."""
        try:
            with open(self.path, "rb") as f:
                data = f.read(2 * SLOT_BYTES)
        except FileNotFoundError:
            return {}
        except OSError as e:
            self.log.error("cannot read %s: %s; replication positions are taken from the "
                           "block index", self.path, e.strerror)
            return {}
        best: tuple[int, dict[str, Position]] | None = None
        problems = []
        for slot in (0, 1):
            try:
                got = _parse(data[slot * SLOT_BYTES:(slot + 1) * SLOT_BYTES])
            except ValueError as e:
                problems.append(f"slot {slot}: {e}")
                continue
            if got is not None and (best is None or got[0] > best[0]):
                best = got
        if best is None:
            if problems:
                self.log.error("%s holds no intact positions (%s); replication positions are "
                               "taken from the block index", self.path, "; ".join(problems))
            return {}
        self._generation = best[0]
        return best[1]

    def save(self, positions: dict[str, Position]) -> None:
        """Writes the positions into the older slot and syncs it. Raises StoreError."""
        payload = json.dumps({n: list(p) for n, p in sorted(positions.items())},
                             separators=(",", ":")).encode()
        if _HEADER.size + len(payload) > SLOT_BYTES:
            raise StoreError(f"{self.path}: the positions of {len(positions)} streams do not "
                             f"fit in {SLOT_BYTES} bytes")
        generation = self._generation + 1
        body = struct.pack("<QI", generation, len(payload)) + payload
        slot = _HEADER.pack(MAGIC, generation, len(payload), crc32c(body)) + payload
        try:
            fd = self._open()
            os.pwrite(fd, slot.ljust(SLOT_BYTES, b"\0"), (generation % 2) * SLOT_BYTES)
            os.fdatasync(fd)
        except OSError as e:
            raise StoreError(f"cannot write {self.path}: {e.strerror}") from e
        self._generation = generation

    def _open(self) -> int:
        if self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                if os.fstat(fd).st_size < 2 * SLOT_BYTES:
                    # Both slots exist from the start: later writes change no metadata.
                    os.ftruncate(fd, 2 * SLOT_BYTES)
                    os.fsync(fd)
                    sync_directory(os.path.dirname(self.path))
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _parse(slot: bytes) -> tuple[int, dict[str, Position]] | None:
    """(generation, positions) of a slot; None for a slot never written; ValueError when
    damaged."""
    if len(slot) < _HEADER.size or slot[:8] == bytes(8):
        return None
    magic, generation, length, crc = _HEADER.unpack_from(slot)
    if magic != MAGIC:
        raise ValueError("bad magic")
    if _HEADER.size + length > len(slot):
        raise ValueError(f"length {length} beyond the slot")
    payload = slot[_HEADER.size:_HEADER.size + length]
    if crc32c(struct.pack("<QI", generation, length) + payload) != crc:
        raise ValueError("checksum mismatch")
    doc = json.loads(payload)
    if not isinstance(doc, dict):
        raise ValueError("not an object of positions")
    out = {}
    for name, p in doc.items():
        if (not isinstance(p, list) or len(p) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in p)):
            raise ValueError(f"position of {name!r} is not two non-negative integers")
        out[name] = (p[0], p[1])
    return generation, out
