"""The operations a stream of tables is built from, and the plan that runs them.

Each function of the language appends one operation to a :class:`~gateway.query.values.Stream`.
:func:`plan` turns the operations into a :class:`Plan`: ``from`` with the leading ``range``
and ``filter`` calls pushed into the read (they commute, so their order does not matter): the
parts of a filter that test only series-key columns (measurement, field, tags) select series
from the catalogue; the rest test each point. The operations after them run on the tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.query import ast
from gateway.query.errors import fail
from gateway.query.values import Closure

#: Columns that vary within a series; a filter testing them tests each point.
ROW_COLUMNS = frozenset({"_time", "_value"})
AGGREGATES = ("mean", "sum", "count", "median", "spread", "stddev")
SELECTORS = ("min", "max", "first", "last")
WINDOW_FUNCTIONS = AGGREGATES + SELECTORS


@dataclass
class Operation:
    """Position of the call that made the operation: errors while running it point there."""
    pos: Any = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass
class From(Operation):
    bucket: str


@dataclass
class Range(Operation):
    start: int
    stop: int


@dataclass
class Filter(Operation):
    fn: Closure
    on_empty: str = "drop"


@dataclass
class AggregateWindow(Operation):
    every: int
    period: int
    offset: int
    fn: str
    method: str = "estimate_tdigest"
    column: str = "_value"
    time_src: str = "_stop"
    time_dst: str = "_time"
    create_empty: bool = True


@dataclass
class Window(Operation):
    every: int
    period: int
    offset: int
    create_empty: bool = False


@dataclass
class Aggregate(Operation):
    fn: str
    column: str = "_value"
    method: str = "estimate_tdigest"
    mode: str = "sample"


@dataclass
class Group(Operation):
    columns: tuple
    mode: str = "by"


@dataclass
class Keep(Operation):
    columns: tuple


@dataclass
class Drop(Operation):
    columns: tuple


@dataclass
class Rename(Operation):
    pairs: tuple


@dataclass
class Map(Operation):
    fn: Closure


@dataclass
class Limit(Operation):
    n: int
    offset: int = 0


@dataclass
class Sort(Operation):
    columns: tuple
    desc: bool = False


@dataclass
class Yield(Operation):
    name: str


@dataclass
class To(Operation):
    bucket: str


@dataclass
class Plan:
    bucket: str
    start: int
    stop: int
    series_filters: list = field(default_factory=list)   # closures on series-key columns
    row_filters: list = field(default_factory=list)      # closures on every point
    ops: list = field(default_factory=list)
    result: str = "_result"
    pos: Any = field(default=None, compare=False, repr=False)


def plan(ops: tuple, pos=None) -> Plan:
    if not ops or not isinstance(ops[0], From):
        fail("a stream of tables starts with from(bucket: ...)", pos)
    bucket = ops[0].bucket
    start = stop = None
    series_filters, row_filters = [], []
    i = 1
    while i < len(ops) and isinstance(ops[i], (Range, Filter)):
        op = ops[i]
        if isinstance(op, Range):
            start = op.start if start is None else max(start, op.start)
            stop = op.stop if stop is None else min(stop, op.stop)
        elif op.on_empty != "drop":
            break
        else:
            (series_filters if key_only(op.fn) else row_filters).append(op.fn)
        i += 1
    if start is None:
        fail("from() must be followed by range(start: ...): an unbounded read is refused", pos)
    rest = list(ops[i:])
    if any(isinstance(op, (From, Range)) for op in rest):
        fail("range() must come right after from() and filter()", pos)
    result = "_result"
    if rest and isinstance(rest[-1], Yield):
        result = rest.pop().name
    if any(isinstance(op, Yield) for op in rest):
        fail("yield() must be the last call of a stream", pos)
    return Plan(bucket, start, max(start, stop), series_filters, row_filters, rest, result,
                ops[0].pos or pos)


def key_only(fn: Closure) -> bool:
    """Whether ``(r) => ...`` reads only r.<column> members outside :data:`ROW_COLUMNS`."""
    params = fn.node.parameters
    if len(params) != 1:
        return False
    name = params[0].name
    return _key_only(fn.node.body, name)


def key_columns(fn: Closure) -> frozenset[str]:
    """The columns that a :func:`key_only` filter reads (``_value`` only in a type test, so
    only its type matters): the filter's result depends on nothing else of a series."""
    name = fn.node.parameters[0].name
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, ast.Member) and isinstance(node.object, ast.Identifier) \
                and node.object.name == name:
            found.add(node.property)
            return
        for value in vars(node).values():
            if isinstance(value, ast.Node):
                walk(value)
            elif isinstance(value, list):
                for v in value:
                    if isinstance(v, ast.Node):
                        walk(v)

    walk(fn.node.body)
    return frozenset(found)


#: Columns of a series' record that an equality with a string can select series by.
_NOT_KEY_TEXT = frozenset({"_start", "_stop", "_time", "_value"})


def key_equalities(fn: Closure) -> tuple[dict[str, str], bool] | None:
    """The ``r.<column> == "text"`` tests (measurement, field, tags) that a :func:`key_only`
    filter joins with ``and``: ({column: text}, whether they are the whole filter), or None
    when two of them ask one column for different texts (no series passes). The catalogue
    answers them from the series keys; the rest of the filter is tested on the series found."""
    name = fn.node.parameters[0].name
    found: dict[str, str] = {}
    whole = True

    def column_text(node) -> tuple[str, str] | None:
        if not (isinstance(node, ast.Binary) and node.operator == "=="):
            return None
        for member, text in ((node.left, node.right), (node.right, node.left)):
            if isinstance(member, ast.Member) and isinstance(member.object, ast.Identifier) \
                    and member.object.name == name and member.property not in _NOT_KEY_TEXT \
                    and isinstance(text, ast.Literal) and text.kind == "string":
                return member.property, text.value
        return None

    pending = [fn.node.body]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Binary) and node.operator == "and":
            pending += [node.right, node.left]
            continue
        got = column_text(node)
        if got is None:
            whole = False
        elif found.setdefault(*got) != got[1]:
            return None
    return found, whole


def _key_only(node, name: str) -> bool:
    if _is_type_test(node, name):
        return True   # a series has one value type
    if isinstance(node, ast.Member) and isinstance(node.object, ast.Identifier) \
            and node.object.name == name:
        return node.property not in ROW_COLUMNS
    if isinstance(node, ast.Identifier):
        return node.name != name
    if isinstance(node, ast.Function):
        return False   # a nested function could capture r; test each point
    children = []
    for value in vars(node).values():
        if isinstance(value, ast.Node):
            children.append(value)
        elif isinstance(value, list):
            children.extend(v for v in value if isinstance(v, ast.Node))
    return all(_key_only(c, name) for c in children)


def _is_type_test(node, name: str) -> bool:
    """``types.isNumeric(v: r._value)``."""
    return (isinstance(node, ast.Call) and isinstance(node.callee, ast.Member)
            and node.callee.property == "isNumeric" and len(node.arguments) == 1
            and isinstance(node.arguments[0].value, ast.Member)
            and node.arguments[0].value.property == "_value"
            and isinstance(node.arguments[0].value.object, ast.Identifier)
            and node.arguments[0].value.object.name == name)
