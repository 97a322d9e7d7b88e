"""Local readings' timestamp precision: the default from the time between readings, rounding,
and the configuration's checks in each reader."""

import pytest

from gateway.config import load_text
from gateway.config.units import parse_duration
from gateway.errors import ConfigError
from gateway.readers.precision import derived_precision, precision_problem, rounded


@pytest.mark.parametrize("gap,expected", [
    (30.0, "1s"), (10.0, "1s"), (2.0, "1s"), (1.9, "1ms"), (0.95, "1ms"), (0.02, "1ms"),
    (0.0019, "1us"), (0.000001, "1ns"), (0.0, "1ns"),
])
def test_default_is_the_coarsest_unit_at_most_half_the_gap(gap, expected):
    precision = derived_precision(gap)
    assert precision.text == expected and precision.ns == parse_duration(expected).ns


def test_rounding_to_the_nearest_multiple():
    assert rounded(1_700_000_000_499_999_999, 10**9) == 1_700_000_000_000_000_000
    assert rounded(1_700_000_000_500_000_000, 10**9) == 1_700_000_001_000_000_000
    assert rounded(1_700_000_000_123_456_789, 10**6) == 1_700_000_000_123_000_000
    assert rounded(1_700_000_000_123_456_789, 1) == 1_700_000_000_123_456_789
    assert rounded(-1_400_000_000, 10**9) == -1_000_000_000   # before 1970 alike


def test_readings_a_gap_apart_never_share_a_rounded_time():
    """Whatever the phase, two readings at least the shortest gap apart round to distinct,
    ordered times under the default precision and under any precision up to the gap."""
    for gap in (0.95, 2.0, 0.02):
        for precision_ns in (derived_precision(gap).ns, round(gap * 1e9)):
            for phase in range(0, 10**9, 7_777_777):
                a = 1_700_000_000 * 10**9 + phase
                b = a + round(gap * 1e9)
                assert rounded(a, precision_ns) < rounded(b, precision_ns)


def test_a_precision_longer_than_the_gap_is_refused():
    assert precision_problem(parse_duration("1s"), 1.0, "x") is None
    problem = precision_problem(parse_duration("1s"), 0.95, "between two polls")
    assert problem.startswith("1s is longer than the 950ms between two polls")
    assert "one would replace the other" in problem


def test_i2c_precision_per_sensor():
    (bus,) = load_text('[[readers.i2c]]\n[[readers.i2c.sensors]]\npart = "bme280"\n'
                       '[[readers.i2c.sensors]]\npart = "sht31"\ninterval = "1s"\n'
                       '[[readers.i2c.sensors]]\npart = "sht4x"\naddress = 0x46\ninterval = "1s"\n'
                       'precision = "100ms"\n').readers["i2c"]
    slow, fast, explicit = bus.sensors
    assert bus.precision_of(slow).text == "1s"       # 10 s less 5 % jitter
    assert bus.precision_of(fast).text == "1ms"      # 950 ms at the shortest
    assert bus.precision_of(explicit).text == "100ms"
    with pytest.raises(ConfigError) as e:
        load_text('[[readers.i2c]]\n[[readers.i2c.sensors]]\npart = "bme280"\ninterval = "1s"\n'
                  'precision = "1s"\n')
    assert ("readers.i2c[0].sensors[0].precision: 1s is longer than the 950ms between two "
            "polls (interval less jitter)") in str(e.value)


def test_host_precision():
    (default,) = load_text("[readers.host]\n").readers["host"]
    assert default.effective_precision.text == "1s"
    (fast,) = load_text('[readers.host]\ninterval = "1s"\n').readers["host"]
    assert fast.effective_precision.text == "1ms"
    (explicit,) = load_text('[readers.host]\ninterval = "1s"\nprecision = "1s"\n').readers["host"]
    assert explicit.effective_precision.ns == 10**9
    with pytest.raises(ConfigError, match=r"readers.host.precision: 1m is longer than the 30s "
                                          r"between two collections"):
        load_text('[readers.host]\nprecision = "1m"\n')


def test_gpio_precision_from_the_debounce():
    (config,) = load_text('[readers.gpio]\n[[readers.gpio.inputs]]\npin = 4\n').readers["gpio"]
    assert config.effective_precision.text == "1ms"    # 20 ms debounce
    (counter,) = load_text('[readers.gpio]\n[[readers.gpio.inputs]]\npin = 4\nmode = "counter"\n'
                           'debounce = "0s"\n').readers["gpio"]
    assert counter.effective_precision.text == "1s"    # reports only, every 60 s
    (raw,) = load_text('[readers.gpio]\n[[readers.gpio.inputs]]\npin = 4\n'
                       'debounce = "0s"\n').readers["gpio"]
    assert raw.effective_precision.text == "1ns"       # edges may come at any time
    with pytest.raises(ConfigError, match=r"readers.gpio.precision: 1s is longer than the 20ms"):
        load_text('[readers.gpio]\nprecision = "1s"\n[[readers.gpio.inputs]]\npin = 4\n')
