"""InfluxDB line protocol: escaping, series keys, parsing and serialization.

Escaping follows the published spec: measurement names escape comma and space; tag keys, tag
values and field keys escape comma, equals sign and space; string field values escape double
quote and backslash. A backslash in a name is written as two backslashes (the spec reads two
contiguous backslashes as one), so every name round-trips. Newlines cannot appear in names.
"""

from __future__ import annotations

from typing import Mapping

_MEASUREMENT_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", " ": "\\ "})
_KEY_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\=", " ": "\\ "})


def _check_name(what: str, name: str) -> None:
    if not name:
        raise ValueError(f"{what} is empty")
    if "\n" in name or "\r" in name:
        raise ValueError(f"{what} {name!r} contains a newline")


def escape_measurement(name: str) -> str:
    _check_name("measurement", name)
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(name: str, what: str = "name") -> str:
    """Escapes a tag key, tag value or field key."""
    _check_name(what, name)
    return name.translate(_KEY_ESCAPES)


def series_key(measurement: str, tags: Mapping[str, str], field: str) -> str:
    """The canonical series key: ``measurement[,tag=value]... field``, tags sorted by key bytes."""
    parts = [escape_measurement(measurement)]
    for k in sorted(tags, key=lambda t: t.encode()):
        v = tags[k]
        if v == "":
            continue  # an empty tag value is the same as no tag (as in InfluxDB)
        parts.append(f"{escape_key(k, 'tag key')}={escape_key(v, 'tag value')}")
    return ",".join(parts) + " " + escape_key(field, "field key")


def _split_unescaped(text: str, seps: str) -> list[tuple[str, str]]:
    """Splits at unescaped separators; returns (unescaped piece, separator that ended it)."""
    out, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 2
            continue
        if c in seps:
            out.append(("".join(cur), c))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append(("".join(cur), ""))
    return out


def split_series_key(key: str) -> tuple[str, dict[str, str], str]:
    """Inverse of :func:`series_key`: ``(measurement, tags, field)``."""
    pieces = _split_unescaped(key, ", =")
    measurement, sep = pieces[0]
    tags: dict[str, str] = {}
    i = 1
    while sep == ",":
        k, sep_k = pieces[i]
        v, sep = pieces[i + 1]
        if sep_k != "=":
            raise ValueError(f"malformed series key {key!r}")
        tags[k] = v
        i += 2
    if sep != " " or i != len(pieces) - 1:
        raise ValueError(f"malformed series key {key!r}")
    return measurement, tags, pieces[i][0]
