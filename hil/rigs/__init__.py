"""The rigs a scenario can run on, chosen by one option (``--rig``)."""

from __future__ import annotations

import pathlib

from hil.rigs.base import Rig, RigError, RigLacks, StoredPoint

RIG_KINDS = ("emulated", "qemu", "ssh://user@host[:port]")


def open_rig(spec: str, workdir: pathlib.Path, card_mib: int = 0, power_command: str | None = None,
             ssh_key: str | None = None, gpio_loopback: str | None = None,
             lan_endpoint: str | None = None, upstream_listen: str | None = None,
             upstream_url: str | None = None) -> Rig:
    """A rig for ``spec`` (``emulated``, ``qemu`` or ``ssh://user@host[:port]``; the ssh rig's
    power command, key, GPIO wiring, LAN address and upstream are its options). ``card_mib`` is
    the size of the emulated rig's card; a device (qemu, ssh) has a card of its own, whatever its
    size."""
    if spec == "emulated":
        from hil.rigs.emulated import EmulatedRig
        return EmulatedRig(workdir, card_mib=card_mib)
    if spec == "qemu":
        from hil.rigs.qemu import QemuRig
        return QemuRig(workdir)
    if spec.startswith("ssh://"):
        from hil.rigs.ssh import (CommandPower, Shell, SshRig, parse_endpoint, parse_gpio_loopback,
                                  parse_target)
        if not power_command:
            raise RigError("the ssh rig needs --power-command 'TEMPLATE' ({state} is on or off)")
        user, host, port = parse_target(spec)
        shell = Shell(user, host, port, pathlib.Path(ssh_key) if ssh_key else None)
        return SshRig(workdir, shell, CommandPower(power_command), lan_endpoint=parse_endpoint(lan_endpoint),
                      gpio_loopback=parse_gpio_loopback(gpio_loopback),
                      upstream_listen=parse_endpoint(upstream_listen, "--upstream-listen"), upstream_url=upstream_url)
    raise RigError(f"--rig must be one of {', '.join(RIG_KINDS)}, got {spec!r}")


__all__ = ["Rig", "RigError", "RigLacks", "StoredPoint", "open_rig", "RIG_KINDS"]
