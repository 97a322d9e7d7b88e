"""Sparklines aggregate every point of a window (min, max, mean), across the batches a series
is streamed in."""

from array import array

from gateway.web.sparkline import HEIGHT, SparkFold


def points(text: str) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in text.split()]


def test_a_spike_between_samples_shows_in_the_band():
    # 1 Hz for ten minutes, flat at 10 but for one point of 50, in two batches that split a window
    ts = array("q", (i * 10**9 for i in range(600)))
    values = array("d", (50.0 if i == 301 else 10.0 for i in range(600)))
    fold = SparkFold(0, 600 * 10**9, columns=60)
    fold.add(ts[:305], values[:305])
    fold.add(ts[305:], values[305:])
    drawing = fold.drawing()
    line, band = points(drawing["line"]), points(drawing["band"])
    assert len(line) == 60 and len(band) == 120
    # the window of the spike: its max at the top of the box, its mean (14) a little above
    # the others (10), its min with them at the bottom
    top = min(y for _, y in band)
    assert top == 1.0
    spike_x = [x for x, y in band[:60] if y == top]
    assert len(spike_x) == 1 and 300 / 600 * 120 < spike_x[0] < 310 / 600 * 120
    means = sorted({y for _, y in line})
    assert means[-1] == HEIGHT - 1 and len(means) == 2   # one window above the flat line


def test_no_points_no_drawing_and_strings_skipped():
    fold = SparkFold(0, 10**9)
    assert fold.drawing() == {"line": "", "band": ""}
    fold.add(array("q", [5]), ["text"])
    assert fold.drawing() == {"line": "", "band": ""}
    fold.add(array("q", [5]), array("B", [1]))   # booleans draw as 0/1
    assert fold.drawing()["line"] != ""
