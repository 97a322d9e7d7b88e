"""The block codec: a series' timestamps and values to one compressed, checksummed block.

This module is the only door to the C codec (``native/src/codec*.c``, format in
``docs/format/block.md``). Columns go in and come out as buffer-protocol objects
(``array.array``, ``memoryview``, numpy arrays) and cross into C without copies or per-point
Python work; only string values are Python objects one by one.

>>> from array import array
>>> block = encode(array("q", [0, 1000, 2000]), array("d", [21.5, 21.6, 21.6]))
>>> ts, values = decode(block)
>>> list(values)
[21.5, 21.6, 21.6]
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass
from typing import Sequence

from gateway._native import ffi, lib
from gateway.datamodel import BOOL, COLUMN_TYPECODES, FLOAT, INT, STRING, UINT
from gateway.errors import CorruptBlock

__all__ = ["encode", "decode", "block_info", "BlockInfo", "CorruptBlock",
           "FLOAT", "INT", "UINT", "BOOL", "STRING", "MAX_POINTS", "MAX_STRING_BYTES"]

MAX_POINTS = lib.GW_BLOCK_MAX_POINTS
MAX_STRING_BYTES = lib.GW_BLOCK_MAX_STRING_BYTES

_TYPE_BY_NAME = {"float": FLOAT, "int": INT, "uint": UINT, "bool": BOOL, "string": STRING}
_TYPECODE = COLUMN_TYPECODES
# memoryview formats (byte-order prefix stripped) and item sizes accepted per type.
_FORMATS = {FLOAT: {("d", 8)}, INT: {("q", 8), ("l", 8)}, UINT: {("Q", 8), ("L", 8)},
            BOOL: {("?", 1), ("b", 1), ("B", 1), ("q", 8), ("Q", 8), ("l", 8), ("L", 8)}}
_TYPE_OF_FORMAT = {("d", 8): FLOAT, ("q", 8): INT, ("l", 8): INT, ("Q", 8): UINT, ("L", 8): UINT,
                   ("?", 1): BOOL}
_ERRORS = {lib.GW_ECORRUPT: "corrupt", lib.GW_ETRUNC: "truncated", lib.GW_EINVAL: "invalid"}
# Prebuilt pieces of the hot paths: typed cffi array types (no cdecl parsing per call) and
# one-element arrays whose repetition makes a zeroed column in a single C-level fill.
_I64 = ffi.typeof("int64_t[]")
_U64 = ffi.typeof("uint64_t[]")
_U8 = ffi.typeof("uint8_t[]")
_U32 = ffi.typeof("uint32_t[]")
_NULL = ffi.NULL
_ZERO_TS = array("q", [0])
_ZERO_VALUES = {FLOAT: array("d", [0.0]), INT: array("q", [0]), UINT: array("Q", [0]),
                BOOL: array("B", [0])}
_block_count = lib.gw_block_count
_block_decode = lib.gw_block_decode
_block_decode_at = lib.gw_block_decode_at
_address = array.buffer_info
_ZERO_WORDS = {code: z for code, z in _ZERO_VALUES.items() if code != BOOL}
_from_buffer = ffi.from_buffer
_out = threading.local()   # per-thread encode buffer, grown on demand
_TS_FAST = {(f, 8) for f in ("q", "<q", "=q", "@q", "l", "<l", "=l", "@l")}
_FAST_TYPES = {(p + f, size): code for (f, size), code in
               {("d", 8): FLOAT, ("q", 8): INT, ("l", 8): INT, ("Q", 8): UINT, ("L", 8): UINT,
                ("?", 1): BOOL}.items() for p in ("", "<", "=", "@")}
_BOUNDS: dict[tuple[int, int], int] = {}


def _bound(code: int, n: int) -> int:
    cap = lib.gw_block_bound(code, n, 0)
    if len(_BOUNDS) < 4096:
        _BOUNDS[(code, n)] = cap
    return cap


_OUT_KEEP = 1 << 20   # larger encode buffers are not kept between calls


def _out_buffer(cap: int) -> tuple[bytearray, object]:
    buf = getattr(_out, "buf", None)
    if buf is None or len(buf) < cap:
        buf = bytearray(max(cap, 1 << 16))
        ptr = ffi.from_buffer(_U8, buf)
        if cap > _OUT_KEEP:
            return buf, ptr
        _out.buf, _out.ptr = buf, ptr
    return buf, _out.ptr


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What a block's header says (after its checksum was verified)."""

    type: int
    version: int
    flags: int
    count: int
    min_ts: int
    max_ts: int
    string_bytes: int


def as_column(obj, what: str) -> memoryview:
    """A one-dimensional contiguous view of a buffer-protocol column, or TypeError/ValueError."""
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(f"{what} must be a buffer (array.array, memoryview, numpy array), "
                        f"got {type(obj).__name__}") from None
    if view.ndim != 1 or not view.c_contiguous:
        raise ValueError(f"{what} must be a one-dimensional contiguous buffer")
    return view


def _format(view: memoryview) -> tuple[str, int]:
    return view.format.lstrip("@=<"), view.itemsize


def _timestamps(timestamps) -> memoryview:
    if isinstance(timestamps, (list, tuple)):
        timestamps = array("q", timestamps)
    view = as_column(timestamps, "timestamps")
    if _format(view) not in {("q", 8), ("l", 8)}:
        raise TypeError(f"timestamps must be signed 64-bit integers (ns), got format {view.format!r}")
    return view


def _type_code(type: str | int) -> int:
    code = _TYPE_BY_NAME.get(type, type) if isinstance(type, str) else type
    if code not in _TYPECODE and code != STRING:
        raise ValueError(f"unknown value type {type!r}; expected one of {sorted(_TYPE_BY_NAME)}")
    return code


def _values(values, type: str | int | None) -> tuple[int, object]:
    """(type code, values as a memoryview, or the list of strings)."""
    if isinstance(values, (list, tuple)):
        if type is None:
            if values and all(isinstance(v, (str, bytes)) for v in values):
                return STRING, values
            raise TypeError("values given as a list must be strings (str or bytes); pass numbers "
                            "as a buffer (array.array, numpy) or give type=")
        code = _type_code(type)
        if code == STRING:
            return code, values
        return code, memoryview(array(_TYPECODE[code], values))
    view = as_column(values, "values")
    fmt = _format(view)
    if type is None:
        if fmt not in _TYPE_OF_FORMAT:
            raise TypeError(f"cannot tell the value type of a buffer of format {fmt[0]!r} "
                            f"({fmt[1]}-byte items); give type=")
        return _TYPE_OF_FORMAT[fmt], view
    code = _type_code(type)
    if code == STRING or fmt not in _FORMATS[code]:
        raise TypeError(f"values of format {view.format!r} do not fit type {type!r}")
    return code, view


def _raise_encode_error(rc: int) -> None:
    if rc == lib.GW_ENOMEM:
        raise MemoryError("block encoder ran out of memory")
    raise ValueError(f"block encoder rejected its input (code {rc})")


def encode(timestamps, values, *, resolution: float | None = None,
           type: str | int | None = None) -> bytes:
    """One block holding the points ``(timestamps[i], values[i])``.

    ``timestamps``: signed 64-bit ns, in any order. ``values``: a buffer of float64 / int64 /
    uint64 / bool (one byte or one 64-bit word per point), or a list of str/bytes for strings.
    The type follows from the buffer's format unless ``type`` ("float", "int", "uint", "bool",
    "string") says otherwise. ``resolution`` declares the decimal step of float values (0.1 for
    a sensor that reports tenths); by default the codec detects it per block. Floats round-trip
    bit for bit whatever the resolution.
    """
    # Fast path for the common call: two one-dimensional buffers of known formats.
    fast = None
    if type is None and resolution is None and not isinstance(values, (list, tuple)):
        try:
            ts, view = memoryview(timestamps), memoryview(values)
        except TypeError:
            pass
        else:
            if (ts.format, ts.itemsize) in _TS_FAST and ts.ndim == 1 and ts.c_contiguous \
                    and view.ndim == 1 and view.c_contiguous:
                fast = _FAST_TYPES.get((view.format, view.itemsize))
    if fast is not None:
        code = fast
    else:
        ts = _timestamps(timestamps)
        code, view = _values(values, type)
    n = len(ts)
    if n == 0:
        raise ValueError("a block needs at least one point")
    if n > MAX_POINTS:
        raise ValueError(f"a block holds at most {MAX_POINTS} points, got {n}")
    res = 0.0
    if resolution is not None:
        if code != FLOAT:
            raise ValueError("resolution applies to float values only")
        res = float(resolution)
        if not 0.0 < res < float("inf"):
            raise ValueError(f"resolution must be a positive finite number, got {resolution!r}")
    if len(view) != n:
        raise ValueError(f"{n} timestamps but {len(view)} values")
    if code == STRING:
        return _encode_strings(ts, n, view)
    if code == BOOL and view.itemsize == 1:
        vp = ffi.new("uint64_t[]", n)
        lib.gw_block_bools_widen(ffi.from_buffer(_U8, view), vp, n)
    else:
        vp = ffi.from_buffer(_U64, view)
    cap = _BOUNDS.get((code, n)) or _bound(code, n)
    out, out_ptr = _out_buffer(cap)
    rc = lib.gw_block_encode(code, n, ffi.from_buffer(_I64, ts), vp, _NULL, _NULL, res, out_ptr, cap)
    if rc < 0:
        _raise_encode_error(rc)
    return bytes(memoryview(out)[:rc])


def _encode_strings(ts: memoryview, n: int, values: Sequence) -> bytes:
    parts = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            parts.append(v.encode("utf-8", "surrogateescape"))
        elif isinstance(v, (bytes, bytearray)):
            parts.append(bytes(v))
        else:
            raise TypeError(f"string value {i} is {type(v).__name__}, not str or bytes")
    offsets = array("I", [0]) * (n + 1)
    total = 0
    for i, p in enumerate(parts):
        total += len(p)
        offsets[i + 1] = total
    if total > MAX_STRING_BYTES:
        raise ValueError(f"a block holds at most {MAX_STRING_BYTES} string bytes, got {total}")
    joined = b"".join(parts)
    cap = lib.gw_block_bound(STRING, n, total)
    out, out_ptr = _out_buffer(cap)
    rc = lib.gw_block_encode(STRING, n, ffi.from_buffer(_I64, ts), _NULL,
                             ffi.from_buffer(joined), ffi.from_buffer(_U32, offsets),
                             0.0, out_ptr, cap)
    if rc < 0:
        _raise_encode_error(rc)
    return bytes(memoryview(out)[:rc])


def _corrupt(rc: int) -> CorruptBlock:
    why = ffi.string(lib.gw_block_last_error()).decode()
    return CorruptBlock(f"{_ERRORS.get(rc, 'bad')} block: {why}")


def _block_buffer(block):
    """(pointer-compatible object, size, type byte) of a block given as any bytes-like object."""
    if type(block) is bytes:   # cffi passes bytes to C without a copy or a wrapper
        size = len(block)
        if size < 4:
            raise CorruptBlock(f"truncated block: {size} bytes")
        return block, size, block[3]
    view = memoryview(block).cast("B")
    size = view.nbytes
    if size < 4:
        raise CorruptBlock(f"truncated block: {size} bytes")
    return ffi.from_buffer(view), size, view[3]


def block_info(block) -> BlockInfo:
    """The header of ``block`` after checking its checksum; raises :class:`CorruptBlock`."""
    buf, size, _ = _block_buffer(block)
    info = ffi.new("gw_block_info *")
    rc = lib.gw_block_info_read(buf, size, info)
    if rc != 0:
        raise _corrupt(rc)
    return BlockInfo(info.type, info.version, info.flags, info.n, info.min_ts, info.max_ts,
                     info.string_bytes)


def decode(block) -> tuple[array, array | list]:
    """``(timestamps, values)`` of a block: ``array('q')`` of ns, and ``array('d'|'q'|'Q')``,
    ``array('B')`` of 0/1 for booleans, or a list of str for strings (invalid UTF-8 comes back
    with surrogate escapes, so it re-encodes to the same bytes).

    Raises :class:`CorruptBlock` naming the problem for a truncated, corrupt or hostile block.
    """
    if type(block) is bytes and len(block) > 16:   # the common case, kept short
        buf, size, code = block, len(block), block[3]
        # The point count comes from the C reader of the header (the block format lives in C
        # only), and the decoder leaves the buffers alone unless the block holds exactly n
        # points. The columns go to C as addresses: cheaper than pointer objects for small
        # blocks.
        zero = _ZERO_WORDS.get(code)
        if zero is not None:
            n = _block_count(block, size)
            if n > 0:
                ts = _ZERO_TS * n
                values = zero * n
                if _block_decode_at(block, size, n, _address(ts)[0], _address(values)[0]) == 0:
                    return ts, values
    else:
        buf, size, code = _block_buffer(block)
    n = _block_count(buf, size)
    if n < 0:
        raise _corrupt(n)
    ts = _ZERO_TS * n
    if code in _ZERO_VALUES and code != BOOL:
        values = _ZERO_VALUES[code] * n   # float/int bits land in place: no conversion pass
        rc = _block_decode(buf, size, _from_buffer(_I64, ts), _from_buffer(_U64, values),
                           _NULL, _NULL, 0)
        if rc != 0:
            raise _corrupt(rc)
        return ts, values
    if code == STRING:
        return ts, _decode_strings(buf, size, ts, n)
    if code == BOOL:
        words = ffi.new("uint64_t[]", n)
        rc = lib.gw_block_decode(buf, size, ffi.from_buffer(_I64, ts), words, _NULL, _NULL, 0)
        if rc != 0:
            raise _corrupt(rc)
        flags = _ZERO_VALUES[BOOL] * n
        lib.gw_block_bools_narrow(words, ffi.from_buffer(_U8, flags), n)
        return ts, flags
    raise _corrupt(lib.GW_ECORRUPT)   # the C reader validated the type: not reached


def _decode_strings(buf, size: int, ts: array, n: int) -> list[str]:
    info = ffi.new("gw_block_info *")
    rc = lib.gw_block_header_read(buf, size, info)
    if rc != 0:
        raise _corrupt(rc)
    sb = info.string_bytes
    strings = bytearray(sb)
    offsets = array("I", [0]) * (n + 1)
    rc = lib.gw_block_decode(buf, size, ffi.from_buffer(_I64, ts), _NULL,
                             ffi.from_buffer(strings) if sb else _NULL,
                             ffi.from_buffer(_U32, offsets), sb)
    if rc != 0:
        raise _corrupt(rc)
    raw = bytes(strings)
    return [raw[offsets[i]:offsets[i + 1]].decode("utf-8", "surrogateescape") for i in range(n)]
