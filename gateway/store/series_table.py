"""A bucket's series in memory: key, id and type of each, in a few flat arrays.

A bucket may hold a million series (``max_series``); a Python object, string and dictionary
entry per series would cost several hundred bytes each, more than a Pi 3 can spare. So the keys
sit in one byte arena (UTF-8, ``surrogateescape``), indexed by series id (ids are dense, from 1)
through offset, length and type arrays, and keys find their ids through an open-addressing
table of ids probed by the key's hash: about 30 bytes a series beside the key's own bytes.
:class:`SeriesInfo` objects are made when asked for, and let go by whoever asked.

Owned by the event loop thread (see :mod:`gateway.store.bucket`).
"""

from __future__ import annotations

import functools
from array import array
from dataclasses import dataclass
from typing import Iterator

from gateway.datamodel import split_series_key, type_name
from gateway.store.native import sort_keys

_MASK64 = (1 << 64) - 1
_MIN_SLOTS = 64


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """A series of the catalogue. Only the key is kept: measurement, tags and field are read
    from it when asked for."""

    id: int
    key: str
    type: int

    @property
    def type_name(self) -> str:
        return type_name(self.type)

    def parts(self) -> tuple[str, dict[str, str], str]:
        """(measurement, tags, field) of the key (the tags a new dict of the caller's)."""
        measurement, tags, field = key_parts(self.key)
        return measurement, dict(tags), field

    measurement = property(lambda self: self.parts()[0])
    tags = property(lambda self: self.parts()[1])
    field = property(lambda self: self.parts()[2])


@functools.lru_cache(maxsize=4096)   # a query asks for the same few series again and again
def key_parts(key: str) -> tuple[str, tuple[tuple[str, str], ...], str]:
    try:
        measurement, tags, field = split_series_key(key)
    except ValueError:
        return key, (), ""
    return measurement, tuple(tags.items()), field


def _encode(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


class SeriesTable:
    """Series by id and by key. Ids and keys are added, never removed (as in the heads)."""

    def __init__(self) -> None:
        self._arena = bytearray()
        self._offset = array("Q", [0])   # by id; index 0 unused (no series has id 0)
        self._length = array("I", [0])  # 0: no series of this id (keys are never empty)
        self._type = array("B", [0])
        self._hash = array("Q", [0])
        self._slots = array("I", bytes(4 * _MIN_SLOTS))   # series ids, 0 = empty
        self._count = 0
        self._version = 0   # changes with every add: the sorted ids below are of a version
        self._sorted: tuple[int, array] = (-1, array("I"))

    def __len__(self) -> int:
        return self._count

    def __contains__(self, series_id: int) -> bool:
        return 0 < series_id < len(self._length) and self._length[series_id] != 0

    def add(self, series_id: int, type_: int, key: str) -> None:
        """Adds a series; adding an id again replaces its key and type (the last word wins,
        as in recovery, where the index and then the WAL name series)."""
        if series_id <= 0:
            raise ValueError(f"series id {series_id} out of range")
        raw = _encode(key)
        if series_id in self:
            if self._key_bytes(series_id) == raw:
                self._type[series_id] = type_
                self._version += 1
                return
        else:
            self._count += 1
        grow = series_id + 1 - len(self._length)
        if grow > 0:
            self._offset.frombytes(bytes(8 * grow))
            self._length.frombytes(bytes(4 * grow))
            self._type.frombytes(bytes(grow))
            self._hash.frombytes(bytes(8 * grow))
        self._offset[series_id] = len(self._arena)
        self._length[series_id] = len(raw)
        self._type[series_id] = type_
        self._arena += raw
        h = self._hash[series_id] = hash(raw) & _MASK64
        if 2 * (self._count + 1) > len(self._slots):
            self._rehash(2 * len(self._slots))
        self._place(series_id, h)
        self._version += 1

    def _place(self, series_id: int, h: int) -> None:
        slots = self._slots
        mask = len(slots) - 1
        i = h & mask
        while slots[i]:
            i = (i + 1) & mask
        slots[i] = series_id

    def _rehash(self, size: int) -> None:
        old = self._slots
        self._slots = array("I", bytes(4 * size))
        for sid in old:
            if sid:
                self._place(sid, self._hash[sid])

    def _key_bytes(self, series_id: int) -> bytes:
        start = self._offset[series_id]
        return bytes(self._arena[start:start + self._length[series_id]])

    def id_of_bytes(self, raw: bytes) -> int | None:
        """The id of the series with this (UTF-8) key, or None."""
        h = hash(raw) & _MASK64
        slots, hashes, lengths = self._slots, self._hash, self._length
        mask = len(slots) - 1
        i = h & mask
        n = len(raw)
        while True:
            sid = slots[i]
            if not sid:
                return None
            if hashes[sid] == h and lengths[sid] == n:
                start = self._offset[sid]
                if self._arena[start:start + n] == raw:
                    return sid
            i = (i + 1) & mask

    def id_of(self, key: str) -> int | None:
        """The id of the series with this key, or None."""
        return self.id_of_bytes(_encode(key))

    def key(self, series_id: int) -> str:
        return self._key_bytes(series_id).decode("utf-8", "surrogateescape")

    def get(self, series_id: int) -> SeriesInfo | None:
        if series_id not in self:
            return None
        return SeriesInfo(series_id, self.key(series_id), self._type[series_id])

    def __getitem__(self, series_id: int) -> SeriesInfo:
        info = self.get(series_id)
        if info is None:
            raise KeyError(series_id)
        return info

    def infos(self, series_ids) -> list[SeriesInfo]:
        """The :class:`SeriesInfo` of each of these ids (ids of the table), made in one pass
        over the arena."""
        arena, offsets, lengths, types = self._arena, self._offset, self._length, self._type
        out = []
        for sid in series_ids:
            if not 0 < sid < len(lengths) or not lengths[sid]:
                raise KeyError(sid)
            start = offsets[sid]
            out.append(SeriesInfo(sid, arena[start:start + lengths[sid]].decode(
                "utf-8", "surrogateescape"), types[sid]))
        return out

    def ids(self) -> Iterator[int]:
        """Every series id, ascending."""
        lengths = self._length
        return (sid for sid in range(1, len(lengths)) if lengths[sid])

    def values(self) -> Iterator[SeriesInfo]:
        return (self[sid] for sid in self.ids())

    def items(self) -> Iterator[tuple[int, SeriesInfo]]:
        return ((sid, self[sid]) for sid in self.ids())

    def rows(self, series_ids) -> Iterator[tuple[int, int, str]]:
        """(id, type, key) of each of these series, made one at a time (for the index and the
        series file, which take a checkpoint's new series; any thread: entries never change
        once added, and only recovery adds an id again)."""
        for sid in series_ids:
            yield sid, self._type[sid], self.key(sid)

    def sorted_ids(self) -> array:
        """Every series id (array 'I', the caller's), sorted by key bytes, in C: the byte
        order of UTF-8 is the code point order, so this is also the order of the keys as
        strings. The order is kept until the next add (4 bytes a series): a query lists the
        series of a bucket each time, and a table that is not growing needs no new sort."""
        version, ids = self._sorted
        if version != self._version:
            version = self._version
            ids = array("I", self.ids())
            sort_keys(self._arena, self._offset, self._length, ids)
            self._sorted = (version, ids)
        return ids[:]

    def sorted_ids_with(self, prefix: bytes = b"", suffix: bytes = b"",
                        inner: tuple[bytes, ...] = ()) -> list[int]:
        """The ids of :meth:`sorted_ids` whose key bytes start with ``prefix``, end with
        ``suffix`` and contain each of ``inner``: a cheap first test of a key's parts (an
        escaped measurement, field, tag) that reads the arena in place, so a query that wants
        a few of many series makes no string or object for the others."""
        ids: array | list[int] = self.sorted_ids()
        arena, offsets, lengths = self._arena, self._offset, self._length
        # one pass per piece, each a comprehension over the ids still in
        if prefix:
            ids = [sid for sid in ids
                   if arena.startswith(prefix, offsets[sid], offsets[sid] + lengths[sid])]
        if suffix:
            ids = [sid for sid in ids
                   if arena.endswith(suffix, offsets[sid], offsets[sid] + lengths[sid])]
        for part in inner:
            ids = [sid for sid in ids
                   if arena.find(part, offsets[sid], offsets[sid] + lengths[sid]) >= 0]
        return list(ids)

    def memory(self) -> int:
        """Bytes the table holds (its arrays, not the interpreter's overhead)."""
        return (len(self._arena) + sum(a.itemsize * len(a) for a in
                (self._offset, self._length, self._type, self._hash, self._slots,
                 self._sorted[1])))
