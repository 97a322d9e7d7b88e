"""A bucket's series file: the catalogue kept beside the ring, so the ring can be re-indexed
without the SQLite index.

``buckets/<bucket>/series`` is append-only; each record is

    crc32c u32 | length u16 | series_id u32 | type u8 | key (length - 5 bytes)

(little endian; the crc covers length .. end of key). New series are appended and synced at the
checkpoint that first indexes them, before WAL segments holding their keys may go. A damaged
record is skipped (and counted); reading stops at a cut tail.

The escaping of the keys has a version (:data:`KEY_VERSION`): 1 wrote a backslash in a name as
two; 2 is InfluxDB's rule (docs/format/line-protocol.md), where a backslash is itself. A series
file made since starts with a marker record, series id 0 (which no series has), whose key names
the version; a file without it, or a store indexed before there was a series file, is version
1. Opening such a store migrates its keys (:func:`migrate_key`; gateway.store.recovery).
"""

from __future__ import annotations

import itertools
import os
import struct
from typing import Iterable

from gateway.datamodel import series_key, split_series_key
from gateway.durable import sync_directory
from gateway.store.native import crc32c

_HEAD = struct.Struct("<IH")
_BODY = struct.Struct("<IB")
MAX_KEY = 65535 - _BODY.size   # = GW_MAX_KEY_LEN: longer keys are refused at write
KEY_VERSION = 2
#: Series encoded and written at a time by :func:`append`.
APPEND_SERIES = 8192
_MARKER = "series keys v"


def encode(series: Iterable[tuple[int, int, str]]) -> bytes:
    out = bytearray()
    for sid, type_, key in series:
        raw = key.encode("utf-8", "surrogateescape")
        if len(raw) > MAX_KEY:  # the batch refuses these: never cut a key
            raise ValueError(f"series key of {len(raw)} bytes is longer than {MAX_KEY}")
        body = _BODY.pack(sid, type_) + raw
        length = struct.pack("<H", len(body))
        out += struct.pack("<I", crc32c(length + body)) + length + body
    return bytes(out)


def _marker() -> bytes:
    return encode([(0, 0, f"{_MARKER}{KEY_VERSION}")])


def append(path: str, series: Iterable[tuple[int, int, str]]) -> None:
    """Appends and syncs (raises OSError); a new file starts with the version marker, and its
    name is synced too. The records are encoded and written in pieces of APPEND_SERIES series,
    so that a checkpoint of a million new series does not build them all in memory."""
    created = not os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        if os.fstat(fd).st_size == 0:
            _write_all(fd, _marker())
        it = iter(series)
        while piece := list(itertools.islice(it, APPEND_SERIES)):
            _write_all(fd, encode(piece))
        os.fdatasync(fd)
    finally:
        os.close(fd)
    if created:
        sync_directory(os.path.dirname(path) or ".")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def rewrite(path: str, series: list[tuple[int, int, str]]) -> None:
    """Replaces the file with the marker and these series, atomically (raises OSError)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(_marker() + encode(series))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    sync_directory(os.path.dirname(path) or ".")


def key_version(path: str, indexed_series: bool) -> int:
    """The key version of a bucket: its series file's marker; without a file (or an empty one),
    1 when the index already holds series (a store from before the series file), else current."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD.size + _BODY.size + 64)
    except FileNotFoundError:
        head = b""
    if not head:
        return 1 if indexed_series else KEY_VERSION
    _, length = _HEAD.unpack_from(head, 0) if len(head) >= _HEAD.size else (0, 0)
    body = head[_HEAD.size:_HEAD.size + length]
    if len(body) >= _BODY.size and _BODY.unpack_from(body)[0] == 0:
        text = body[_BODY.size:].decode("utf-8", "replace")
        if text.startswith(_MARKER) and text[len(_MARKER):].isdigit():
            return int(text[len(_MARKER):])
    return 1


def migrate_key(key: str) -> str:
    """A version-1 key in the current escaping. Raises ValueError for a key that has none: a
    name ending in a backslash, which InfluxDB's escaping cannot write."""
    measurement, tags, field = split_series_key(key, legacy=True)
    return series_key(measurement, tags, field)


def read(path: str) -> tuple[list[tuple[int, int, str]], int]:
    """(series, damaged records skipped); the version marker is not a series."""
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
            if sid:
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
