"""The worked examples of docs/format/{wal,ring,series}.md are what the code writes and reads:
their bytes are parsed from the documents, their checksums recomputed, and the same points
written again must give the same bytes."""

from __future__ import annotations

import pathlib
import re
import struct

from gateway import codec
from gateway.batch import Batch
from gateway.datamodel import FLOAT, INT
from gateway.store import catalogue
from gateway.store.native import Heads, RingFile, WriteAheadLog, crc32c

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "format"
_DUMP_LINE = re.compile(r"^([0-9a-f]{4}): ((?:[0-9a-f]{2} ){0,15}[0-9a-f]{2})")

T0 = 1_700_000_000 * 10**9
TEMP, COUNT = "env,room=lab temp", "env,room=lab count"
POINTS = [(TEMP, T0, 21.5), (TEMP, T0 + 10**9, 21.53), (TEMP, T0 + 2 * 10**9, 21.51),
          (COUNT, T0, 7), (COUNT, T0 + 10**9, 8), (COUNT, T0 + 2 * 10**9, 10)]


def worked_example(name: str) -> dict[int, bytes]:
    """The hex dump of the document's worked example: {offset of a run: its bytes}."""
    text = (DOCS / name).read_text()
    section = text.split("## Worked example", 1)[1]
    runs: dict[int, bytearray] = {}
    start = end = None
    for line in section.split("```")[1].splitlines():
        m = _DUMP_LINE.match(line)
        if not m:
            continue
        offset, data = int(m.group(1), 16), bytes.fromhex(m.group(2))
        if offset != end:
            start = offset
            runs[start] = bytearray()
        runs[start] += data
        end = offset + len(data)
    return {k: bytes(v) for k, v in runs.items()}


def example_batch() -> Batch:
    b = Batch()
    for key, ts, value in POINTS:
        b.add("env", {"room": "lab"}, key.split(" ")[1], value, ts)
    return b


def write_example(tmp_path) -> tuple[bytes, bytes]:
    """(WAL segment, ring file) after the example's commit and a forced seal."""
    heads = Heads(1024, 0)
    wal = WriteAheadLog()
    wal.create_segment(str(tmp_path / "0000000000000001.wal"), 1, 0, 0, 1_700_000_000)
    ring = RingFile.create(str(tmp_path / "ring"), 1 << 20, None)
    heads.ingest(example_batch().c_pointer, 0)
    heads.log(wal)
    heads.seal(ring, 0, force=True)
    ring.sync()
    for handle in (heads, wal, ring):
        handle.close()
    return ((tmp_path / "0000000000000001.wal").read_bytes(), (tmp_path / "ring").read_bytes())


def test_series_file_example(tmp_path):
    (data,) = worked_example("series.md").values()
    series = [(1, FLOAT, TEMP), (2, INT, COUNT)]
    assert catalogue.encode(series) == data
    first_len = struct.unpack_from("<H", data, 4)[0]
    assert struct.unpack_from("<I", data)[0] == crc32c(data[4:6 + first_len])
    path = tmp_path / "series"
    path.write_bytes(data)
    assert catalogue.read(str(path)) == (series, 0)


def test_wal_example(tmp_path):
    (segment,) = worked_example("wal.md").values()
    header_size = struct.unpack_from("<I", segment, 12)[0]
    written, _ = write_example(tmp_path)
    assert written[header_size:] == segment[header_size:]    # the record, bit for bit
    heads = Heads(1024, 0)
    heads.define(1, FLOAT, TEMP.encode(), 0)
    heads.define(2, INT, COUNT.encode(), 0)
    assert heads.replay(segment, 0)                          # header and record checksums hold
    counters = heads.counters()
    assert (counters["records_replayed"], counters["corrupt_records"]) == (1, 0)
    ts, raw, _ = heads.head(1)
    assert list(ts) == [t for k, t, _ in POINTS if k == TEMP]
    assert [struct.unpack("<d", struct.pack("<Q", v))[0] for v in raw] == [21.5, 21.53, 21.51]
    ts, raw, _ = heads.head(2)
    assert list(raw) == [7, 8, 10]
    heads.close()


def test_ring_example(tmp_path):
    runs = worked_example("ring.md")
    header, entries = runs[0], runs[0x1000]
    assert struct.unpack_from("<I", header, 60)[0] == crc32c(header[:60])
    block_len = struct.unpack_from("<I", entries, 20)[0]
    assert struct.unpack_from("<I", entries, 4)[0] == crc32c(entries[8:32 + block_len])
    ts, values = codec.decode(entries[32:32 + block_len])
    assert list(ts) == [t for k, t, _ in POINTS if k == TEMP]
    assert list(values) == [21.5, 21.53, 21.51]
    _, ring = write_example(tmp_path)
    assert ring[:0x18] == header[:0x18] and ring[0x20:60] == header[0x20:60]   # but "created"
    assert ring[0x1000:0x1000 + len(entries)] == entries
