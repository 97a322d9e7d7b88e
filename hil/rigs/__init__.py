"""The rigs a scenario can run on, chosen by one option (``--rig``)."""

from __future__ import annotations

import pathlib

from hil.rigs.base import Rig, RigError, RigLacks, StoredPoint

RIG_KINDS = ("emulated", "qemu", "ssh://user@host")


def open_rig(spec: str, workdir: pathlib.Path, card_mib: int = 0) -> Rig:
    """A rig for ``spec`` (``emulated`` or ``qemu``; ``ssh://...`` is not built yet)."""
    if spec == "emulated":
        from hil.rigs.emulated import EmulatedRig
        return EmulatedRig(workdir, card_mib=card_mib)
    if spec == "qemu":
        if card_mib:
            raise RigLacks(spec, "disk (a card of a given size: the qemu rig boots the image's own)")
        from hil.rigs.qemu import QemuRig
        return QemuRig(workdir)
    if spec.startswith("ssh://"):
        raise RigError("the ssh rig is planned, not built yet (hil/README.md)")
    raise RigError(f"--rig must be one of {', '.join(RIG_KINDS)}, got {spec!r}")


__all__ = ["Rig", "RigError", "RigLacks", "StoredPoint", "open_rig", "RIG_KINDS"]
