"""Tokens of the Flux subset (see docs/query.md for the grammar).

A regex literal and the division operator both start with ``/``; as in Flux, ``/`` starts a
regex wherever an operand is expected (after an operator, ``(``, ``,``, ``:`` or at the start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.query.errors import Position, fail

#: Longest program accepted, in characters (queries arrive over HTTP).
MAX_SOURCE = 256 * 1024
#: Longest regex literal accepted: a regex is compiled, and its size bounds the work.
MAX_REGEX = 1024

KEYWORDS = {"and", "or", "not", "import", "option", "return", "exists"}
# Longest first, so that "|>" wins over "|" and "<=" over "<".
OPERATORS = ("|>", "=>", "==", "!=", "<=", ">=", "=~", "!~", "+", "-", "*", "/", "%", "<", ">",
             "=", "(", ")", "[", "]", "{", "}", ",", ":", ".")
DURATION_UNITS = ("ns", "us", "µs", "ms", "mo", "s", "m", "h", "d", "w", "y")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"(?:[0-9]+(?:ns|us|µs|ms|mo|s|m|h|d|w|y))+")
_DURATION_PART = re.compile(r"([0-9]+)(ns|us|µs|ms|mo|s|m|h|d|w|y)")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
                   r"(?:Z|[+-][0-9]{2}:[0-9]{2}))?")
_FLOAT = re.compile(r"[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?")
_INT = re.compile(r"[0-9]+")
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"[ \t\r\n]+")
# one match tries the operators in their order (longest first), not one call each
_OPERATOR = re.compile("|".join(map(re.escape, OPERATORS)))
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$"}
# After these, an operand is complete, so "/" divides.
_OPERAND_END = {"IDENT", "INT", "FLOAT", "STRING", "DURATION", "TIME", "REGEX", ")", "]", "}"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str     # IDENT, INT, FLOAT, STRING, DURATION, TIME, REGEX, EOF, a keyword or an operator
    text: str     # the value: identifier, decoded string, regex body, literal text
    pos: Position


def tokenize(source: str) -> list[Token]:
    """The tokens of ``source`` followed by one EOF token; raises FluxError."""
    if not isinstance(source, str):
        fail("a Flux program must be text")
    if len(source) > MAX_SOURCE:
        fail(f"the program is {len(source)} characters long; at most {MAX_SOURCE} are accepted")
    tokens: list[Token] = []
    i, line, line_start, n = 0, 1, 0, len(source)
    while True:
        # whitespace and comments
        while i < n:
            m = _SPACE.match(source, i)
            if m:
                chunk = m.group()
                nl = chunk.count("\n")
                if nl:
                    line += nl
                    line_start = i + chunk.rfind("\n") + 1
                i = m.end()
                continue
            if source.startswith("//", i):
                end = source.find("\n", i)
                i = n if end < 0 else end
                continue
            break
        pos = Position(line, i - line_start + 1)
        if i >= n:
            tokens.append(Token("EOF", "", pos))
            return tokens
        c = source[i]
        prev = tokens[-1].kind if tokens else None
        if "0" <= c <= "9":   # not str.isdigit(): that takes other scripts' digits too
            for kind, pattern in (("TIME", _TIME), ("DURATION", _DURATION), ("FLOAT", _FLOAT),
                                  ("INT", _INT)):
                m = pattern.match(source, i)
                if m:
                    end = m.end()
                    if end < n and (source[end].isalnum() or source[end] == "_"):
                        word = _WORD.match(source, i).group()
                        fail(f"invalid number or duration {word[:40]!r}", pos)
                    tokens.append(Token(kind, m.group(), pos))
                    i = end
                    break
            continue
        if c.isalpha() or c == "_":
            m = _IDENT.match(source, i)
            if m is None:
                fail(f"unexpected character {c!r}", pos)
            word = m.group()
            tokens.append(Token(word if word in KEYWORDS else "IDENT", word, pos))
            i = m.end()
            continue
        if c == '"':
            text, i, line, line_start = _string(source, i, pos, line, line_start)
            tokens.append(Token("STRING", text, pos))
            continue
        if c == "/" and prev not in _OPERAND_END:
            body, i = _regex(source, i, pos)
            tokens.append(Token("REGEX", body, pos))
            continue
        m = _OPERATOR.match(source, i)
        if m is None:
            fail(f"unexpected character {c!r}", pos)
        op = m.group()
        tokens.append(Token(op, op, pos))
        i += len(op)


def _string(source: str, i: int, pos: Position, line: int, line_start: int):
    out = []
    j, n = i + 1, len(source)
    while j < n:
        c = source[j]
        if c == '"':
            return "".join(out), j + 1, line, line_start
        if c == "\\":
            if j + 1 >= n:
                break
            e = source[j + 1]
            if e not in _ESCAPES:
                fail(f"invalid escape sequence '\\{e}' in string",
                     Position(line, j - line_start + 1))
            out.append(_ESCAPES[e])
            j += 2
            continue
        if c == "$" and source.startswith("${", j):
            fail("string interpolation (${...}) is not supported", Position(line, j - line_start + 1))
        if c == "\n":
            line += 1
            line_start = j + 1
        out.append(c)
        j += 1
    fail("string is not terminated", pos)


def _regex(source: str, i: int, pos: Position):
    out = []
    j, n = i + 1, len(source)
    while j < n and source[j] != "\n":
        c = source[j]
        if c == "/":
            if not out:
                fail("empty regular expression", pos)
            if len(out) > MAX_REGEX:
                fail(f"regular expression longer than {MAX_REGEX} characters", pos)
            return "".join(out), j + 1
        if c == "\\" and j + 1 < n and source[j + 1] == "/":
            out.append("/")
            j += 2
            continue
        out.append(c)
        j += 1
    fail("regular expression is not terminated", pos)


def duration_parts(text: str) -> list[tuple[int, str]]:
    """``"1h30m"`` -> ``[(1, "h"), (30, "m")]``."""
    return [(int(a), u) for a, u in _DURATION_PART.findall(text)]
