/* The write-ahead log of a bucket: checksummed records in append-only segment files.
 *
 * A segment is named after the sequence number (LSN) of its first record and starts with a
 * 32-byte header; records follow back to back:
 *
 *   segment: "GWWAL001" | version u32 | header_size u32 | first_lsn u64 | 0 u32 | crc32c u32
 *   record:  "GWWR" u32 | crc32c u32 | lsn u64 | body_len u32 | n_points u32 | body
 *
 * The record crc covers lsn .. end of body. A body holds the points logged by one group
 * commit, grouped by series and delta/bit-packed (see docs/format/wal.md for every field and
 * a worked example), so a point costs well under a byte for regular sensor data.
 * Records are written whole by one write(2); a record cut short by a crash fails its
 * checksum on replay and is skipped, as is any record whose bytes were damaged.
 */
#ifndef GW_WAL_H
#define GW_WAL_H

#include "gw_common.h"

/* cdef: begin */
#define GW_WAL_SEGMENT_HEADER 32
#define GW_WAL_RECORD_HEADER  24
/* A record body never exceeds this, so a damaged length cannot make replay allocate more. */
#define GW_WAL_MAX_BODY       268435456
/* Nor more points than this, which bounds what replay allocates (28 bytes a point). */
#define GW_WAL_MAX_POINTS     4194304

/* Opaque: Python reads its state with gw_wal_get_info. */
typedef struct gw_wal gw_wal;

/* A WAL's state, copied out by one call. */
typedef struct gw_wal_info {
    uint64_t segment_first_lsn;  /* LSN in the current segment's name and header */
    uint64_t size;               /* bytes in the current segment */
    uint64_t bytes_written;      /* since open, all segments */
    int      last_errno;         /* errno of the last failed call */
} gw_wal_info;

/* A WAL with no segment open, or NULL when out of memory. */
gw_wal *gw_wal_new(void);
/* Closes the current segment (without syncing it) and frees the WAL; NULL is accepted. */
void gw_wal_free(gw_wal *w);
/* Creates the segment file at path (replacing an existing file of that name), writes and
 * syncs its header, and makes it current; the previous segment is closed. The caller syncs
 * the previous segment first and the directory afterwards. GW_OK, GW_EIO or GW_ENOSPC. */
int gw_wal_open_segment(gw_wal *w, const char *path, uint64_t first_lsn);
/* fdatasync of the current segment. GW_OK, GW_EINVAL (none open), GW_EIO or GW_ENOSPC. */
int gw_wal_sync(gw_wal *w);
/* Copies the WAL's state into *out. */
void gw_wal_get_info(gw_wal *w, gw_wal_info *out);
/* cdef: end */

struct gw_wal {
    int         fd;              /* current segment, -1 when none is open */
    gw_wal_info info;            /* the state gw_wal_get_info copies out */
};

/* ---- Record framing and body coding, shared with head.c (not part of the Python API). ---- */

/* Appends len bytes (whole records) to the current segment. On a failed or short write the
 * segment is cut back to its previous length, so a failed append leaves no partial record.
 * GW_OK, GW_EINVAL (no segment open), GW_EIO or GW_ENOSPC. */
int gw_wal_append(gw_wal *w, const uint8_t *data, size_t len);

typedef struct gw_buf {
    uint8_t *p;
    size_t   len, cap;
} gw_buf;

int  gw_buf_reserve(gw_buf *b, size_t extra);
void gw_buf_free(gw_buf *b);

/* One series' points in a record. strings/str_off (n+1 offsets into strings) for GW_STRING. */
typedef struct gw_wal_group {
    uint32_t        series_id;
    uint8_t         type;
    uint32_t        n;
    const int64_t  *ts;
    const uint64_t *values;
    const char     *strings;
    const uint32_t *str_off;
} gw_wal_group;

/* The key of a series, written the first time the series appears in a segment. */
typedef struct gw_wal_def {
    uint32_t    series_id;
    uint8_t     type;
    uint32_t    key_len;
    const char *key;
} gw_wal_def;

/* Appends one complete record (header and body) to out. GW_OK, GW_EINVAL or GW_ENOMEM. */
int gw_wal_encode_record(gw_buf *out, uint64_t lsn, const gw_wal_def *defs, uint32_t n_defs,
                         const gw_wal_group *groups, uint32_t n_groups);

/* Receives what a record holds; the group's arrays are valid during the call only. */
typedef struct gw_wal_sink {
    void *ctx;
    void (*on_def)(void *ctx, const gw_wal_def *def);
    void (*on_group)(void *ctx, uint64_t lsn, const gw_wal_group *group);
} gw_wal_sink;

typedef struct gw_wal_record {
    uint64_t       lsn;
    uint32_t       n_points;
    const uint8_t *body;
    uint32_t       body_len;
} gw_wal_record;

/* Checks the segment header in data. GW_OK, GW_ETRUNC or GW_ECORRUPT; *first_lsn filled. */
int gw_wal_segment_header(const uint8_t *data, size_t len, uint64_t *first_lsn);
/* Reads the record at *pos: GW_OK (rec filled, *pos advanced past it), GW_ETRUNC (the data
 * ends inside or before a record header: the clean or torn end) or GW_ECORRUPT (bad magic,
 * length or checksum; *pos unchanged). */
int gw_wal_next_record(const uint8_t *data, size_t len, size_t *pos, gw_wal_record *rec);
/* After a GW_ECORRUPT at *pos: moves *pos to the next offset holding a record that passes its
 * checksum and returns GW_OK, or to len and returns GW_ETRUNC when there is none. */
int gw_wal_resync(const uint8_t *data, size_t len, size_t *pos);
/* Decodes a record body, validating all of it before calling the sink (sink may be NULL to
 * validate only). GW_OK, GW_ECORRUPT (structure inconsistent) or GW_ENOMEM. */
int gw_wal_decode_body(const gw_wal_record *rec, const gw_wal_sink *sink);

#endif
