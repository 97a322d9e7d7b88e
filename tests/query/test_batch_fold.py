"""The batch fold (many series' blocks and heads folded in one C call) gives what the fold of
each series on its own gives, in one batch holding every kind of series the batch cannot take
plainly: a damaged block, blocks that overlap, a head that rewrites a stored point, series of
every numeric type, series without blocks, blocks not indexed yet. Those series go through the
per-series path; the plain ones do not."""

from __future__ import annotations

import shutil

import pytest

from gateway import aggregate
from gateway.datamodel import UInt
from gateway.query.windows import fold_spec
from gateway.store import reading
from query_support import S, T0, Store, batch_of, close, rows_of, run, store_config
from test_fold_path import _run

FUNCTIONS = ("mean", "min", "max", "sum", "count", "first", "last", "spread", "stddev")
LO, HI = T0, T0 + 200 * S


def _points(field: str, seconds, value=lambda s: float(s % 7)):
    return [("m", {}, field, T0 + s * S, value(s)) for s in seconds]


async def _write_sealed(store, rows) -> None:
    await store.write(batch_of(rows))
    await store.flush(seal=True)


async def _build(path) -> None:
    """The series (16 points a block), all indexed but the ones written last."""
    async with Store(str(path), store_config()) as store:
        for k in range(3):   # three blocks a series, one after another in time
            seconds = range(16 * k, 16 * k + 16)
            await _write_sealed(store, _points("plain", seconds) + _points("damaged", seconds)
                                + _points("rewritten", seconds)
                                + _points("overlap", seconds)
                                + _points("int", seconds, lambda s: s * 3 - 50)
                                + _points("uint", seconds, lambda s: UInt(2**63 + s * 2**55))
                                + _points("bool", seconds, lambda s: s % 3 == 0))
        # a block over the two last of "overlap" (seconds 20..39 written again)
        await _write_sealed(store, _points("overlap", range(20, 40), lambda s: 3.5))
        # a series whose only block lies before the range
        await _write_sealed(store, _points("before", range(-40, -24)))


def _damage(ring_path: str, offset: int) -> None:
    with open(ring_path, "r+b") as f:
        f.seek(offset)
        assert f.read(4) == b"GWRE"
        f.seek(offset + 40)
        byte = f.read(1)
        f.seek(offset + 40)
        f.write(bytes([byte[0] ^ 0xFF]))


async def _damage_middle_block(path) -> None:
    async with Store(str(path), store_config()) as store:
        b = store.bucket("raw")
        sid = b.catalogue.id_of("m damaged")
        refs = (await store.index.block_refs(b.state.id, [sid], LO, HI))[sid]
        offset = refs[5 + 1]   # the second block's (seq, offset, length, min_ts, max_ts)
        ring = b.ring.path
    _damage(ring, offset)


async def _late_writes(store) -> None:
    """Points that stay out of the index: a head rewriting a stored point, blocks sealed
    since the checkpoint with a head after them, a head without blocks."""
    await store.write(batch_of(_points("rewritten", [20], lambda s: 99.0)))
    await store.write(batch_of(_points("unindexed", range(0, 40))))
    await store.write(batch_of(_points("head_only", range(5, 12))))
    await store.write(batch_of(_points("bool", [60, 61], lambda s: True)))
    await store.write(batch_of(_points("int", [70, 72], lambda s: -s)))


def _per_series_only(monkeypatch) -> None:
    """Every series of every batch folded on its own, as before batches."""
    monkeypatch.setattr(aggregate.BatchFold, "fold", lambda self, *args: None)


def _count_per_series(monkeypatch) -> list[str]:
    taken: list[str] = []
    fold_job = reading.StoreReader._fold_job

    def counted(b, info, *args):
        taken.append(info.field)
        return fold_job(b, info, *args)

    monkeypatch.setattr(reading.StoreReader, "_fold_job", staticmethod(counted))
    return taken


def _windows(got, k: int):
    return (got.points[k], got.blocks[k], got.of(k))


def test_a_batch_folds_as_each_series_alone_and_leaves_what_is_not_plain(tmp_path,
                                                                          monkeypatch):
    async def scenario():
        await _build(tmp_path)
        await _damage_middle_block(tmp_path)
        async with Store(str(tmp_path), store_config()) as store:
            await _late_writes(store)
            b = store.bucket("raw")
            assert {e.series_id for e in b.unindexed_blocks()} == {b.catalogue.id_of("m unindexed")}
            infos = store.series("raw")
            taken = _count_per_series(monkeypatch)
            batch = {fn: await store.fold_windows(infos, "raw", LO, HI, fold_spec(fn, 10 * S, 3 * S),
                                                  1000) for fn in FUNCTIONS}
            batch_taken = sorted(set(taken))
            with monkeypatch.context() as m:
                _per_series_only(m)
                alone = {fn: await store.fold_windows(infos, "raw", LO, HI,
                                                      fold_spec(fn, 10 * S, 3 * S), 1000)
                         for fn in FUNCTIONS}
            return [info.field for info in infos], batch, alone, batch_taken

    fields, batch, alone, taken = run(scenario())
    # the damaged block, the overlapping pair and the rewritten point: each series alone
    assert taken == ["damaged", "overlap", "rewritten"]
    for fn in FUNCTIONS:
        for k, field in enumerate(fields):
            assert _windows(batch[fn], k) == _windows(alone[fn], k), (fn, field)
    mean = batch["mean"]
    by_field = dict(zip(fields, range(len(fields))))
    assert mean.first[by_field["rewritten"]] is None    # the general path takes it
    assert mean.points[by_field["before"]] == 0 and mean.count[by_field["before"]] == 0
    assert mean.points[by_field["head_only"]] == 7 and mean.blocks[by_field["head_only"]] == 0
    assert mean.points[by_field["unindexed"]] == 40 and mean.blocks[by_field["unindexed"]] >= 2
    assert mean.points[by_field["damaged"]] == 32   # the damaged block skipped


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_queries_over_a_mixed_batch_equal_the_general_path(tmp_path, fn):
    numeric = fn in ("mean", "sum", "spread", "stddev")   # not of booleans
    src = ('from(bucket: "raw") |> range(start: 0) '
           + ('|> filter(fn: (r) => r._field != "bool") ' if numeric else '')
           + f'|> aggregateWindow(every: 10s, fn: {fn}, createEmpty: false)')

    async def scenario():
        await _build(tmp_path / "built")
        out = []
        for fast in (True, False):
            copy = tmp_path / str(fast)   # each path on its own copy, damaged alike
            shutil.copytree(tmp_path / "built", copy)
            await _damage_middle_block(copy)
            async with Store(str(copy), store_config()) as store:
                await _late_writes(store)
                out.append(await _run(store, src, T0 + 300 * S, fast))
        return out

    (fast, folded), (general, _) = run(scenario())
    assert folded >= 8   # all but the rewritten series (and booleans for some)
    assert len(fast) == len(general)
    for f, g in zip(fast, general):
        assert f.keys() == g.keys()
        for col in f:
            assert close(f[col], g[col]), (col, f, g)
