/* Fixed-window aggregation over decoded columns (see gw_aggregate.h for the semantics). */
#include <math.h>
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
int64_t gw_window_start(int64_t t, int64_t every, int64_t offset) {
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

/* The input indices in time order (stable), or NULL when the input is already sorted;
 * *failed is set when memory runs out. */
static ordered_point *time_order(const int64_t *ts, uint32_t n, int *failed) {
    *failed = 0;
    int sorted = 1;
    for (uint32_t i = 1; i < n && sorted; i++) sorted = ts[i - 1] <= ts[i];
    if (sorted) return NULL;
    ordered_point *order = malloc(sizeof *order * n);
    if (!order) { *failed = 1; return NULL; }
    for (uint32_t i = 0; i < n; i++) order[i] = (ordered_point){ts[i], i};
    qsort(order, n, sizeof *order, by_time);
    return order;
}

static int normalise(int64_t every, int64_t *offset) {
    if (every <= 0) return 0;
    *offset %= every;
    if (*offset < 0) *offset += every;
    return 1;
}

int64_t gw_aggregate_windows(uint8_t type, const int64_t *ts, const uint64_t *values, uint32_t n,
                             int64_t every, int64_t offset, gw_windows *out, uint32_t cap) {
    if (!normalise(every, &offset) || type < GW_FLOAT || type > GW_BOOL) return GW_EINVAL;
    if (n == 0) return 0;
    int failed;
    ordered_point *order = time_order(ts, n, &failed);
    if (failed) return GW_ENOMEM;

    int64_t w = -1, cur = 0;
    double running = 0.0;   /* Welford's running mean of the current window */
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i = order ? order[j].at : j;
        double v = value_of(type, values[i]);
        if (v != v) continue;   /* NaN: skipped */
        int64_t s = gw_window_start(ts[i], every, offset);
        if (w < 0 || s != cur) {
            if (w + 1 >= (int64_t)cap) { free(order); return GW_EINVAL; }
            w++;
            cur = s;
            out->start[w] = s;
            out->count[w] = 0;
            out->sum[w] = 0.0;
            out->isum[w] = 0;
            out->m2[w] = 0.0;
            running = 0.0;
            out->min[w] = out->max[w] = out->first[w] = v;
            out->min_at[w] = out->max_at[w] = out->first_at[w] = i;
        }
        uint64_t c = ++out->count[w];
        out->sum[w] += v;
        if (type == GW_INT || type == GW_UINT)
            out->isum[w] = (int64_t)((uint64_t)out->isum[w] + values[i]);
        double delta = v - running;
        running += delta / (double)c;
        out->m2[w] += delta * (v - running);
        if (v < out->min[w]) { out->min[w] = v; out->min_at[w] = i; }
        if (v > out->max[w]) { out->max[w] = v; out->max_at[w] = i; }
        out->last[w] = v;
        out->last_at[w] = i;
    }
    free(order);
    for (int64_t k = 0; k <= w; k++) out->mean[k] = out->sum[k] / (double)out->count[k];
    return w + 1;
}

typedef struct { double v; uint32_t rank; uint32_t at; } ranked_value;

static int by_value(const void *a, const void *b) {
    const ranked_value *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Quantile of scratch[0..m) (sorted here) into value[w] / at[w]. */
static void quantile_of(ranked_value *scratch, uint32_t m, double q, int method,
                        double *value, uint32_t *at, int64_t w) {
    qsort(scratch, m, sizeof *scratch, by_value);
    if (method == 1) {
        double r = ceil(q * (double)m) - 1.0;
        uint32_t k = r < 0 ? 0 : (uint32_t)r;
        if (k >= m) k = m - 1;
        value[w] = scratch[k].v;
        at[w] = scratch[k].at;
        return;
    }
    double pos = q * (double)(m - 1);
    uint32_t lo = (uint32_t)floor(pos), hi = (uint32_t)ceil(pos);
    double frac = pos - (double)lo;
    value[w] = lo == hi ? scratch[lo].v : scratch[lo].v + frac * (scratch[hi].v - scratch[lo].v);
    at[w] = scratch[lo].at;
}

int64_t gw_window_quantile(uint8_t type, const int64_t *ts, const uint64_t *values, uint32_t n,
                           int64_t every, int64_t offset, double q, int method,
                           double *value, uint32_t *at, uint32_t cap) {
    if (!normalise(every, &offset) || type < GW_FLOAT || type > GW_BOOL) return GW_EINVAL;
    if (!(q >= 0.0 && q <= 1.0) || (method != 0 && method != 1)) return GW_EINVAL;
    if (n == 0) return 0;
    int failed;
    ordered_point *order = time_order(ts, n, &failed);
    if (failed) return GW_ENOMEM;
    ranked_value *scratch = malloc(sizeof *scratch * n);
    if (!scratch) { free(order); return GW_ENOMEM; }

    int64_t w = -1, cur = 0;
    uint32_t m = 0;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t i = order ? order[j].at : j;
        double v = value_of(type, values[i]);
        if (v != v) continue;
        int64_t s = gw_window_start(ts[i], every, offset);
        if (w < 0 || s != cur) {
            if (w >= 0) quantile_of(scratch, m, q, method, value, at, w);
            if (w + 1 >= (int64_t)cap) { free(scratch); free(order); return GW_EINVAL; }
            w++;
            cur = s;
            m = 0;
        }
        scratch[m++] = (ranked_value){v, j, i};
    }
    if (w >= 0) quantile_of(scratch, m, q, method, value, at, w);
    free(scratch);
    free(order);
    return w + 1;
}
