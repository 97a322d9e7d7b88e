"""API tokens: write, query and admin scopes, stored hashed in ``<data_dir>/tokens.json``.

A token is shown once, when it is created; the file keeps only its SHA-256 (tokens are long
random strings, or at least 16 characters an operator chose, so a salted slow hash would buy
little and cost every request). A presented token is hashed and compared with every stored hash
in constant time. The running gateway rereads the file when it changes, so ``gateway token
create`` takes effect without a restart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import threading
import time

SCOPES = ("write", "query", "admin")
#: Shortest token an operator may choose (``--token-file``).
MIN_TOKEN_LENGTH = 16
FILE_NAME = "tokens.json"


class TokenError(ValueError):
    """A token that cannot be created (bad scope, too short, unreadable file)."""


@dataclasses.dataclass(frozen=True)
class TokenRecord:
    id: str
    scope: str
    sha256: str
    created: str

    def allows(self, scope: str) -> bool:
        return self.scope == scope or self.scope == "admin"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token() -> str:
    return "gw_" + secrets.token_urlsafe(32)


def check_token_text(token: str) -> str:
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise TokenError(f"a token needs at least {MIN_TOKEN_LENGTH} characters, got {len(token)}")
    if any(c.isspace() or ord(c) < 32 for c in token):
        raise TokenError("a token cannot contain spaces or control characters")
    return token


class TokenStore:
    """The tokens of one data directory (thread-safe)."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, FILE_NAME)
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._records: list[TokenRecord] = []

    def records(self) -> list[TokenRecord]:
        with self._lock:
            self._reload_locked()
            return list(self._records)

    def _reload_locked(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._records = None, []
            return
        key = (st.st_mtime_ns, st.st_size)
        if key == self._seen:
            return
        with open(self.path, encoding="utf-8") as f:
            raw = json.load(f)
        records = []
        for i, item in enumerate(raw.get("tokens", [])):
            if item.get("scope") not in SCOPES or not isinstance(item.get("sha256"), str):
                raise TokenError(f"{self.path}: token {i} has no valid scope or hash")
            records.append(TokenRecord(str(item.get("id", i)), item["scope"], item["sha256"],
                                       str(item.get("created", ""))))
        self._seen, self._records = key, records

    def find(self, token: str | None) -> TokenRecord | None:
        """The record of a presented token, or None; time does not depend on which one matched."""
        if not token:
            return None
        digest = _digest(token)
        found = None
        for record in self.records():
            if hmac.compare_digest(record.sha256, digest):
                found = record
        return found

    def create(self, scope: str, token: str | None = None) -> tuple[str, TokenRecord]:
        """Adds a token (a new random one, or the given one) and returns it with its record."""
        if scope not in SCOPES:
            raise TokenError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        token = new_token() if token is None else check_token_text(token)
        record = TokenRecord(secrets.token_hex(4), scope, _digest(token),
                             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        with self._lock:
            self._reload_locked()
            kept = [r for r in self._records if r.sha256 != record.sha256]
            self._write_locked([*kept, record])
        return token, record

    def _write_locked(self, records: list[TokenRecord]) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = f"{self.path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"tokens": [dataclasses.asdict(r) for r in records]}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._seen = None
