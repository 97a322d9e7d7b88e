/* Sorting series keys held in one arena (see gw_keysort.h). */
#include <stdlib.h>
#include <string.h>

#include "gw_keysort.h"

typedef struct key_ref {
    const uint8_t *key;
    uint32_t       len;
    uint32_t       id;
} key_ref;

static int compare_keys(const void *a, const void *b) {
    const key_ref *x = a, *y = b;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

int gw_keys_sort(const uint8_t *arena, uint64_t arena_len, const uint64_t *offsets,
                 const uint32_t *lengths, uint32_t n_index, uint32_t *ids, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        if (id >= n_index || offsets[id] > arena_len || lengths[id] > arena_len - offsets[id])
            return GW_EINVAL;
    }
    if (n < 2) return GW_OK;
    key_ref *refs = malloc((size_t)n * sizeof *refs);
    if (!refs) return GW_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        refs[i].key = arena + offsets[id];
        refs[i].len = lengths[id];
        refs[i].id = id;
    }
    qsort(refs, n, sizeof *refs, compare_keys);
    for (uint32_t i = 0; i < n; i++) ids[i] = refs[i].id;
    free(refs);
    return GW_OK;
}
