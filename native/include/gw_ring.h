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
/* A second copy of the file header, so that one damaged sector does not cost the bucket. */
#define GW_RING_HEADER_COPY   2048
#define GW_RING_ENTRY_HEADER  32
/* Format version written; version 1 files (no retention, no header copy) are still read. */
#define GW_RING_VERSION       2
/* The largest block an entry may hold: sealing writes at most 65536 points (head_points) with
 * at most GW_BLOCK_MAX_STRING_BYTES of strings, which encode to well under this. An entry that
 * declares more is damage, never an allocation. */
#define GW_RING_MAX_BLOCK     75497472  /* 72 MiB */
/* The smallest ring that still holds a useful number of blocks. */
#define GW_RING_MIN_CAPACITY  65536
/* gw_ring_read_entry: the entry at that offset is not the one asked for (overwritten). */
#define GW_RING_STALE         1
/* gw_ring_open: the file's format version is newer than this code reads. */
#define GW_RING_NEWER         2
/* gw_ring_open flags */
#define GW_RING_READONLY      1
/* gw_ring.header_damage bits: which header copy failed its checks on open. */
#define GW_RING_HEADER_PRIMARY_BAD 1
#define GW_RING_HEADER_COPY_BAD    2

/* Opaque: Python reads its state with gw_ring_get_info. */
typedef struct gw_ring gw_ring;

/* A ring's state, copied out by one call. */
typedef struct gw_ring_info {
    uint32_t version;         /* format version of the file */
    int      header_damage;   /* GW_RING_HEADER_*_BAD bits found on open */
    uint64_t capacity;        /* file size: header + data area */
    int64_t  created_ns;      /* when the file was created */
    int64_t  retention_ns;    /* recorded retention: 0 none, -1 not recorded (version 1) */
    uint64_t write_pos;       /* offset of the next entry */
    uint64_t next_seq;        /* sequence number of the next entry */
    uint64_t bytes_written;   /* since open */
    uint64_t entries_written; /* since open */
    uint64_t syncs;           /* fdatasync calls gw_ring_sync made since open */
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

/* Creates the ring file at path (which must not exist), preallocated at capacity bytes, with
 * the bucket's retention recorded in its header (0: none). On success *out owns the file;
 * write_pos/next_seq start at the data area / 1. Returns GW_OK, GW_EINVAL (capacity too small
 * or too large, or the file exists), GW_EIO / GW_ENOSPC (errno from gw_ring_open_errno) or
 * GW_ENOMEM. The caller syncs the directory. */
int  gw_ring_create(const char *path, uint64_t capacity, int64_t retention_ns, gw_ring **out);
/* Opens an existing ring file as it is (flags: GW_RING_READONLY opens it for reading only).
 * The header is taken from its first valid copy (header_damage says which failed; a writable
 * ring repairs them with gw_ring_configure). A file shorter than its capacity (cut) is
 * extended back to it when opened for writing; otherwise the file is not changed.
 * Returns GW_OK, GW_ECORRUPT (no valid header: not a ring's, the file is left untouched),
 * GW_RING_NEWER (a format version this code does not know), GW_EIO (errno from
 * gw_ring_open_errno) or GW_ENOMEM. */
int  gw_ring_open(const char *path, int flags, gw_ring **out);
/* Records capacity and retention in both header copies (the copy first, each synced), growing
 * or cutting the file to the new capacity (entries beyond the new end are lost; the caller
 * drops them from the index). Also upgrades a version 1 header and repairs a damaged copy.
 * GW_OK, GW_EINVAL (read-only, or capacity out of range), GW_EIO / GW_ENOSPC (last_errno). */
int  gw_ring_configure(gw_ring *r, uint64_t capacity, int64_t retention_ns);
/* errno of the last failed gw_ring_create / gw_ring_open in this thread. */
int  gw_ring_open_errno(void);
/* Closes the file and frees the ring; NULL is accepted. */
void gw_ring_close(gw_ring *r);
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
/* fdatasync of the ring file, skipped when no entry was written since the last one that
 * succeeded (a sync with nothing to write still costs the card a cache flush; the store
 * syncs both of its rings at every checkpoint). GW_OK or GW_EIO / GW_ENOSPC. */
int  gw_ring_sync(gw_ring *r);
/* Copies the ring's state into *out. */
void gw_ring_get_info(gw_ring *r, gw_ring_info *out);
/* Sets where the next entry goes (from the index's checkpoint or recovery): write_pos is
 * clamped to the data area, next_seq to at least 1. */
void gw_ring_set_position(gw_ring *r, uint64_t write_pos, uint64_t next_seq);
/* cdef: end */

/* ---- For the heads (head.c), not part of the Python API. ---- */

/* Appends one block as the entry with sequence number r->next_seq at the write position
 * (wrapping when needed) and fills out. Returns GW_OK, GW_EINVAL (the entry is larger than
 * the data area or the block larger than GW_RING_MAX_BLOCK, or the ring is read-only), GW_EIO or GW_ENOSPC (errno in last_errno; write_pos is unchanged). */
int  gw_ring_append(gw_ring *r, const uint8_t *block, uint32_t block_len, uint32_t series_id,
                    uint64_t wal_lsn, gw_ring_entry *out);

struct gw_ring {
    int          fd;
    int          readonly;    /* opened with GW_RING_READONLY: every write fails, GW_EINVAL */
    gw_ring_info info;        /* the state gw_ring_get_info copies out */
    /* Appends attempted (counted after the write, failed ones too) and the count the last
     * successful sync saw: equal, the file holds nothing unsynced. Appends run on the store
     * thread while a sync may run on another, hence atomics. */
    uint64_t     appends;
    uint64_t     synced_appends;
};

#endif
