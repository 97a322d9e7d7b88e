"""The in-memory series catalogue: ids and keys both ways, growth, sorted keys."""

from __future__ import annotations

import pytest

from gateway.datamodel import FLOAT, INT, STRING
from gateway.store.series_table import SeriesInfo, SeriesTable


def test_series_by_id_and_by_key_through_many_growths():
    table = SeriesTable()
    n = 5000   # past several doublings of the slot table
    for sid in range(1, n + 1):
        table.add(sid, FLOAT if sid % 2 else INT, f"m,host=h{sid} value")
    assert len(table) == n
    for sid in (1, 2, 63, 64, 65, 4097, n):
        assert table.id_of(f"m,host=h{sid} value") == sid
        assert table[sid] == SeriesInfo(sid, f"m,host=h{sid} value", FLOAT if sid % 2 else INT)
    assert table.id_of("m,host=h0 value") is None
    assert table.id_of(f"m,host=h{n + 1} value") is None
    assert 0 not in table and n + 1 not in table and table.get(n + 1) is None
    with pytest.raises(KeyError):
        table[n + 1]
    assert list(table.ids()) == list(range(1, n + 1))


def test_ids_may_come_in_any_order_with_gaps():
    table = SeriesTable()
    table.add(7, STRING, "s,a=b f")
    table.add(3, FLOAT, "t f")
    assert list(table.ids()) == [3, 7] and len(table) == 2
    assert [i.key for i in table.values()] == ["t f", "s,a=b f"]
    assert table.id_of("s,a=b f") == 7 and table.get(5) is None


def test_adding_an_id_again_keeps_the_last_key_and_type():
    table = SeriesTable()
    table.add(1, FLOAT, "a f")
    table.add(1, FLOAT, "a f")
    assert len(table) == 1
    table.add(1, INT, "b f")
    assert len(table) == 1
    assert table[1] == SeriesInfo(1, "b f", INT)
    assert table.id_of("b f") == 1


def test_keys_of_any_utf8_and_undecodable_bytes_round_trip():
    table = SeriesTable()
    keys = ["Temperatur,Raum=Küche Wert", "温度 值", "m,t=\udcff f"]   # the last: a raw 0xff
    for sid, key in enumerate(keys, 1):
        table.add(sid, FLOAT, key)
    for sid, key in enumerate(keys, 1):
        assert table.key(sid) == key and table.id_of(key) == sid


def test_sorted_keys_follow_string_order():
    table = SeriesTable()
    keys = ["m,h=b v", "cpu f", "m,h=a v", "Ärger x", "m v", "zz y"]
    for sid, key in enumerate(keys, 1):
        table.add(sid, FLOAT, key)
    assert [table.key(sid) for sid in table.sorted_ids()] == sorted(keys)
    assert 2 in table.sorted_ids_with(b"cpu") and 2 not in table.sorted_ids_with(b"cpu f!")


def test_keys_by_prefix_suffix_and_inner_pieces_in_sorted_order():
    table = SeriesTable()
    keys = ["m,h=b v", "cpu f", "m,h=a v", "m,h=ab,k=1 v", "m vv", "mm,h=a v", "m,h=a w"]
    for sid, key in enumerate(keys, 1):
        table.add(sid, FLOAT, key)
    table.add(2, FLOAT, "cpu,h=a v")   # a key replaced: its old bytes stay in the arena

    def keys_with(*args):
        return [table.key(sid) for sid in table.sorted_ids_with(*args)]

    assert keys_with() == sorted(table.key(sid) for sid in table.ids())
    assert keys_with(b"m,") == ["m,h=a v", "m,h=a w", "m,h=ab,k=1 v", "m,h=b v"]
    assert keys_with(b"", b" v") == ["cpu,h=a v", "m,h=a v", "m,h=ab,k=1 v", "m,h=b v",
                                     "mm,h=a v"]
    assert keys_with(b"m", b" v", (b",h=a",)) == ["m,h=a v", "m,h=ab,k=1 v", "mm,h=a v"]
    assert keys_with(b"", b"", (b",h=a", b",k=1")) == ["m,h=ab,k=1 v"]
    assert keys_with(b"cpu f") == [] and keys_with(b"", b"cpu f") == []
    table.add(9, INT, "n,\xe4=\udcff x")
    assert table.infos([9, 2, 1]) == [table[9], table[2], table[1]]
    assert table.infos([9])[0] == SeriesInfo(9, "n,\xe4=\udcff x", INT)
    for absent in (8, 0, 99):
        with pytest.raises(KeyError):
            table.infos([1, absent])


def test_the_kept_order_follows_every_add_and_is_the_callers_to_change():
    table = SeriesTable()
    for sid, key in enumerate(["m,h=b v", "cpu f", "m,h=a v"], 1):
        table.add(sid, FLOAT, key)
    first = table.sorted_ids()
    assert list(first) == [2, 3, 1]
    first.append(99)   # the caller's copy: the kept order is not changed through it
    assert list(table.sorted_ids()) == [2, 3, 1]
    table.add(4, FLOAT, "a v")
    assert list(table.sorted_ids()) == [4, 2, 3, 1]
    table.add(4, FLOAT, "zz v")   # a key replaced (recovery): sorted again
    assert list(table.sorted_ids()) == [2, 3, 1, 4]
    table.add(4, INT, "zz v")     # the same key: the order stands
    assert list(table.sorted_ids()) == [2, 3, 1, 4]


def test_sorting_in_c_puts_a_prefix_first_and_refuses_ids_and_keys_outside_the_catalogue():
    from array import array

    from gateway.store.native import sort_keys
    arena = bytearray(b"bab")
    offsets, lengths = array("Q", [0, 1, 0, 1]), array("I", [0, 2, 1, 1])  # ab, b, a
    ids = array("I", [2, 3, 1])
    sort_keys(arena, offsets, lengths, ids)
    assert list(ids) == [3, 1, 2]
    for bad_ids, bad_offsets in ((array("I", [1, 4]), offsets),
                                 (array("I", [1, 2]), array("Q", [0, 2, 0, 1]))):
        with pytest.raises(ValueError):
            sort_keys(arena, bad_offsets, lengths, bad_ids)
        assert list(bad_ids) in ([1, 4], [1, 2])   # unchanged


def test_a_series_costs_a_few_dozen_bytes_beside_its_key():
    table = SeriesTable()
    n = 20000
    key_bytes = 0
    for sid in range(1, n + 1):
        key = f"m,host=h{sid} value"
        key_bytes += len(key)
        table.add(sid, FLOAT, key)
    assert (table.memory() - key_bytes) / n < 40
