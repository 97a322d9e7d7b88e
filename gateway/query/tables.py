"""Tables as Flux returns them: a group key (columns constant in the table, with their values)
and the other columns as sequences of equal length.

Column types use Flux's names: time, float, int, uint, bool, string. A value may be None
(null) in any column.
"""

from __future__ import annotations

import functools
from array import array
from typing import Any, Iterable, Iterator

from gateway.query.values import Time, type_name

#: Order of the well-known columns in output (InfluxDB's), the rest follow by name.
_LEADING = ("_start", "_stop", "_time", "_value", "_field", "_measurement")


def column_order(names: Iterable[str]) -> list[str]:
    return list(_column_order(tuple(names)))


@functools.lru_cache(maxsize=256)   # the tables of one result mostly share their columns
def _column_order(names: tuple[str, ...]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(names))
    lead = [c for c in _LEADING if c in unique]
    return tuple(lead + sorted(c for c in unique if c not in _LEADING))


_COLUMN_TYPES = {"bool": "bool", "time": "time", "int": "int", "float": "float",
                 "string": "string"}


def type_of(value: Any) -> str | None:
    """The column type of a value, or None (null, or a value no column holds)."""
    return None if value is None else _COLUMN_TYPES.get(type_name(value))


class TimeColumn:
    """A time column held as int64 nanoseconds (8 bytes a row instead of a Time object and its
    list slot); indexing and iteration give Time values, as a list of them would."""

    __slots__ = ("ns",)

    def __init__(self, ns: array) -> None:
        self.ns = ns

    def __len__(self) -> int:
        return len(self.ns)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return TimeColumn(self.ns[i])
        return Time(self.ns[i])

    def __iter__(self) -> Iterator[Time]:
        return map(Time, self.ns)


class NullableColumn:
    """A column of numbers held in an array (8 bytes a row) and a byte a row saying whether the
    row holds a value; indexing and iteration give the value, or None for a null, as a list of
    them would (createEmpty windows without a point)."""

    __slots__ = ("values", "present")

    def __init__(self, values: array, present: bytearray) -> None:
        if len(values) != len(present):
            raise ValueError(f"{len(values)} values but {len(present)} presence flags")
        self.values = values
        self.present = present

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return NullableColumn(self.values[i], self.present[i])
        return self.values[i] if self.present[i] else None

    def __iter__(self) -> Iterator[Any]:
        return (v if p else None for v, p in zip(self.values, self.present))


_TYPECODES = {"float": "d", "int": "q", "uint": "Q"}


def compact_column(values: list, type_: str):
    """A column of ``type_`` (a Flux type) held compactly: numbers as an array (8 bytes a row),
    with a presence byte a row when some are null; other types (and numbers an array cannot
    hold) as the list itself."""
    code = _TYPECODES.get(type_)
    if code is None:
        return values
    present = bytearray(v is not None for v in values)
    try:
        if present.count(0) == 0:
            return array(code, values)
        return NullableColumn(array(code, (0 if v is None else v for v in values)), present)
    except (TypeError, OverflowError):
        return values


class Table:
    """``key``: {column: value} of the group key, in order; ``data``: {column: sequence};
    ``columns``: every column in output order; ``types``: {column: type}."""

    __slots__ = ("key", "data", "columns", "types", "nrows")

    def __init__(self, key: dict, data: dict, types: dict, nrows: int, columns: list | None = None):
        self.key = key
        self.data = data
        self.types = types
        self.nrows = nrows
        self.columns = columns if columns is not None else column_order([*key, *data])

    def value(self, column: str, i: int) -> Any:
        if column in self.key:
            return self.key[column]
        col = self.data.get(column)
        return None if col is None else col[i]

    def row(self, i: int) -> dict:
        out = dict(self.key)
        for name, col in self.data.items():
            out[name] = col[i]
        return out

    def rows(self) -> Iterable[dict]:
        for i in range(self.nrows):
            yield self.row(i)

    def key_tuple(self) -> tuple:
        return tuple((k, _sortable(v)) for k, v in self.key.items())

    @classmethod
    def from_rows(cls, key: dict, rows: list[dict], columns: list[str] | None = None,
                  types: dict | None = None) -> "Table":
        names = list(columns) if columns is not None else column_order(
            [*key, *(c for r in rows for c in r)])
        data = {c: [r.get(c) for r in rows] for c in names if c not in key}
        types = dict(types or {})
        for c in names:
            if types.get(c) is None:
                types[c] = _infer(key[c] if c in key else None, data.get(c, ()))
        return cls(dict(key), data, types, len(rows), names)


def _infer(const: Any, values) -> str:
    t = type_of(const)
    if t:
        return t
    for v in values:
        t = type_of(v)
        if t:
            return t
    return "string"


def _sortable(value: Any) -> tuple:
    """A total order over mixed values and nulls (nulls first)."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (2, value)
    return (3, str(value))


sortable = _sortable
