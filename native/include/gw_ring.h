/* The ring file of a bucket: codec blocks written circularly into a preallocated file.
 *
 * Layout (spec and worked example in docs/format/ring.md):
 *
 *   0      4096                                                         capacity
 *   +------+------------------------------------------------------------+
 *   |header| entry | entry | entry | ...   (8-byte aligned, circular)    |
 *   +------+------------------------------------------------------------+
 *
 *   entry: magic "GWRE" | crc32c | seq u64 | series_id u32 | block_len u32 |
 *          wal_lsn u64 | block (block_len bytes) | zero padding to 8
 *
 * The crc covers everything after itself up to the end of the block. Entries are written at
 * the write position; when one does not fit before the end, writing wraps to the start of the
 * data area and the oldest entries there are overwritten. Which entries are live is kept by the
 * block index (SQLite); the ring only guarantees that an entry read back is exactly the one
 * written with that sequence number, or says it is not.
 */
#ifndef GW_RING_H
#define GW_RING_H

#include "gw_common.h"

/* cdef: begin */
#define GW_RING_HEADER_SIZE   4096
#define GW_RING_ENTRY_HEADER  32
/* The smallest ring that still holds a useful number of blocks. */
#define GW_RING_MIN_CAPACITY  65536
/* gw_ring_read_entry: the entry at that offset is not the one asked for (overwritten). */
#define GW_RING_STALE         1

/* Opaque: Python reads its state with gw_ring_get_info. */
typedef struct gw_ring gw_ring;

/* A ring's state, copied out by one call. */
typedef struct gw_ring_info {
    uint64_t capacity;        /* file size: header + data area */
    uint64_t write_pos;       /* offset of the next entry */
    uint64_t next_seq;        /* sequence number of the next entry */
    uint64_t bytes_written;   /* since open */
    uint64_t entries_written; /* since open */
    int      last_errno;      /* errno of the last failed call */
} gw_ring_info;

typedef struct gw_ring_entry {
    uint64_t seq;
    uint64_t offset;      /* of the entry header in the file */
    uint32_t length;      /* bytes the entry takes: header + block + padding */
    uint32_t series_id;
    uint32_t block_len;
    uint64_t wal_lsn;     /* WAL record up to which this series' points are sealed */
    int64_t  min_ts, max_ts;
    uint32_t n;
    uint8_t  type;
} gw_ring_entry;

/* Opens the ring file at path, creating and preallocating it at capacity bytes when absent
 * or empty. An existing ring of another capacity is resized to capacity (entries beyond the
 * new end are lost; the caller drops them from the index). On success *out owns the file;
 * write_pos/next_seq start at the data area / 1 and are set by the caller from its checkpoint.
 * Returns GW_OK, GW_EINVAL (capacity too small or too large), GW_ECORRUPT (the header is not a
 * ring's: the file is left untouched), GW_EIO / GW_ENOSPC (errno from gw_ring_open_errno)
 * or GW_ENOMEM. */
int  gw_ring_open(const char *path, uint64_t capacity, gw_ring **out);
/* errno of the last failed gw_ring_open in this thread. */
int  gw_ring_open_errno(void);
/* Closes the file and frees the ring; NULL is accepted. */
void gw_ring_close(gw_ring *r);
/* Appends one block as the entry with sequence number r->next_seq at the write position
 * (wrapping when needed) and fills out. Returns GW_OK, GW_EINVAL (the entry is larger than
 * the data area), GW_EIO or GW_ENOSPC (errno in last_errno; write_pos is unchanged). */
int  gw_ring_append(gw_ring *r, const uint8_t *block, uint32_t block_len, uint32_t series_id,
                    uint64_t wal_lsn, gw_ring_entry *out);
/* Reads the entry of `length` bytes at offset into buf (length bytes), checks that it is entry
 * `seq` and that its checksums hold, and fills out (the block starts at buf + 32).
 * Returns GW_OK, GW_RING_STALE (another entry is there now), GW_ECORRUPT (checksum or
 * structure wrong), GW_EINVAL (offset/length outside the data area) or GW_EIO. */
int  gw_ring_read_entry(gw_ring *r, uint64_t offset, uint32_t length, uint64_t seq,
                        uint8_t *buf, gw_ring_entry *out);
/* Recovery: finds entry `seq` at pos, or at the start of the data area when it wrapped, reads
 * it into buf (cap bytes) and fills out. Returns GW_OK, GW_RING_STALE when neither place holds
 * a valid entry `seq` (the end of what was written), GW_ENOMEM when cap is too small, GW_EIO. */
int  gw_ring_scan_next(gw_ring *r, uint64_t pos, uint64_t seq, uint8_t *buf, size_t cap,
                       gw_ring_entry *out);
/* Full scan (rebuilding a lost index): the first valid entry, whatever its sequence number,
 * at an 8-aligned offset >= from. GW_OK (out filled; continue from out->offset +
 * out->length), GW_RING_STALE when there is none up to the end, or GW_EIO. */
int  gw_ring_find_next(gw_ring *r, uint64_t from, gw_ring_entry *out);
/* fdatasync of the ring file. GW_OK or GW_EIO / GW_ENOSPC. */
int  gw_ring_sync(gw_ring *r);
/* Copies the ring's state into *out. */
void gw_ring_get_info(gw_ring *r, gw_ring_info *out);
/* Sets where the next entry goes (from the index's checkpoint or recovery): write_pos is
 * clamped to the data area, next_seq to at least 1. */
void gw_ring_set_position(gw_ring *r, uint64_t write_pos, uint64_t next_seq);
/* cdef: end */

struct gw_ring {
    int          fd;
    gw_ring_info info;        /* the state gw_ring_get_info copies out */
};

#endif
