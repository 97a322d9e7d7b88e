"""I2C reader configuration: validation names the key and value; sample.toml is its documentation."""

import pathlib

import pytest

import gateway.readers.i2c as i2c_reader
from gateway.config import load_text
from gateway.errors import ConfigError

SAMPLE = pathlib.Path(i2c_reader.__file__).with_name("sample.toml")


def load(text):
    return load_text(text).readers["i2c"]


def test_sample_loads_and_means_what_it_says():
    (bus,) = load(SAMPLE.read_text())
    assert bus.bus == 1 and float(bus.retry_max) == 300
    bme, sht, ads = bus.sensors
    assert (bme.part, bme.address, bme.name, float(bme.interval)) == ("bme280", 0x76, "greenhouse", 10)
    assert bme.tags == {"room": "greenhouse"}
    assert (sht.part, sht.address, sht.measurement) == ("sht3x", 0x44, "environment")
    assert (ads.part, ads.measurement, len(ads.channels)) == ("ads1115", "soil", 2)
    assert ads.channels[0].scale == pytest.approx(30.303)
    assert ads.channels[1].scale is None


def test_readme_includes_the_sample():
    readme = SAMPLE.with_name("README.md").read_text()
    assert SAMPLE.read_text() in readme


def test_defaults_per_part():
    (bus,) = load('[[readers.i2c]]\n[[readers.i2c.sensors]]\npart = "SHT45"\n'
                  '[[readers.i2c.sensors]]\npart = "bme280"\n')
    sht, bme = bus.sensors
    assert (sht.part, sht.address, sht.name) == ("sht4x", 0x44, "sht4x-44")
    assert (bme.address, bme.name, float(bme.interval)) == (0x76, "bme280-76", 10.0)


@pytest.mark.parametrize("body,message", [
    ('part = "bme680"', "sensors[0].part: unknown part 'bme680'"),
    ('part = "bme280"\naddress = 0x44', "sensors[0].address: a bme280 answers at 0x76, 0x77, got 0x44"),
    ('part = "sht31"\nchannels = [{input = 0}]', "sensors[0].channels: only an ads1115 has channels"),
    ('part = "ads1115"', "sensors[0].channels: an ads1115 needs at least one"),
    ('part = "ads1115"\nchannels = [{input = 4}]', "channels[0].input: must be between 0 and 3, got 4"),
    ('part = "ads1115"\nchannels = [{input = 0, data_rate = 100}]', "data_rate must be one of 8, 16"),
    ('part = "bme280"\noversampling = 3', "oversampling must be one of 1, 2, 4, 8, 16, got 3"),
    ('part = "bme280"\ninterval = "0s"', "interval: must be greater than zero"),
    ('part = "bme280"\ntags = {sensor = "x"}', "tags.sensor: tag 'sensor' is set by the reader itself"),
    ('part = "sht4x"\nrepeatability = "ultra"', "repeatability: must be one of 'high', 'medium', 'low'"),
    ('part = "bme280"\nadress = 0x76', "unknown key 'adress'; did you mean 'address'?"),
])
def test_bad_sensor_settings_are_named(body, message):
    with pytest.raises(ConfigError) as e:
        load(f"[[readers.i2c]]\n[[readers.i2c.sensors]]\n{body}\n")
    assert message in str(e.value)


def test_duplicates_and_bus_settings():
    text = ('[[readers.i2c]]\nbus = 1\nretry_initial = "10s"\nretry_max = "1s"\njitter = 0.9\n'
            '[[readers.i2c.sensors]]\npart = "sht31"\n[[readers.i2c.sensors]]\npart = "sht4x"\n'
            'name = "sht3x-44"\n')
    with pytest.raises(ConfigError) as e:
        load(text)
    msg = str(e.value)
    assert "jitter: must be between 0.0 and 0.5, got 0.9" in msg
    with pytest.raises(ConfigError) as e:
        load(text.replace("jitter = 0.9\n", ""))
    msg = str(e.value)
    assert "retry_max: must not be shorter than retry_initial (10s)" in msg
    assert "sensors[1].address: 0x44 is already used by sensors[0] on bus 1" in msg
    assert "sensors[1].name: sensor name 'sht3x-44' is used twice" in msg
