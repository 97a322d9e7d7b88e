/* Time-order merges of points written oldest first, keeping the last write of each timestamp,
 * and the gathers that put a head's columns in that order: used by sealing (head.c) and by
 * reads that merge blocks with a head (gateway/store/reading.py). */
#include <stdlib.h>
#include <string.h>

#include "head_internal.h"

int64_t gw_heads_merge_order(const int64_t *ts, uint32_t n, uint32_t *order) {
    uint32_t i;
    for (i = 1; i < n && ts[i] > ts[i - 1]; i++) {}
    for (uint32_t k = 0; k < n; k++) order[k] = k;
    if (i >= n) return n;
    uint32_t *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) return GW_ENOMEM;
    /* Bottom-up merge sort of the indices: stable, so equal timestamps stay in write order. */
    uint32_t *src = order, *dst = tmp;
    for (uint32_t width = 1; width < n; width *= 2) {
        for (uint32_t lo = 0; lo < n; lo += 2 * width) {
            uint32_t mid = lo + width < n ? lo + width : n;
            uint32_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            uint32_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi) dst[k++] = ts[src[b]] < ts[src[a]] ? src[b++] : src[a++];
            while (a < mid) dst[k++] = src[a++];
            while (b < hi) dst[k++] = src[b++];
        }
        uint32_t *t = src; src = dst; dst = t;
    }
    if (src != order) memcpy(order, src, (size_t)n * sizeof *order);
    free(tmp);
    /* Keep the last of each run of equal timestamps. */
    uint32_t kept = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (k + 1 < n && ts[order[k + 1]] == ts[order[k]]) continue;
        order[kept++] = order[k];
    }
    return kept;
}

void gw_heads_gather64(const uint64_t *src, const uint32_t *order, uint32_t n, uint64_t *dst) {
    for (uint32_t i = 0; i < n; i++) dst[i] = src[order[i]];
}

size_t gw_head_gather_strings(const series *s, const uint32_t *order, uint32_t n, char *dst,
                              uint32_t *off) {
    off[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = s->values[order ? order[i] : i];
        uint32_t len = (uint32_t)(v & LEN_MASK);
        if (dst && len) memcpy(dst + off[i], s->str + (v >> LEN_BITS), len);
        off[i + 1] = off[i] + len;
    }
    return off[n];
}
