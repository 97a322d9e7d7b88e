"""Secrets (tokens, passwords) from a file or an environment variable, never printed or logged.

In TOML a secret is written ``{ file = "/etc/gateway/token" }`` or ``{ env = "UPSTREAM_TOKEN" }``;
a plain string is accepted too (for tests and quick setups) and is shown as ``"<redacted>"``.
A secret file must exist when the configuration is loaded and must not be readable by all
(``check-config`` refuses it then, rather than the gateway failing later or leaking it).
"""

from __future__ import annotations

import os
import pathlib
import stat


class Secret:
    """A secret value resolved on demand; ``str()``/``repr()`` never show it."""

    __slots__ = ("file", "env", "_literal")

    def __init__(self, *, file: str | None = None, env: str | None = None, literal: str | None = None):
        if sum(x is not None for x in (file, env, literal)) != 1:
            raise ValueError("a secret takes exactly one of file, env or a literal value")
        self.file, self.env, self._literal = file, env, literal

    @classmethod
    def parse(cls, raw) -> "Secret":
        if isinstance(raw, str):
            return cls(literal=raw)
        if isinstance(raw, dict):
            unknown = set(raw) - {"file", "env"}
            if unknown:
                raise ValueError(f"a secret takes 'file' or 'env', not {sorted(unknown)}")
            if len(raw) != 1 or not isinstance(next(iter(raw.values())), str):
                raise ValueError('a secret is { file = "PATH" } or { env = "NAME" }')
            secret = cls(**raw)
            if secret.file is not None:
                _check_secret_file(secret.file)
            return secret
        raise ValueError('a secret is a string, { file = "PATH" } or { env = "NAME" }')

    def reveal(self) -> str:
        """The secret's value. Raises ValueError (naming the source, not the value) when unavailable."""
        if self._literal is not None:
            return self._literal
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return value
        try:
            return pathlib.Path(self.file).read_text().strip()
        except OSError as e:
            raise ValueError(f"cannot read secret file {self.file}: {e.strerror}") from None

    def describe(self) -> str:
        if self.env is not None:
            return f"env:{self.env}"
        if self.file is not None:
            return f"file:{self.file}"
        return "<redacted>"

    def __repr__(self) -> str:
        return f"Secret({self.describe()})"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and (self.file, self.env, self._literal) == (other.file, other.env, other._literal)

    def __hash__(self) -> int:
        return hash((self.file, self.env, self._literal))


def _check_secret_file(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError as e:
        raise ValueError(f"secret file {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"secret file {path} is not a regular file")
    if st.st_mode & stat.S_IROTH:
        raise ValueError(f"secret file {path} is readable by all users "
                         f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod o-r {path}")
