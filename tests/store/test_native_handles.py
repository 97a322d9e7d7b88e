"""The store's C handles: opaque to Python, freed by close() (safe twice) or by the collector."""

import gc

import pytest

from gateway.store.native import Heads, RingFile, WriteAheadLog


def handles(tmp_path):
    return [Heads(16, 0), RingFile.create(str(tmp_path / "ring"), 1 << 16, None), WriteAheadLog()]


def test_close_frees_at_once_and_is_safe_twice(tmp_path):
    for handle in handles(tmp_path):
        handle.close()
        handle.close()
        with pytest.raises(Exception, match="closed"):
            handle.ptr


def test_python_cannot_write_into_the_c_structs(tmp_path):
    # Values go in as arguments and counters come out of one stats call: the structs are
    # opaque to Python, so a field cannot be set from here by mistake.
    for handle in handles(tmp_path):
        with pytest.raises(AttributeError):
            handle.ptr.last_errno = 0
        with pytest.raises(AttributeError):
            handle.ptr.next_lsn
        handle.close()


def test_handles_never_closed_are_freed_by_the_collector(tmp_path):
    ring = RingFile.create(str(tmp_path / "ring"), 1 << 16, None)
    ring.sync()
    del ring
    gc.collect()
    # The ring file's descriptor was closed by its destructor: a new ring opens it afresh.
    again = RingFile.open(str(tmp_path / "ring"))
    assert again.position == (4096, 1)
    again.close()
