"""The 2017 chained query form, translated to the Flux syntax tree it means.

    select(db:"foo").where(exp:{"_measurement"=="cpu" AND "service"=="app"}).range(start:-12h)
        .window(every:10m).max()

is ``from(bucket:"foo") |> filter(fn: (r) => r._measurement == "cpu" and r.service == "app")
|> range(start:-12h) |> window(every:10m) |> max()``. Inside ``exp:{...}`` a string on either
side of a comparison whose other side is a literal names a column (``r["..."]``), and
``AND``/``OR``/``NOT`` are ``and``/``or``/``not``. ``select(db:)`` is ``from(bucket:)``;
``group(by:)`` is ``group(columns:)``; every other call keeps its name and arguments.
"""

from __future__ import annotations

import re

from gateway.query import ast
from gateway.query.errors import FluxError, fail
from gateway.query.parser import Parser

_LEGACY_START = re.compile(r"\s*(?://[^\n]*\n\s*)*select\s*\(")
_RENAMED_ARGS = {"select": {"db": "bucket"}, "group": {"by": "columns"}}


def is_legacy(source: str) -> bool:
    return bool(_LEGACY_START.match(source))


def parse_legacy(source: str) -> ast.Program:
    try:
        parser = Parser(source, legacy=True)
        program = parser.program()
        if program.imports or len(program.body) != 1 or not isinstance(
                program.body[0], ast.ExpressionStatement):
            fail("a chained (select ...) query is a single expression", program.body[-1].pos)
        stmt = program.body[0]
        return ast.Program([], [ast.ExpressionStatement(_chain(stmt.expression), stmt.pos)],
                           program.pos)
    except FluxError as e:
        raise e.with_source(source) from None


def _chain(node: ast.Node) -> ast.Node:
    calls: list[ast.Call] = []
    while True:
        if not isinstance(node, ast.Call):
            fail("a chained query is a chain of calls: select(...).name(...)...", node.pos)
        callee = node.callee
        if isinstance(callee, ast.Member):
            calls.append(node)
            node = callee.object
            continue
        if not (isinstance(callee, ast.Identifier) and callee.name == "select"):
            fail("a chained query starts with select(db: ...)", node.pos)
        calls.append(node)
        break
    calls.reverse()
    first = calls[0]
    result: ast.Node = ast.Call(ast.Identifier("from", first.callee.pos),
                                _arguments("select", first.arguments), first.pos)
    for call in calls[1:]:
        name = call.callee.property
        if name == "where":
            result = ast.Pipe(result, _where(call), call.pos)
        else:
            result = ast.Pipe(result, ast.Call(ast.Identifier(name, call.callee.pos),
                                               _arguments(name, call.arguments), call.pos), call.pos)
    return result


def _arguments(name: str, args: list[ast.Property]) -> list[ast.Property]:
    renames = _RENAMED_ARGS.get(name, {})
    out = []
    for a in args:
        if isinstance(a.value, ast.Unary) and a.value.operator == "predicate":
            fail("an {expression} argument is only allowed in where(exp: ...)", a.pos)
        out.append(ast.Property(renames.get(a.key, a.key), a.value, a.pos))
    return out


def _where(call: ast.Call) -> ast.Call:
    if len(call.arguments) != 1 or call.arguments[0].key != "exp":
        fail("where() takes one argument, exp: {expression}", call.pos)
    value = call.arguments[0].value
    if not (isinstance(value, ast.Unary) and value.operator == "predicate"):
        fail("where(exp:) takes an expression in braces: exp: {...}", value.pos)
    body = _columns(value.operand)
    fn = ast.Function([ast.Parameter("r", pos=value.pos)], body, value.pos)
    return ast.Call(ast.Identifier("filter", call.callee.pos), [ast.Property("fn", fn, call.pos)],
                    call.pos)


def _columns(node: ast.Node) -> ast.Node:
    """Strings that name columns become r.<column>."""
    if isinstance(node, ast.Binary):
        if node.operator in ("and", "or"):
            return ast.Binary(node.operator, _columns(node.left), _columns(node.right), node.pos)
        left, right = node.left, node.right
        if _is_string(left) and not _is_string(right):
            left = _column(left)
        elif _is_string(left) and _is_string(right):
            left = _column(left)   # "tag" == "value": the left one names the column
        elif _is_string(right) and not _is_string(left):
            right = _column(right)
        return ast.Binary(node.operator, left, right, node.pos)
    if isinstance(node, ast.Unary) and node.operator == "not":
        return ast.Unary("not", _columns(node.operand), node.pos)
    fail("where(exp:) expects comparisons joined by AND, OR and NOT", node.pos)


def _is_string(node: ast.Node) -> bool:
    return isinstance(node, ast.Literal) and node.kind == "string"


def _column(node: ast.Literal) -> ast.Member:
    return ast.Member(ast.Identifier("r", node.pos), node.value, node.pos)
