"""The data model: value types and series keys, shared by batches, the store, the codec and
line protocol.

A point has a series key, a time (int64 nanoseconds since the epoch) and one value of five
types (InfluxDB's): float (IEEE 754 double), integer (int64), unsigned (uint64), boolean and
string. The type codes are those of the C core (``gw_common.h``), which stores them in blocks,
batches and the WAL; a series keeps the type of its first point.

The series key is the canonical text of a series in line protocol escaping:
``measurement[,tagkey=tagvalue]... fieldkey``, tags sorted by key bytes, one unescaped space
before the field key (``docs/format/line-protocol.md`` has the escaping rules; the parser in
``native/src/lineproto.c`` builds the same keys). Two points are in the same series exactly when
their keys are byte-equal.
"""

from __future__ import annotations

from typing import Mapping

from gateway._native import lib

FLOAT, INT, UINT, BOOL, STRING = lib.GW_FLOAT, lib.GW_INT, lib.GW_UINT, lib.GW_BOOL, lib.GW_STRING
#: The names InfluxDB gives the types (in errors, ``fields()`` and the status page).
TYPE_NAMES = {FLOAT: "float", INT: "integer", UINT: "unsigned", BOOL: "boolean", STRING: "string"}
#: array.array typecodes of decoded value columns (bool: one byte 0/1 per point).
COLUMN_TYPECODES = {FLOAT: "d", INT: "q", UINT: "Q", BOOL: "B"}
#: array.array typecodes of the 64-bit value words the C core takes (bool: 0/1 in a word).
WORD_TYPECODES = {FLOAT: "d", INT: "q", UINT: "Q", BOOL: "Q"}

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
#: Times are int64 nanoseconds: 1677-09-21T00:12:43Z to 2262-04-11T23:47:16Z.
MIN_TIME_NS, MAX_TIME_NS = INT64_MIN, INT64_MAX


class UInt(int):
    """Marks a Python int as an unsigned field value (line protocol ``u``)."""


def type_name(code: int) -> str:
    return TYPE_NAMES.get(code, f"type {code}")


# ---- series keys ---------------------------------------------------------------------------

# The characters each kind of name escapes, as InfluxDB's parser reads them: a backslash
# before any other character, a backslash included, is itself.
_MEASUREMENT_SPECIAL = ", "
_TAG_SPECIAL = ", ="
_FIELD_SPECIAL = ', ="'
_MEASUREMENT_ESCAPES = str.maketrans({c: "\\" + c for c in _MEASUREMENT_SPECIAL})
_TAG_ESCAPES = str.maketrans({c: "\\" + c for c in _TAG_SPECIAL})
_FIELD_ESCAPES = str.maketrans({c: "\\" + c for c in _FIELD_SPECIAL})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})
_CONTROL = frozenset(chr(c) for c in [*range(32), 127])


def _check_name(what: str, name: str) -> None:
    if not name:
        raise ValueError(f"{what} is empty")
    if not _CONTROL.isdisjoint(name):
        raise ValueError(f"{what} {name!r} contains a control character")
    if name.endswith("\\"):
        raise ValueError(f"{what} {name!r} ends in a backslash, which line protocol cannot write "
                         f"(it would escape the separator after the name)")


def escape_measurement(name: str) -> str:
    _check_name("measurement", name)
    if name.startswith("\ufeff"):
        # the parser skips a byte order mark at the start of its input
        raise ValueError(f"measurement {name!r} starts with U+FEFF, which reads as a byte "
                         f"order mark at the start of input")
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(name: str, what: str = "name") -> str:
    """Escapes a tag key or tag value."""
    _check_name(what, name)
    return name.translate(_TAG_ESCAPES)


def escape_field_key(name: str) -> str:
    _check_name("field key", name)
    return name.translate(_FIELD_ESCAPES)


def escape_string(value: str) -> str:
    """The body of a string field value (without its quotes)."""
    return value.translate(_STRING_ESCAPES)


def series_key(measurement: str, tags: Mapping[str, str], field: str) -> str:
    """The canonical series key: ``measurement[,tag=value]... field``, tags sorted by key bytes."""
    parts = [escape_measurement(measurement)]
    for k in sorted(tags, key=lambda t: t.encode()):
        v = tags[k]
        if v == "":
            continue  # an empty tag value is the same as no tag (as in InfluxDB)
        parts.append(f"{escape_key(k, 'tag key')}={escape_key(v, 'tag value')}")
    return ",".join(parts) + " " + escape_field_key(field)


def _scan_name(key: str, i: int, stops: str, escapable: str) -> tuple[str, int]:
    """Unescapes the name at key[i:] up to an unescaped stop character; returns (name, end)."""
    out = []
    n = len(key)
    while i < n:
        c = key[i]
        if c == "\\" and i + 1 < n and key[i + 1] in escapable:
            out.append(key[i + 1])
            i += 2
            continue
        if c in stops:
            break
        out.append(c)
        i += 1
    return "".join(out), i


def split_series_key(key: str, *, legacy: bool = False) -> tuple[str, dict[str, str], str]:
    """Inverse of :func:`series_key`: ``(measurement, tags, field)``. ``legacy`` reads a key
    written before InfluxDB's backslash rule, when a backslash in a name was written as two
    (stores keep such keys until they are migrated, see gateway.store.catalogue)."""
    extra = "\\" if legacy else ""
    field_special = _TAG_SPECIAL if legacy else _FIELD_SPECIAL
    measurement, i = _scan_name(key, 0, ", ", _MEASUREMENT_SPECIAL + extra)
    tags: dict[str, str] = {}
    while i < len(key) and key[i] == ",":
        k, i = _scan_name(key, i + 1, ", =", _TAG_SPECIAL + extra)
        if i >= len(key) or key[i] != "=":
            raise ValueError(f"malformed series key {key!r}")
        v, i = _scan_name(key, i + 1, ", =", _TAG_SPECIAL + extra)
        tags[k] = v
    if i >= len(key) or key[i] != " ":
        raise ValueError(f"malformed series key {key!r}")
    field, i = _scan_name(key, i + 1, ", =", field_special + extra)
    if i != len(key) or not measurement or not field:
        raise ValueError(f"malformed series key {key!r}")
    return measurement, tags, field
