"""The one error a Flux program can raise: :class:`FluxError`, with the position it concerns.

Flux text is untrusted input, so every failure, from the lexer to the executor, ends in a
FluxError naming line and column and showing the source line with a caret under the column.
"""

from __future__ import annotations

from gateway.errors import GatewayError


class FluxError(GatewayError, ValueError):
    """A Flux program that cannot be parsed or run. ``line`` and ``column`` are 1-based (0 when
    the problem has no place in the text, e.g. a run-time limit)."""

    def __init__(self, message: str, line: int = 0, column: int = 0, source: str | None = None):
        self.message = message
        self.line = line
        self.column = column
        self.source_line = None
        if source is not None and line > 0:
            lines = source.split("\n")
            if line <= len(lines):
                self.source_line = lines[line - 1].rstrip("\r")
        super().__init__(self.render())

    def render(self) -> str:
        if not self.line:
            return self.message
        text = f"{self.message} (line {self.line}, column {self.column})"
        if self.source_line is not None:
            shown = self.source_line.expandtabs(1)
            text += f"\n  {shown}\n  {' ' * (self.column - 1)}^"
        return text

    def with_source(self, source: str) -> "FluxError":
        """The same error, showing the source line (errors are raised before the text is known
        in some places, e.g. by functions that only see positions)."""
        if self.source_line is not None or not self.line:
            return self
        return FluxError(self.message, self.line, self.column, source)


class Position(tuple):
    """(line, column) of a token, 1-based."""

    __slots__ = ()

    def __new__(cls, line: int, column: int):
        return tuple.__new__(cls, (line, column))

    @property
    def line(self) -> int:
        return self[0]

    @property
    def column(self) -> int:
        return self[1]


def fail(message: str, pos: tuple | None = None):
    """Raises a FluxError at ``pos`` (a Position or None)."""
    if pos is None:
        raise FluxError(message)
    raise FluxError(message, pos[0], pos[1])
