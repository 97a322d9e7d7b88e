"""The running streams of this process, for the status page, /metrics and the control
socket: :func:`stats` is the one call they make."""

from __future__ import annotations

_streams: dict = {}


def register(stream) -> None:
    _streams[stream.config.name] = stream


def unregister(stream) -> None:
    if _streams.get(stream.config.name) is stream:
        del _streams[stream.config.name]


def stats() -> dict:
    """``{stream name: figures}`` of every running stream (see ReplicationStream.stats)."""
    out = {}
    for name, stream in list(_streams.items()):
        try:
            out[name] = stream.stats()
        except Exception as e:  # a snapshot must never take the status page down
            out[name] = {"name": name, "error": str(e)}
    return out
