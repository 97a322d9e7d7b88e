"""Result formats: a table printer for terminals, InfluxDB 2's annotated CSV, JSON lines.

Annotated CSV (docs/query.md has the details): every run of tables with the same columns,
types and group key shares one header block of ``#group``, ``#datatype`` and ``#default``
rows and a header row; blocks are separated by an empty line; the first column is the
annotation column (empty in data rows), then ``result`` and ``table``; times are RFC 3339 in
UTC; a null is an empty field; lines end with CRLF.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Iterable, Iterator

from gateway.query.executor import Result
from gateway.query.tables import Table, TimeColumn
from gateway.query.values import format_time, format_times

FORMATS = ("table", "csv", "json")
_DATATYPES = {"time": "dateTime:RFC3339", "float": "double", "int": "long", "uint": "unsignedLong",
              "bool": "boolean", "string": "string"}


def _text(value: Any, type_: str) -> str:
    if value is None:
        return ""
    if type_ == "time":
        return format_time(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value) if not value.is_integer() or abs(value) >= 1e16 else str(int(value))
    return str(value)


def _texts(t: Table, column: str, type_: str) -> list[str]:
    """:func:`_text` of each row's value of a column, a column at a time: a group key value is
    written once for all rows, times a day at a time (:func:`format_times`)."""
    if column in t.key:
        return [_text(t.key[column], type_)] * t.nrows
    col = t.data.get(column)
    if col is None:
        return [""] * t.nrows
    if type_ == "time":
        return format_times(col.ns if isinstance(col, TimeColumn) else col)
    return [_text(v, type_) for v in col]


def _text_rows(t: Table, types: list[str]) -> Iterable[tuple[str, ...]]:
    """Each row of a table as the texts of its columns."""
    if not t.columns:
        return (() for _ in range(t.nrows))
    return zip(*(_texts(t, c, ty) for c, ty in zip(t.columns, types)))


#: Annotation rows of annotated CSV, in the order they are written.
ANNOTATIONS = ("group", "datatype", "default")


def annotated_csv(results: Iterable[Result], *, header: bool = True,
                  annotations: Iterable[str] = ANNOTATIONS, delimiter: str = ",") -> Iterator[str]:
    """Yields the annotated CSV text, a block at a time. ``header``, ``annotations`` (a subset of
    :data:`ANNOTATIONS`) and ``delimiter`` (one character) are those of InfluxDB's dialect."""
    wanted = set(annotations)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n", delimiter=delimiter)
    first_block = True
    for result in results:
        schema = None
        for table_id, t in enumerate(result.tables):
            this = (tuple(t.columns), tuple(t.types.get(c, "string") for c in t.columns),
                    tuple(c in t.key for c in t.columns))
            if this != schema:
                schema = this
                if not first_block:
                    buf.write("\r\n")
                first_block = False
                if "group" in wanted:
                    writer.writerow(["#group", "false", "false", *("true" if k else "false" for k in this[2])])
                if "datatype" in wanted:
                    writer.writerow(["#datatype", "string", "long", *(_DATATYPES.get(ty, "string") for ty in this[1])])
                if "default" in wanted:
                    writer.writerow(["#default", result.name, "", *([""] * len(t.columns))])
                if header:
                    writer.writerow(["", "result", "table", *t.columns])
            types = [t.types.get(c, "string") for c in t.columns]
            # Without a #default row each data row names its result itself, as InfluxDB does.
            name = "" if "default" in wanted else result.name
            writer.writerows(("", name, table_id, *row) for row in _text_rows(t, types))
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if not first_block:
        yield "\r\n"


#: json.dumps(..., ensure_ascii=False) made an encoder for every row
_JSON = json.JSONEncoder(ensure_ascii=False)


def json_lines(results: Iterable[Result]) -> Iterator[str]:
    """One JSON object per row: result, table and every column (times as RFC 3339; NaN and
    infinities, which JSON lacks, as null)."""
    for result in results:
        for table_id, t in enumerate(result.tables):
            columns = [_json_values(t, c) for c in t.columns]
            lines = []
            for values in (zip(*columns) if columns else (() for _ in range(t.nrows))):
                row = {"result": result.name, "table": table_id}
                row.update(zip(t.columns, values))
                lines.append(_JSON.encode(row) + "\n")
            yield "".join(lines)


def _json_values(t: Table, column: str) -> list:
    """Each row's value of a column as JSON writes it: times as RFC 3339, NaN and infinities
    as null (JSON has neither)."""
    if t.types.get(column) == "time":
        if column in t.key:
            value = t.key[column]
            return [None if value is None else format_time(value)] * t.nrows
        col = t.data.get(column)
        if col is None:
            return [None] * t.nrows
        return [None if v is None else text for v, text in
                zip(col, format_times(col.ns if isinstance(col, TimeColumn) else col))]
    values = [t.key[column]] * t.nrows if column in t.key else t.data.get(column, [None] * t.nrows)
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def table_text(results: Iterable[Result]) -> Iterator[str]:
    """Each table under a line naming its result and group key, columns aligned."""
    for result in results:
        for table_id, t in enumerate(result.tables):
            key = ", ".join(f"{k}={_text(v, t.types.get(k, 'string'))}" for k, v in t.key.items())
            cols = [c for c in t.columns]
            rows = list(_text_rows(t, [t.types.get(c, "string") for c in cols]))
            heads = [f"{c}:{t.types.get(c, 'string')}" for c in cols]
            widths = [max([len(h)] + [len(r[j]) for r in rows]) for j, h in enumerate(heads)]
            out = [f"Result: {result.name}  Table {table_id}: {key}\n"]
            out.append("  ".join(h.rjust(w) for h, w in zip(heads, widths)).rstrip() + "\n")
            out.append("  ".join("-" * w for w in widths) + "\n")
            for r in rows:
                out.append("  ".join(v.rjust(w) for v, w in zip(r, widths)).rstrip() + "\n")
            out.append("\n")
            yield "".join(out)


def render(results: list[Result], fmt: str) -> Iterator[str]:
    if fmt == "csv":
        return annotated_csv(results)
    if fmt == "json":
        return json_lines(results)
    if fmt == "table":
        return table_text(results)
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


__all__ = ["ANNOTATIONS", "FORMATS", "annotated_csv", "json_lines", "table_text", "render", "Table"]
