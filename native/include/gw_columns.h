/* Whole-column arithmetic for query results (gateway/query/windows.py, executor.py): a table
 * of many windows is built from the fold's columns without a Python operation per row. */
#ifndef GW_COLUMNS_H
#define GW_COLUMNS_H

#include "gw_common.h"

/* cdef: begin */
/* out[i] = ts[i] + shift, then clamped to [lo, hi] (a sum past the int64 range saturates
 * first), for i < n: aggregateWindow's _time column from window starts, the first and last
 * windows cut by the range. out may be ts. */
void gw_times_shift_clamp(const int64_t *ts, int64_t shift, int64_t lo, int64_t hi,
                          int64_t *out, uint64_t n);

/* out[i] = sum[i] / count[i] in double precision, for i < n: the means of non-empty windows
 * (count > 0; a count is exact as a double below 2^53, as Python's int / float gives it). */
void gw_means(const double *sum, const uint64_t *count, double *out, uint64_t n);
/* cdef: end */

#endif
