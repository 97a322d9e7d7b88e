"""Helpers shared by the line protocol tests (imported by module name, pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
import pathlib
import struct

from gateway.batch import UInt

VECTORS = pathlib.Path(__file__).resolve().parents[1] / "data" / "lineprotocol" / "vectors.json"


def type_name(value) -> str:
    """The vector file's name for the type of a value read back from a batch."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, UInt):
        return "unsigned"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


def same_value(a, b) -> bool:
    """Equality that compares floats by their bits (so -0.0 is not 0.0); types are checked apart."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and \
            struct.pack("<d", a) == struct.pack("<d", b)
    return a == b


def load_vectors() -> list[dict]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]
