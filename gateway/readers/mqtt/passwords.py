"""Username/password checks against a mosquitto password file (``mosquitto_passwd`` format).

The appliance makes one password file on first boot (``/usr/lib/edge-gateway/mqtt-credentials``)
from cloud-init's ``lan-users`` or a random password; the gateway's LAN endpoint and mosquitto's
subscriber listener read the same hashes, so one set of credentials serves both. Lines are
``user:$7$ITERATIONS$SALT$HASH`` (PBKDF2-HMAC-SHA512, mosquitto 2) or ``user:$6$SALT$HASH``
(SHA-512 of password and salt, mosquitto 1.x), salt and hash in base64. Plain-text passwords are
refused: the file holds hashes only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os

log = logging.getLogger("gateway.readers.mqtt")


class PasswordFile:
    """The hashes of one file, read again when its modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, tuple[str, int, bytes, bytes]] = {}
        self.problems: list[str] = []

    def _load(self) -> None:
        st = os.stat(self.path)
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        users, problems = {}, []
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line or line.startswith("#"):
                    continue
                user, sep, digest = line.partition(":")
                try:
                    if not sep or not user:
                        raise ValueError("expected user:hash")
                    users[user] = _parse_hash(digest)
                except (ValueError, binascii.Error) as e:
                    problems.append(f"{self.path}:{number}: {e}")
        for problem in problems:
            log.error("mqtt password file: %s (line ignored)", problem)
        self._users, self.problems, self._stamp = users, problems, stamp

    def check(self, username: str, password: bytes) -> bool:
        """True when the file has ``username`` with this password. Raises OSError when the file
        cannot be read (the caller refuses the connection as server unavailable)."""
        self._load()
        entry = self._users.get(username)
        if entry is None:
            # Same work as a known user, so timing does not tell which user names exist.
            hashlib.pbkdf2_hmac("sha512", password, b"0" * 12, 101)
            return False
        scheme, iterations, salt, expected = entry
        if scheme == "7":
            actual = hashlib.pbkdf2_hmac("sha512", password, salt, iterations)
        else:
            actual = hashlib.sha512(password + salt).digest()
        return hmac.compare_digest(actual, expected)


def _parse_hash(digest: str) -> tuple[str, int, bytes, bytes]:
    parts = digest.split("$")
    if len(parts) == 5 and parts[0] == "" and parts[1] == "7":
        iterations = int(parts[2])
        if not 1 <= iterations <= 10_000_000:
            raise ValueError(f"iteration count {iterations} out of range")
        return "7", iterations, base64.b64decode(parts[3], validate=True), \
            base64.b64decode(parts[4], validate=True)
    if len(parts) == 4 and parts[0] == "" and parts[1] == "6":
        return "6", 1, base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
    raise ValueError("not a mosquitto_passwd hash ($7$ or $6$); plain-text passwords are refused")
