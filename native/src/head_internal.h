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

/* The string arena of a string series' head (allocated while it holds points). */
typedef struct head_strings {
    size_t len, cap;
    char   data[];
} head_strings;

/* One series and its head. A bucket may hold a million series, most of them idle, so the
 * struct and its key are one allocation, an idle head holds no buffer at all, and a head of
 * one point (most series of a high-cardinality load) keeps it inline. */
typedef struct series {
    union {
        struct { int64_t ts; uint64_t value; } one;   /* cap 1: the point itself */
        int64_t *buf;       /* cap > 1: cap timestamps, then cap values */
    } pts;
    head_strings *str;      /* string series only */
    uint64_t  first_lsn;    /* record of the oldest logged point, 0 when none is logged */
    uint64_t  last_lsn;     /* record of the newest logged point */
    uint64_t  sealed_lsn;
    uint64_t  def_segment;  /* WAL segment whose defs hold this key, +1 (0 = none) */
    int64_t   started_ms;
    uint32_t  id;
    uint32_t  key_len;
    uint32_t  n, cap, logged;
    uint32_t  watch;        /* its entry in impl.watched + 1, 0 when not watched */
    uint8_t   type;
    uint8_t   dirty;        /* on the dirty list (has unlogged points) */
    char      key[];        /* key_len bytes, not terminated */
} series;

/* The timestamps and the values of a head (room for cap points each). */
static inline int64_t *head_ts(const series *s) {
    return s->cap > 1 ? s->pts.buf : (int64_t *)&s->pts.one.ts;
}
static inline uint64_t *head_values(const series *s) {
    return s->cap > 1 ? (uint64_t *)(s->pts.buf + s->cap) : (uint64_t *)&s->pts.one.value;
}
/* Bytes in the head's string arena. */
static inline size_t head_str_len(const series *s) { return s->str ? s->str->len : 0; }

/* The newest point of a watched series (gw_heads_watch): exact once known, else the newest of
 * the points taken since the watch began or was last invalidated (has), which the caller's
 * reading of the stored points completes (gw_heads_newest_fill). */
typedef struct newest_point {
    int64_t  ts;
    uint64_t value;
    uint32_t epoch;         /* raised by each invalidation: a fill read before it is refused */
    uint8_t  known;
    uint8_t  has;
} newest_point;

typedef struct impl {
    series  **by_id;        /* index = id */
    uint32_t  by_id_cap;
    uint32_t *table;        /* open addressing: series ids, 0 = empty */
    uint32_t  table_cap, table_used;
    uint32_t *dirty;
    uint32_t  n_dirty, dirty_cap;
    series   *last;         /* one-entry lookup cache: batches repeat keys */
    newest_point *watched;  /* by series.watch - 1 */
    uint32_t  n_watched, watched_cap;
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
