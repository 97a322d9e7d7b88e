"""Recursive-descent parser of the Flux subset into :mod:`gateway.query.ast`.

Operator precedence, loosest first (as in the Flux specification): ``or``; ``and``; ``not``;
comparisons ``== != < <= > >= =~ !~``; ``+ -``; ``* / %``; unary ``-``; ``|>``; calls, member
access and indexing. Nesting is bounded (:data:`MAX_DEPTH`) because the text is untrusted.

The 2017 chained form (``select(db:"foo").where(exp:{...}).range(...)``) is parsed with
``legacy=True``: there ``{ expression }`` is a predicate and ``AND``/``OR``/``NOT`` are the
logical operators; :mod:`gateway.query.legacy` turns the chain into Flux.
"""

from __future__ import annotations

import re

from gateway.query import ast
from gateway.query.errors import FluxError, fail
from gateway.query.lexer import MAX_REGEX, Token, duration_parts, tokenize
from gateway.rfc3339 import parse_flux_time

#: Deepest nesting of expressions accepted.
MAX_DEPTH = 64

_COMPARISON = ("==", "!=", "<", "<=", ">", ">=", "=~", "!~")
_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
       "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{?]")
class Duration(tuple):
    """A Flux duration: (months, nanoseconds); ``mo`` and ``y`` count months."""

    __slots__ = ()

    def __new__(cls, months: int, nanoseconds: int):
        return tuple.__new__(cls, (months, nanoseconds))

    @property
    def months(self) -> int:
        return self[0]

    @property
    def ns(self) -> int:
        return self[1]

    def __neg__(self) -> "Duration":
        return Duration(-self[0], -self[1])

    def __repr__(self) -> str:
        return f"Duration({self[0]}mo, {self[1]}ns)"


def parse_duration(text: str) -> Duration:
    months = ns = 0
    for amount, unit in duration_parts(text):
        if unit == "mo":
            months += amount
        elif unit == "y":
            months += 12 * amount
        else:
            ns += amount * _NS[unit]
    return Duration(months, ns)


def parse_time(text: str) -> int | None:
    """RFC 3339 (or a date alone: midnight UTC) as ns since the epoch, or None if invalid."""
    try:
        ns = parse_flux_time(text)
    except ValueError:
        return None
    return ns if -(1 << 63) <= ns < (1 << 63) else None


class Parser:
    def __init__(self, source: str, legacy: bool = False):
        self.source = source
        self.legacy = legacy
        self.tokens = tokenize(source)
        self.i = 0
        self.depth = 0

    # ------------------------------------------------------------------ helpers

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def advance(self) -> Token:
        t = self.tokens[self.i]
        if t.kind != "EOF":
            self.i += 1
        return t

    def accept(self, kind: str) -> Token | None:
        if self.tok.kind == kind:
            return self.advance()
        return None

    def expect(self, kind: str, what: str | None = None) -> Token:
        if self.tok.kind != kind:
            self.unexpected(what or f"'{kind}'" if kind not in ("IDENT", "STRING") else
                            what or ("an identifier" if kind == "IDENT" else "a string"))
        return self.advance()

    def unexpected(self, wanted: str):
        t = self.tok
        got = "end of input" if t.kind == "EOF" else f"'{self.source_text(t)}'"
        fail(f"expected {wanted}, got {got}", t.pos)

    def source_text(self, t: Token) -> str:
        if t.kind == "STRING":
            return '"' + t.text[:40] + '"'
        if t.kind == "REGEX":
            return "/" + t.text[:40] + "/"
        return t.text[:40]

    def is_word(self, word: str) -> bool:
        """A legacy upper-case operator word (AND, OR, NOT)."""
        return self.legacy and self.tok.kind == "IDENT" and self.tok.text == word

    # ------------------------------------------------------------------ program

    def program(self) -> ast.Program:
        imports, body = [], []
        while self.tok.kind == "import":
            t = self.advance()
            alias = None
            if self.tok.kind == "IDENT":
                alias = self.advance().text
            path = self.expect("STRING", "an import path (a string)")
            imports.append(ast.Import(path.text, alias, t.pos))
        while self.tok.kind != "EOF":
            body.append(self.statement())
        if not body:
            fail("the program is empty", self.tok.pos)
        return ast.Program(imports, body, self.tokens[0].pos)

    def statement(self) -> ast.Node:
        t = self.tok
        if t.kind == "import":
            fail("imports must come before every other statement", t.pos)
        if t.kind == "option":
            self.advance()
            name = self.expect("IDENT", "an option name").text
            while self.accept("."):
                name += "." + self.expect("IDENT", "an option name").text
            self.expect("=", "'='")
            return ast.Option(name, self.expression(), t.pos)
        if t.kind == "return":
            fail("'return' is only allowed in a function body", t.pos)
        if t.kind == "IDENT" and self.peek().kind == "=":
            self.advance()
            self.advance()
            return ast.Assignment(t.text, self.expression(), t.pos)
        return ast.ExpressionStatement(self.expression(), t.pos)

    # ------------------------------------------------------------------ expressions

    def expression(self) -> ast.Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            fail(f"expression nested deeper than {MAX_DEPTH} levels", self.tok.pos)
        try:
            return self.logical_or()
        finally:
            self.depth -= 1

    def logical_or(self) -> ast.Node:
        left = self.logical_and()
        while self.tok.kind == "or" or self.is_word("OR"):
            t = self.advance()
            left = ast.Binary("or", left, self.logical_and(), t.pos)
        return left

    def logical_and(self) -> ast.Node:
        left = self.logical_not()
        while self.tok.kind == "and" or self.is_word("AND"):
            t = self.advance()
            left = ast.Binary("and", left, self.logical_not(), t.pos)
        return left

    def logical_not(self) -> ast.Node:
        if self.tok.kind in ("not", "exists") or self.is_word("NOT"):
            t = self.advance()
            op = "exists" if t.kind == "exists" else "not"
            self.depth += 1
            if self.depth > MAX_DEPTH:
                fail(f"expression nested deeper than {MAX_DEPTH} levels", t.pos)
            try:
                return ast.Unary(op, self.logical_not(), t.pos)
            finally:
                self.depth -= 1
        return self.comparison()

    def comparison(self) -> ast.Node:
        left = self.additive()
        while self.tok.kind in _COMPARISON:
            t = self.advance()
            left = ast.Binary(t.kind, left, self.additive(), t.pos)
        return left

    def additive(self) -> ast.Node:
        left = self.multiplicative()
        while self.tok.kind in ("+", "-"):
            t = self.advance()
            left = ast.Binary(t.kind, left, self.multiplicative(), t.pos)
        return left

    def multiplicative(self) -> ast.Node:
        left = self.unary()
        while self.tok.kind in ("*", "/", "%"):
            t = self.advance()
            left = ast.Binary(t.kind, left, self.unary(), t.pos)
        return left

    def unary(self) -> ast.Node:
        if self.tok.kind in ("-", "+"):
            t = self.advance()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                fail(f"expression nested deeper than {MAX_DEPTH} levels", t.pos)
            try:
                operand = self.unary()
            finally:
                self.depth -= 1
            return operand if t.kind == "+" else ast.Unary("-", operand, t.pos)
        return self.pipe()

    def pipe(self) -> ast.Node:
        left = self.postfix()
        while self.tok.kind == "|>":
            t = self.advance()
            right = self.postfix()
            if not isinstance(right, ast.Call):
                fail("the right side of '|>' must be a function call", t.pos)
            left = ast.Pipe(left, right, t.pos)
        return left

    def postfix(self) -> ast.Node:
        node = self.primary()
        while True:
            t = self.tok
            if t.kind == ".":
                self.advance()
                name = self.expect("IDENT", "a member name after '.'")
                node = ast.Member(node, name.text, name.pos)
            elif t.kind == "[":
                self.advance()
                index = self.expression()
                self.expect("]", "']'")
                if isinstance(index, ast.Literal) and index.kind == "string":
                    node = ast.Member(node, index.value, t.pos)
                else:
                    node = ast.Index(node, index, t.pos)
            elif t.kind == "(":
                self.advance()
                # errors of a call point at the function's name
                node = ast.Call(node, self.arguments(), getattr(node, "pos", None) or t.pos)
            else:
                return node

    def arguments(self) -> list[ast.Property]:
        args: list[ast.Property] = []
        while self.tok.kind != ")":
            key = self.expect("IDENT", "an argument name")
            if self.accept(":"):
                if self.legacy and self.tok.kind == "{" and key.text == "exp":
                    t = self.advance()
                    value = self.expression()
                    self.expect("}", "'}' closing the expression")
                    value = ast.Unary("predicate", value, t.pos)
                else:
                    value = self.expression()
            else:
                value = ast.Identifier(key.text, key.pos)  # f(x) means f(x: x)
            if any(a.key == key.text for a in args):
                fail(f"argument '{key.text}' given twice", key.pos)
            args.append(ast.Property(key.text, value, key.pos))
            if not self.accept(","):
                break
        self.expect(")", "',' or ')'")
        return args

    def primary(self) -> ast.Node:
        t = self.tok
        k = t.kind
        if k == "IDENT":
            self.advance()
            if t.text in ("true", "false"):
                return ast.Literal("bool", t.text == "true", t.pos)
            return ast.Identifier(t.text, t.pos)
        if k == "INT":
            self.advance()
            value = int(t.text)
            if value >= 1 << 63:
                fail(f"integer {t.text} does not fit in 64 bits", t.pos)
            return ast.Literal("int", value, t.pos)
        if k == "FLOAT":
            self.advance()
            return ast.Literal("float", float(t.text), t.pos)
        if k == "STRING":
            self.advance()
            return ast.Literal("string", t.text, t.pos)
        if k == "DURATION":
            self.advance()
            d = parse_duration(t.text)
            if abs(d.ns) >= 1 << 63 or abs(d.months) > 12 * 10000:
                fail(f"duration {t.text} is too long", t.pos)
            return ast.Literal("duration", d, t.pos)
        if k == "TIME":
            self.advance()
            ns = parse_time(t.text)
            if ns is None:
                fail(f"invalid time {t.text!r} (RFC 3339 expected)", t.pos)
            return ast.Literal("time", ns, t.pos)
        if k == "REGEX":
            self.advance()
            return ast.Literal("regex", compile_regex(t.text, t.pos), t.pos)
        if k == "[":
            self.advance()
            items = []
            while self.tok.kind != "]":
                items.append(self.expression())
                if not self.accept(","):
                    break
            self.expect("]", "',' or ']'")
            return ast.Array(items, t.pos)
        if k == "{":
            return self.record()
        if k == "(":
            if self.is_function():
                return self.function()
            self.advance()
            inner = self.expression()
            self.expect(")", "')'")
            return inner
        self.unexpected("an expression")

    def record(self) -> ast.Record:
        t = self.expect("{")
        with_ = None
        if self.tok.kind == "IDENT" and self.peek().kind == "IDENT" and self.peek().text == "with":
            with_ = ast.Identifier(self.tok.text, self.tok.pos)
            self.advance()
            self.advance()
        props: list[ast.Property] = []
        while self.tok.kind != "}":
            if self.tok.kind == "STRING":
                key = self.advance()
            else:
                key = self.expect("IDENT", "a record key")
            if self.accept(":"):
                value = self.expression()
            elif key.kind == "IDENT":
                value = ast.Identifier(key.text, key.pos)
            else:
                self.unexpected("':'")
            props.append(ast.Property(key.text, value, key.pos))
            if not self.accept(","):
                break
        self.expect("}", "',' or '}'")
        return ast.Record(props, with_, t.pos)

    def is_function(self) -> bool:
        # "(" ")" "=>", or "(" IDENT followed by "," "=" "<" or ")" "=>"
        a, b = self.peek(1), self.peek(2)
        if a.kind == ")":
            return b.kind == "=>"
        if a.kind != "IDENT":
            return False
        if b.kind in (",", "="):
            return True
        return b.kind == ")" and self.peek(3).kind == "=>"

    def function(self) -> ast.Function:
        t = self.expect("(")
        params: list[ast.Parameter] = []
        while self.tok.kind != ")":
            name = self.expect("IDENT", "a parameter name")
            default, pipe = None, False
            if self.accept("="):
                if self.tok.kind == "<" and self.peek().kind == "-":
                    self.advance()
                    self.advance()
                    pipe = True
                else:
                    default = self.expression()
            params.append(ast.Parameter(name.text, default, pipe, name.pos))
            if not self.accept(","):
                break
        self.expect(")", "',' or ')'")
        self.expect("=>", "'=>'")
        if self.tok.kind == "{":
            fail("function bodies in braces are not supported; write (r) => expression",
                 self.tok.pos)
        return ast.Function(params, self.expression(), t.pos)


def compile_regex(body: str, pos):
    """Python's re on the Go/RE2 syntax Flux uses; the common subset agrees. Look-around and
    backreferences (not RE2) are refused, which also keeps matching linear in practice."""
    if len(body) > MAX_REGEX:
        fail(f"regular expression longer than {MAX_REGEX} characters", pos)
    if re.search(r"\(\?[=!<]|\\[1-9]", body):
        fail("look-around and backreferences are not supported in regular expressions", pos)
    if _NESTED_QUANTIFIER.search(body):
        # (a+)+ and kin backtrack exponentially in Python's engine (RE2 would not).
        fail("a quantified group that contains a quantifier is not supported in regular "
             "expressions", pos)
    try:
        return re.compile(body)
    except (re.error, RecursionError, OverflowError) as e:
        fail(f"invalid regular expression: {e}", pos)


def parse(source: str, legacy: bool = False) -> ast.Program:
    """The syntax tree of ``source``; raises FluxError with line, column and caret."""
    try:
        return Parser(source, legacy).program()
    except FluxError as e:
        raise e.with_source(source) from None
