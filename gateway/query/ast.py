"""Syntax tree of the Flux subset. Positions never take part in equality, so two spellings of
one program (the 2017 chained form and its Flux form) compare equal node for node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.query.errors import Position


def _pos() -> Any:
    return field(default=None, compare=False, repr=False)


@dataclass
class Node:
    pass


@dataclass
class Identifier(Node):
    name: str
    pos: Position = _pos()


@dataclass
class Literal(Node):
    """kind: int float string bool duration time regex; value: the parsed value."""
    kind: str
    value: Any
    pos: Position = _pos()


@dataclass
class Property(Node):
    key: str
    value: Node
    pos: Position = _pos()


@dataclass
class Record(Node):
    properties: list[Property]
    with_: Node | None = None
    pos: Position = _pos()


@dataclass
class Array(Node):
    elements: list[Node]
    pos: Position = _pos()


@dataclass
class Member(Node):
    object: Node
    property: str
    pos: Position = _pos()


@dataclass
class Index(Node):
    object: Node
    index: Node
    pos: Position = _pos()


@dataclass
class Call(Node):
    callee: Node
    arguments: list[Property]
    pos: Position = _pos()


@dataclass
class Pipe(Node):
    argument: Node
    call: Call
    pos: Position = _pos()


@dataclass
class Parameter(Node):
    name: str
    default: Node | None = None
    pipe: bool = False     # the ``<-`` parameter (tables=<-)
    pos: Position = _pos()


@dataclass
class Function(Node):
    parameters: list[Parameter]
    body: Node
    pos: Position = _pos()


@dataclass
class Binary(Node):
    """Arithmetic, comparison (``==`` ... ``!~``) and logical (``and``/``or``) operators."""
    operator: str
    left: Node
    right: Node
    pos: Position = _pos()


@dataclass
class Unary(Node):
    operator: str    # "-", "not", "exists"
    operand: Node
    pos: Position = _pos()


@dataclass
class Import(Node):
    path: str
    alias: str | None = None
    pos: Position = _pos()


@dataclass
class Option(Node):
    name: str
    value: Node
    pos: Position = _pos()


@dataclass
class Assignment(Node):
    name: str
    value: Node
    pos: Position = _pos()


@dataclass
class ExpressionStatement(Node):
    expression: Node
    pos: Position = _pos()


@dataclass
class Program(Node):
    imports: list[Import]
    body: list[Node]
    pos: Position = _pos()
