"""The store: buckets of compressed blocks in fixed-size ring files, a WAL with group commit,
retention by size and age, and crash recovery (see :mod:`gateway.store.store`)."""

from gateway.store.series_table import SeriesInfo
from gateway.store.reading import SeriesColumns
from gateway.store.replication import StoredBlock
from gateway.store.settings import Access
from gateway.store.store import Store, UnknownBucket, WriteResult

__all__ = ["Access", "Store", "SeriesColumns", "SeriesInfo", "StoredBlock", "UnknownBucket",
           "WriteResult"]
