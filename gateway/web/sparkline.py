"""Sparklines: a series' points reduced to a fixed number of windows, drawn as an SVG polyline.

Each window shows the last point in it (a sample, cheap on a Pi: one bisection per window);
the drawing is scaled to the series' own range, so the shape, not the level, is what shows.
"""

from __future__ import annotations

import bisect
import math

#: Size of the SVG viewBox the points are drawn in.
WIDTH, HEIGHT = 120.0, 24.0


def sample(timestamps, values, start_ns: int, stop_ns: int, windows: int) -> list[tuple[int, float]]:
    """(time, value) of the last point in each of ``windows`` equal windows of [start, stop)."""
    if windows <= 0 or stop_ns <= start_ns or not len(timestamps):
        return []
    step = (stop_ns - start_ns) / windows
    out = []
    for w in range(windows):
        hi = bisect.bisect_left(timestamps, int(start_ns + (w + 1) * step))
        lo = bisect.bisect_left(timestamps, int(start_ns + w * step))
        if hi > lo:
            v = values[hi - 1]
            if isinstance(v, (int, float)) and math.isfinite(float(v)):
                out.append((timestamps[hi - 1], float(v)))
    return out


def polyline(points: list[tuple[int, float]], start_ns: int, stop_ns: int) -> str:
    """The ``points`` attribute of an SVG polyline in a WIDTH x HEIGHT box ('' for no points)."""
    if not points:
        return ""
    lo = min(v for _, v in points)
    hi = max(v for _, v in points)
    span_v = hi - lo or 1.0
    span_t = (stop_ns - start_ns) or 1
    out = []
    for t, v in points:
        x = (t - start_ns) / span_t * WIDTH
        y = HEIGHT - 1 - (v - lo) / span_v * (HEIGHT - 2)
        out.append(f"{x:.1f},{y:.1f}")
    if len(out) == 1:  # one point still shows as a short level line
        out.append(f"{min(WIDTH, float(out[0].split(',')[0]) + 2):.1f},{out[0].split(',')[1]}")
    return " ".join(out)
