/* Fixed-window aggregation over decoded columns (see gw_aggregate.h for the semantics). */
#include <stdlib.h>
#include <string.h>

#include "gw_aggregate.h"

static double value_of(uint8_t type, uint64_t v) {
    switch (type) {
    case GW_FLOAT: { double d; memcpy(&d, &v, 8); return d; }
    case GW_INT:   return (double)(int64_t)v;
    case GW_BOOL:  return v ? 1.0 : 0.0;
    default:       return (double)v;
    }
}

/* Start of the window holding t, computed without overflow for any t (wrapping only for
 * windows that would begin before INT64_MIN). */
static int64_t window_start(int64_t t, int64_t every, int64_t offset) {
    int64_t q = t / every, r = t % every;
    if (r < 0) { q--; r += every; }                 /* floor division */
    uint64_t base = (uint64_t)q * (uint64_t)every;  /* q * every lies between 0 and t */
    if (r < offset) base -= (uint64_t)every;
    return (int64_t)(base + (uint64_t)offset);
}

typedef struct { int64_t ts; uint32_t at; } ordered_point;

static int by_time(const void *a, const void *b) {
    const ordered_point *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

int64_t gw_aggregate_windows(uint8_t type, const int64_t *ts, const uint64_t *values, uint32_t n,
                             int64_t every, int64_t offset,
                             int64_t *start, uint64_t *count, double *sum, double *mean,
                             double *min, double *max, double *first, double *last, uint32_t cap) {
    if (every <= 0 || type < GW_FLOAT || type > GW_BOOL) return GW_EINVAL;
    if (n == 0) return 0;
    if (cap < n) return GW_EINVAL;
    offset %= every;
    if (offset < 0) offset += every;

    int sorted = 1;
    for (uint32_t i = 1; i < n && sorted; i++) sorted = ts[i - 1] <= ts[i];
    ordered_point *order = NULL;
    if (!sorted) {
        order = malloc(sizeof *order * n);
        if (!order) return GW_ENOMEM;
        for (uint32_t i = 0; i < n; i++) order[i] = (ordered_point){ts[i], i};
        qsort(order, n, sizeof *order, by_time);
    }

    int64_t w = -1, cur = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i = order ? order[j].at : j;
        double v = value_of(type, values[i]);
        if (v != v) continue;   /* NaN: skipped */
        int64_t s = window_start(ts[i], every, offset);
        if (w < 0 || s != cur) {
            w++;
            cur = s;
            start[w] = s;
            count[w] = 0;
            sum[w] = 0.0;
            min[w] = max[w] = first[w] = v;
        }
        count[w]++;
        sum[w] += v;
        if (v < min[w]) min[w] = v;
        if (v > max[w]) max[w] = v;
        last[w] = v;
    }
    free(order);
    for (int64_t k = 0; k <= w; k++) mean[k] = sum[k] / (double)count[k];
    return w + 1;
}
