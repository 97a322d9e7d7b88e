/* The in-memory heads of a bucket: one growing buffer of points per series, logged to the
 * WAL by group commits and sealed into codec blocks in the ring when full or old.
 *
 * A head's points are "logged" once a WAL record holding them was written; only logged points
 * are sealed, so every point in a block is in the WAL until the ring is synced. Each sealed
 * series remembers the LSN up to which its points are in blocks (sealed_lsn, also stored in
 * the block's ring entry), and replay skips that series' groups in records at or below it:
 * a point is never both replayed and in a block.
 *
 * Not thread-safe: the caller serialises every call on one gw_heads (the store does them all
 * on its one store thread). Reading a ring (gw_ring_read_entry) may run concurrently.
 */
#ifndef GW_HEAD_H
#define GW_HEAD_H

#include "gw_batch.h"
#include "gw_ring.h"
#include "gw_wal.h"

/* cdef: begin */
/* Opaque: Python passes values in as arguments and reads counters with gw_heads_get_stats. */
typedef struct gw_heads gw_heads;

/* Counters and state of a gw_heads, copied out by one call. */
typedef struct gw_heads_stats {
    uint64_t next_lsn;          /* LSN of the next WAL record */
    uint32_t max_series_id;
    uint64_t points_ingested;
    uint64_t type_conflicts;    /* points refused: their series has another type */
    uint64_t too_old;           /* points refused: older than the ingest's min_ts */
    uint64_t unlogged_points;   /* ingested, not yet in a WAL record */
    uint64_t head_points_total; /* points in heads, logged or not */
    uint64_t head_bytes;        /* memory the heads' point buffers and string arenas take */
    uint64_t blocks_sealed;
    uint64_t direct_sealed;     /* heads sealed by gw_heads_commit without a WAL record */
    uint64_t records_replayed, points_replayed;
    uint64_t corrupt_records;   /* WAL records skipped by replay (checksum or structure) */
    uint64_t corrupt_bytes;     /* bytes replay skipped to find the next good record */
    uint64_t points_lost;       /* replayed points whose series or type was unknown */
} gw_heads_stats;

/* What one gw_heads_ingest did. */
typedef struct gw_ingest_report {
    uint64_t taken;             /* points taken */
    uint64_t type_conflicts;    /* points refused: their series has another type */
    int64_t  last_conflict;     /* index in the batch of the last of those, -1 if none */
    uint64_t too_old;           /* points refused: older than min_ts */
    uint64_t series_limited;    /* points refused: a new series past max_series */
    int64_t  last_limited;      /* index in the batch of the last of those, -1 if none */
    uint64_t unlogged_points;   /* points in the heads not yet in a WAL record, after the call */
} gw_ingest_report;

/* Which file a failed gw_heads_commit could not write. */
#define GW_FILE_WAL  1
#define GW_FILE_RING 2

/* What one gw_heads_commit did. */
typedef struct gw_commit_report {
    uint32_t sealed_directly;   /* full heads sealed into the ring instead of the WAL */
    int      failed_file;       /* on failure: GW_FILE_WAL or GW_FILE_RING */
    int      failed_errno;      /* errno of that failure, 0 when not an I/O error */
} gw_commit_report;

/* New heads, or NULL when out of memory. */
gw_heads *gw_heads_new(uint32_t head_points, int64_t head_max_age_ms);
void      gw_heads_free(gw_heads *h);
/* Copies the counters into *out. */
void      gw_heads_get_stats(gw_heads *h, gw_heads_stats *out);
/* Declares a known series (from the catalogue). GW_OK, GW_EINVAL (bad id/type/key, or the id
 * or key already belongs to another series) or GW_ENOMEM. */
int       gw_heads_define(gw_heads *h, uint32_t id, uint8_t type, const char *key,
                          uint32_t key_len, uint64_t sealed_lsn);
/* Raises a series' sealed LSN (from a ring entry found by recovery). GW_OK or GW_EINVAL. */
int       gw_heads_note_sealed(gw_heads *h, uint32_t id, uint64_t lsn);
/* Recovery: raises the next LSN and the highest series id to at least these values (from the
 * catalogue, the ring and the WAL segment names), so neither is ever reused. */
void      gw_heads_resume(gw_heads *h, uint64_t next_lsn, uint32_t max_series_id);
/* The key of series id (length in *len), or NULL when unknown. */
const char *gw_heads_series_key(gw_heads *h, uint32_t id, uint32_t *len);
/* The type of series id, or 0 when unknown. */
int       gw_heads_series_type(gw_heads *h, uint32_t id);
/* The LSN up to which series id is sealed, 0 when unknown. */
uint64_t  gw_heads_series_sealed_lsn(gw_heads *h, uint32_t id);
/* Appends every point of b to its series' head, creating series as needed. Points whose
 * series exists with another type are refused and counted (type_conflicts, last_conflict);
 * points older than min_ts (INT64_MIN: no limit) are refused and counted (too_old) without
 * creating their series; so are points of a new series when the heads already hold
 * max_series series (0: no limit; series_limited, last_limited). Fills *out. Returns the number of points taken, or GW_ENOMEM (all
 * unlogged points are dropped: the commit they wait for fails). */
int64_t   gw_heads_ingest(gw_heads *h, const struct gw_batch *b, int64_t now_ms, int64_t min_ts,
                          uint32_t max_series, gw_ingest_report *out);
/* A group commit: all unlogged points go to the WAL as one record (or more, past
 * GW_WAL_MAX_POINTS points or the WAL's max_body bytes) with one write(2), except that, when r is not NULL, a head already
 * holding head_points points (logged or not) is sealed into ring blocks right away instead of
 * being logged, so its points never pass through the WAL; the caller must then sync the ring
 * as well as the WAL before the commit counts (out->sealed_directly > 0). The keys of such
 * series still go into the WAL record when this segment lacks them. On failure the unlogged
 * points are removed from the heads, so a failed commit stores nothing, and out says which
 * file failed. GW_OK, GW_EIO, GW_ENOSPC, GW_EINVAL or GW_ENOMEM. */
int       gw_heads_commit(gw_heads *h, struct gw_wal *w, struct gw_ring *r, int64_t now_ms,
                          gw_commit_report *out);
/* Seals the logged points of every head that is full, older than head_max_age_ms, or any
 * non-empty head when force is set: sorted by time, duplicates (same timestamp) collapsed to
 * the last written, cut into blocks of at most head_points. The new ring entries wait to be
 * taken (gw_heads_take_outputs). GW_OK, or the ring's error (the failing head keeps its
 * points; its errno in the ring's info). */
int       gw_heads_seal(gw_heads *h, struct gw_ring *r, int64_t now_ms, int force);
/* How many sealed ring entries and new series ids wait to be taken. */
void      gw_heads_outputs(gw_heads *h, uint32_t *n_sealed, uint32_t *n_new_series);
/* Copies the waiting ring entries and new series ids (sized by gw_heads_outputs) out and
 * forgets them. */
void      gw_heads_take_outputs(gw_heads *h, struct gw_ring_entry *sealed, uint32_t *new_series);
/* Replays one WAL segment file's bytes into the heads (points become logged). Damaged records
 * are skipped and counted; the zeros after the last record of a preallocated segment are its
 * end, not damage. GW_OK, GW_ECORRUPT when the segment header is damaged (records are still
 * recovered), GW_WAL_EVERSION (a format newer than this code: nothing replayed) or GW_ENOMEM. */
int       gw_heads_replay(gw_heads *h, const uint8_t *data, size_t len, int64_t now_ms);
/* gw_heads_replay of the groups of records up to upto_lsn only (definitions are taken from
 * every record): what a replication stream had sent, rebuilt in scratch heads. */
int       gw_heads_replay_upto(gw_heads *h, const uint8_t *data, size_t len, int64_t now_ms,
                               uint64_t upto_lsn);
/* The smallest LSN whose WAL record still holds points not sealed (next_lsn when none). */
uint64_t  gw_heads_min_lsn(gw_heads *h);
/* Size of series id's head: points in *n, string bytes in *string_bytes. GW_OK or GW_EINVAL. */
int       gw_heads_head_size(gw_heads *h, uint32_t id, uint32_t *n, uint64_t *string_bytes);
/* The points in the heads of the n series ids[i] (0 for an unknown id): a reader copies only
 * the heads that hold some, not each of many in a call of its own. */
void      gw_heads_head_points(gw_heads *h, const uint32_t *ids, uint32_t n, uint32_t *points);
/* Copies the head (in arrival order) into caller buffers sized by gw_heads_head_size;
 * strings/str_off (n+1 offsets) only for string series. GW_OK or GW_EINVAL. */
int       gw_heads_head_copy(gw_heads *h, uint32_t id, int64_t *ts, uint64_t *values,
                             char *strings, uint32_t *str_off);
/* The order in which to take n points (given oldest write first) so that they are sorted by
 * time with only the last written point of each timestamp kept. Fills order, returns how
 * many points are kept, or GW_ENOMEM. */
int64_t   gw_heads_merge_order(const int64_t *ts, uint32_t n, uint32_t *order);
/* dst[i] = src[order[i]] for i < n (64-bit columns). */
void      gw_heads_gather64(const uint64_t *src, const uint32_t *order, uint32_t n, uint64_t *dst);
/* The newest point of a series, for readers that ask for it often (the last value of a
 * series): kept for at most GW_HEADS_MAX_WATCHED series, those that were asked for. */
#define GW_HEADS_MAX_WATCHED 65536
/* Starts keeping the newest point of series id (not a string series): every point taken from
 * then on (ingest, replay) updates it. The points stored before are the caller's to read: it
 * reads them after this call and hands their newest to gw_heads_newest_fill with *epoch.
 * Returns 1 when the newest point is known already (nothing to fill), 0 when it waits for a
 * fill, GW_EINVAL for an unknown or string series, GW_ENOMEM when the table is full. */
int       gw_heads_watch(gw_heads *h, uint32_t id, uint32_t *epoch);
/* The newest point of series id: 1 with its time and raw 64-bit value when known, else 0. */
int       gw_heads_newest(gw_heads *h, uint32_t id, int64_t *ts, uint64_t *value);
/* Completes a watch: (ts, value) is the newest stored point the caller read after
 * gw_heads_watch gave epoch (found 0: none). Returns 1 when the newest point is now known, 0
 * when it was invalidated in between (the caller's read may hold a point no longer stored). */
int       gw_heads_newest_fill(gw_heads *h, uint32_t id, uint32_t epoch, int found, int64_t ts,
                               uint64_t value);
/* A block of series id whose newest point is at max_ts left the store (evicted, expired):
 * the series' newest point is forgotten if it may have been in it. */
void      gw_heads_newest_dropped(gw_heads *h, uint32_t id, int64_t max_ts);
/* cdef: end */

/* ---- The heads' state (not part of the Python API: C alone reads and writes it). ---- */

struct gw_heads {
    uint32_t head_points;       /* seal a head once it holds this many logged points */
    int64_t  head_max_age_ms;   /* ... or once its first point arrived this long ago */
    /* Outputs waiting to be taken (gw_heads_take_outputs). */
    struct gw_ring_entry *sealed;      /* blocks written to the ring */
    uint32_t n_sealed, sealed_cap;
    uint32_t *new_series;       /* series ids created (by ingest or replay) */
    uint32_t n_new_series, new_series_cap;
    gw_heads_stats stats;
    void *impl;
};

#endif
