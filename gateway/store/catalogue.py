"""A bucket's series file: the catalogue kept beside the ring, so the ring can be re-indexed
without the SQLite index.

``buckets/<bucket>/series`` is append-only; each record is

    crc32c u32 | length u16 | series_id u32 | type u8 | key (length - 5 bytes)

(little endian; the crc covers length .. end of key). New series are appended and synced at the
checkpoint that first indexes them, before WAL segments holding their keys may go. A damaged
record is skipped (and counted); reading stops at a cut tail.
"""

from __future__ import annotations

import os
import struct

from gateway.durable import sync_directory
from gateway.store.native import crc32c

_HEAD = struct.Struct("<IH")
_BODY = struct.Struct("<IB")
MAX_KEY = 65535 - _BODY.size   # = GW_MAX_KEY_LEN: longer keys are refused at write


def encode(series: list[tuple[int, int, str]]) -> bytes:
    out = bytearray()
    for sid, type_, key in series:
        raw = key.encode("utf-8", "surrogateescape")
        if len(raw) > MAX_KEY:  # the batch refuses these: never cut a key
            raise ValueError(f"series key of {len(raw)} bytes is longer than {MAX_KEY}")
        body = _BODY.pack(sid, type_) + raw
        length = struct.pack("<H", len(body))
        out += struct.pack("<I", crc32c(length + body)) + length + body
    return bytes(out)


def append(path: str, series: list[tuple[int, int, str]]) -> None:
    """Appends and syncs (raises OSError); a new file's name is synced too."""
    created = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        data = encode(series)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if created:
        sync_directory(os.path.dirname(path) or ".")


def read(path: str) -> tuple[list[tuple[int, int, str]], int]:
    """(series, damaged records skipped)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return [], 0
    out, bad, pos = [], 0, 0
    while pos + _HEAD.size <= len(data):
        crc, length = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + length
        if length >= _BODY.size and end <= len(data) and crc32c(data[pos + 4:end]) == crc:
            sid, type_ = _BODY.unpack_from(data, pos + _HEAD.size)
            key = data[pos + _HEAD.size + _BODY.size:end].decode("utf-8", "surrogateescape")
            out.append((sid, type_, key))
            pos = end
            continue
        bad += 1
        # resync: the next offset whose record checks out
        nxt = pos + 1
        while nxt + _HEAD.size <= len(data):
            c, n = _HEAD.unpack_from(data, nxt)
            e = nxt + _HEAD.size + n
            if n >= _BODY.size and e <= len(data) and crc32c(data[nxt + 4:e]) == c:
                break
            nxt += 1
        pos = nxt
    return out, bad
