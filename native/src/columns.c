/* Whole-column arithmetic for query results; see gw_columns.h. */
#include "gw_columns.h"

void gw_times_shift_clamp(const int64_t *ts, int64_t shift, int64_t lo, int64_t hi,
                          int64_t *out, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        int64_t t;
        if (__builtin_add_overflow(ts[i], shift, &t))
            t = shift > 0 ? INT64_MAX : INT64_MIN;
        out[i] = t < lo ? lo : t > hi ? hi : t;
    }
}

void gw_means(const double *sum, const uint64_t *count, double *out, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        out[i] = sum[i] / (double)count[i];
}
