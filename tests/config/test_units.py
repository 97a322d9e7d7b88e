import pytest

from gateway.config.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize("text,seconds", [
    ("10s", 10), ("7d", 7 * 86400), ("1h30m", 5400), ("250ms", 0.25), ("2w", 14 * 86400),
    ("1.5s", 1.5), ("100us", 1e-4), ("0s", 0),
])
def test_durations(text, seconds):
    d = parse_duration(text)
    assert float(d) == pytest.approx(seconds)
    assert d.text == text


@pytest.mark.parametrize("text", ["", "10", "s", "10 parsecs", "-1s", "1y", "5x"])
def test_bad_durations_name_the_value(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("text,size", [
    ("512MiB", 512 * 2**20), ("1GB", 10**9), ("4096", 4096), ("64 KiB", 65536), ("1.5GiB", 3 * 2**29),
    (1024, 1024),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "12 parsecs", "MiB", "-5MiB", True, 1.5])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_formatting_round_trips():
    for s in (1, 60, 3600, 86400, 604800, 0.5, 90):
        assert float(parse_duration(format_duration(s))) == pytest.approx(s)
    for n in (1, 1024, 3 * 2**20, 5 * 2**30, 1000):
        assert parse_size(format_size(n)) == n
