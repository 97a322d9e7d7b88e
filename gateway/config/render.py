"""Renders a loaded configuration back to TOML (``gateway check-config`` prints it).

Secrets are shown by their source (``{ env = "NAME" }``) or as ``"<redacted>"``, never by value.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

from gateway.config.secrets import Secret
from gateway.config.units import ByteSize, Duration

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _is_table(value) -> bool:
    return dataclasses.is_dataclass(value) or isinstance(value, dict) and any(
        _is_table(v) or _is_table_array(v) for v in value.values())


def _is_table_array(value) -> bool:
    return isinstance(value, list) and bool(value) and all(dataclasses.is_dataclass(v) for v in value)


def _scalar(value) -> str:
    if isinstance(value, Secret):
        if value.env is not None:
            return f"{{ env = {json.dumps(value.env)} }}"
        if value.file is not None:
            return f"{{ file = {json.dumps(value.file)} }}"
        return '"<redacted>"'
    if isinstance(value, (Duration, ByteSize)):
        return json.dumps(value.text)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }" if value else "{}"
    if dataclasses.is_dataclass(value):
        return _scalar(_items(value))
    raise TypeError(f"cannot render {type(value).__name__}")


def _items(obj) -> dict:
    custom = getattr(obj, "__config_render__", None)   # a class that renders its own keys
    if custom is not None:
        return custom()
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
                if f.init and getattr(obj, f.name) is not None}
    return {k: v for k, v in obj.items() if v is not None}


def render(obj) -> str:
    """TOML text for a config dataclass (or a dict of them)."""
    return "\n".join(_render(obj, ())).strip("\n") + "\n"


def _render(obj, path: tuple[str, ...]) -> list[str]:
    scalars: list[str] = []
    tables: list[str] = []
    for k, v in _items(obj).items():
        sub = path + (k,)
        name = ".".join(_key(p) for p in sub)
        if _is_table_array(v):
            for entry in v:
                tables += ["", f"[[{name}]]"] + _render(entry, sub)
        elif _is_table(v):
            body = _render(v, sub)
            has_scalars = bool(body) and body[0] != "" and not body[0].startswith("[")
            if has_scalars or not body:
                tables += ["", f"[{name}]"]
            tables += body
        else:
            scalars.append(f"{_key(k)} = {_scalar(v)}")
    return scalars + tables
