"""A replication stream: the component that sends one ``[[replication]]`` table's buckets.

Each cycle (every ``flush_interval``, at once while a backlog remains) it sends, bucket by
bucket with rollup buckets before raw, the sealed blocks after its cursor in sequence order,
a batch at a time; the cursor (the store's replication cursor, durable in the bucket's position
file) moves past a batch only after the upstream acknowledged all of it. Then it copies the
heads at a moment when they hold only durable points and sends the points not sent yet, so a
point reaches the upstream within a flush interval of its durable write without waiting for
its head to seal; once acknowledged, its write-order position (the LSN of the WAL's last record
at the copy) is recorded. Head points sent are remembered (in memory) so that the block they
seal into does not send them again; after a restart that memory is rebuilt from the WAL
records up to the write-order position. See docs/replication.md for what a restart resends.

Sending runs on the stream's own worker thread: a slow or hung upstream holds only its stream.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from array import array
from dataclasses import dataclass

from gateway.replication import registry
from gateway.backoff import Backoff
from gateway.errors import StoreError
from gateway.replication.batching import Chunk, SeriesPoints
from gateway.replication.sender import Paused, RetryLater
from gateway.replication.source import StoreSource
from gateway.replication.status import StreamStatus
from gateway.runtime import Component

log = logging.getLogger("gateway.replication")

#: A stream whose credentials were refused tries again this often.
PAUSED_RETRY_S = 60.0
#: Sealed blocks read from the store at a time.
BLOCKS_PER_READ = 256
#: Line protocol costs about this much per point beyond the series key (value, time, spaces).
POINT_OVERHEAD_BYTES = 30
#: Batches of sealed blocks read and encoded while the upstream takes the one before them:
#: two keep the upstream busy while reading, decoding and compressing overlap its work, and
#: bound the memory (each is about batch_bytes) and what a failed send throws away.
BATCHES_AHEAD = 2
#: Batches acknowledged whose position is not written yet, beyond which sending waits for the
#: write: a crash sends again at most this many batches (these and the one being sent).
POSITION_LAG_BATCHES = 3


@dataclass(slots=True)
class _SealedBatch:
    """Sealed blocks up to ``last_seq`` ready to send: their bodies (none when every point
    in them was filtered out or already sent) and the oldest time among them (for the lag)."""

    last_seq: int
    oldest: int
    bodies: list


class _PositionWriter:
    """Writes a bucket's position as batches are acknowledged without making each send wait
    for the write (a position write commits the block index, which on a busy card costs more
    than sending a batch): the newest acknowledged end goes down when the previous write is
    done, and a send waits only while POSITION_LAG_BATCHES acknowledged batches lack a
    written position."""

    def __init__(self, write, task_name: str, lag: int = POSITION_LAG_BATCHES) -> None:
        self._write, self._task_name, self._lag = write, task_name, lag
        self._task: asyncio.Task | None = None
        self._last: int | None = None  # the end of the newest batch acknowledged
        self._acked = self._started = self._written = 0  # batches acknowledged, in a write, written

    def acked(self, seq: int) -> None:
        self._last = seq
        self._acked += 1
        self._start()

    async def room(self) -> None:
        """Returns once a batch may be sent: fewer than ``lag`` acknowledged batches lack a
        written position. Raises what a write raised."""
        if self._task is not None and self._task.done():
            await self._finish()
        while self._acked - self._written >= self._lag:
            self._start()
            await self._finish()
        self._start()

    async def close(self) -> None:
        """Waits until every acknowledged batch's position is written."""
        while self._written < self._acked:
            self._start()
            await self._finish()

    def _start(self) -> None:
        if self._task is None and self._started < self._acked:
            self._task = asyncio.get_running_loop().create_task(self._write(self._last),
                                                                name=self._task_name)
            self._started = self._acked

    async def _finish(self) -> None:
        task, self._task = self._task, None
        try:
            await task
        except BaseException:
            self._started = self._written  # not written: the next write covers it
            raise
        self._written = self._started


def _sender(config, status):
    kind = config.kind
    if kind == "influxdb_v2":
        from gateway.replication.influxdb import InfluxV2Sender
        return InfluxV2Sender(config, status)
    if kind == "influxdb_v1":
        from gateway.replication.influxdb import InfluxV1Sender
        return InfluxV1Sender(config, status)
    if kind == "prometheus_remote_write":
        from gateway.replication.remote_write import RemoteWriteSender
        return RemoteWriteSender(config, status)
    from gateway.replication.mqtt import MqttSender
    return MqttSender(config, status)


def _comparable(values, type_: int) -> list:
    """Values as exact comparable items (floats by their bits, so NaN equals itself)."""
    if type_ == 1:
        return array("Q", values.tobytes()).tolist()
    return list(values)


class ReplicationStream(Component):
    def __init__(self, config, store, data_dir: str | None = None, *,
                 sleep=asyncio.sleep, monotonic=time.monotonic) -> None:
        """``sleep`` and ``monotonic`` time the cycles and the waits between retries (tests
        replace them to play a long outage in seconds)."""
        super().__init__()
        self._sleep, self._monotonic = sleep, monotonic
        self.name = f"replication:{config.name}"
        self.config = config
        self.store = store
        self.source = StoreSource(store)
        self.status = StreamStatus(config.name, config.kind, config.url)
        self.sender = None
        self.backoff = Backoff()
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None  # sends
        self._encoder: concurrent.futures.ThreadPoolExecutor | None = None  # encodes ahead
        self._measurements = set(config.measurements) if config.measurements else None
        #: per bucket, per series id: {timestamp: value} sent from heads, not yet seen sealed
        self._sent_from_heads: dict[str, dict[int, dict]] = {b: {} for b in config.buckets}
        #: buckets whose marks were rebuilt at start and may hold points of blocks at or before
        #: the cursor (never read again): dropped at the first heads sent
        self._marks_rebuilt: set[str] = set()
        self._rate_sample: dict[str, tuple[float, int]] = {}
        self._rates: dict[str, float] = {}
        self._oldest_unsent: dict[str, int | None] = {}
        self._wake = asyncio.Event()

    @property
    def buckets(self) -> list[str]:
        """Rollup buckets first: after a long outage the downsampled history goes first."""
        return sorted(self.config.buckets, key=lambda b: b == "raw")

    # ------------------------------------------------------------------ lifecycle

    async def start(self, context=None) -> None:
        for bucket in self.config.buckets:
            self.store.bucket(bucket)  # an unknown bucket fails at start, by name
        self.sender = _sender(self.config, self.status)
        self._thread = concurrent.futures.ThreadPoolExecutor(
            1, f"gateway-replication-{self.config.name}")
        self._encoder = concurrent.futures.ThreadPoolExecutor(
            1, f"gateway-replication-{self.config.name}-encode")
        for bucket in self.config.buckets:
            if self.config.name not in self.store.bucket(bucket).cursors:
                await self.store.set_replication_cursor(self.config.name, bucket, 0)
            await self._rebuild_marks(bucket)
            await self._note_oldest_unsent(bucket)
        registry.register(self)
        await super().start(context)
        self.spawn(self._run(), "send")

    async def stop(self) -> None:
        registry.unregister(self)
        await super().stop()
        self.status.state = "stopped"
        if self._thread is not None:
            self._thread.submit(self.sender.close)
            self._thread.shutdown(wait=False)
            self._thread = None
        if self._encoder is not None:
            self._encoder.shutdown(wait=False)
            self._encoder = None

    def position(self, bucket: str) -> int:
        return self.store.bucket(bucket).cursors.get(self.config.name, 0)

    async def _rebuild_marks(self, bucket: str) -> None:
        """After a restart: the points of the WAL records up to the write-order position were
        all acknowledged; those still in heads, or sealed into blocks after the cursor, are
        marked as sent from heads so that they are not sent again."""
        lsn = self.store.replication_lsn(self.config.name, bucket)
        if not lsn:
            return
        sent = self._sent_from_heads[bucket]
        for sp in await self.source.logged_upto(bucket, lsn, self._measurements):
            marks = sent.setdefault(sp.info.id, {})
            for ts, v in zip(sp.timestamps, _comparable(sp.values, sp.info.type)):
                marks[ts] = v
        self._marks_rebuilt.add(bucket)

    async def _note_oldest_unsent(self, bucket: str) -> None:
        """The lag is right from the start: the oldest point of the first block not sent."""
        first = await self.source.sealed_after(bucket, self.position(bucket), 1)
        if first:
            self._oldest_unsent[bucket] = int(min(first[0][1].timestamps))

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        interval = float(self.config.flush_interval)
        while True:
            started = self._monotonic()
            try:
                await self._cycle()
                self.backoff.reset()
                self.status.retry_at = None
                self.status.state = "idle"
            except RetryLater as e:
                paused = isinstance(e, Paused)
                delay = PAUSED_RETRY_S if paused else (e.delay if e.delay is not None
                                                       else self.backoff.next_delay())
                self.status.state = "paused" if paused else "backing_off"
                self.status.retry_at = time.time() + delay
                log.warning("%s; retrying in %.1f s", e, delay)
                await self._sleep(delay)
                continue
            except StoreError as e:
                # The store could not read blocks or record a position (a full or failing
                # card): what was acknowledged and not recorded is sent again later.
                delay = self.backoff.next_delay()
                self.status.error("store", str(e))
                self.status.state = "backing_off"
                self.status.retry_at = time.time() + delay
                log.warning("stream %s: %s; retrying in %.1f s", self.config.name, e, delay)
                await self._sleep(delay)
                continue
            left = interval - (self._monotonic() - started)
            if left > 0:
                await self._sleep(left)

    async def _cycle(self) -> None:
        self.status.state = "sending"
        for bucket in self.buckets:
            await self._send_sealed(bucket)
        for bucket in self.buckets:
            await self._send_heads(bucket)
        self.status.counters["cycles"] += 1

    async def _deliver(self, chunk: Chunk) -> None:
        sender = self.sender
        await self._run_on_sender(lambda: sender.deliver(chunk.bucket, sender.encode(chunk)))

    async def _run_on_sender(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def _run_on_encoder(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._encoder, fn, *args)

    async def _send_sealed(self, bucket: str, upto: int | None = None) -> None:
        """Sends the sealed blocks after the position (up to sequence number ``upto``), a batch
        at a time, oldest first. While the upstream takes one batch, the next ones are read
        and encoded (up to BATCHES_AHEAD) and the position is written (:class:`_PositionWriter`);
        the position only ever moves to the end of a batch the upstream acknowledged, in
        order."""
        loop = asyncio.get_running_loop()
        ahead: asyncio.Queue = asyncio.Queue(BATCHES_AHEAD)
        reader = loop.create_task(self._read_batches(bucket, upto, ahead),
                                  name=f"gateway[{self.name}].read-{bucket}")
        positions = _PositionWriter(
            lambda seq: self.store.set_replication_cursor(self.config.name, bucket, seq),
            f"gateway[{self.name}].position-{bucket}")
        try:
            while True:
                batch = await ahead.get()
                if isinstance(batch, BaseException):
                    raise batch
                if batch is None:
                    self._oldest_unsent[bucket] = None
                    return
                self._oldest_unsent[bucket] = batch.oldest
                await positions.room()
                if batch.bodies:
                    await self._run_on_sender(self.sender.deliver, bucket, batch.bodies)
                positions.acked(batch.last_seq)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await positions.close()  # also when failing: the upstream has what it acknowledged

    async def _read_batches(self, bucket: str, upto: int | None, ahead: asyncio.Queue) -> None:
        """Reads the blocks after the position and puts them in ``ahead`` as prepared batches
        (encoded and compressed on the encoder thread), then None; an error goes in the queue
        for the sender to raise. The marks of head points already sent are consumed here, as
        batches are prepared: when a send fails and the batches read ahead are dropped, those
        points are sent again (at least once)."""
        try:
            budget = int(self.config.batch_bytes)
            sent = self._sent_from_heads[bucket]
            after = self.position(bucket)
            blocks: list[tuple[int, SeriesPoints]] = []
            while True:
                if not blocks:
                    blocks = await self.source.sealed_after(bucket, after, BLOCKS_PER_READ)
                    if upto is not None:
                        blocks = [(seq, sp) for seq, sp in blocks if seq <= upto]
                    if not blocks:
                        await ahead.put(None)
                        return
                    if blocks[0][0] > after + 1:
                        # Blocks the stream had not sent were evicted or expired meanwhile.
                        self.status.counters[f"dropped_blocks_{bucket}"] += blocks[0][0] - after - 1
                chunk = Chunk(bucket)
                oldest = int(blocks[0][1].timestamps[0])
                size = taken = 0
                for seq, sp in blocks:
                    taken += 1
                    after = seq
                    if self._measurements is None or sp.info.measurement in self._measurements:
                        sp = self._not_sent_from_heads(sent, sp)
                        if len(sp):
                            chunk.series.append(sp)
                            size += len(sp) * (len(sp.info.key) + POINT_OVERHEAD_BYTES)
                    if size >= budget:
                        break
                del blocks[:taken]
                prepared = (await self._run_on_encoder(self.sender.prepare, chunk)
                            if chunk.series else [])
                await ahead.put(_SealedBatch(after, oldest, prepared))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the sending side raises it, in order
            await ahead.put(e)

    def _not_sent_from_heads(self, sent: dict, sp: SeriesPoints) -> SeriesPoints:
        """The block's points minus those already sent from the series' head (forgotten as
        they are matched: a head point seals into exactly one block)."""
        marks = sent.get(sp.info.id)
        if not marks:
            return sp
        keep = []
        values = _comparable(sp.values, sp.info.type)
        for i, ts in enumerate(sp.timestamps):
            v = marks.get(ts, marks)  # `marks` itself: no mark for this timestamp
            if v is not marks and v == values[i]:
                del marks[ts]
                self.status.counters["points_already_sent"] += 1
            else:
                keep.append(i)
        if not marks:
            del sent[sp.info.id]
        if len(keep) == len(sp):
            return sp
        ts = array("q", (sp.timestamps[i] for i in keep))
        if isinstance(sp.values, list):
            vals = [sp.values[i] for i in keep]
        else:
            vals = array(sp.values.typecode, (sp.values[i] for i in keep))
        return SeriesPoints(sp.info, ts, vals)

    async def _send_heads(self, bucket: str) -> None:
        """Sends the durable head points not sent yet, once the sealed blocks are all sent."""
        got = await self.source.durable_heads(bucket, self._measurements,
                                              float(self.config.flush_interval))
        if got is None:
            return  # no commit made the heads durable meanwhile: the next cycle tries again
        heads, last_seq, lsn = got
        if last_seq > self.position(bucket):
            # Blocks sealed before the copy go first (order); those sealed after it hold
            # points of the copy and come up in the next cycle, where the marks skip them.
            await self._send_sealed(bucket, upto=last_seq)
            if last_seq > self.position(bucket):
                return
        sent = self._sent_from_heads[bucket]
        chunk = Chunk(bucket)
        marks_to_add = []
        for sp in heads:
            marks = sent.get(sp.info.id, {})
            values = _comparable(sp.values, sp.info.type)
            keep = [i for i, ts in enumerate(sp.timestamps)
                    if marks.get(ts, marks) != values[i]]
            if not keep:
                continue
            if len(keep) != len(sp):
                ts = array("q", (sp.timestamps[i] for i in keep))
                vals = ([sp.values[i] for i in keep] if isinstance(sp.values, list)
                        else array(sp.values.typecode, (sp.values[i] for i in keep)))
                sp = SeriesPoints(sp.info, ts, vals)
            chunk.series.append(sp)
            marks_to_add.append((sp.info.id, sp.timestamps, [values[i] for i in keep]))
        if chunk.series:
            oldest = min(int(min(sp.timestamps)) for sp in chunk.series)
            if self._oldest_unsent.get(bucket) is None:
                self._oldest_unsent[bucket] = oldest
            await self._deliver(chunk)
            for sid, stamps, values in marks_to_add:
                marks = sent.setdefault(sid, {})
                for ts, v in zip(stamps, values):
                    marks[ts] = v
            self.status.counters["head_points_sent"] += chunk.points
            self._oldest_unsent[bucket] = None
        if bucket in self._marks_rebuilt:
            self._drop_stale_marks(sent, heads)
            self._marks_rebuilt.discard(bucket)
        if lsn > self.store.replication_lsn(self.config.name, bucket):
            # Every point of the records up to lsn is acknowledged: in blocks up to last_seq
            # (sent above) or in this copy of the heads.
            await self.store.set_replication_lsn(self.config.name, bucket, lsn)

    @staticmethod
    def _drop_stale_marks(sent: dict, heads: list[SeriesPoints]) -> None:
        """Keeps only the marks of points in the heads just copied: every block sealed before
        the copy has been read, so a mark of a point not in a head belongs to a block at or
        before the cursor (rebuilt marks cover the whole WAL up to the position)."""
        present = {sp.info.id: sp for sp in heads}
        for sid in list(sent):
            sp = present.get(sid)
            if sp is None:
                del sent[sid]
                continue
            marks = sent[sid]
            stamps = set(sp.timestamps)
            for ts in [ts for ts in marks if ts not in stamps]:
                del marks[ts]
            if not marks:
                del sent[sid]

    # ------------------------------------------------------------------ figures

    def health(self) -> dict:
        """The component's health for the status page: the stream's figures."""
        h = super().health()
        try:
            return {**self.stats(), **h, "stream": self.config.name}
        except Exception as e:  # a snapshot must never take the status page down
            h["error"] = str(e)
            return h

    def stats(self) -> dict:
        """The stream's figures for ``gateway replication status``, the status page and
        /metrics; cheap, callable from any thread."""
        s = self.status
        now = time.time()
        buckets = {}
        for bucket in self.config.buckets:
            position = self.position(bucket)
            backlog = self.source.backlog(bucket, position)
            stats = backlog.pop("stats")
            oldest = self._oldest_unsent.get(bucket)
            rate = self._ingest_rate(bucket, stats)
            buckets[bucket] = {
                "position": position,
                "write_position": self.store.replication_lsn(self.config.name, bucket),
                "backlog_blocks": backlog["blocks"],
                "backlog_bytes": backlog["bytes"],
                "backlog_points": backlog["points"],
                "lag_seconds": max(0.0, now - oldest / 1e9) if oldest is not None else 0.0,
                "hours_left": self._hours_left(stats, backlog["bytes"], rate, oldest, now),
                "dropped_blocks": s.counters.get(f"dropped_blocks_{bucket}", 0),
                "dropped_before_forwarding": stats["dropped_before_forwarding"],
            }
        counters = {k: v for k, v in s.counters.items() if not k.startswith("dropped_blocks_")}
        return {
            "name": s.name, "kind": s.kind, "url": s.url, "state": s.state,
            "buckets": buckets,
            "last_error": s.last_error, "last_error_at": s.last_error_at,
            "last_ack_at": s.last_ack_at, "retry_at": s.retry_at,
            "counters": counters,
            "dead_letters": [d.as_dict() for d in list(s.dead_letters)],
        }

    def _ingest_rate(self, bucket: str, stats: dict) -> float:
        """Bytes a second going into the bucket's ring, from the points written since the
        previous sample at least a minute ago, at the bucket's bytes per point."""
        now = time.monotonic()
        points = stats["points_written"]
        sample = self._rate_sample.get(bucket)
        if sample is None:
            self._rate_sample[bucket] = (now, points)
        elif now - sample[0] >= 60:
            per_point = stats["bytes_per_point"] or 0.0
            self._rates[bucket] = max(0, points - sample[1]) * per_point / (now - sample[0])
            self._rate_sample[bucket] = (now, points)
        return self._rates.get(bucket, 0.0)

    @staticmethod
    def _hours_left(stats: dict, backlog_bytes: int, rate: float, oldest: int | None,
                    now: float) -> float | None:
        """Hours of outage the bucket can take at the current ingest rate before a block not
        yet sent is dropped (by size or by age); None when nothing is coming in."""
        hours = None
        capacity = stats["max_size"]
        if rate > 0:
            hours = max(0.0, capacity - backlog_bytes) / rate / 3600
        retention = stats["retention_s"]
        if retention and oldest is not None:
            by_age = max(0.0, retention - (now - oldest / 1e9)) / 3600
            hours = by_age if hours is None else min(hours, by_age)
        return hours
