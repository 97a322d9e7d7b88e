"""Typed configuration: TOML tables validated into dataclasses, with every problem collected.

A section is a dataclass whose fields declare their types; :class:`Loader` converts the raw
``tomllib`` value for each field by its annotation:

    bool, int, float, str, Duration, ByteSize, Secret, Literal[...] (enums), list[T],
    dict[str, T], a nested dataclass (a table), list[dataclass] (an array of tables),
    ``T | None`` (optional, default None).

Fields may carry ``metadata={"check": fn}`` where ``fn(value)`` raises ValueError, and a
dataclass may define ``validate(self) -> list[(subkey, message)]`` for checks across fields.
A class may also take over its own loading with ``__config_load__(cls, loader, raw, path)``
(the reader registry does). Unknown keys are errors that suggest the nearest known key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from gateway.config.secrets import Secret
from gateway.config.units import ByteSize, Duration, parse_duration, parse_size


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration error: where it is and what is wrong."""

    path: str
    message: str
    line: int | None = None

    def format(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        return f"{where}: {self.path or '(top level)'}: {self.message}"


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            check=None, doc: str = "") -> Any:
    """A dataclass field with an optional value check and a one-line description."""
    meta = {"doc": doc}
    if check is not None:
        meta["check"] = check
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             Duration: 'a duration such as "10s"', ByteSize: 'a size such as "512MiB"'}
    if tp in names:
        return names[tp]
    if origin is list:
        return "an array"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _toml_type(value) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


class Loader:
    """Converts raw TOML values to typed objects, collecting problems instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        #: things that load but deserve a word (a secret in plain text, say)
        self.warnings: list[Problem] = []
        #: (path, object) of every table loaded without problems, for checks across sections.
        self.loaded: list[tuple[str, Any]] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(Problem(path, message))

    # -- entry points -------------------------------------------------------------------
    def load(self, cls: type, raw: Any, path: str = "") -> Any:
        """An instance of dataclass ``cls`` from ``raw`` (a dict), or None if it is unusable."""
        custom = getattr(cls, "__config_load__", None)
        if custom is not None:
            return custom(self, raw, path)
        return self.load_table(cls, raw, path)

    def load_table(self, cls: type, raw: Any, path: str) -> Any:
        """``load`` field by field (what a class's own ``__config_load__`` calls once it has
        prepared ``raw``)."""
        if not isinstance(raw, dict):
            self.error(path, f"expected a table, got {_toml_type(raw)}")
            return None
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        for key in raw:
            if key not in fields:
                self.error(_join(path, key), self._unknown_key_message(key, fields))
        values: dict[str, Any] = {}
        ok = True
        for name, f in fields.items():
            sub = _join(path, name)
            if name not in raw:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    self.error(sub, "is required")
                    ok = False
                continue
            before = len(self.problems)
            value = self.convert(hints[name], raw[name], sub)
            if len(self.problems) != before:
                ok = False
                continue
            check = f.metadata.get("check")
            if check is not None:
                try:
                    check(value)
                except ValueError as e:
                    self.error(sub, str(e))
                    ok = False
                    continue
            values[name] = value
        if not ok:
            return None
        try:
            obj = cls(**values)
        except (TypeError, ValueError) as e:
            self.error(path, str(e))
            return None
        validate = getattr(obj, "validate", None)
        if validate is not None:
            for subkey, message in validate():
                self.error(_join(path, subkey) if subkey else path, message)
        self.loaded.append((path, obj))
        return obj

    @staticmethod
    def _unknown_key_message(key: str, fields) -> str:
        close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key '{key}'{hint}"

    # -- conversion by annotation -------------------------------------------------------
    def convert(self, tp, raw: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            options = [a for a in args if a is not type(None)]
            if len(options) == 1:
                return self.convert(options[0], raw, path)
            return self._convert_union(options, raw, path)
        if origin is Literal:
            if raw not in args or type(raw) is not type(args[0]):
                self.error(path, f"must be {_type_name(tp)}, got {raw!r}")
            return raw
        if origin is list:
            if not isinstance(raw, list):
                self.error(path, f"expected an array, got {_toml_type(raw)}")
                return None
            return [self.convert(args[0], item, f"{path}[{i}]") for i, item in enumerate(raw)]
        if origin is dict:
            if not isinstance(raw, dict):
                self.error(path, f"expected a table, got {_toml_type(raw)}")
                return None
            return {k: self.convert(args[1], v, _join(path, k)) for k, v in raw.items()}
        if dataclasses.is_dataclass(tp) or hasattr(tp, "__config_load__"):
            return self.load(tp, raw, path)
        if tp is Secret:
            return self._wrap(Secret.parse, raw, path)
        if tp is Duration:
            return self._wrap(parse_duration, raw, path)
        if tp is ByteSize:
            return self._wrap(parse_size, raw, path)
        if tp is bool:
            if not isinstance(raw, bool):
                self.error(path, f"expected a boolean (true or false), got {_toml_type(raw)} {raw!r}")
            return raw
        if tp is int:
            if not isinstance(raw, int) or isinstance(raw, bool):
                self.error(path, f"expected an integer, got {_toml_type(raw)} {raw!r}")
            return raw
        if tp is float:
            if not isinstance(raw, (int, float)) or isinstance(raw, bool):
                self.error(path, f"expected a number, got {_toml_type(raw)} {raw!r}")
                return raw
            return float(raw)
        if tp is str:
            if not isinstance(raw, str):
                self.error(path, f"expected a string, got {_toml_type(raw)} {raw!r}")
            return raw
        if tp is Any:
            return raw
        raise TypeError(f"configuration type {tp!r} at {path} is not supported")

    def _convert_union(self, options, raw, path):
        for option in options:
            trial = Loader()
            value = trial.convert(option, raw, path)
            if not trial.problems:
                return value
        self.error(path, "must be " + " or ".join(_type_name(o) for o in options) + f", got {raw!r}")
        return None

    def _wrap(self, parse, raw, path):
        try:
            return parse(raw)
        except ValueError as e:
            self.error(path, str(e))
            return None


def unknown_kind(what: str, kind: str, candidates, known) -> str:
    """``unknown <what> 'x'; did you mean 'y'? (known: ...)``: the nearest of ``candidates``
    suggested, ``known`` listed."""
    close = difflib.get_close_matches(str(kind), list(candidates), n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{kind}'{hint} (known: {', '.join(known)})"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def positive(value) -> None:
    if value <= 0:
        raise ValueError(f"must be greater than zero, got {getattr(value, 'text', value)}")


def non_negative(value) -> None:
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")


def in_range(lo, hi):
    def check(value) -> None:
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}, got {value}")
    return check
