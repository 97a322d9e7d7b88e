/* Internals of the heads shared by head.c, head_table.c and head_merge.c (not part of the
 * cffi interface). */
#ifndef GW_HEAD_INTERNAL_H
#define GW_HEAD_INTERNAL_H

#include <string.h>

#include "gw_head.h"

/* A string value in a head is (offset in the head's arena << LEN_BITS) | length. */
#define LEN_BITS   20
#define LEN_MASK   ((1u << LEN_BITS) - 1)
#define MIN_TABLE  64   /* slots of a new series table (a power of two) */

/* One series and its head. A bucket may hold a million series, most of them idle, so the
 * struct and its key are one allocation and an idle head holds no buffer at all. */
typedef struct series {
    int64_t  *ts;           /* the head's one buffer: cap timestamps, then cap values */
    uint64_t *values;       /* = ts + cap */
    char     *str;          /* string arena of the head */
    size_t    str_len, str_cap;
    uint64_t  first_lsn;    /* record of the oldest logged point, 0 when none is logged */
    uint64_t  last_lsn;     /* record of the newest logged point */
    uint64_t  sealed_lsn;
    uint64_t  def_segment;  /* WAL segment whose defs hold this key, +1 (0 = none) */
    int64_t   started_ms;
    uint32_t  id;
    uint32_t  key_len;
    uint32_t  n, cap, logged;
    uint8_t   type;
    uint8_t   dirty;        /* on the dirty list (has unlogged points) */
    char      key[];        /* key_len bytes, not terminated */
} series;

typedef struct impl {
    series  **by_id;        /* index = id */
    uint32_t  by_id_cap;
    uint32_t *table;        /* open addressing: series ids, 0 = empty */
    uint32_t  table_cap, table_used;
    uint32_t *dirty;
    uint32_t  n_dirty, dirty_cap;
    series   *last;         /* one-entry lookup cache: batches repeat keys */
    gw_buf    record;
} impl;

#define IMPL(h) ((impl *)(h)->impl)

/* ---- head_table.c: the series of a gw_heads by key (open addressing over series ids). ---- */

/* The hash of a series key. */
uint64_t gw_head_hash(const char *key, size_t len);
/* The series with this key (hash from gw_head_hash), or NULL. */
series  *gw_head_table_find(const impl *m, const char *key, uint32_t len, uint64_t hash);
/* Adds s (already in m->by_id; hash of its key) to the table, growing it to stay at most
 * half full. GW_OK or GW_ENOMEM (the table is unchanged). */
int      gw_head_table_insert(impl *m, series *s, uint64_t hash);

/* ---- head_merge.c: gathers of a head's columns in merge order. ---- */

/* Copies the strings of the points order[0..n) of s (points 0..n-1 when order is NULL) to dst
 * one after the other (dst NULL: none) and their n + 1 offsets to off; returns their bytes. */
size_t   gw_head_gather_strings(const series *s, const uint32_t *order, uint32_t n, char *dst,
                                uint32_t *off);

#endif
