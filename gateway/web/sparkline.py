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
        windows = self.windows
        for start, n, total, lo, hi in zip(cols.start.tolist(), cols.count.tolist(),
                                           cols.sum.tolist(), cols.min.tolist(), cols.max.tolist()):
            got = windows.get(start)
            if got is None:
                windows[start] = [n, total, lo, hi]
            else:   # the window continues from the previous batch
                got[0] += n
                got[1] += total
                got[2] = min(got[2], lo)
                got[3] = max(got[3], hi)

    def drawing(self) -> dict[str, str]:
        """``line`` (the means) and ``band`` (min to max): the ``points`` of an SVG polyline
        and polygon in a WIDTH x HEIGHT box; both '' without points."""
        isfinite = math.isfinite
        to_x = WIDTH / ((self.stop - self.start) or 1)
        half = self.every / 2
        rows = []
        for start in sorted(self.windows):
            n, total, lo, hi = self.windows[start]
            mean = total / n
            if isfinite(mean) and isfinite(lo) and isfinite(hi):
                middle = min(max(start + half, self.start), self.stop)
                rows.append(((middle - self.start) * to_x, lo, mean, hi))
        if not rows:
            return {"line": "", "band": ""}
        if len(rows) == 1:   # one window still shows as a short level line
            x, lo, mean, hi = rows[0]
            rows.append((min(WIDTH, x + 2), lo, mean, hi))
        low = min(r[1] for r in rows)
        scale = (HEIGHT - 2) / ((max(r[3] for r in rows) - low) or 1.0)
        top = HEIGHT - 1 + low * scale   # y = top - v * scale
        line = " ".join(["%.1f,%.1f" % (x, top - mean * scale) for x, _, mean, _ in rows])
        upper = ["%.1f,%.1f" % (x, top - hi * scale) for x, _, _, hi in rows]
        lower = ["%.1f,%.1f" % (x, top - lo * scale) for x, lo, _, _ in reversed(rows)]
        return {"line": line, "band": " ".join(upper + lower)}
