"""Series keys written under the old escaping (a backslash in a name written as two) are
migrated when the store opens, so old and new points of a series stay one series."""

from __future__ import annotations

import asyncio
import os

from gateway.lineprotocol import parse
from gateway.store import Store, catalogue

from store_support import T0, make_batch, read_all


def write_old_store(data_dir, config):
    """A store as the old code left it: keys in the old escaping, a series file without the
    version marker. Written with today's code through keys whose bytes are the old spelling
    (`x\\\\y` meant the tag value x\\y then), and the marker taken off by hand."""
    async def main():
        store = Store(data_dir, config)
        await store.open()
        try:
            old = parse(b"m,t=x\\\\y f=1i " + str(T0).encode() + b"\n"
                        b"plain,t=a f=2i " + str(T0).encode() + b"\n")
            await store.write(old.batch)
        finally:
            await store.close()
    asyncio.run(main())
    path = os.path.join(data_dir, "store", "buckets", "raw", "series")
    series, _ = catalogue.read(path)
    with open(path, "wb") as f:
        f.write(catalogue.encode(series))   # no marker: version 1
    assert catalogue.key_version(path, True) == 1


def test_an_old_store_has_its_keys_migrated_and_new_points_join_them(data_dir, config):
    write_old_store(data_dir, config)

    async def main():
        store = Store(data_dir, config)
        await store.open()
        try:
            before = await read_all(store)
            # the same series written now: one backslash, as InfluxDB reads `x\y`
            await store.write(make_batch([("m", {"t": "x\\y"}, "f", T0 + 1, 3)]))
            after = await read_all(store)
        finally:
            await store.close()
        # and once more: a migrated store is not migrated again
        store = Store(data_dir, config)
        await store.open()
        try:
            again = await read_all(store)
        finally:
            await store.close()
        return before, after, again

    before, after, again = asyncio.run(main())
    assert before == {"m,t=x\\y f": [(T0, 1)], "plain,t=a f": [(T0, 2)]}
    assert after == {"m,t=x\\y f": [(T0, 1), (T0 + 1, 3)], "plain,t=a f": [(T0, 2)]}
    assert again == after
    path = os.path.join(data_dir, "store", "buckets", "raw", "series")
    assert catalogue.key_version(path, True) == catalogue.KEY_VERSION
    assert sorted(k for _, _, k in catalogue.read(path)[0]) == ["m,t=x\\y f", "plain,t=a f"]


def test_a_new_store_is_not_migrated(data_dir, config):
    async def main():
        store = Store(data_dir, config)
        await store.open()
        try:
            await store.write(make_batch([("m", {"t": "x\\\\y"}, "f", T0, 1)]))  # two backslashes
        finally:
            await store.close()
        store = Store(data_dir, config)
        await store.open()
        try:
            return await read_all(store)
        finally:
            await store.close()
    assert asyncio.run(main()) == {"m,t=x\\\\y f": [(T0, 1)]}


def test_old_keys_are_read_with_the_old_rule():
    assert catalogue.migrate_key("m\\\\x,t=a\\\\\\ b f\\=g") == "m\\x,t=a\\\\ b f\\=g"
    assert catalogue.migrate_key("m,t=a\\b f") == "m,t=a\\b f"
