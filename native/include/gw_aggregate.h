/* Aggregation kernels over decoded columns, for the query engine and the downsampling tasks.
 *
 * Windows are fixed and aligned to the Unix epoch shifted by an offset: window k covers
 * [offset + k * every, offset + (k + 1) * every). Each non-empty window yields count, sum,
 * mean, min, max, first and last (first/last by timestamp; ties keep input order). NaN values
 * are skipped (neither counted nor aggregated), so a window of only NaNs yields nothing.
 */
#ifndef GW_AGGREGATE_H
#define GW_AGGREGATE_H

#include "gw_common.h"

/* cdef: begin */
/* Aggregates n points (ts[i], values[i]) of the given value type (GW_FLOAT: IEEE bits,
 * GW_INT, GW_UINT, GW_BOOL: 0/1 words; computed in double precision) per window of `every`
 * ns shifted by `offset` ns. Sorted timestamps take one pass; others are ordered first (one
 * temporary index of n entries). Writes up to cap windows, in time order, into the output
 * columns (window start, count, sum, mean, min, max, first, last); cap = n always suffices.
 * Returns the number of windows, or GW_EINVAL (every <= 0, unknown type, cap too small) or
 * GW_ENOMEM. */
int64_t gw_aggregate_windows(uint8_t type, const int64_t *ts, const uint64_t *values, uint32_t n,
                             int64_t every, int64_t offset,
                             int64_t *start, uint64_t *count, double *sum, double *mean,
                             double *min, double *max, double *first, double *last, uint32_t cap);
/* cdef: end */

#endif
