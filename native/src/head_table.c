/* The series table of the heads: series ids by key hash, open addressing with linear probing,
 * at most half full so that a probe ends soon. Ids index impl.by_id; 0 marks an empty slot.
 * Hashes are not kept (8 bytes a series): growing the table hashes the keys again. */
#include <stdlib.h>

#include "head_internal.h"

uint64_t gw_head_hash(const char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

series *gw_head_table_find(const impl *m, const char *key, uint32_t len, uint64_t hash) {
    uint32_t mask = m->table_cap - 1;
    for (uint32_t i = (uint32_t)hash & mask;; i = (i + 1) & mask) {
        uint32_t id = m->table[i];
        if (!id) return NULL;
        series *s = m->by_id[id];
        if (s->key_len == len && memcmp(s->key, key, len) == 0) return s;
    }
}

int gw_head_table_insert(impl *m, series *s, uint64_t hash) {
    if ((m->table_used + 1) * 2 > m->table_cap) {
        uint32_t cap = m->table_cap * 2;
        uint32_t *t = calloc(cap, sizeof *t);
        if (!t) return GW_ENOMEM;
        for (uint32_t i = 0; i < m->table_cap; i++) {
            uint32_t id = m->table[i];
            if (!id) continue;
            const series *o = m->by_id[id];
            uint32_t j = (uint32_t)gw_head_hash(o->key, o->key_len) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = id;
        }
        free(m->table);
        m->table = t;
        m->table_cap = cap;
    }
    uint32_t mask = m->table_cap - 1;
    uint32_t j = (uint32_t)hash & mask;
    while (m->table[j]) j = (j + 1) & mask;
    m->table[j] = s->id;
    m->table_used++;
    return GW_OK;
}
