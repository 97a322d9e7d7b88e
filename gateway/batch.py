"""Batches of points: the unit in which readers hand data to the store.

A :class:`Batch` owns a C ``gw_batch`` (see ``native/include/gw_batch.h``): the line protocol
parser fills it in C, Python readers through :meth:`Batch.add`. ``Store.write(batch)`` takes it
whole, so points never become Python objects on the ingest path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field as dc_field
from typing import Iterable, Iterator, Mapping

from gateway._native import ffi, lib
from gateway.datamodel import (BOOL, FLOAT, INT, INT64_MAX, INT64_MIN, STRING, TYPE_NAMES, UINT,
                               UINT64_MAX, UInt, series_key, split_series_key)
from gateway.errors import NativeError

_f64 = struct.Struct("<d")
_u64 = struct.Struct("<Q")


@dataclass(slots=True)
class Point:
    """One measurement at one time, with any number of fields (the shape a reader produces)."""

    measurement: str
    fields: Mapping[str, float | int | bool | str]
    tags: Mapping[str, str] = dc_field(default_factory=dict)
    time_ns: int | None = None


def _encode_value(value) -> tuple[int, int, bytes]:
    """(type, 64-bit value, string bytes) for a Python field value."""
    if isinstance(value, bool):
        return BOOL, int(value), b""
    if isinstance(value, UInt):
        if not 0 <= value <= UINT64_MAX:
            raise ValueError(f"unsigned value out of range: {int(value)}")
        return UINT, int(value), b""
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"integer value out of range: {value}")
        return INT, value & UINT64_MAX, b""
    if isinstance(value, float):
        return FLOAT, _u64.unpack(_f64.pack(value))[0], b""
    if isinstance(value, str):
        return STRING, 0, value.encode()
    raise TypeError(f"unsupported field value type {type(value).__name__}")


def _decode_value(type_: int, raw: int, text: bytes):
    if type_ == FLOAT:
        return _f64.unpack(_u64.pack(raw))[0]
    if type_ == INT:
        return raw - (1 << 64) if raw >= (1 << 63) else raw
    if type_ == UINT:
        return UInt(raw)
    if type_ == BOOL:
        return bool(raw)
    return text.decode()


_STATUS = {lib.GW_ENOMEM: MemoryError, lib.GW_EINVAL: ValueError}


class Batch:
    """A growable set of points, held in C memory."""

    __slots__ = ("_ptr",)

    def __init__(self) -> None:
        ptr = lib.gw_batch_new()
        if ptr == ffi.NULL:
            raise MemoryError("cannot allocate a batch")
        self._ptr = ffi.gc(ptr, lib.gw_batch_free)

    @classmethod
    def from_points(cls, points: Iterable[Point], default_time_ns: int | None = None) -> "Batch":
        batch = cls()
        for p in points:
            ts = p.time_ns if p.time_ns is not None else default_time_ns
            if ts is None:
                raise ValueError(f"point {p.measurement!r} has no timestamp")
            for name, value in p.fields.items():
                batch.add(p.measurement, p.tags, name, value, ts)
        return batch

    @property
    def c_pointer(self):
        """The ``gw_batch *`` for the other C wrappers (store, WAL); not for general use."""
        return self._ptr

    def add(self, measurement: str, tags: Mapping[str, str], field: str, value, time_ns: int) -> None:
        """Adds one field value. Raises ValueError/TypeError for values the data model refuses."""
        self.add_key(series_key(measurement, tags, field), value, time_ns)

    def add_key(self, key: str, value, time_ns: int) -> None:
        """Adds one value of the series with this (checked, canonical) key, as iteration
        yields it."""
        key = key.encode()
        type_, raw, text = _encode_value(value)
        if not INT64_MIN <= time_ns <= INT64_MAX:
            raise ValueError(f"timestamp out of range: {time_ns}")
        if len(key) > lib.GW_MAX_KEY_LEN:
            raise ValueError(f"series key of {len(key)} bytes is longer than "
                             f"{lib.GW_MAX_KEY_LEN}, the store's limit: {key[:60]!r}...")
        rc = lib.gw_batch_add(self._ptr, key, len(key), type_, raw, text, len(text), time_ns)
        if rc != lib.GW_OK:
            raise _STATUS.get(rc, NativeError)(f"cannot add {key!r} to batch (status {rc})")

    def clear(self) -> None:
        lib.gw_batch_clear(self._ptr)

    def __len__(self) -> int:
        return self._ptr.n

    def __iter__(self) -> Iterator[tuple[str, int, object]]:
        """Yields ``(series_key, time_ns, value)``; slow, for tests and debugging."""
        b = self._ptr
        arena = ffi.buffer(b.arena, b.arena_len) if b.arena_len else b""
        for i in range(b.n):
            p = b.points[i]
            key = bytes(arena[p.key_off:p.key_off + p.key_len]).decode()
            text = bytes(arena[p.value:p.value + p.str_len]) if p.type == STRING else b""
            yield key, p.ts, _decode_value(p.type, p.value, text)

    def points(self) -> Iterator[tuple[str, dict[str, str], str, int, object]]:
        """Yields ``(measurement, tags, field, time_ns, value)``; slow, for tests and debugging."""
        for key, ts, value in self:
            measurement, tags, field = split_series_key(key)
            yield measurement, tags, field, ts, value


__all__ = ["Batch", "Point", "UInt", "FLOAT", "INT", "UINT", "BOOL", "STRING", "TYPE_NAMES"]
