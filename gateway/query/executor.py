"""Runs plans against the store and gives results: named lists of tables.

The read: series chosen by the plan's series-key filters from the catalogue, each streamed
by :func:`gateway.store.reading.stream_series`. When the first operation after the read is a
window aggregation (``aggregateWindow``, ``window`` + an aggregate, or an aggregate of the
whole range) it runs in the C kernels on each batch, and only windows are kept; otherwise the
series becomes a table of its points (bounded by the result cap). The remaining operations
run on tables.
"""

from __future__ import annotations

import contextlib
from array import array
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from gateway.aggregate import FoldedWindows, window_times
from gateway.datamodel import BOOL, FLOAT, INT, STRING, UINT
from gateway.query import planner as p
from gateway.query.errors import FluxError, fail
from gateway.query.interpreter import Interpreter, Limits
from gateway.query.tables import (NullableColumn, Table, TimeColumn, column_order,
                                  compact_column, sortable)
from gateway.query.values import Time
from gateway.query.windows import (FLUX_TYPES, WindowFold, aggregate_values, type_refusal,
                                   fold_spec, folded_columns, folded_values, is_selector,
                                   result_type, window_start)
from gateway.store.series_table import key_parts

_INT64_MAX = (1 << 63) - 1
_ABSENT = object()   # a tag the series does not have
#: The columns of a series' record that are not tags.
_SERIES_COLUMNS = frozenset({"_measurement", "_field", "_value", "_start", "_stop"})
_TYPE_SAMPLES = {FLOAT: 0.0, INT: 0, UINT: 0, BOOL: False, STRING: ""}
#: Window aggregations are computed in C straight from the blocks where the data allow
#: (tests turn it off to compare with the general path).
FOLD_FROM_BLOCKS = True
#: A trip to the store folds as many series as FOLD_BLOCKS blocks, between FOLD_SERIES and
#: FOLD_SERIES_MAX series, by the blocks a series had so far in the query (in the first trip,
#: by the blocks a series of the bucket has on average, which a range can only lower). A
#: trip's block lists (40 bytes a block: 100 KB for a month at 1 Hz) and folded windows are
#: held meanwhile, so memory grows with it: 8,192 blocks are 8 series of 12 days (two for each
#: of up to four fold threads; longer ranges stay at 8), or a day of 96 series at once (a
#: trip costs an index query and a hop to each thread, so fewer trips are faster for short
#: ranges: a day of 100 rollup series, two blocks each, is one trip).
FOLD_SERIES = 8
FOLD_SERIES_MAX = 1024
FOLD_BLOCKS = 8192


@contextlib.contextmanager
def _located(pos):
    """Gives a run-time FluxError without a position the position of the call that failed."""
    try:
        yield
    except FluxError as e:
        if e.line or pos is None:
            raise
        raise FluxError(e.message, pos[0], pos[1]) from None


@dataclass
class Result:
    name: str
    tables: list[Table]


class Executor:
    def __init__(self, store, interp: Interpreter, writer: Callable[..., Awaitable] | None = None):
        self.store = store
        self.interp = interp
        self.limits: Limits = interp.limits
        self.writer = writer          # to(): an async callable (bucket, tables) -> points written
        self.rows = 0
        self.points_read = 0
        self.series_folded = 0        # series whose windows came from the C fold of blocks
        self.points_written = 0
        self._bounds: tuple = (None, None, None)
        self._key_types_of: dict[tuple, dict] = {}

    def _count_rows(self, n: int) -> None:
        self.rows += n
        if self.rows > self.limits.max_rows:
            raise FluxError(f"the result has more than {self.limits.max_rows} rows; narrow the "
                            f"range, filter or aggregate")

    # ------------------------------------------------------------------ entry

    async def run(self, plan: p.Plan) -> Result:
        ops = list(plan.ops)
        with _located(plan.pos):
            try:
                bucket = self.store.bucket(plan.bucket)
            except KeyError:
                fail(f"bucket {plan.bucket!r} does not exist")
        with _located(ops[0].pos if ops else plan.pos):
            tables = await self._read(plan, ops, bucket)
        for op in ops:
            with _located(op.pos):
                self.limits.check_time()
                tables = await self._apply(op, tables)
                if len(tables) > self.limits.max_tables:
                    fail(f"the result has more than {self.limits.max_tables} tables")
        return Result(plan.result, tables)

    # ------------------------------------------------------------------ the read

    def _series(self, plan: p.Plan) -> list:
        """The series that the plan's series-key filters pass, sorted by key. Their equality
        tests on measurement, field and tags are asked of the catalogue (which reads them
        from the keys without making an object per series); the rest of a filter, if any,
        is tested on the series that the catalogue gives."""
        wanted: dict[str, str] = {}
        tests = []
        for fn in plan.series_filters:
            got = p.key_equalities(fn)
            if got is None:
                return []   # one column asked for two texts
            equal, whole = got
            for column, text in equal.items():
                if wanted.setdefault(column, text) != text:
                    return []
            if not whole:
                tests.append(fn)
        measurement = wanted.pop("_measurement", None)
        field = wanted.pop("_field", None)
        chosen = self.store.series(plan.bucket, measurement, wanted or None, field)
        for fn in tests:
            test = self._series_test(plan, fn)
            chosen = [info for info in chosen if test(info)]
        return chosen

    def _series_test(self, plan: p.Plan, fn) -> Callable[[Any], bool]:
        """Whether a series passes a series-key filter. The filter is evaluated once per
        distinct value of the columns it reads (a filter on _field over a bucket of many
        series evaluates once per field), not once per series."""
        test = self.interp.row_function(fn, None)
        columns = sorted(p.key_columns(fn))
        tag_columns = [c for c in columns if c not in _SERIES_COLUMNS]
        seen: dict[tuple, bool] = {}

        def passes(info) -> bool:
            measurement, tag_items, field = key_parts(info.key)
            tags = dict(tag_items) if tag_columns else None
            # _value: the series' type (a value of it is what a type test reads)
            got = tuple(measurement if c == "_measurement" else field if c == "_field"
                        else info.type if c == "_value" else None if c in _SERIES_COLUMNS
                        else tags.get(c, _ABSENT) for c in columns)
            if got not in seen:
                # _value: a value of the series' type, for type tests (types.isNumeric)
                record = {"_measurement": measurement, "_field": field,
                          "_start": Time(plan.start), "_stop": Time(plan.stop),
                          "_value": _TYPE_SAMPLES.get(info.type), **dict(tag_items)}
                seen[got] = test(record) is True
            return seen[got]

        return passes

    def _key(self, plan: p.Plan, info) -> dict:
        measurement, tags, field = key_parts(info.key)
        bounds = self._bounds
        if bounds[0] is not plan:   # the range's times, one pair shared by the plan's tables
            bounds = self._bounds = (plan, Time(plan.start), Time(plan.stop))
        key = {"_start": bounds[1], "_stop": bounds[2], "_field": field,
               "_measurement": measurement}
        key.update(sorted(tags))
        return key

    def _key_types(self, key: dict) -> dict:
        """The types of a series' group key columns (a new dict: the caller adds to it)."""
        names = tuple(key)
        types = self._key_types_of.get(names)
        if types is None:   # the series of a query mostly share their tag names
            types = {k: ("time" if k in ("_start", "_stop", "_time") else "string") for k in key}
            self._key_types_of[names] = types
        return dict(types)

    async def _batches(self, plan: p.Plan, info):
        tests = [self.interp.row_function(fn, None) for fn in plan.row_filters]
        base = self._key(plan, info) if tests else None
        async for ts, values in self.store.stream_series(info, plan.bucket, plan.start, plan.stop):
            self.points_read += len(ts)
            self.limits.check_time()
            if tests:
                ts, values = self._filter_points(tests, base, info, ts, values)
                if not len(ts):
                    continue
            yield ts, values

    def _filter_points(self, tests, base, info, ts, values):
        record = dict(base)
        keep = []
        bool_ = info.type == BOOL
        for i in range(len(ts)):
            record["_time"] = Time(ts[i])
            v = values[i]
            record["_value"] = bool(v) if bool_ else v
            if all(t(record) is True for t in tests):
                keep.append(i)
        self.limits.tick(len(ts))
        if len(keep) == len(ts):
            return ts, values
        new_ts = array("q", (ts[i] for i in keep))
        if isinstance(values, list):
            return new_ts, [values[i] for i in keep]
        return new_ts, array(values.typecode, (values[i] for i in keep))

    async def _read(self, plan: p.Plan, ops: list, bucket) -> list[Table]:
        series = self._series(plan)
        if len(series) > self.limits.max_tables:
            fail(f"the query selects {len(series)} series; at most {self.limits.max_tables} "
                 f"are read at once")
        fused = self._fused(plan, ops)
        out: list[Table] = []
        if fused is None:
            for info in series:
                table = await self._read_points(plan, info)
                if table is not None:
                    out.append(table)
            return out
        spec = self._window_spec(plan, fused)
        if self._newest_answers(plan, fused):
            for info in series:
                out.extend(await self._read_newest(plan, info, fused, spec))
        else:
            at = seen_series = seen_blocks = 0
            bucket_blocks, bucket_series = self._bucket_blocks(bucket)
            while at < len(series):
                if seen_series:   # the blocks listed so far size the next trip
                    per_series = max(1, seen_blocks // seen_series)
                else:
                    per_series = max(1, -(-bucket_blocks // max(1, bucket_series)))
                size = min(max(FOLD_BLOCKS // per_series, FOLD_SERIES), FOLD_SERIES_MAX)
                chunk = series[at:at + size]
                at += len(chunk)
                windows, folded, blocks = await self._fold(plan, chunk, spec)
                seen_series += len(chunk)
                seen_blocks += blocks
                built = self._window_tables(plan, fused, spec, chunk, windows, folded)
                for info, got, table in zip(chunk, folded, built):
                    if table is not None:
                        out.append(table)
                    else:
                        own = None if got is None else (got[0], windows.rows(got[1], got[2]))
                        out.extend(await self._read_windows(plan, info, fused, spec, own))
        del ops[:fused[0]]
        return out

    @staticmethod
    def _bucket_blocks(b) -> tuple[int, int]:
        """(blocks, series) of a bucket now, indexed or not (read without the store's thread:
        an estimate that sizes the first fold trip)."""
        state = b.opened_parts()[3]
        return (state.live_blocks if state else 0) + len(b.unindexed_blocks()), len(b.catalogue)

    def _window_spec(self, plan: p.Plan, fused) -> tuple[str, str, str, int, int]:
        """(fn, method, mode, every, offset) of a fused window aggregation."""
        _, kind, win, agg = fused
        if kind == "aggregate":
            return agg.fn, agg.method, agg.mode, plan.stop - plan.start, plan.start
        if kind == "aggregateWindow":
            return win.fn, "estimate_tdigest", "sample", win.every, win.offset
        return agg.fn, agg.method, agg.mode, win.every, win.offset

    async def _fold(self, plan: p.Plan, chunk: list, spec
                    ) -> tuple[FoldedWindows | None, list, int]:
        """The C fold's windows straight from the blocks: (the windows of all the series,
        per series (points, its first window, the row after its last) or None where the
        general path (:class:`WindowFold` over streamed batches) reads it, the blocks
        listed). The general path reads a filter on points, ``median``, strings, and a series
        whose data the fold cannot take."""
        fn, _, _, every, offset = spec
        if not FOLD_FROM_BLOCKS or plan.row_filters or fn == "median":
            return None, [None] * len(chunk), 0
        fast = [info for info in chunk if info.type != STRING]
        for info in fast:
            self._value_type(fn, info)
        try:
            got = await self.store.fold_windows(fast, plan.bucket, plan.start, plan.stop,
                                                fold_spec(fn, every, offset),
                                                self.limits.max_rows + 1)
        except MemoryError:
            fail(f"the windows would make more than {self.limits.max_rows} rows")
        self.limits.check_time()
        by_id = {}
        for info, points, first, n in zip(fast, got.points, got.first, got.count):
            if first is not None:
                self.points_read += points
                self.series_folded += 1
                by_id[info.id] = (points, first, first + n)
        return got.windows, [by_id.get(info.id) for info in chunk], sum(got.blocks)

    @staticmethod
    def _value_type(fn: str, info) -> str:
        """The Flux type of a series' values, refused (naming the series) if ``fn()`` does not
        apply to it."""
        value_type = FLUX_TYPES[info.type]
        why = type_refusal(fn, value_type)
        if why:
            fail(f"{fn}() {why} (field {info.field!r} of {info.measurement!r})")
        return value_type

    def _fused(self, plan: p.Plan, ops: list):
        """(ops consumed, kind, window op, aggregate op) when the first operations aggregate
        windows of the points as read, else None."""
        if not ops:
            return None
        first = ops[0]
        if isinstance(first, p.AggregateWindow) and first.column == "_value" \
                and first.period == first.every:
            return 1, "aggregateWindow", first, None
        if isinstance(first, p.Window) and first.period == first.every and len(ops) > 1 \
                and isinstance(ops[1], p.Aggregate) and ops[1].column == "_value":
            return 2, "window", first, ops[1]
        if isinstance(first, p.Aggregate) and first.column == "_value":
            span = plan.stop - plan.start
            if 0 < span <= _INT64_MAX:
                return 1, "aggregate", None, first
        return None

    @staticmethod
    def _newest_answers(plan: p.Plan, fused) -> bool:
        """Whether ``last()`` right after the read can take each series' newest point: it
        is the last point in the range whenever it lies in the range, unless a test of each
        point could refuse it."""
        _, kind, _, agg = fused
        return kind == "aggregate" and agg.fn == "last" and not plan.row_filters

    async def _read_newest(self, plan: p.Plan, info, fused, spec) -> list[Table]:
        """``last()`` of a series from the store's newest point (kept in memory, see
        :meth:`gateway.store.Store.last`); the general read when that point lies after the
        range (a range that stops before now), as then it says nothing about the range."""
        newest = await self.store.last(info.key, plan.bucket)
        if newest is None or newest[0] < plan.start:
            return []   # no point in the range: no table, as in Flux
        if newest[0] >= plan.stop:
            return await self._read_windows(plan, info, fused, spec, None)
        self.points_read += 1
        t, value = newest
        key = self._key(plan, info)
        types = self._key_types(key)
        types.update(_value=FLUX_TYPES[info.type], _time="time")
        self._count_rows(1)
        return [Table(key, {"_value": [bool(value) if info.type == BOOL else value],
                            "_time": [Time(t)]}, types, 1)]

    async def _read_points(self, plan: p.Plan, info) -> Table | None:
        ts_all, vs_all = array("q"), None
        async for ts, values in self._batches(plan, info):
            self._count_rows(len(ts))
            ts_all.extend(ts)
            if vs_all is None:
                vs_all = values
            else:
                vs_all.extend(values)
        if vs_all is None:
            return None
        key = self._key(plan, info)
        types = self._key_types(key)
        value_type = FLUX_TYPES[info.type]
        types.update(_time="time", _value=value_type)
        # columns as read (8 bytes a row), not a Time and a number object per row
        values = [bool(v) for v in vs_all] if info.type == BOOL else vs_all
        return Table(key, {"_time": TimeColumn(ts_all), "_value": values}, types, len(ts_all))

    async def _read_windows(self, plan: p.Plan, info, fused, spec, folded) -> list[Table]:
        _, kind, win, agg = fused
        fn, method, mode, every, offset = spec
        value_type = self._value_type(fn, info)
        if folded is not None:
            points, cols = folded
        else:
            fold = WindowFold(fn, every, offset, value_type, method, mode)
            points = 0
            async for ts, values in self._batches(plan, info):
                fold.add(ts, values)
                points += len(ts)
            found = fold.finish()
        if not points:
            return []   # a series without points in the range gives no table, as in Flux
        key = self._key(plan, info)
        types = self._key_types(key)
        out_type = result_type(fn, method, value_type)
        selector = is_selector(fn, method)
        create = win is not None and win.create_empty and not (selector and kind == "aggregateWindow")
        if folded is not None:
            if kind == "aggregateWindow":   # with createEmpty (see _window_tables)
                values, _ = folded_columns(cols, fn, value_type, mode)
                if isinstance(values, array):
                    starts = array("q", self._window_starts(plan, every, offset, {}, True))
                    values = self._with_empty_windows(starts, every, cols.start, values,
                                                      fn == "count")
                    return [self._window_columns(plan, win, starts, values, key, types, out_type)]
            found = folded_values(cols, fn, value_type, mode)
        if kind == "aggregate":
            if not found:
                return []
            (value, t), = found.values()
            types["_value"] = out_type
            data = {"_value": [value]}
            if selector:
                data["_time"] = [Time(t)]
                types["_time"] = "time"
            self._count_rows(1)
            return [Table(key, data, types, 1)]
        starts = self._window_starts(plan, every, offset, found, create)
        if kind == "aggregateWindow":
            empty = (0 if fn == "count" else None, None)
            if create:
                vals = [found.get(s, empty)[0] for s in starts]
            else:
                vals = [found[s][0] for s in starts]
            return [self._window_columns(plan, win, array("q", starts),
                                         compact_column(vals, out_type), key, types, out_type)]
        tables = []
        for s in starts:
            k = dict(key)
            k["_start"], k["_stop"] = Time(max(s, plan.start)), Time(min(s + every, plan.stop))
            t_types = dict(types, _value=out_type)
            if s in found:
                value, t = found[s]
                data = {"_value": [value]}
                if selector:
                    data["_time"] = [Time(t)]
                    t_types["_time"] = "time"
                tables.append(Table(k, data, t_types, 1))
                self._count_rows(1)
            elif selector:
                tables.append(Table(k, {"_value": []}, t_types, 0))
            else:
                tables.append(Table(k, {"_value": [0 if fn == "count" else None]}, t_types, 1))
                self._count_rows(1)
        return tables

    def _window_tables(self, plan: p.Plan, fused, spec, chunk: list,
                       windows: FoldedWindows | None, folded: list) -> list[Table | None]:
        """aggregateWindow's tables of a trip's series whose windows the C fold gave, without
        createEmpty, built together from the trip's windows: one C call makes the time
        columns of all of them (and one the means, for mean) rather than a few calls a
        series. None for the series that :meth:`_read_windows` reads: the general path,
        createEmpty, no points."""
        _, kind, win, _ = fused
        fn, method, mode, _, _ = spec
        out: list[Table | None] = [None] * len(chunk)
        if windows is None or kind != "aggregateWindow" \
                or (win.create_empty and not is_selector(fn, method)):
            return out
        # the windows are those of the series folded, each with points (a series without
        # points has none): every row is one of a table here
        times = window_times(windows.start, 0 if win.time_src == "_start" else win.every,
                             plan.start, plan.stop)
        self._count_rows(len(times))
        # the values of all the windows, once for each value type of the series
        values_of: dict[str, Any] = {}
        time_dst = win.time_dst
        # (types, columns) by the key's columns and the value type: the series of a query
        # mostly share them
        shapes: dict[tuple, tuple[dict, list]] = {}
        for k, (info, got) in enumerate(zip(chunk, folded)):
            if got is None or not got[0]:
                continue
            _, a, z = got
            value_type = FLUX_TYPES[info.type]
            out_type = result_type(fn, method, value_type)
            all_values = values_of.get(value_type)
            if all_values is None:
                all_values = values_of[value_type] = folded_columns(windows, fn, value_type,
                                                                    mode)[0]
            values = all_values[a:z]
            if isinstance(values, list):   # (stddev's nulls, booleans)
                values = compact_column(values, out_type)
            key = self._key(plan, info)
            shape = (tuple(key), out_type)
            got_shape = shapes.get(shape)
            if got_shape is None:
                types = self._key_types(key)
                types[time_dst] = "time"
                types["_value"] = out_type
                got_shape = shapes[shape] = (types, column_order([*key, time_dst, "_value"]))
            out[k] = Table(key, {time_dst: TimeColumn(times[a:z]), "_value": values},
                           dict(got_shape[0]), z - a, list(got_shape[1]))
        return out

    def _window_columns(self, plan: p.Plan, win: p.AggregateWindow, starts: array, values,
                        key: dict, types: dict, out_type: str) -> Table:
        """aggregateWindow's table of a series' windows, column-backed: the windows' times and
        (numeric) values stay arrays (createEmpty's nulls a byte a row beside them) instead of
        a Python object per row."""
        shift = 0 if win.time_src == "_start" else win.every
        times = window_times(starts, shift, plan.start, plan.stop)
        self._count_rows(len(times))
        types.update({win.time_dst: "time", "_value": out_type})
        return Table(key, {win.time_dst: TimeColumn(times), "_value": values}, types, len(times))

    @staticmethod
    def _with_empty_windows(starts: array, every: int, found: array, values: array,
                            count: bool):
        """``values`` of the windows starting at ``found`` spread over all the windows
        ``starts`` (``every`` apart; ``found`` ascending, a subset): 0 in the empty ones for
        count, else null, as a column of 8 bytes (and a presence byte) a row."""
        if len(found) == len(starts):
            return values                       # no window is empty
        first = starts[0]
        full = array(values.typecode, bytes(values.itemsize * len(starts)))
        present = bytearray(len(starts))
        for s, v in zip(found, values):
            k = (s - first) // every
            full[k] = v
            present[k] = 1
        return full if count else NullableColumn(full, present)

    def _window_starts(self, plan: p.Plan, every: int, offset: int, found: dict,
                       create: bool) -> list[int]:
        if not create:
            return sorted(found)
        first = window_start(plan.start, every, offset % every)
        n = (plan.stop - first + every - 1) // every
        if n > self.limits.max_rows:
            fail(f"the windows would make more than {self.limits.max_rows} rows")
        return [first + k * every for k in range(n)]

    # ------------------------------------------------------------------ table operations

    async def _apply(self, op, tables: list[Table]) -> list[Table]:
        kind = type(op)
        if kind is p.Filter:
            return self._filter(op, tables)
        if kind is p.AggregateWindow:
            return self._aggregate_window(op, tables)
        if kind is p.Window:
            return self._window(op, tables)
        if kind is p.Aggregate:
            return [t for t in (self._aggregate(op, t) for t in tables) if t is not None]
        if kind is p.Group:
            return self._group(op, tables)
        if kind is p.Keep:
            return [self._project(t, [c for c in t.columns if c in op.columns]) for t in tables]
        if kind is p.Drop:
            return [self._project(t, [c for c in t.columns if c not in op.columns]) for t in tables]
        if kind is p.Rename:
            return [self._rename(op, t) for t in tables]
        if kind is p.Map:
            return self._map(op, tables)
        if kind is p.Limit:
            return [self._slice(t, op.offset, op.offset + op.n) for t in tables]
        if kind is p.Sort:
            return [self._sort(op, t) for t in tables]
        if kind is p.To:
            return await self._to(op, tables)
        fail(f"{kind.__name__.lower()}() cannot be used here")

    def _filter(self, op: p.Filter, tables):
        test = self.interp.row_function(op.fn, None)
        out = []
        for t in tables:
            keep = [r for r in t.rows() if test(r) is True]
            self.limits.tick(t.nrows)
            if keep or op.on_empty == "keep":
                out.append(Table.from_rows(t.key, keep, t.columns, t.types))
        return out

    def _window_rows(self, op, t: Table) -> dict[int, list[dict]]:
        if "_time" not in t.columns:
            fail("window() needs a _time column")
        by_start: dict[int, list[dict]] = {}
        for r in t.rows():
            tm = r["_time"]
            if tm is None:
                continue
            s = window_start(tm, op.every, op.offset % op.every)
            while s + op.period > tm:   # every window [s, s + period) that holds tm
                by_start.setdefault(s, []).append(r)
                s -= op.every
        self.limits.tick(t.nrows)
        return by_start

    def _window(self, op: p.Window, tables):
        out = []
        for t in tables:
            groups = self._window_rows(op, t)
            for s in sorted(groups):
                key = dict(t.key, _start=Time(s), _stop=Time(s + op.period))
                types = dict(t.types, _start="time", _stop="time")
                out.append(Table.from_rows(key, groups[s], column_order([*key, *t.columns]), types))
        return out

    def _aggregate(self, op: p.Aggregate, t: Table) -> Table | None:
        if op.column in t.key:
            fail(f"{op.fn}() cannot aggregate the group key column {op.column!r}")
        if op.column not in t.data:
            fail(f"{op.fn}() found no column {op.column!r}")
        times = t.data.get("_time") or [None] * t.nrows
        got = aggregate_values(op.fn, list(zip(times, t.data[op.column])), op.method, op.mode)
        selector = is_selector(op.fn, op.method)
        if selector:
            if got is None:
                return Table(t.key, {c: [] for c in t.data}, t.types, 0, t.columns)
            i = got[2]
            return Table(t.key, {c: [col[i]] for c, col in t.data.items()}, t.types, 1, t.columns)
        value = got[0] if got is not None else None
        types = {k: v for k, v in t.types.items() if k in t.key}
        types[op.column] = result_type(op.fn, op.method, t.types.get(op.column, "float"))
        return Table(t.key, {op.column: [value]}, types, 1)

    def _aggregate_window(self, op: p.AggregateWindow, tables):
        out = []
        win = p.Window(op.every, op.period, op.offset)
        agg = p.Aggregate(op.fn, op.column, op.method)
        selector = is_selector(op.fn, op.method)
        for t in tables:
            groups = self._window_rows(win, t)
            if op.create_empty and not selector and "_start" in t.key and "_stop" in t.key:
                s = window_start(t.key["_start"], op.every, op.offset % op.every)
                while s < t.key["_stop"]:
                    groups.setdefault(s, [])
                    s += op.every
                    self.limits.tick()
            rows = []
            for s in sorted(groups):
                sub = Table.from_rows(t.key, groups[s], t.columns, t.types)
                got = self._aggregate(agg, sub)
                if got is None or not got.nrows:
                    continue
                r = got.row(0)
                lo, hi = s, s + op.period
                if "_start" in t.key:
                    lo = max(lo, t.key["_start"])
                if "_stop" in t.key:
                    hi = min(hi, t.key["_stop"])
                r[op.time_dst] = Time(lo if op.time_src == "_start" else hi)
                if op.fn == "count" and r.get(op.column) is None:
                    r[op.column] = 0
                rows.append(r)
            types = dict(t.types)
            types[op.time_dst] = "time"
            types[op.column] = result_type(op.fn, op.method, t.types.get(op.column, "float"))
            cols = column_order([*t.key, op.time_dst, op.column] + (
                [c for c in t.columns if c not in t.key] if selector else []))
            self._count_rows(len(rows))
            out.append(Table.from_rows(t.key, rows, cols, types))
        return out

    def _group(self, op: p.Group, tables):
        groups: dict[tuple, list[dict]] = {}
        keys: dict[tuple, dict] = {}
        columns: list[str] = []
        types: dict[str, str] = {}
        for t in tables:
            columns.extend(c for c in t.columns if c not in columns)
            for c, ty in t.types.items():
                types.setdefault(c, ty)
            if op.mode == "by":
                key_cols = [c for c in op.columns if c in t.columns]
            else:
                key_cols = [c for c in t.columns if c not in op.columns]
            for r in t.rows():
                key = {c: r.get(c) for c in key_cols}
                kt = tuple((c, sortable(v)) for c, v in key.items())
                groups.setdefault(kt, []).append(r)
                keys[kt] = key
            self.limits.tick(t.nrows)
        out = []
        for kt in sorted(groups, key=lambda k: k):
            out.append(Table.from_rows(keys[kt], groups[kt], columns, types))
        return out

    def _project(self, t: Table, keep: list[str]) -> Table:
        key = {k: v for k, v in t.key.items() if k in keep}
        data = {c: col for c, col in t.data.items() if c in keep}
        return Table(key, data, {c: t.types[c] for c in keep if c in t.types}, t.nrows, keep)

    def _rename(self, op: p.Rename, t: Table) -> Table:
        names = dict(op.pairs)
        new = lambda c: names.get(c, c)
        return Table({new(k): v for k, v in t.key.items()}, {new(c): v for c, v in t.data.items()},
                     {new(c): v for c, v in t.types.items()}, t.nrows, [new(c) for c in t.columns])

    def _map(self, op: p.Map, tables):
        fn = self.interp.row_function(op.fn, None)
        out = []
        for t in tables:
            rows = []
            for r in t.rows():
                got = fn(r)
                if not isinstance(got, dict):
                    fail("map() fn must return a record, e.g. (r) => ({r with _value: ...})")
                rows.append(got)
            self.limits.tick(t.nrows)
            # group-key columns that map() left unchanged stay in the key
            key = {k: v for k, v in t.key.items() if all(r.get(k, object()) == v for r in rows)}
            cols = column_order([*key, *(c for r in rows for c in r)]) if rows else t.columns
            out.append(Table.from_rows(key, rows, cols, None if rows else t.types))
        return out

    def _slice(self, t: Table, a: int, z: int) -> Table:
        return Table(t.key, {c: col[a:z] for c, col in t.data.items()}, t.types,
                     max(0, min(z, t.nrows) - min(a, t.nrows)), t.columns)

    def _sort(self, op: p.Sort, t: Table) -> Table:
        cols = [c for c in op.columns if c in t.columns]
        order = sorted(range(t.nrows), key=lambda i: tuple(sortable(t.value(c, i)) for c in cols),
                       reverse=op.desc)
        return Table(t.key, {c: [col[i] for i in order] for c, col in t.data.items()}, t.types,
                     t.nrows, t.columns)

    async def _to(self, op: p.To, tables):
        if self.writer is None:
            fail("to() writes into a bucket; a query is read-only (tasks may write)")
        self.points_written += await self.writer(op.bucket, tables)
        return tables

