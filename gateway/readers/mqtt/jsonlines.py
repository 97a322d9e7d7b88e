"""The C fast path for JSON payloads: flat objects become line protocol in one call per group.

``native/src/jsonlines.c`` takes the common shape (one flat object of UTF-8 keys and values
without escape sequences) exactly as the general decoder in :mod:`.payloads` would, and marks everything else
for that decoder; so results never depend on which path a message took, only speed does.
"""

from __future__ import annotations

from array import array
from itertools import accumulate
from typing import Mapping

from gateway._native import ffi, lib
from gateway.lineprotocol import escape_key, escape_measurement
from gateway.readers.mqtt.config import JsonOptions

LINE, GENERAL = lib.GW_JSON_LINE, lib.GW_JSON_GENERAL
#: ns per unit of an integer time, by json.time_format; rfc3339 times take the general path.
TIME_SCALES = {"unix": 1_000_000_000, "unix_ms": 1_000_000, "unix_us": 1_000, "unix_ns": 1}


class JsonLines:
    """The converter for one subscription's JSON options, default measurement and base tags.

    Raises ValueError when the measurement or a tag cannot be written as line protocol: then
    every message takes the general path, which names the problem.
    """

    def __init__(self, options: JsonOptions, measurement: str, base_tags: Mapping[str, str]) -> None:
        if measurement.startswith("#"):
            raise ValueError("a measurement starting with '#' would read as a comment")
        names = [options.time_key, options.measurement_key, *options.tag_keys,
                 *options.field_keys, *options.string_fields, *base_tags]
        if any("\0" in name for name in names):
            raise ValueError("names with NUL bytes cannot be listed")
        self._buffers = []   # the spec points into these
        spec = self.spec = ffi.new("gw_json_spec *")
        tags = "".join(f",{escape_key(k, 'tag key')}={escape_key(v, 'tag value')}"
                       for k, v in base_tags.items() if v != "")
        spec.measurement, spec.measurement_len = self._bytes(
            escape_measurement(measurement) if measurement else "")
        spec.base_tags, spec.base_tags_len = self._bytes(tags)
        spec.base_tag_keys, spec.base_tag_keys_len = self._bytes("\0".join(base_tags))
        spec.time_key, spec.time_key_len = self._bytes(options.time_key)
        spec.time_scale = TIME_SCALES.get(options.time_format, 0)
        spec.measurement_key, spec.measurement_key_len = self._bytes(options.measurement_key)
        spec.tag_keys, spec.tag_keys_len = self._bytes("\0".join(options.tag_keys))
        spec.field_keys, spec.field_keys_len = self._bytes("\0".join(options.field_keys))
        spec.string_fields, spec.string_fields_len = self._bytes("\0".join(options.string_fields))

    def _bytes(self, text: str):
        data = text.encode()
        buf = ffi.new("char[]", data)
        self._buffers.append(buf)
        return buf, len(data)

    def convert(self, payloads: list[bytes], arrivals_ns: list[int]) -> tuple[memoryview, bytearray]:
        """(line protocol text, status per payload: LINE or GENERAL). The text holds one line
        per LINE payload, in payload order."""
        n = len(payloads)
        data = b"".join(payloads)
        ends = array("Q", accumulate(map(len, payloads)))
        arrivals = array("q", arrivals_ns)
        cap = lib.gw_json_lines_bound(self.spec, len(data), n)
        out = bytearray(cap)
        status = bytearray(n)
        written = lib.gw_json_lines(self.spec, data, ffi.from_buffer("uint64_t[]", ends), n,
                                    ffi.from_buffer("int64_t[]", arrivals), ffi.from_buffer(out),
                                    cap, ffi.from_buffer(status))
        if written < 0:
            raise MemoryError("JSON conversion buffer too small")
        return memoryview(out)[:written], status
