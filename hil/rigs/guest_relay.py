"""Run by qemu for each connection the guest opens to its uplink address (a ``guestfwd`` of the
``cmd:`` form, ``hil/rigs/virtual_machine.py``): the guest's connection is this process's stdin
and stdout (one end of a socket pair), and it is relayed to a port on this machine's 127.0.0.1,
the rig's fault proxy in front of its upstream. Silent: its stderr is the guest's connection too.

    python3 guest_relay.py PORT
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def relay(guest: socket.socket, host: socket.socket) -> None:
    """Copies both ways until both sides have closed (each end's close is passed on)."""
    selector = selectors.DefaultSelector()
    selector.register(guest, selectors.EVENT_READ, host)
    selector.register(host, selectors.EVENT_READ, guest)
    open_sides = 2
    while open_sides:
        for key, _ in selector.select():
            source: socket.socket = key.fileobj  # type: ignore[assignment]
            data = source.recv(65536)
            if data:
                key.data.sendall(data)
                continue
            selector.unregister(source)
            open_sides -= 1
            try:
                key.data.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def main(argv: list[str]) -> int:
    guest = socket.socket(fileno=os.dup(0))
    try:
        host = socket.create_connection(("127.0.0.1", int(argv[1])), timeout=30)
        host.settimeout(None)
        relay(guest, host)
    except (OSError, IndexError, ValueError):
        return 1   # the guest's connection closes: the link is down, as the proxy's reset says
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
