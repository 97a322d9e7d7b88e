"""Evaluation of Flux expressions and programs (a tree walker with bounded work).

Values are those of :mod:`gateway.query.values`. Every failure is a :class:`FluxError` at the
position of the node that failed. Work is bounded: a step budget, a wall-clock deadline and a
call depth (closures see the scope they were defined in, so there is no recursion).
"""

from __future__ import annotations

import calendar
import datetime
import time
from typing import Any

from gateway.query import ast
from gateway.query.errors import FluxError, fail
from gateway.query.values import Builtin, Closure, Duration, Stream, Time, type_name

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
#: Deepest chain of function calls (closures calling closures).
MAX_CALL_DEPTH = 32


class Limits:
    """Run-time bounds of one query (untrusted input)."""

    def __init__(self, seconds: float = 30.0, max_rows: int = 1_000_000, max_tables: int = 100_000):
        self.seconds = seconds
        self.max_rows = max_rows
        self.max_tables = max_tables
        self.deadline = time.monotonic() + seconds
        self._ticks = 0
        #: Why the query was stopped from outside (see :meth:`cancel`), or None.
        self.cancelled: str | None = None

    def cancel(self, why: str) -> None:
        """Ends the query at its next check (another thread may call this)."""
        self.cancelled = why

    def tick(self, n: int = 1) -> None:
        self._ticks += n
        if self._ticks >= 4096:
            self._ticks = 0
            self.check_time()

    def check_time(self) -> None:
        if self.cancelled is not None:
            raise FluxError(f"the query was stopped: {self.cancelled}")
        if time.monotonic() > self.deadline:
            raise FluxError(f"the query ran longer than its limit of {self.seconds:g} s")


def add_duration(t: int, d: Duration, pos=None) -> Time:
    """t + d, months by the calendar (the day of month is clamped, as Flux does)."""
    ns = int(t)
    if d.months:
        seconds, frac = divmod(ns, 10**9)
        try:
            dt = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
        except (OverflowError, ValueError, OSError):
            fail("time out of range", pos)
        month = dt.year * 12 + dt.month - 1 + d.months
        year, month = divmod(month, 12)
        if not 1 <= year <= 9999:
            fail("time out of range", pos)
        day = min(dt.day, calendar.monthrange(year, month + 1)[1])
        dt = dt.replace(year=year, month=month + 1, day=day)
        ns = calendar.timegm(dt.timetuple()) * 10**9 + frac
    ns += d.ns
    if not _I64_MIN <= ns <= _I64_MAX:
        fail("time out of range", pos)
    return Time(ns)


def _int(value: int, pos) -> int:
    if not _I64_MIN <= value <= _I64_MAX:
        fail("integer overflow", pos)
    return value


def arithmetic(op: str, a: Any, b: Any, pos) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, Time) and isinstance(b, Duration) and op in "+-":
        return add_duration(a, b if op == "+" else -b, pos)
    if isinstance(a, Duration) and isinstance(b, Duration) and op in "+-":
        return Duration(a.months + b.months, a.ns + b.ns) if op == "+" else \
            Duration(a.months - b.months, a.ns - b.ns)
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) \
            or not isinstance(b, (int, float)) or isinstance(a, Time) or isinstance(b, Time):
        fail(f"operator '{op}' does not apply to {type_name(a)} and {type_name(b)}", pos)
    if isinstance(a, int) and isinstance(b, int):
        if op == "+":
            return _int(a + b, pos)
        if op == "-":
            return _int(a - b, pos)
        if op == "*":
            return _int(a * b, pos)
        if b == 0:
            fail("division by zero", pos)
        q = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)   # truncated, as Go does
        return _int(q, pos) if op == "/" else _int(a - q * b, pos)
    a, b = float(a), float(b)
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0.0:
        fail("division by zero", pos)
    return a / b if op == "/" else __import__("math").fmod(a, b)


def compare(op: str, a: Any, b: Any, pos) -> Any:
    if op in ("=~", "!~"):
        if a is None:
            return None
        if not isinstance(a, str) or not hasattr(b, "search"):
            fail(f"operator '{op}' needs a string on the left and a regex on the right, got "
                 f"{type_name(a)} and {type_name(b)}", pos)
        found = b.search(a) is not None
        return found if op == "=~" else not found
    if a is None or b is None:
        return None
    numeric = (isinstance(a, (int, float)) and not isinstance(a, bool) and
               isinstance(b, (int, float)) and not isinstance(b, bool) and
               isinstance(a, Time) == isinstance(b, Time))
    if not numeric and type(a) is not type(b):
        fail(f"cannot compare {type_name(a)} with {type_name(b)}", pos)
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if not numeric and not isinstance(a, str):
        fail(f"operator '{op}' does not apply to {type_name(a)}", pos)
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


class Interpreter:
    def __init__(self, now: int, limits: Limits | None = None, globals_: dict | None = None):
        self.now = Time(now)
        self.limits = limits or Limits()
        self.globals = globals_ or {}
        self.depth = 0
        self.options: dict[str, Any] = {}

    # ------------------------------------------------------------------ programs

    def run(self, program: ast.Program, packages: dict[str, dict]) -> list[tuple[Any, Any]]:
        """Evaluates the statements; returns (statement node, value) of each expression
        statement, in order (the caller turns streams among them into results)."""
        scope = dict(self.globals)
        for imp in program.imports:
            if imp.path not in packages:
                fail(f"package {imp.path!r} is not available (available: "
                     f"{', '.join(sorted(packages))})", imp.pos)
            scope[imp.alias or imp.path.rsplit("/", 1)[-1]] = packages[imp.path]
        out = []
        for stmt in program.body:
            if isinstance(stmt, ast.Option):
                value = self.options[stmt.name] = self.eval(stmt.value, scope)
                if "." not in stmt.name:
                    scope[stmt.name] = value   # task.every and kin read it back
            elif isinstance(stmt, ast.Assignment):
                if stmt.name in scope and stmt.name not in self.globals:
                    fail(f"'{stmt.name}' is already defined", stmt.pos)
                scope[stmt.name] = self.eval(stmt.value, scope)
            else:
                out.append((stmt, self.eval(stmt.expression, scope)))
        return out

    # ------------------------------------------------------------------ expressions

    def eval(self, node: ast.Node, scope: dict) -> Any:
        self.limits.tick()
        kind = type(node)
        if kind is ast.Literal:
            return Time(node.value) if node.kind == "time" else node.value
        if kind is ast.Identifier:
            try:
                return scope[node.name]
            except KeyError:
                fail(f"undefined identifier '{node.name}'", node.pos)
        if kind is ast.Member:
            obj = self.eval(node.object, scope)
            if isinstance(obj, dict):
                return obj.get(node.property)
            if obj is None:
                return None
            fail(f"cannot access member '{node.property}' of a {type_name(obj)}", node.pos)
        if kind is ast.Binary:
            op = node.operator
            if op == "and":
                left = self.eval(node.left, scope)
                if not left:
                    return False if left is not None else None
                return self._truth(self.eval(node.right, scope), node.right)
            if op == "or":
                left = self.eval(node.left, scope)
                if left:
                    self._truth(left, node.left)
                    return True
                return self._truth(self.eval(node.right, scope), node.right)
            a = self.eval(node.left, scope)
            b = self.eval(node.right, scope)
            if op in ("+", "-", "*", "/", "%"):
                return arithmetic(op, a, b, node.pos)
            return compare(op, a, b, node.pos)
        if kind is ast.Unary:
            value = self.eval(node.operand, scope)
            if node.operator == "exists":
                return value is not None
            if node.operator == "not":
                return None if value is None else not self._truth(value, node.operand)
            if node.operator == "-":
                if value is None:
                    return None
                if isinstance(value, Duration):
                    return -value
                if isinstance(value, (int, float)) and not isinstance(value, (bool, Time)):
                    return _int(-value, node.pos) if isinstance(value, int) else -value
                fail(f"cannot negate a {type_name(value)}", node.pos)
            fail(f"an {{expression}} is only allowed in where(exp: ...)", node.pos)
        if kind is ast.Call:
            return self.call_node(node, scope, None)
        if kind is ast.Pipe:
            piped = self.eval(node.argument, scope)
            return self.call_node(node.call, scope, piped, node.pos)
        if kind is ast.Record:
            base = {}
            if node.with_ is not None:
                base = self.eval(node.with_, scope)
                if not isinstance(base, dict):
                    fail(f"'with' needs a record, got {type_name(base)}", node.with_.pos)
                base = dict(base)
            for p in node.properties:
                base[p.key] = self.eval(p.value, scope)
            return base
        if kind is ast.Array:
            return [self.eval(e, scope) for e in node.elements]
        if kind is ast.Index:
            obj = self.eval(node.object, scope)
            index = self.eval(node.index, scope)
            if not isinstance(obj, list):
                fail(f"cannot index a {type_name(obj)}", node.pos)
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(obj):
                fail(f"index {index!r} out of range for an array of {len(obj)}", node.pos)
            return obj[index]
        if kind is ast.Function:
            return Closure(node, dict(scope))
        fail(f"unsupported expression", getattr(node, "pos", None))

    def _truth(self, value: Any, node: ast.Node) -> Any:
        if value is None or isinstance(value, bool):
            return value
        fail(f"expected a boolean, got {type_name(value)}", node.pos)

    # ------------------------------------------------------------------ calls

    def call_node(self, node: ast.Call, scope: dict, piped: Any, pipe_pos=None) -> Any:
        fn = self.eval(node.callee, scope)
        args = {a.key: self.eval(a.value, scope) for a in node.arguments}
        return self.call(fn, args, node.pos, piped, pipe_pos)

    def call(self, fn: Any, args: dict, pos, piped: Any = None, pipe_pos=None) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_CALL_DEPTH:
                fail(f"function calls nested deeper than {MAX_CALL_DEPTH}", pos)
            if isinstance(fn, Builtin):
                if piped is not None:
                    if fn.pipe is None:
                        fail(f"{fn.name}() does not take piped input", pipe_pos or pos)
                    args = {**args, fn.pipe: piped}
                value = fn.call(self, args, pos)
                if isinstance(value, Stream) and value.ops and value.ops[-1].pos is None:
                    value.ops[-1].pos = pos   # run-time errors of the operation point here
                return value
            if isinstance(fn, Closure):
                return self.call_closure(fn, args, pos, piped)
            fail(f"cannot call a {type_name(fn)}", pos)
        finally:
            self.depth -= 1

    def call_closure(self, fn: Closure, args: dict, pos=None, piped: Any = None) -> Any:
        local = dict(fn.scope)
        names = set()
        for p in fn.node.parameters:
            names.add(p.name)
            if p.pipe:
                if piped is None and p.name not in args:
                    fail(f"missing piped argument '{p.name}'", pos)
                local[p.name] = args.get(p.name, piped)
            elif p.name in args:
                local[p.name] = args[p.name]
            elif p.default is not None:
                local[p.name] = self.eval(p.default, fn.scope)
            else:
                fail(f"missing required argument '{p.name}'", pos)
        extra = set(args) - names
        if extra:
            fail(f"unexpected argument '{sorted(extra)[0]}'", pos)
        return self.eval(fn.node.body, local)

    def row_function(self, fn: Closure, pos):
        """A fast caller for ``(r) => ...`` applied to many rows."""
        params = fn.node.parameters
        if len(params) != 1 or params[0].pipe:
            fail("the function must take exactly one parameter, (r) => ...", fn.node.pos or pos)
        name, body = params[0].name, fn.node.body
        local = dict(fn.scope)   # one scope reused: evaluation never writes into it
        evaluate = self.eval

        def apply(row: dict) -> Any:
            local[name] = row
            return evaluate(body, local)

        return apply


__all__ = ["Interpreter", "Limits", "add_duration", "arithmetic", "compare", "Stream"]
