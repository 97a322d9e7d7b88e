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
from gateway.query.tables import Table
from gateway.query.values import format_time

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
            for i in range(t.nrows):
                writer.writerow(["", name, table_id, *(_text(t.value(c, i), ty)
                                                     for c, ty in zip(t.columns, types))])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if not first_block:
        yield "\r\n"


def json_lines(results: Iterable[Result]) -> Iterator[str]:
    """One JSON object per row: result, table and every column (times as RFC 3339; NaN and
    infinities, which JSON lacks, as null)."""
    for result in results:
        for table_id, t in enumerate(result.tables):
            lines = []
            for i in range(t.nrows):
                row = {"result": result.name, "table": table_id}
                for c in t.columns:
                    v = t.value(c, i)
                    if t.types.get(c) == "time" and v is not None:
                        v = format_time(v)
                    elif isinstance(v, float) and not math.isfinite(v):
                        v = None
                    row[c] = v
                lines.append(json.dumps(row, ensure_ascii=False) + "\n")
            yield "".join(lines)


def table_text(results: Iterable[Result]) -> Iterator[str]:
    """Each table under a line naming its result and group key, columns aligned."""
    for result in results:
        for table_id, t in enumerate(result.tables):
            key = ", ".join(f"{k}={_text(v, t.types.get(k, 'string'))}" for k, v in t.key.items())
            cols = [c for c in t.columns]
            rows = [[_text(t.value(c, i), t.types.get(c, "string")) for c in cols]
                    for i in range(t.nrows)]
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
