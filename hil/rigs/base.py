"""What a scenario may ask of a rig: the capabilities, named once for every rig.

A scenario never learns which machine it runs on. It asks its rig to boot the device under test
with a configuration, to cut and restore power, to press a button, to unplug a sensor, to fill
the disk, to cut its uplink, and to read back what the device stored and what its upstream got; each rig (``emulated``, ``qemu``, ``ssh``)
provides what it can. A rig that cannot provide a capability raises :class:`RigLacks`, which the
runner reports as "not possible on this rig" with the capability's name, never as a pass.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hil.rigs.upstreams import Uplink


class RigError(RuntimeError):
    """The rig itself failed (the device did not boot, a command could not be run)."""


class RigLacks(RigError):
    """This rig has no way to provide the capability a scenario asked for."""

    def __init__(self, rig: str, capability: str) -> None:
        super().__init__(f"the {rig} rig cannot provide '{capability}'")
        self.rig = rig
        self.capability = capability


@dataclasses.dataclass(frozen=True)
class StoredPoint:
    """One point as the device under test stored it (read back with ``gateway export``)."""

    measurement: str
    tags: dict[str, str]
    field: str
    time_ns: int
    value: Any


@dataclasses.dataclass
class CardWindow:
    """The card's writes over a measured window."""
    bytes_written: int
    seconds: float
    #: bytes each process wrote in the window (``/proc/<pid>/io``'s write_bytes, by command
    #: name; processes that ended inside it are missing), where the rig can see them
    writers: dict[str, int] = dataclasses.field(default_factory=dict)
    #: the data file system's ext4 journal commits in the window, where the rig can see them
    journal_commits: int | None = None


class Rig(abc.ABC):
    """The capabilities; every method blocks until the rig has carried it out."""

    #: ``emulated``, ``qemu`` or ``ssh``.
    kind: str = "rig"
    #: Whether :meth:`advance_clock` lets the device's time pass faster than real time (a
    #: scenario plays a long wait in less time only then).
    advances_clock: bool = False

    # -- the device under test ---------------------------------------------------------
    @abc.abstractmethod
    def boot(self, config_toml: str) -> None:
        """Installs this gateway configuration and powers the device on; returns once the gateway
        reports ready."""

    @abc.abstractmethod
    def power_cut(self) -> None:
        """Cuts the power at once: nothing is flushed, nothing is told."""

    @abc.abstractmethod
    def power_on(self) -> float:
        """Restores power; returns the seconds until the gateway reported ready again."""

    @abc.abstractmethod
    def restart_gateway(self) -> None:
        """A graceful restart of the gateway service (SIGTERM, then start)."""

    @abc.abstractmethod
    def gateway_running(self) -> bool:
        """Whether the gateway process is alive."""

    @abc.abstractmethod
    def gateway(self, *args: str, timeout: float = 120) -> tuple[int, bytes, str]:
        """Runs ``gateway ARGS...`` on the device (its data dir is filled in); (exit, stdout, stderr)."""

    def points(self, measurement: str | None = None, bucket: str = "raw") -> list[StoredPoint]:
        """Every point the device has stored (of one measurement), read back as line protocol
        (``gateway export``)."""
        from gateway.lineprotocol import parse

        args = ["export", "--bucket", bucket] + (["--measurement", measurement] if measurement else [])
        rc, out, err = self.gateway(*args)
        if rc != 0:
            raise RigError(f"gateway export failed (exit {rc}): {err.strip()}")
        result = parse(out)
        if result.errors:
            raise RigError(f"gateway export printed bad line protocol: {result.errors[0]}")
        return [StoredPoint(m, tags, f, ts, v) for m, tags, f, ts, v in result.batch.points()]

    def status(self, page: str = "overview") -> dict:
        """The device's status API, ``GET /api/status/<page>`` (what its status page shows)."""
        raise RigLacks(self.kind, "status api")

    # -- the clock -----------------------------------------------------------------------
    def set_boot_clock(self, unix_s: float) -> None:
        """The wall clock the device boots with from the next power on, not synchronised (a
        Pi's last fake-hwclock save, or the image's build time on a first boot)."""
        raise RigLacks(self.kind, "clock")

    def step_clock(self, unix_s: float | None = None) -> float | None:
        """Steps the device's wall clock to ``unix_s`` (default: the rig's own time) and marks
        it synchronised, as an NTP client's first step does; returns the step in seconds when
        the rig knows it."""
        raise RigLacks(self.kind, "clock")

    def advance_clock(self, seconds: float) -> None:
        """Lets ``seconds`` of the device's time pass at once: its wall and monotonic clocks
        move on, and so do the timers that wait on them (a replication stream's flush interval
        and backoff), so a scenario plays a long outage in less time. Needs the clock the device
        booted with to be the rig's (:meth:`set_boot_clock`)."""
        raise RigLacks(self.kind, "clock advance")

    # -- the uplink ----------------------------------------------------------------------
    def _uplink(self) -> Uplink:
        """The rig's upstream behind its fault proxy (made on first use)."""
        raise RigLacks(self.kind, "upstream")

    def upstream_url(self) -> str:
        """The base URL of the rig's upstream as the device reaches it, for a ``[[replication]]``
        table of ``kind = "influxdb_v2"`` (a VictoriaMetrics, which takes InfluxDB writes)."""
        raise RigLacks(self.kind, "upstream")

    def upstream_points(self) -> dict[tuple, list[tuple[int, float]]]:
        """Every sample the upstream holds, duplicates included, in time order:
        ``{(metric, sorted labels): [(ms, value), ...]}`` in VictoriaMetrics' mapping of an
        InfluxDB v2 write (``<measurement>_<field>``, the tags as labels; docs/replication.md)."""
        return self._uplink().export()

    def uplink_cut(self) -> None:
        """Cuts the device's way to its upstream (open connections are reset, new ones refused);
        the LAN side stays up."""
        self._uplink().set_cut(True)

    def uplink_restore(self) -> None:
        """Gives the device its way to the upstream back."""
        self._uplink().set_cut(False)

    # -- stimulus ----------------------------------------------------------------------
    def press(self, pin: int, count: int = 1, hold_ms: int = 60, gap_ms: int = 60) -> None:
        """Presses a button wired between the GPIO pin and ground ``count`` times."""
        raise RigLacks(self.kind, "gpio stimulus")

    def i2c_fault(self, bus: int, address: int, fault: str, count: int | None = None) -> None:
        """``vanish`` (unplugged), ``reappear``, ``corrupt_crc``, ``nack`` or ``clear``."""
        raise RigLacks(self.kind, "i2c faults")

    # -- storage -----------------------------------------------------------------------
    def fill_disk(self, leave_bytes: int = 0) -> int:
        """Fills the device's data file system until ``leave_bytes`` are free; returns bytes used."""
        raise RigLacks(self.kind, "disk")

    def free_disk(self) -> None:
        """Removes what :meth:`fill_disk` wrote."""
        raise RigLacks(self.kind, "disk")

    def block_device_bytes_written(self) -> int:
        """Bytes written to the data's block device since boot, from the device's own counters."""
        raise RigLacks(self.kind, "block device counters")

    def card_writes_during(self, seconds: float) -> CardWindow:
        """What the card is written in the next ``seconds``: its block device's counters read
        at both ends (a rig with per-process counters says which processes wrote)."""
        before, started = self.block_device_bytes_written(), time.monotonic()
        time.sleep(seconds)
        return CardWindow(self.block_device_bytes_written() - before, time.monotonic() - started)

    def filesystem_state(self) -> str:
        """The data's file system as its superblock records it: ``clean``, or what is wrong."""
        raise RigLacks(self.kind, "file system state")

    # -- the LAN ------------------------------------------------------------------------
    def device_listener(self) -> tuple[str, str]:
        """(listen address, password file) for the gateway's ``[readers.mqtt.listener]``, as
        seen on the device."""
        raise RigLacks(self.kind, "mqtt publisher")

    def subscriber_broker_url(self) -> str:
        """The broker subscribers use, as seen on the device (the gateway passes device
        messages on to it)."""
        raise RigLacks(self.kind, "mqtt publisher")

    def mqtt_device_endpoint(self) -> tuple[str, int, str | None, str | None]:
        """(host, port, username, password) a LAN device publishes to, as seen from the rig."""
        raise RigLacks(self.kind, "mqtt publisher")

    def close(self) -> None:
        """Powers the device off and releases what the rig made (processes, mounts, files)."""
