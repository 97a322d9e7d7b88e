"""Sparklines: a series over a span, one window per pixel column of the drawing, each window
the min, max and mean of *all* its points (the C window kernel, :mod:`gateway.aggregate`, over
the batches the store streams), drawn as an SVG band from min to max with the mean as a line.

A spike between two samples therefore still shows. The drawing is scaled to the series' own
range, so the shape, not the level, is what shows.
"""

from __future__ import annotations

import math

from gateway.aggregate import window_aggregate

#: Size of the SVG viewBox the points are drawn in, and the windows across it (one a pixel).
WIDTH, HEIGHT = 120.0, 24.0
COLUMNS = 120


class SparkFold:
    """Feed a series' (timestamps, values) batches of [start, stop) with :meth:`add` (numbers
    and booleans; strings have no sparkline), then :meth:`drawing`."""

    def __init__(self, start_ns: int, stop_ns: int, columns: int = COLUMNS) -> None:
        self.start, self.stop = start_ns, stop_ns
        self.every = max(1, -(-(stop_ns - start_ns) // columns))
        #: window start -> [count, sum, min, max]
        self.windows: dict[int, list] = {}

    def add(self, timestamps, values) -> None:
        if not len(timestamps) or isinstance(values, list):
            return
        cols = window_aggregate(timestamps, values, self.every, self.start % self.every)
        for k in range(len(cols)):
            start = cols.start[k]
            got = self.windows.get(start)
            if got is None:   # a window may continue in the next batch
                self.windows[start] = [cols.count[k], cols.sum[k], cols.min[k], cols.max[k]]
            else:
                got[0] += cols.count[k]
                got[1] += cols.sum[k]
                got[2] = min(got[2], cols.min[k])
                got[3] = max(got[3], cols.max[k])

    def drawing(self) -> dict[str, str]:
        """``line`` (the means) and ``band`` (min to max): the ``points`` of an SVG polyline
        and polygon in a WIDTH x HEIGHT box; both '' without points."""
        rows = []
        for start in sorted(self.windows):
            n, total, lo, hi = self.windows[start]
            mean = total / n
            if all(math.isfinite(v) for v in (mean, lo, hi)):
                middle = min(max(start + self.every / 2, self.start), self.stop)
                rows.append(((middle - self.start) / ((self.stop - self.start) or 1) * WIDTH,
                             lo, mean, hi))
        if not rows:
            return {"line": "", "band": ""}
        low = min(r[1] for r in rows)
        span = (max(r[3] for r in rows) - low) or 1.0

        def y(v: float) -> str:
            return f"{HEIGHT - 1 - (v - low) / span * (HEIGHT - 2):.1f}"

        if len(rows) == 1:   # one window still shows as a short level line
            x, lo, mean, hi = rows[0]
            rows.append((min(WIDTH, x + 2), lo, mean, hi))
        line = " ".join(f"{x:.1f},{y(mean)}" for x, _, mean, _ in rows)
        band = " ".join([f"{x:.1f},{y(hi)}" for x, _, _, hi in rows] +
                        [f"{x:.1f},{y(lo)}" for x, lo, _, _ in reversed(rows)])
        return {"line": line, "band": band}
