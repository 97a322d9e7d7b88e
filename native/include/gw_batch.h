/* A batch: the unit in which points travel from a reader to the store.
 *
 * Readers fill it (the line protocol parser does so in C; Python readers through
 * gateway.batch.Batch), Store.write() hands it to the WAL and the per-series heads.
 * Each point carries its series key, a typed 64-bit value and a timestamp in ns.
 *
 * The series key is the canonical text of a series in line protocol escaping:
 *     measurement[,tagkey=tagvalue]... fieldkey
 * tags sorted by key (bytewise), a single unescaped space before the field key. Two points
 * are in the same series exactly when their keys are byte-equal. Keys and string values
 * live in the batch's arena; a point refers to them by offset so the arena may move.
 */
#ifndef GW_BATCH_H
#define GW_BATCH_H

#include "gw_common.h"

/* cdef: begin */
/* Bytes of one series key: the series file keeps a key with its 4-byte id and 1-byte type
 * under a 16-bit length (docs/format/series.md), so 65535 - 5. */
#define GW_MAX_KEY_LEN    65530
#define GW_MAX_STRING_LEN 65536     /* bytes of one string value (the line protocol limit) */

typedef struct gw_point {
    int64_t  ts;        /* nanoseconds since the Unix epoch */
    uint64_t value;     /* float: IEEE-754 bits; int/uint: two's complement; bool: 0/1;
                           string: offset of its bytes in the arena */
    uint32_t key_off;   /* offset of the series key in the arena */
    uint32_t key_len;
    uint32_t str_len;   /* string values only */
    uint8_t  type;      /* GW_FLOAT .. GW_STRING */
} gw_point;

typedef struct gw_batch {
    gw_point *points;
    uint32_t  n, cap;
    char     *arena;
    size_t    arena_len, arena_cap;
} gw_batch;

/* A new empty batch, or NULL when out of memory. */
gw_batch *gw_batch_new(void);
/* Frees the batch; NULL is accepted. */
void gw_batch_free(gw_batch *b);
/* Empties the batch, keeping its memory for reuse. */
void gw_batch_clear(gw_batch *b);
/* Appends a point whose key bytes are copied into the arena. For GW_STRING, str/str_len
 * are copied and value is ignored. Returns GW_OK, GW_EINVAL (bad type, key or string too
 * long, empty key) or GW_ENOMEM. */
int gw_batch_add(gw_batch *b, const char *key, uint32_t key_len, uint8_t type,
                 uint64_t value, const char *str, uint32_t str_len, int64_t ts);
/* Smallest and largest timestamp of the batch's points into *min_ts / *max_ts; returns 1, or 0
 * (outputs untouched) for an empty batch. */
int gw_batch_time_bounds(const gw_batch *b, int64_t *min_ts, int64_t *max_ts);
/* cdef: end */

/* ---- For C producers (the parser), not part of the Python API. ---- */

/* Copies bytes into the arena and returns their offset, or -1 when out of memory. Used by
 * producers that build keys in place and then call gw_batch_push. */
int64_t gw_batch_arena_append(gw_batch *b, const char *bytes, size_t len);
/* Appends a point whose key and string already sit in the arena (offsets from
 * gw_batch_arena_append). Returns GW_OK, GW_EINVAL or GW_ENOMEM. */
int gw_batch_push(gw_batch *b, uint32_t key_off, uint32_t key_len, uint8_t type,
                  uint64_t value, uint32_t str_len, int64_t ts);

#endif
