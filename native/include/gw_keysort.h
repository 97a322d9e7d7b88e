/* Sorting the series keys of a bucket's catalogue (gateway/store/series_table.py), which keeps
 * them in one byte arena: an export or a query lists series by key, and a million keys sorted
 * as Python objects would take several times the arena. */
#ifndef GW_KEYSORT_H
#define GW_KEYSORT_H

#include "gw_common.h"

/* cdef: begin */
/* Sorts ids[0..n) by their keys, byte by byte (a key that is a prefix of another first): the
 * key of id i is arena[offsets[i] .. offsets[i] + lengths[i]). Returns GW_OK, GW_EINVAL when
 * an id is not below n_index or a key does not lie inside arena_len bytes (ids unchanged),
 * or GW_ENOMEM. */
int gw_keys_sort(const uint8_t *arena, uint64_t arena_len, const uint64_t *offsets,
                 const uint32_t *lengths, uint32_t n_index, uint32_t *ids, uint32_t n);
/* cdef: end */

#endif
