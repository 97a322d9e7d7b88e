"""WAL segment files: preallocated and zero-filled, resumed after a crash, read to the end of
their valid records, refused when of a newer format; records cut by bytes as well as points."""

from __future__ import annotations

import os
import struct

import pytest

from gateway._native import ffi, lib
from gateway.batch import Batch
from gateway.store.native import Heads, WriteAheadLog, crc32c

T0 = 1_700_000_000 * 10**9
SEGMENT = 64 * 1024


def create(wal: WriteAheadLog, path: str, first_lsn: int = 1, size: int = SEGMENT,
           prev_lsn: int = 0) -> None:
    assert lib.gw_wal_create_segment(wal.ptr, os.fsencode(path), first_lsn, prev_lsn, size,
                                     1_700_000_000) == 0


def log_commit(heads: Heads, wal: WriteAheadLog, commit: int, points: int = 30) -> None:
    b = Batch()
    for i in range(points):
        b.add("env", {"sensor": str(i % 3)}, "temp", 20 + i / 100, T0 + commit * 10**9 + i)
    heads.ingest(b.c_pointer, 0)
    heads.log(wal)
    wal.sync()


def replay(path: str) -> Heads:
    fresh = Heads(1 << 20, 0)
    with open(path, "rb") as f:
        data = f.read()
    assert lib.gw_heads_replay(fresh.ptr, data, len(data), 0) == 0
    return fresh


@pytest.fixture
def segment(tmp_path):
    """A new preallocated segment: (path, its WAL, heads to log into it); closed afterwards."""
    path = str(tmp_path / "0000000000000001.wal")
    wal, heads = WriteAheadLog(), Heads(1 << 20, 0)
    create(wal, path)
    yield path, wal, heads
    close_all(heads, wal)


def close_all(*handles) -> None:
    for h in handles:
        h.close()


def record_offsets(data: bytes) -> list[tuple[int, int]]:
    """(offset, body length) of each record, walking the headers from the segment header."""
    out, pos = [], lib.GW_WAL_SEGMENT_HEADER
    while pos + 24 <= len(data) and data[pos:pos + 4] == b"GWWR":
        body = struct.unpack_from("<I", data, pos + 16)[0]
        out.append((pos, body))
        pos += 24 + body
    return out


def test_segment_is_preallocated_with_written_zeros_and_records_overwrite_them(segment):
    path, wal, heads = segment
    st = os.stat(path)
    assert st.st_size == SEGMENT
    with open(path, "rb") as f:
        # No hole and no unwritten extent (which SEEK_HOLE reports as a hole on ext4): the
        # zeros are on the disk, so writing records later allocates and converts nothing.
        assert os.lseek(f.fileno(), 0, os.SEEK_HOLE) == SEGMENT
    for commit in range(5):
        log_commit(heads, wal, commit)
    after = os.stat(path)
    assert (after.st_size, after.st_blocks) == (st.st_size, st.st_blocks)
    assert wal.size < SEGMENT
    fresh = replay(path)
    assert fresh.counters()["records_replayed"] == 5 and fresh.counters()["points_replayed"] == 150
    assert fresh.counters()["corrupt_records"] == 0 and fresh.counters()["corrupt_bytes"] == 0
    close_all(heads, fresh, wal)


def test_resumed_segment_drops_a_torn_record_and_continues_after_the_last_good_one(segment):
    path, wal, heads = segment
    log_commit(heads, wal, 0)
    log_commit(heads, wal, 1)
    end = wal.size
    with open(path, "r+b") as f:   # a third record cut by a crash: its first 40 bytes
        f.seek(end)
        f.write(b"GWWR" + os.urandom(36))
    wal.close()

    wal2 = WriteAheadLog()
    info = ffi.new("gw_wal_segment_info *")
    assert lib.gw_wal_resume_segment(wal2.ptr, os.fsencode(path), info) == 0
    assert (info.end, info.last_lsn, info.first_lsn, info.created) == (end, 2, 1, 1_700_000_000)
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) == SEGMENT and data[end:] == bytes(SEGMENT - end)
    heads.resume(3, 0)
    log_commit(heads, wal2, 2)
    fresh = replay(path)
    assert fresh.counters()["records_replayed"] == 3 and fresh.counters()["corrupt_records"] == 0
    close_all(heads, fresh, wal2)


def test_a_zeroed_record_header_is_damage_not_the_end(segment):
    path, wal, heads = segment
    for commit in range(3):
        log_commit(heads, wal, commit)
    wal.close()
    with open(path, "rb") as f:
        second = record_offsets(f.read())[1][0]
    with open(path, "r+b") as f:
        f.seek(second)
        f.write(bytes(24))
    fresh = replay(path)
    assert fresh.counters()["corrupt_records"] == 1
    assert fresh.counters()["records_replayed"] == 2 and fresh.counters()["points_replayed"] == 60
    heads.close()
    fresh.close()


def set_version(path: str, version: int) -> None:
    with open(path, "r+b") as f:
        header = bytearray(f.read(lib.GW_WAL_SEGMENT_HEADER))
        struct.pack_into("<I", header, 8, version)
        struct.pack_into("<I", header, 36, crc32c(bytes(header[:36])))
        f.seek(0)
        f.write(header)


def as_version_1(path: str) -> None:
    """Rewrites a segment in the appending layout: 32-byte header, records, no zero tail."""
    with open(path, "rb") as f:
        data = f.read()
    offset, body = record_offsets(data)[-1]
    records = data[lib.GW_WAL_SEGMENT_HEADER:offset + 24 + body]
    header = b"GWWAL001" + struct.pack("<IIQI", 1, 32, 1, 0)
    with open(path, "wb") as f:
        f.write(header + struct.pack("<I", crc32c(header)) + records)


def test_segment_format_version_is_checked_on_replay(segment):
    path, wal, heads = segment
    log_commit(heads, wal, 0)
    wal.close()
    set_version(path, lib.GW_WAL_VERSION + 1)
    with open(path, "rb") as f:
        data = f.read()
    fresh = Heads(1 << 20, 0)
    assert lib.gw_heads_replay(fresh.ptr, data, len(data), 0) == lib.GW_WAL_EVERSION
    assert fresh.counters()["points_replayed"] == 0
    info = ffi.new("gw_wal_segment_info *")
    assert lib.gw_wal_resume_segment(WriteAheadLog().ptr, os.fsencode(path), info) == lib.GW_WAL_EVERSION
    set_version(path, lib.GW_WAL_VERSION)
    as_version_1(path)   # segments of the appending layout are still read, never resumed
    assert replay(path).counters()["points_replayed"] == 30
    assert lib.gw_wal_resume_segment(WriteAheadLog().ptr, os.fsencode(path), info) == lib.GW_ECORRUPT
    heads.close()
    fresh.close()


def test_segment_header_names_the_record_before_it(tmp_path):
    first, second = str(tmp_path / "0000000000000001.wal"), str(tmp_path / "0000000000000004.wal")
    wal, heads = WriteAheadLog(), Heads(1 << 20, 0)
    create(wal, first)
    for commit in range(3):
        log_commit(heads, wal, commit)
    assert wal.last_lsn == 3
    create(wal, second, first_lsn=4, prev_lsn=wal.last_lsn)
    info = ffi.new("gw_wal_segment_info *")
    with open(second, "rb") as f:
        data = f.read()
    assert lib.gw_wal_segment_scan(data, len(data), info) == 0
    assert (info.first_lsn, info.prev_lsn, info.last_lsn) == (4, 3, 0)
    heads.close()
    wal.close()


def log_with_max_body(tmp_path, max_body: int, batch: Batch):
    """Logs the batch in one commit whose records are cut at max_body body bytes: the heads,
    the same points replayed from the segment, and (offset, body length) of each record."""
    path = str(tmp_path / "0000000000000001.wal")
    wal, heads = WriteAheadLog(), Heads(1 << 20, 0)
    create(wal, path, size=lib.GW_WAL_SEGMENT_HEADER)
    wal.set_max_body(max_body)
    heads.ingest(batch.c_pointer, 0)
    heads.log(wal)
    wal.close()
    with open(path, "rb") as f:
        records = record_offsets(f.read())
    assert heads.next_lsn() == 1 + len(records)
    fresh = replay(path)
    assert fresh.counters()["points_replayed"] == len(batch)
    assert fresh.counters()["corrupt_records"] == 0
    return heads, fresh, records


def test_records_are_cut_by_bytes_as_well_as_by_points(tmp_path):
    b = Batch()
    for i in range(300):
        b.add("log", {"unit": str(i % 3)}, "msg", f"{i:05d}" + "x" * 195, T0 + i)
    heads, fresh, records = log_with_max_body(tmp_path, 4096, b)
    assert len(records) >= 300 * 200 // 4096
    assert all(body <= 4096 for _, body in records)
    for sid in range(1, 4):
        assert heads.head(sid)[2] == fresh.head(sid)[2]
    close_all(heads, fresh)


def test_numeric_series_cut_by_bytes_replay_whole(tmp_path):
    b = Batch()
    for i in range(1000):
        b.add("env", {"sensor": str(i % 5)}, "temp", 20 + i / 7, T0 + i)
    heads, fresh, records = log_with_max_body(tmp_path, 2048, b)
    # 19 bytes a point at most: 1000 points need more than 1000 * 19 / 2048 records.
    assert len(records) >= 10
    assert all(body <= 2048 for _, body in records)
    for sid in range(1, 6):
        assert heads.head(sid)[:2] == fresh.head(sid)[:2]
        assert len(fresh.head(sid)[0]) == 200
    close_all(heads, fresh)


def test_string_larger_than_the_record_goes_alone(tmp_path):
    b = Batch()
    texts = ["short", "y" * 3000, "after"]
    for i, text in enumerate(texts):
        b.add("log", {}, "msg", text, T0 + i)
    heads, fresh, records = log_with_max_body(tmp_path, 1024, b)
    big = [body for _, body in records if body > 1024]
    assert len(big) == 1 and big[0] > 3000
    assert fresh.head(1)[2] == heads.head(1)[2] == texts
    close_all(heads, fresh)


def test_a_small_commit_costs_the_process_one_page_or_two(tmp_path):
    """A record rewrites a few hundred bytes of the zeroed segment: the kernel charges the
    process the page(s) it dirtied, not a large folio of the preallocation (ext4 caches a file
    written in large pieces in folios of up to the write's size since Linux 6.16); the same after
    the segment is resumed, whose reading cached it afresh."""
    from gateway.diskio import process_write_bytes

    path = str(tmp_path / "0000000000000001.wal")
    wal, heads = WriteAheadLog(), Heads(1 << 20, 0)
    create(wal, path, size=256 * 1024)
    commit = 0
    while wal.size < 160 * 1024:   # far into the segment, where its folios are largest
        log_commit(heads, wal, commit, points=3000)
        commit += 1
    before = process_write_bytes()
    assert before is not None
    log_commit(heads, wal, commit, points=60)
    assert process_write_bytes() - before <= 2 * 4096
    end = wal.size
    close_all(heads, wal)

    wal = WriteAheadLog()
    wal.resume_segment(path)
    assert wal.size == end
    heads = replay(path)
    before = process_write_bytes()
    log_commit(heads, wal, commit + 1, points=60)
    assert process_write_bytes() - before <= 2 * 4096
    close_all(heads, wal)
