/* Growable batch of points; see gw_batch.h for the layout and the series key form. */
#include <stdlib.h>
#include <string.h>

#include "gw_batch.h"

#define BATCH_MIN_POINTS 64
#define BATCH_MIN_ARENA  4096
/* Offsets into the arena are 32-bit: a batch never holds more than 4 GiB of keys. */
#define BATCH_MAX_ARENA  ((size_t)UINT32_MAX)

gw_batch *gw_batch_new(void) {
    return calloc(1, sizeof(gw_batch));
}

void gw_batch_free(gw_batch *b) {
    if (!b) return;
    free(b->points);
    free(b->arena);
    free(b);
}

void gw_batch_clear(gw_batch *b) {
    b->n = 0;
    b->arena_len = 0;
}

static int reserve_points(gw_batch *b, uint32_t extra) {
    if (b->n + (uint64_t)extra <= b->cap) return GW_OK;
    uint64_t cap = b->cap ? b->cap : BATCH_MIN_POINTS;
    while (cap < b->n + (uint64_t)extra) cap *= 2;
    if (cap > UINT32_MAX) return GW_ENOMEM;
    gw_point *p = realloc(b->points, cap * sizeof(gw_point));
    if (!p) return GW_ENOMEM;
    b->points = p;
    b->cap = (uint32_t)cap;
    return GW_OK;
}

int64_t gw_batch_arena_append(gw_batch *b, const char *bytes, size_t len) {
    if (len > BATCH_MAX_ARENA - b->arena_len) return -1;
    if (b->arena_len + len > b->arena_cap) {
        size_t cap = b->arena_cap ? b->arena_cap : BATCH_MIN_ARENA;
        while (cap < b->arena_len + len) cap *= 2;
        if (cap > BATCH_MAX_ARENA) cap = BATCH_MAX_ARENA;
        char *a = realloc(b->arena, cap);
        if (!a) return -1;
        b->arena = a;
        b->arena_cap = cap;
    }
    int64_t off = (int64_t)b->arena_len;
    if (len) memcpy(b->arena + b->arena_len, bytes, len);
    b->arena_len += len;
    return off;
}

int gw_batch_push(gw_batch *b, uint32_t key_off, uint32_t key_len, uint8_t type,
                  uint64_t value, uint32_t str_len, int64_t ts) {
    if (type < GW_FLOAT || type > GW_STRING) return GW_EINVAL;
    if (key_len == 0 || key_len > GW_MAX_KEY_LEN) return GW_EINVAL;
    if ((uint64_t)key_off + key_len > b->arena_len) return GW_EINVAL;
    if (type == GW_STRING) {
        /* compared without adding: value + str_len could wrap */
        if (str_len > GW_MAX_STRING_LEN || value > b->arena_len || str_len > b->arena_len - value)
            return GW_EINVAL;
    } else {
        str_len = 0;
    }
    if (reserve_points(b, 1) != GW_OK) return GW_ENOMEM;
    gw_point *p = &b->points[b->n++];
    p->ts = ts;
    p->value = value;
    p->key_off = key_off;
    p->key_len = key_len;
    p->str_len = str_len;
    p->type = type;
    return GW_OK;
}

int gw_batch_add(gw_batch *b, const char *key, uint32_t key_len, uint8_t type,
                 uint64_t value, const char *str, uint32_t str_len, int64_t ts) {
    if (type < GW_FLOAT || type > GW_STRING) return GW_EINVAL;
    if (key_len == 0 || key_len > GW_MAX_KEY_LEN) return GW_EINVAL;
    if (type == GW_STRING && str_len > GW_MAX_STRING_LEN) return GW_EINVAL;
    size_t mark = b->arena_len;
    int64_t koff = gw_batch_arena_append(b, key, key_len);
    if (koff < 0) return GW_ENOMEM;
    if (type == GW_STRING) {
        int64_t soff = gw_batch_arena_append(b, str, str_len);
        if (soff < 0) { b->arena_len = mark; return GW_ENOMEM; }
        value = (uint64_t)soff;
    }
    int rc = gw_batch_push(b, (uint32_t)koff, key_len, type, value, str_len, ts);
    if (rc != GW_OK) b->arena_len = mark;
    return rc;
}

int gw_batch_time_bounds(const gw_batch *b, int64_t *min_ts, int64_t *max_ts) {
    if (!b || b->n == 0) return 0;
    int64_t lo = b->points[0].ts, hi = lo;
    for (uint32_t i = 1; i < b->n; i++) {
        int64_t t = b->points[i].ts;
        if (t < lo) lo = t;
        if (t > hi) hi = t;
    }
    *min_ts = lo;
    *max_ts = hi;
    return 1;
}
