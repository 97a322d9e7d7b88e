"""Hardware access: the one place that decides between real and emulated buses.

Readers ask for ``open_i2c_bus(n, setting)`` and ``pin_factory(setting)`` and get an object
shaped like ``smbus2.SMBus`` and a gpiozero pin factory; they never learn which kind they got.
The choice, in order: ``GATEWAY_HW=real|emulated`` in the environment; the configuration's
``[gateway] hardware`` (``real``, ``emulated``, or ``auto``); for ``auto``, real on a Raspberry Pi
(its device-tree model says so) and emulated anywhere else.

Real I2C is ``smbus2.SMBus`` on ``/dev/i2c-N``; real GPIO is gpiozero's lgpio factory (the one
that works on the Pi 5's RP1 as well as older boards). The emulated rig is one per process, so
tests and HIL scenarios can reach the very parts the readers talk to.

Fake data never passes for real: every point a reader measures on the emulated rig carries the
tag ``source=emulated`` (:func:`source_tags`), the rig's start is logged as a warning, and the
readers' ``health()`` says ``"hardware": "emulated hardware"``. The SD-card image configures
``hardware = "real"``, so ``auto`` only applies where a configuration leaves it unset.
"""

from __future__ import annotations

import logging
import os
import pathlib
import threading

from gateway.errors import ReaderError

HARDWARE_ENV = "GATEWAY_HW"
CHOICES = ("real", "emulated")
#: What logs and health() say wherever the emulated rig runs.
EMULATED = "emulated hardware"
#: The tag on every point measured on the emulated rig.
EMULATED_TAGS = {"source": "emulated"}

log = logging.getLogger("gateway.hardware")
_DEVICE_TREE_MODEL = pathlib.Path("/proc/device-tree/model")

_rig = None
_rig_lock = threading.Lock()


class HardwareUnavailable(ReaderError):
    """The real hardware back-end cannot be opened (no device node, library missing)."""


def is_raspberry_pi(model_path: pathlib.Path = _DEVICE_TREE_MODEL) -> bool:
    try:
        return model_path.read_bytes().startswith(b"Raspberry Pi")
    except OSError:
        return False


def resolve(setting: str = "auto", environ=os.environ) -> str:
    """``"real"`` or ``"emulated"`` for a configuration setting, honouring ``GATEWAY_HW``."""
    forced = environ.get(HARDWARE_ENV, "").strip().lower()
    if forced:
        if forced not in CHOICES:
            raise HardwareUnavailable(
                f"{HARDWARE_ENV} must be 'real' or 'emulated', got {environ[HARDWARE_ENV]!r}")
        return forced
    if setting in CHOICES:
        return setting
    if setting != "auto":
        raise ValueError(f"hardware must be 'auto', 'real' or 'emulated', got {setting!r}")
    return "real" if is_raspberry_pi() else "emulated"


def source_tags(setting: str = "auto") -> dict[str, str]:
    """The tags a reader adds to the points it measures: ``source=emulated`` on the emulated rig,
    none on real hardware (nor when ``GATEWAY_HW`` is invalid: opening the bus reports that)."""
    try:
        return dict(EMULATED_TAGS) if resolve(setting) == "emulated" else {}
    except HardwareUnavailable:
        return {}


def emulated_rig():
    """The process's emulated rig (created with the default parts on first use)."""
    global _rig
    with _rig_lock:
        if _rig is None:
            from gateway.hardware.emulated.rig import default_rig
            _rig = default_rig()
            log.warning("%s: the I2C and GPIO readers measure simulated parts, not sensors; "
                        "their points are tagged source=emulated (set [gateway] hardware = "
                        "\"real\" on a gateway with real sensors)", EMULATED)
        return _rig


def replace_emulated_rig(rig) -> None:
    """Installs another rig (tests, HIL scenarios); None goes back to the default on next use."""
    global _rig
    with _rig_lock:
        _rig = rig


def open_i2c_bus(bus_number: int, setting: str = "auto"):
    """An open ``smbus2.SMBus``-shaped bus; the caller closes it."""
    if resolve(setting) == "emulated":
        return emulated_rig().open_bus(bus_number)
    from smbus2 import SMBus
    try:
        return SMBus(bus_number)
    except OSError as e:
        raise HardwareUnavailable(
            f"cannot open /dev/i2c-{bus_number}: {e.strerror} "
            "(is I2C enabled, dtparam=i2c_arm=on, and may this user open it?)") from None


def pin_factory(setting: str = "auto"):
    """The gpiozero pin factory for this machine."""
    if resolve(setting) == "emulated":
        return emulated_rig().pin_factory
    try:
        from gpiozero.pins.lgpio import LGPIOFactory
        return LGPIOFactory()
    except ImportError as e:
        raise HardwareUnavailable(f"the lgpio library is not installed ({e})") from None
    except Exception as e:  # gpiozero raises its own errors when no GPIO chip can be opened
        raise HardwareUnavailable(f"cannot open the GPIO chip: {e}") from None


__all__ = ["EMULATED", "EMULATED_TAGS", "HARDWARE_ENV", "HardwareUnavailable", "emulated_rig",
           "is_raspberry_pi", "open_i2c_bus", "pin_factory", "replace_emulated_rig", "resolve",
           "source_tags"]
