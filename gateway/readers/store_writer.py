"""How readers write to the store: one policy, decided by whether the source can send again.

- **The source keeps what is not acknowledged** (MQTT: the broker's session, a LAN device's
  in-flight window). Nothing is acknowledged before ``Store.write`` returned, so a failed write
  is retried until it succeeds (:func:`write_until_stored`, capped jittered backoff): the
  source holds the data meanwhile and its flow control stops it sending more.
- **The source cannot send again** (I2C and GPIO readings, host metrics: a reading is gone once
  taken). A failed write is not retried: the points are dropped, counted in the reader's
  ``store_errors`` and logged (:func:`write_once`). Retrying would need an unbounded queue in
  memory while the store is failing (full card, I/O errors), and the next reading follows
  within one interval anyway. Nobody acknowledges such a reading either, so the write does not
  wait for a sync (``wait=False``): the points become durable with the next commit, within the
  store's ``local_sync``.

Points refused inside a successful write (a series of another type, older than the retention)
are the store's answer, not a failure: the caller counts them from the result.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.backoff import backoff_delay
from gateway.batch import Batch

log = logging.getLogger("gateway.readers")


async def write_once(store, points: list, reader, bucket: str = "raw"):
    """Writes ``points`` (a list of Point) for ``reader`` (a component with ``name`` and
    ``store_errors``); on failure drops them, counts and logs. Returns the store's result, or
    None when the write failed."""
    try:
        return await store.write(Batch.from_points(points), bucket=bucket, wait=False)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        reader.store_errors += 1
        log.error("%s: cannot store %d points (dropped): %s", reader.name, len(points), e)
        return None


async def write_until_stored(store, batch, bucket: str, what: str, on_error=None,
                             first: float = 0.1, cap: float = 5.0):
    """``store.write(batch, bucket)`` until it succeeds; returns its result. ``on_error(e)`` is
    called for each failure (counting it) before the backoff."""
    attempt = 0
    while True:
        try:
            return await store.write(batch, bucket=bucket)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if on_error is not None:
                on_error(e)
            delay = backoff_delay(attempt, first, cap)
            attempt += 1
            log.error("%s: store write of %d points failed (%s: %s); retrying in %.1fs",
                      what, len(batch), type(e).__name__, e, delay)
            await asyncio.sleep(delay)
