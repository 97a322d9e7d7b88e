"""The uplink of the rigs on the image (ssh, qemu): the upstream is a real VictoriaMetrics on this
machine, listening where the device reaches it, and a cut is made on the device itself, as a
field outage is seen from there: iptables rules (bookworm's, nft backend) in a chain of the
rig's own, hooked first into OUTPUT and INPUT.

* to the upstream (the URL's host and port, as the device sees them): every TCP segment the
  device sends is refused with a reset, so a new connection fails at once and an open one
  (a kept-alive connection, a request being sent) is reset at its next segment;
* from the upstream: every segment is dropped, so an answer in flight at the cut is lost and
  the request waiting for it times out, as over a dead link. Resets pass: the one the first
  rule sends the device's own socket comes from the upstream's address.

The rules are not persistent (the image has no iptables-persistent): a reboot leaves none, so
the rig applies them again after a power on while the uplink is cut, and removes them at the
restore and when it closes. IPv4 only: the upstream's host is an IPv4 address or a name the
device resolves to one.
"""

from __future__ import annotations

import ipaddress
import pathlib
import shlex
import urllib.parse

from hil.rigs.base import RigError
from hil.rigs.upstreams import VictoriaMetrics

#: The rig's own chain: removing it removes every rule of the cut and nothing else.
CHAIN = "HIL_UPLINK_CUT"
HOOKS = ("OUTPUT", "INPUT")


def device_target(url: str) -> tuple[str, int]:
    """(host, port) of the upstream's URL as the device uses it: what the cut refuses."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None:
        raise RigError(f"--upstream-url takes http://HOST:PORT (as the device reaches the upstream), got {url!r}")
    try:
        if ipaddress.ip_address(parts.hostname).version != 4:
            raise RigError(f"the uplink cut is IPv4 only (iptables), the upstream URL names {parts.hostname}")
    except ValueError:
        pass   # a name: the device resolves it when the rule is made
    return parts.hostname, port


def cut_script(host: str, port: int) -> str:
    """Shell (as root on the device): the cut's chain, made afresh and hooked in first."""
    h, p, w = shlex.quote(host), port, "iptables -w"
    hooks = " ".join(HOOKS)
    return (f"set -e\n"
            f"{w} -N {CHAIN} 2>/dev/null || {w} -F {CHAIN}\n"
            f"{w} -A {CHAIN} -p tcp -d {h} --dport {p} -j REJECT --reject-with tcp-reset\n"
            f"{w} -A {CHAIN} -p tcp -s {h} --sport {p} ! --tcp-flags RST RST -j DROP\n"
            f"for hook in {hooks}; do {w} -C $hook -j {CHAIN} 2>/dev/null || {w} -I $hook 1 -j {CHAIN}; done\n")


def restore_script() -> str:
    """Shell (as root on the device): the chain unhooked and removed, whether or not it was there
    (after a reboot it is not); fails if a rule of it is left."""
    w = "iptables -w"
    hooks = " ".join(HOOKS)
    return (f"for hook in {hooks}; do while {w} -D $hook -j {CHAIN} 2>/dev/null; do :; done; done\n"
            f"{w} -F {CHAIN} 2>/dev/null || true\n"
            f"{w} -X {CHAIN} 2>/dev/null || true\n"
            f"! {w} -S {CHAIN} >/dev/null 2>&1\n")


class DeviceUplink:
    """The upstream (started here) and the cut's state; the rules go through the rig's shell."""

    def __init__(self, directory: pathlib.Path, listen: tuple[str, int], device_url: str | None = None) -> None:
        self.device_url = device_url or f"http://{listen[0]}:{listen[1]}"
        self.target = device_target(self.device_url)
        self.upstream = VictoriaMetrics(directory, host=listen[0], port=listen[1])
        self.upstream.start()
        #: Whether the rules should be on the device (a power on applies them again).
        self.cut = False

    def apply(self, shell) -> None:
        """Puts the cut's rules on the device (again, after a reboot)."""
        shell.ssh(f"sudo sh -c {shlex.quote(cut_script(*self.target))}", timeout=60)

    def set_cut(self, shell, cut: bool) -> None:
        if cut:
            self.apply(shell)
        else:
            shell.ssh(f"sudo sh -c {shlex.quote(restore_script())}", timeout=60)
        self.cut = cut

    def export(self) -> dict[tuple, list[tuple[int, float]]]:
        return self.upstream.export()

    def close(self) -> None:
        self.upstream.stop()
