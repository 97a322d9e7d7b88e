"""The built-in functions: each checks its arguments (InfluxDB's names and defaults) and
appends one operation to the stream (see :mod:`gateway.query.planner`)."""

from __future__ import annotations

import functools
from typing import Any

from gateway.query import planner as p
from gateway.query.errors import fail
from gateway.query.interpreter import add_duration
from gateway.query.values import Builtin, Closure, Duration, Stream, Time, type_name

_REQUIRED = object()
_MEDIAN_METHODS = ("estimate_tdigest", "exact_mean", "exact_selector")
_TIME_SOURCES = ("_start", "_stop")


def _take(args: dict, pos, fn: str, spec: dict) -> dict:
    """Checks ``args`` against ``spec`` {name: (type names, default)}; returns every value."""
    unknown = set(args) - set(spec)
    if unknown:
        fail(f"{fn}() has no argument '{sorted(unknown)[0]}' (it takes: {', '.join(spec)})", pos)
    out = {}
    for name, (types, default) in spec.items():
        if name not in args:
            if default is _REQUIRED:
                fail(f"{fn}() needs the argument '{name}'", pos)
            out[name] = default
            continue
        value = args[name]
        if types and type_name(value) not in types:
            fail(f"{fn}() argument '{name}' must be {' or '.join(types)}, got {type_name(value)}", pos)
        out[name] = value
    return out


def _stream(value: Any, fn: str, pos) -> Stream:
    if not isinstance(value, Stream):
        fail(f"{fn}() needs a stream of tables piped into it (from(...) |> {fn}(...))", pos)
    return value


def _ns(d: Duration, fn: str, what: str, pos, positive: bool = True) -> int:
    if d.months:
        fail(f"{fn}() {what}: calendar durations (mo, y) are not supported for windows", pos)
    if positive and d.ns <= 0:
        fail(f"{fn}() {what} must be positive, got {d.ns} ns", pos)
    if abs(d.ns) >= 1 << 62:
        fail(f"{fn}() {what} is too long", pos)
    return d.ns


def _time(interp, value: Any, fn: str, what: str, pos) -> Time:
    if isinstance(value, Time):
        return value
    if isinstance(value, Duration):
        return add_duration(interp.now, value, pos)
    if isinstance(value, int) and not isinstance(value, bool):   # Unix seconds, as in Flux
        if abs(value) > (1 << 63) // 10**9:
            fail(f"{fn}() {what} is out of range", pos)
        return Time(value * 10**9)
    fail(f"{fn}() {what} must be a time, a duration or an int (Unix seconds), got "
         f"{type_name(value)}", pos)


def _columns(value: list, fn: str, what: str, pos) -> tuple:
    if not all(isinstance(c, str) for c in value):
        fail(f"{fn}() {what} must be an array of strings", pos)
    return tuple(value)


# ---------------------------------------------------------------------- sources

def _from(interp, args, pos):
    a = _take(args, pos, "from", {"bucket": (("string",), _REQUIRED)})
    return Stream((p.From(a["bucket"]),))


def _range(interp, args, pos):
    a = _take(args, pos, "range", {"tables": ((), _REQUIRED), "start": ((), _REQUIRED),
                                   "stop": ((), None)})
    start = _time(interp, a["start"], "range", "start", pos)
    stop = interp.now if a["stop"] is None else _time(interp, a["stop"], "range", "stop", pos)
    return _stream(a["tables"], "range", pos).then(p.Range(int(start), int(stop)))


def _filter(interp, args, pos):
    a = _take(args, pos, "filter", {"tables": ((), _REQUIRED), "fn": (("function",), _REQUIRED),
                                    "onEmpty": (("string",), "drop")})
    if not isinstance(a["fn"], Closure):
        fail("filter() fn must be a function literal, (r) => ...", pos)
    interp.row_function(a["fn"], pos)   # checks the parameter list now
    if a["onEmpty"] not in ("drop", "keep"):
        fail(f"filter() onEmpty must be \"drop\" or \"keep\", got {a['onEmpty']!r}", pos)
    return _stream(a["tables"], "filter", pos).then(p.Filter(a["fn"], a["onEmpty"]))


# ---------------------------------------------------------------------- windows

#: Most windows one point may fall in (period / every), which bounds the work per point.
MAX_WINDOWS_PER_POINT = 10000


def _check_period(fn: str, every: int, period: int, pos) -> None:
    if period // every > MAX_WINDOWS_PER_POINT:
        fail(f"{fn}() period is more than {MAX_WINDOWS_PER_POINT} times every", pos)


def _aggregate_window(interp, args, pos):
    a = _take(args, pos, "aggregateWindow", {
        "tables": ((), _REQUIRED), "every": (("duration",), _REQUIRED),
        "period": (("duration",), None), "offset": (("duration",), Duration(0, 0)),
        "fn": (("function",), _REQUIRED), "column": (("string",), "_value"),
        "timeSrc": (("string",), "_stop"), "timeDst": (("string",), "_time"),
        "createEmpty": (("bool",), True), "location": (("record",), None)})
    fn = a["fn"]
    if not (isinstance(fn, Builtin) and fn.name in p.WINDOW_FUNCTIONS):
        fail(f"aggregateWindow() fn must be one of {', '.join(p.WINDOW_FUNCTIONS)}", pos)
    if a["timeSrc"] not in _TIME_SOURCES:
        fail(f"aggregateWindow() timeSrc must be \"_start\" or \"_stop\", got {a['timeSrc']!r}", pos)
    every = _ns(a["every"], "aggregateWindow", "every", pos)
    period = every if a["period"] is None else _ns(a["period"], "aggregateWindow", "period", pos)
    offset = _ns(a["offset"], "aggregateWindow", "offset", pos, positive=False)
    _check_period("aggregateWindow", every, period, pos)
    return _stream(a["tables"], "aggregateWindow", pos).then(p.AggregateWindow(
        every, period, offset, fn.name, "estimate_tdigest", a["column"], a["timeSrc"],
        a["timeDst"], a["createEmpty"]))


def _window(interp, args, pos):
    a = _take(args, pos, "window", {
        "tables": ((), _REQUIRED), "every": (("duration",), None), "period": (("duration",), None),
        "offset": (("duration",), Duration(0, 0)), "createEmpty": (("bool",), False),
        "location": (("record",), None)})
    if a["every"] is None and a["period"] is None:
        fail("window() needs every or period", pos)
    every = _ns(a["every"] or a["period"], "window", "every", pos)
    period = every if a["period"] is None else _ns(a["period"], "window", "period", pos)
    offset = _ns(a["offset"], "window", "offset", pos, positive=False)
    _check_period("window", every, period, pos)
    return _stream(a["tables"], "window", pos).then(p.Window(every, period, offset, a["createEmpty"]))


def _aggregate(name: str):
    def call(interp, args, pos):
        spec = {"tables": ((), _REQUIRED), "column": (("string",), "_value")}
        if name == "median":
            spec.update(method=(("string",), "estimate_tdigest"), compression=(("float",), 0.0))
        if name == "stddev":
            spec["mode"] = (("string",), "sample")
        a = _take(args, pos, name, spec)
        method = a.get("method", "estimate_tdigest")
        if method not in _MEDIAN_METHODS:
            fail(f"median() method must be one of {', '.join(_MEDIAN_METHODS)}, got {method!r}", pos)
        mode = a.get("mode", "sample")
        if mode not in ("sample", "population"):
            fail(f"stddev() mode must be \"sample\" or \"population\", got {mode!r}", pos)
        return _stream(a["tables"], name, pos).then(p.Aggregate(name, a["column"], method, mode))
    return Builtin(name, call)


# ---------------------------------------------------------------------- table shaping

def _group(interp, args, pos):
    a = _take(args, pos, "group", {"tables": ((), _REQUIRED), "columns": (("array",), []),
                                   "mode": (("string",), "by")})
    if a["mode"] not in ("by", "except"):
        fail(f"group() mode must be \"by\" or \"except\", got {a['mode']!r}", pos)
    cols = _columns(a["columns"], "group", "columns", pos)
    return _stream(a["tables"], "group", pos).then(p.Group(cols, a["mode"]))


def _keep_drop(name: str, op):
    def call(interp, args, pos):
        a = _take(args, pos, name, {"tables": ((), _REQUIRED), "columns": (("array",), _REQUIRED)})
        return _stream(a["tables"], name, pos).then(op(_columns(a["columns"], name, "columns", pos)))
    return Builtin(name, call)


def _rename(interp, args, pos):
    a = _take(args, pos, "rename", {"tables": ((), _REQUIRED), "columns": (("record",), _REQUIRED)})
    pairs = tuple(a["columns"].items())
    if not all(isinstance(v, str) for _, v in pairs):
        fail("rename() columns maps old names to new names (strings)", pos)
    return _stream(a["tables"], "rename", pos).then(p.Rename(pairs))


def _map(interp, args, pos):
    a = _take(args, pos, "map", {"tables": ((), _REQUIRED), "fn": (("function",), _REQUIRED)})
    if not isinstance(a["fn"], Closure):
        fail("map() fn must be a function literal, (r) => ({...})", pos)
    interp.row_function(a["fn"], pos)
    return _stream(a["tables"], "map", pos).then(p.Map(a["fn"]))


def _limit(interp, args, pos):
    a = _take(args, pos, "limit", {"tables": ((), _REQUIRED), "n": (("int",), _REQUIRED),
                                   "offset": (("int",), 0)})
    if a["n"] < 0 or a["offset"] < 0:
        fail("limit() n and offset must not be negative", pos)
    return _stream(a["tables"], "limit", pos).then(p.Limit(a["n"], a["offset"]))


def _sort(interp, args, pos):
    a = _take(args, pos, "sort", {"tables": ((), _REQUIRED), "columns": (("array",), ["_value"]),
                                  "desc": (("bool",), False)})
    return _stream(a["tables"], "sort", pos).then(
        p.Sort(_columns(a["columns"], "sort", "columns", pos), a["desc"]))


def _yield(interp, args, pos):
    a = _take(args, pos, "yield", {"tables": ((), _REQUIRED), "name": (("string",), "_result")})
    return _stream(a["tables"], "yield", pos).then(p.Yield(a["name"]))


def _to(interp, args, pos):
    a = _take(args, pos, "to", {"tables": ((), _REQUIRED), "bucket": (("string",), _REQUIRED),
                                "org": (("string",), None)})
    return _stream(a["tables"], "to", pos).then(p.To(a["bucket"]))


def _now(interp, args, pos):
    _take(args, pos, "now", {})
    return interp.now


def _last_success(interp, args, pos):
    a = _take(args, pos, "tasks.lastSuccess", {"orTime": (("time", "duration", "int"), _REQUIRED)})
    last = getattr(interp, "last_success", None)
    if last is not None:
        return Time(last)
    return _time(interp, a["orTime"], "tasks.lastSuccess", "orTime", pos)


def _convert(name: str):
    def call(interp, args, pos):
        a = _take(args, pos, name, {"v": ((), _REQUIRED)})
        v = a["v"]
        if v is None:
            return None
        try:
            if name == "float":
                if isinstance(v, (bool, int, float)) and not isinstance(v, Time):
                    return float(v)
                if isinstance(v, str):
                    return float(v)
            elif name == "int":
                if isinstance(v, float):
                    if v != v or v in (float("inf"), float("-inf")):
                        fail(f"int() cannot convert {v!r}", pos)
                    return int(v)
                if isinstance(v, (bool, int)):
                    return int(v)
                if isinstance(v, Duration) and not v.months:
                    return v.ns
                if isinstance(v, str):
                    return int(v, 10)
            elif name == "string":
                if isinstance(v, str):
                    return v
                if isinstance(v, bool):
                    return "true" if v else "false"
                if isinstance(v, Time):
                    from gateway.query.values import format_time
                    return format_time(v)
                if isinstance(v, (int, float)):
                    return repr(v)
        except ValueError:
            fail(f"{name}() cannot convert {v!r}", pos)
        fail(f"{name}() cannot convert a {type_name(v)}", pos)
    return Builtin(name, call, pipe=None)


def globals_() -> dict:
    """The built-in functions by name (a new dict of the caller's; the functions are immutable
    and made once, not at every compile)."""
    return dict(_builtins())


@functools.cache
def _builtins() -> dict:
    out = {
        "from": Builtin("from", _from, pipe=None),
        "range": Builtin("range", _range),
        "filter": Builtin("filter", _filter),
        "aggregateWindow": Builtin("aggregateWindow", _aggregate_window),
        "window": Builtin("window", _window),
        "group": Builtin("group", _group),
        "keep": _keep_drop("keep", p.Keep),
        "drop": _keep_drop("drop", p.Drop),
        "rename": Builtin("rename", _rename),
        "map": Builtin("map", _map),
        "limit": Builtin("limit", _limit),
        "sort": Builtin("sort", _sort),
        "yield": Builtin("yield", _yield),
        "to": Builtin("to", _to),
        "now": Builtin("now", _now, pipe=None),
    }
    for name in ("float", "int", "string"):
        out[name] = _convert(name)
    for name in p.WINDOW_FUNCTIONS:
        out[name] = _aggregate(name)
    return out


def _is_numeric(interp, args, pos):
    a = _take(args, pos, "types.isNumeric", {"v": ((), _REQUIRED)})
    v = a["v"]
    return isinstance(v, (int, float)) and not isinstance(v, (bool, Time))


def packages() -> dict[str, dict]:
    return {"influxdata/influxdb/tasks": {
                "lastSuccess": Builtin("tasks.lastSuccess", _last_success, pipe=None)},
            "types": {"isNumeric": Builtin("types.isNumeric", _is_numeric, pipe=None)}}
