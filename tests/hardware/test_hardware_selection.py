"""The one place that picks real or emulated hardware."""

import errno

import pytest
from gpiozero.pins.mock import MockFactory

from gateway import hardware
from gateway.hardware.emulated import EmulatedBME280, EmulatedRig


def test_environment_overrides_the_setting():
    assert hardware.resolve("real", {"GATEWAY_HW": "emulated"}) == "emulated"
    assert hardware.resolve("emulated", {"GATEWAY_HW": "REAL"}) == "real"


def test_setting_used_without_environment():
    assert hardware.resolve("real", {}) == "real"
    assert hardware.resolve("emulated", {}) == "emulated"


def test_bad_environment_value_is_named():
    with pytest.raises(hardware.HardwareUnavailable, match="GATEWAY_HW must be 'real' or 'emulated', got 'pi'"):
        hardware.resolve("auto", {"GATEWAY_HW": "pi"})


def test_auto_detects_a_pi_from_the_device_tree(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert hardware.is_raspberry_pi(model)
    model.write_bytes(b"Generic x86 board\x00")
    assert not hardware.is_raspberry_pi(model)
    assert not hardware.is_raspberry_pi(tmp_path / "absent")
    monkeypatch.setattr(hardware, "is_raspberry_pi", lambda: True)
    assert hardware.resolve("auto", {}) == "real"
    monkeypatch.setattr(hardware, "is_raspberry_pi", lambda: False)
    assert hardware.resolve("auto", {}) == "emulated"


def test_emulated_bus_handles_share_the_rig(monkeypatch):
    monkeypatch.setenv("GATEWAY_HW", "emulated")
    rig = EmulatedRig()
    rig.bus(3).attach(EmulatedBME280(0x77, clock=lambda: 1.0))
    hardware.replace_emulated_rig(rig)
    try:
        first = hardware.open_i2c_bus(3, "real")  # the environment wins over the setting
        first.close()
        first.close()  # safe twice
        with pytest.raises(OSError):
            first.read_byte_data(0x77, 0xD0)
        second = hardware.open_i2c_bus(3)
        assert second.read_byte_data(0x77, 0xD0) == 0x60
        with pytest.raises(OSError) as e:
            second.read_byte_data(0x76, 0xD0)
        assert e.value.errno == errno.EREMOTEIO
        assert isinstance(hardware.pin_factory(), MockFactory)
        assert hardware.pin_factory() is hardware.pin_factory()
    finally:
        hardware.replace_emulated_rig(None)


def test_default_rig_has_the_documented_parts(monkeypatch):
    hardware.replace_emulated_rig(None)
    try:
        rig = hardware.emulated_rig()
        assert rig.bus(1).addresses == [0x44, 0x76]
        assert rig.bus(1).device(0x76).part == "bme280"
        assert rig.bus(1).device(0x44).part == "sht3x"
    finally:
        hardware.replace_emulated_rig(None)


def test_real_bus_missing_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("GATEWAY_HW", raising=False)
    with pytest.raises(hardware.HardwareUnavailable, match=r"/dev/i2c-250"):
        hardware.open_i2c_bus(250, "real")
