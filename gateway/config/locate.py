"""Maps key paths of a TOML document to the line that defines them, for error messages.

tomllib gives no positions, so this scans the text for table headers (``[a.b]``, ``[[a.b]]``,
counting array-of-tables entries) and ``key = value`` lines (dotted keys included). Keys inside
inline tables and multi-line values resolve to the line where their enclosing key starts.
"""

from __future__ import annotations

import re

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})(?:\s*\.\s*(?:{_BARE}|{_QUOTED}))*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEY})\s*\]\]?")
_ASSIGN = re.compile(rf"^\s*({_KEY})\s*=")
_PART = re.compile(rf"{_BARE}|{_QUOTED}")


def _parts(key: str) -> list[str]:
    out = []
    for m in _PART.finditer(key):
        p = m.group(0)
        if p[0] in "\"'":
            p = p[1:-1]
        out.append(p)
    return out


def key_lines(text: str) -> dict[str, int]:
    """``{"readers.mqtt[0].topics": 12, ...}``: the 1-based line of each key path found."""
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    prefix: list[str] = []
    in_multiline = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        m = _HEADER.match(line)
        if m:
            parts = _parts(m.group(2))
            path = _join(parts)
            if m.group(1) == "[[":
                idx = counts.get(path, 0)
                counts[path] = idx + 1
                path = f"{path}[{idx}]"
                prefix = [path]
            else:
                prefix = [_resolve(parts, counts)]
            lines.setdefault(prefix[0], lineno)
            continue
        m = _ASSIGN.match(line)
        if m:
            path = ".".join([p for p in prefix if p] + [_join(_parts(m.group(1)))])
            lines.setdefault(path, lineno)
            rest = line[m.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
    return lines


def _join(parts: list[str]) -> str:
    return ".".join(parts)


def _resolve(parts: list[str], counts: dict[str, int]) -> str:
    """``[a.b.c]`` inside the latest ``[[a.b]]`` entry resolves to ``a.b[N].c``."""
    out: list[str] = []
    for p in parts:
        out.append(p)
        joined = ".".join(out)
        if joined in counts:
            out = [f"{joined}[{counts[joined] - 1}]"]
    return ".".join(out)


def line_of(lines: dict[str, int], path: str) -> int | None:
    """The line of ``path`` or of its nearest enclosing key that has one."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None
