/* Aggregation kernels over decoded columns, for the query engine and the downsampling tasks.
 *
 * Windows are fixed and aligned to the Unix epoch shifted by an offset: window k covers
 * [offset + k * every, offset + (k + 1) * every). Each non-empty window yields count, sum,
 * mean, the sum of squared deviations (for stddev), min, max, first and last (first/last by
 * timestamp; ties keep input order; min/max ties keep the earliest point), and the input index
 * of each selected point, so callers take the selected point's time and exact value. NaN
 * values are skipped (neither counted nor aggregated), so a window of only NaNs yields nothing.
 */
#ifndef GW_AGGREGATE_H
#define GW_AGGREGATE_H

#include "gw_common.h"

/* cdef: begin */
/* Output columns of gw_aggregate_windows, each with room for cap windows. isum is the exact
 * (wrapping) sum of GW_INT values, or of GW_UINT values as their 64-bit pattern, else 0. */
typedef struct {
    int64_t *start;
    uint64_t *count;
    double *sum;
    int64_t *isum;
    double *mean;
    double *m2;
    double *min;
    double *max;
    double *first;
    double *last;
    uint32_t *min_at;
    uint32_t *max_at;
    uint32_t *first_at;
    uint32_t *last_at;
} gw_windows;

/* Aggregates n points (ts[i], values[i]) of the given value type (GW_FLOAT: IEEE bits,
 * GW_INT, GW_UINT, GW_BOOL: 0/1 words; computed in double precision) per window of `every`
 * ns shifted by `offset` ns. Sorted timestamps take one pass; others are ordered first (one
 * temporary index of n entries). Writes up to cap windows, in time order, into `out`; cap = n
 * always suffices, and for sorted input (ts[n-1] - ts[0]) / every + 2 does. Returns the number
 * of windows, or GW_EINVAL (every <= 0, unknown type, more windows than cap) or GW_ENOMEM. */
int64_t gw_aggregate_windows(uint8_t type, const int64_t *ts, const uint64_t *values, uint32_t n,
                             int64_t every, int64_t offset, gw_windows *out, uint32_t cap);

/* The q-quantile (0 <= q <= 1) of each non-empty window, the windows being those of
 * gw_aggregate_windows for the same input, in the same order. method 0 interpolates linearly
 * between the two points closest to rank q * (count - 1) (Flux's exact_mean; the exact value
 * that its estimate_tdigest approximates); method 1 selects the point at rank
 * ceil(q * count) - 1 (Flux's exact_selector), whose input index goes to at[] (ties: the
 * earliest point). Returns the number of windows, or GW_EINVAL (bad every, type, q, method, or
 * more windows than cap) or GW_ENOMEM (it needs 16 bytes of scratch per point). */
int64_t gw_window_quantile(uint8_t type, const int64_t *ts, const uint64_t *values, uint32_t n,
                           int64_t every, int64_t offset, double q, int method,
                           double *value, uint32_t *at, uint32_t cap);
/* cdef: end */

/* For the kernels (fold.c): the start of the window holding t, for 0 <= offset < every,
 * without overflow for any t. */
int64_t gw_window_start(int64_t t, int64_t every, int64_t offset);

#endif
