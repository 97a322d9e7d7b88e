/* Window aggregation of one series straight from its blocks in the ring file.
 *
 * A query that aggregates windows of a series hands the fold the series' blocks (already
 * chosen by the block index for the time range, in time order) and gets back only the
 * windows: each block is read (pread), its entry and block checksums checked and decoded into
 * a scratch buffer that gathers a run of blocks (about 4,096 points) and is reused from run to
 * run; each run is folded into the window accumulators, all in one call for many blocks. Points not from single blocks (merged runs of overlapping blocks,
 * the unsealed head) are folded from columns with gw_fold_columns, in the same time order.
 * gw_fold_many folds a batch of short series in one call (their blocks, then their heads),
 * leaving to the caller the series whose data need merging or noting.
 *
 * Windows are those of gw_aggregate_windows: [offset + k * every, offset + (k + 1) * every),
 * cut to lo <= t < hi. Within a run of points the window boundaries are found by binary search
 * (no per-point division), and each window's slice is folded in tight passes that compute
 * only what the query asks: the sum (added in time order, as the general path does, so a
 * window's sum does not depend on how its points were cut into blocks; four windows' sums are
 * added side by side, each its own chain), min/max, the squared
 * deviations from the slice's mean (merged into the window by Chan's formula). NaN values are
 * skipped, as everywhere in the aggregation kernels. Memory: one run's scratch (24 bytes a
 * point, a run being 4,096 points or one larger block) plus the windows (at most
 * max_windows, else GW_ENOMEM).
 */
#ifndef GW_FOLD_H
#define GW_FOLD_H

#include "gw_common.h"
#include "gw_ring.h"

/* cdef: begin */
/* gw_fold_blocks status[i] of a block that was folded or skipped. */
#define GW_FOLD_OK       0
#define GW_FOLD_STALE    1   /* another entry is at that place now (overwritten) */
#define GW_FOLD_DAMAGED  2   /* the entry's checksum or structure is wrong */
#define GW_FOLD_BAD_BLOCK 3  /* the entry holds, but its block does not decode as this series' */
/* What a fold computes beyond count, sum, first and last (gw_fold_new's want). */
#define GW_FOLD_WANT_MINMAX 1   /* min and max with their points */
#define GW_FOLD_WANT_M2     2   /* the sum of squared deviations (stddev) */
#define GW_FOLD_WANT_ISUM   4   /* the exact integer sum */
/* gw_fold_* return: the points came out of time order (the caller takes the general path). */
#define GW_FOLD_UNORDERED -100
/* gw_fold_many's points of a series that was not folded plainly (see there). */
#define GW_FOLD_NOT_PLAIN -101

typedef struct gw_fold gw_fold;

/* One block of the ring, as the block index names it, with its time bounds. */
typedef struct {
    int64_t seq;
    int64_t offset;
    int64_t length;
    int64_t min_ts;
    int64_t max_ts;
} gw_fold_ref;

/* The windows of a finished fold, in time order, valid until gw_fold_free. The *_ts and *_v
 * columns are the time and the exact 64-bit value word of each window's selected point (min
 * and max ties keep the earliest point; first and last by time); isum is the wrapping integer
 * sum (GW_INT, GW_UINT as its bit pattern), m2 the sum of squared deviations from the mean. */
typedef struct {
    uint32_t n;
    const int64_t *start;
    const uint64_t *count;
    const double *sum;
    const int64_t *isum;
    const double *m2;
    const double *min;
    const double *max;
    const int64_t *min_ts, *max_ts, *first_ts, *last_ts;
    const uint64_t *min_v, *max_v, *first_v, *last_v;
} gw_fold_windows;

/* A fold of values of `type` (GW_FLOAT .. GW_BOOL) over points with lo <= t < hi, computing
 * what `want` asks beyond count, sum, first and last (the columns not wanted hold the first
 * point, or 0); NULL when every <= 0, lo >= hi, the type is not numeric or memory runs out. */
gw_fold *gw_fold_new(uint8_t type, uint32_t want, int64_t every, int64_t offset, int64_t lo,
                     int64_t hi, uint32_t max_windows);
void     gw_fold_free(gw_fold *f);
/* Folds n points (64-bit words as in blocks; booleans 0/1), strictly increasing in time and
 * later than every point folded before. Returns the points folded (those in [lo, hi)), GW_FOLD_UNORDERED, or
 * GW_ENOMEM (more than max_windows windows, or memory). */
int64_t  gw_fold_columns(gw_fold *f, const int64_t *ts, const uint64_t *values, uint32_t n);
/* Reads, checks, decodes and folds blocks of ring r, given in order of min_ts, up to the
 * first block whose successor's time bounds meet its own (blocks that overlap need merging,
 * last write wins: the caller merges that run, folds it with gw_fold_columns and goes on);
 * *done: the blocks taken. status[i] says what became of block i (a block that is not
 * GW_FOLD_OK is skipped). Points that are not later than those folded before (bounds that
 * lied) give GW_FOLD_UNORDERED: the caller takes the general path. Returns the points folded,
 * or GW_FOLD_UNORDERED, GW_ENOMEM, GW_EIO (errno in the ring's last_errno). */
int64_t  gw_fold_blocks(gw_fold *f, struct gw_ring *r, const gw_fold_ref *refs, uint32_t n,
                        int32_t *status, uint32_t *done);
/* Closes the last window and fills out. GW_OK. */
int      gw_fold_finish(gw_fold *f, gw_fold_windows *out);
/* Folds a batch of n series in one call (a query over many short series pays one call, not
 * a dozen, a series), each from scratch: series k has values of types[k], the blocks
 * refs[refs_at[k] .. refs_at[k + 1]) (as gw_fold_blocks takes them) and then the head points
 * head_ts/head_v[head_at[k] .. head_at[k + 1]) (as gw_fold_columns takes them); f's type is
 * set to each series' in turn, its windows, lo, hi and want are shared. points[k]: the points
 * folded, or GW_FOLD_NOT_PLAIN when the series needs the caller's per-series path (a block
 * not GW_FOLD_OK, blocks that overlap, points out of time order, a read error, more than
 * max_windows windows): such a series adds no window. The windows of the series folded are
 * appended, series after series, to one set of columns: series k's are rows
 * windows_at[k] .. windows_at[k + 1] (n + 1 entries) of out, whose columns are those of
 * gw_fold_windows whose bit is set in `columns` (bit i: the i-th column of gw_fold_windows,
 * start first; the others are NULL); valid until the next gw_fold_many or gw_fold_free.
 * Returns the windows in out, or GW_ENOMEM (the batch's columns could not grow). */
int64_t  gw_fold_many(gw_fold *f, struct gw_ring *r, uint32_t n, const uint8_t *types,
                      const gw_fold_ref *refs, const uint32_t *refs_at, const int64_t *head_ts,
                      const uint64_t *head_v, const uint32_t *head_at, uint32_t columns,
                      int64_t *points, uint32_t *windows_at, gw_fold_windows *out);
/* cdef: end */

#endif
