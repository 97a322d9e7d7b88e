/* The write-ahead log of a bucket: checksummed records in preallocated segment files.
 *
 * A segment is named after the sequence number (LSN) of its first record and starts with a
 * 40-byte header; records follow back to back, then zeros to the segment's preallocated size:
 *
 *   segment: "GWWAL001" | version u32 | header_size u32 | first_lsn u64 | created u32
 *            | prev_lsn u64 | crc32c u32
 *   record:  "GWWR" u32 | crc32c u32 | lsn u64 | body_len u32 | n_points u32 | body
 *
 * The record crc covers lsn .. end of body. A body holds the points logged by one group
 * commit, grouped by series and delta/bit-packed (see docs/format/wal.md for every field and
 * a worked example), so a point costs well under a byte for regular sensor data.
 * Segments are created full size with their zeros really written, and records overwrite
 * those zeros: a sync then writes the record's data pages and no file size, which the
 * filesystem would journal as well (SD-card wear). The records end where a zero header
 * begins; a record cut short by a crash fails its checksum on replay and is skipped, as is
 * any record whose bytes were damaged.
 */
#ifndef GW_WAL_H
#define GW_WAL_H

#include "gw_common.h"

/* cdef: begin */
#define GW_WAL_SEGMENT_HEADER 40
#define GW_WAL_RECORD_HEADER  24
/* Segment format versions: 1 grew by appending (32-byte header, no zero tail); 2 is
 * preallocated and zero-filled, with its creation time and the LSN of the record written
 * before it (so replay can tell a missing segment) in the header. Replay reads both; newer
 * ones are refused (GW_WAL_EVERSION) rather than guessed at. */
#define GW_WAL_VERSION        2
#define GW_WAL_EVERSION       -7
/* A record body never exceeds this, so a damaged length cannot make replay allocate more. */
#define GW_WAL_MAX_BODY       268435456
/* Nor more points than this, which bounds what replay allocates (28 bytes a point). */
#define GW_WAL_MAX_POINTS     4194304

/* Opaque: Python reads its state with gw_wal_get_info. */
typedef struct gw_wal gw_wal;

/* A WAL's state, copied out by one call. */
typedef struct gw_wal_info {
    uint64_t segment_first_lsn;  /* LSN in the current segment's name and header */
    uint64_t size;               /* bytes of header and records in the current segment */
    uint64_t capacity;           /* the current segment file's size (zeros past size) */
    uint64_t bytes_written;      /* since open, all segments, zeros of preallocation included */
    uint64_t last_lsn;           /* LSN of the last record appended (or found on resuming) */
    int      last_errno;         /* errno of the last failed call */
} gw_wal_info;

/* What a segment header says. */
typedef struct gw_wal_segment_info {
    uint32_t version;
    uint32_t header_size;        /* records start here */
    uint64_t first_lsn;
    uint32_t created;            /* unix seconds when the segment was created, 0 if unknown */
    uint64_t prev_lsn;           /* LSN of the last record written before this segment, 0 if
                                    unknown (version 1, or none) */
    uint64_t end;                /* gw_wal_segment_scan: offset just past the last valid record */
    uint64_t last_lsn;           /* gw_wal_segment_scan: LSN of the last valid record, 0: none */
} gw_wal_segment_info;

/* A WAL with no segment open, or NULL when out of memory. */
gw_wal *gw_wal_new(void);
/* Closes the current segment (without syncing it) and frees the WAL; NULL is accepted. */
void gw_wal_free(gw_wal *w);
/* Creates the segment file at path (replacing an existing file of that name): the header,
 * then zeros up to segment_size bytes, all written and synced, and makes it current; the
 * previous segment is closed. prev_lsn (the LSN of the last record written before this
 * segment, 0 for none) and created (unix seconds) are stored in the header. The caller
 * syncs the previous segment first and the directory afterwards. GW_OK, GW_EINVAL
 * (segment_size below the header's), GW_EIO or GW_ENOSPC (the file is removed). */
int gw_wal_create_segment(gw_wal *w, const char *path, uint64_t first_lsn, uint64_t prev_lsn,
                          uint64_t segment_size, uint32_t created);
/* Makes an existing segment of the current version current again, so that a store opened
 * and closed often (short-lived commands) does not leave a segment each time: records are
 * appended after its last valid record, and whatever follows that (a record a crash cut)
 * is zeroed and synced first. info receives the header and scan results. GW_OK,
 * GW_ECORRUPT (damaged header, or not a preallocated segment of this version: the caller
 * starts a new segment instead), GW_WAL_EVERSION, GW_ENOMEM, GW_EIO or GW_ENOSPC. */
int gw_wal_resume_segment(gw_wal *w, const char *path, gw_wal_segment_info *info);
/* Reads a segment header: GW_OK, GW_ETRUNC (shorter than a header), GW_ECORRUPT (magic,
 * size or checksum wrong) or GW_WAL_EVERSION (a version this code does not read). */
int gw_wal_segment_info_of(const uint8_t *data, size_t len, gw_wal_segment_info *info);
/* Header (as gw_wal_segment_info_of) and where its valid records end: info->end is just past
 * the last record that passes its checksum (records after damage count), info->last_lsn
 * that record's LSN. */
int gw_wal_segment_scan(const uint8_t *data, size_t len, gw_wal_segment_info *info);
/* fdatasync of the current segment. GW_OK, GW_EINVAL (none open), GW_EIO or GW_ENOSPC. */
int gw_wal_sync(gw_wal *w);
/* Copies the WAL's state into *out. */
void gw_wal_get_info(gw_wal *w, gw_wal_info *out);
/* A commit cuts records at max_body body bytes (GW_WAL_MAX_BODY, the default and the most;
 * lower only to test the cutting). */
void gw_wal_set_max_body(gw_wal *w, uint32_t max_body);
/* cdef: end */

struct gw_wal {
    int         fd;              /* current segment, -1 when none is open */
    uint32_t    max_body;        /* see gw_wal_set_max_body */
    gw_wal_info info;            /* the state gw_wal_get_info copies out */
};

/* ---- Record framing and body coding, shared with head.c (not part of the Python API). ---- */

/* Writes len bytes (whole records) at the end of the current segment's records, over its
 * zeros (the file grows when they do not fit). On a failed or short write the bytes are
 * zeroed again (and a grown file cut back), so a failed append leaves no partial record.
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

/* Bytes a group (or a def) may take in a record body at most; a commit that keeps the sum
 * of these at or below GW_WAL_MAX_BODY - GW_WAL_BODY_FIXED makes records the encoder takes.
 * A group's bound is GW_WAL_GROUP_FIXED, GW_WAL_POINT_MAX a point and its strings' bytes. */
#define GW_WAL_BODY_FIXED  64
#define GW_WAL_GROUP_FIXED 96
#define GW_WAL_POINT_MAX   19
size_t gw_wal_group_bound(const gw_wal_group *g);
size_t gw_wal_def_bound(uint32_t key_len);

/* Appends one complete record (header and body) to out. GW_OK, GW_EINVAL (a group empty or
 * of an unknown type, more than GW_WAL_MAX_POINTS points, or a body that would exceed
 * GW_WAL_MAX_BODY: the caller splits records by bytes as well as by points) or GW_ENOMEM. */
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

/* Reads the record at *pos: GW_OK (rec filled, *pos advanced past it), GW_ETRUNC (the data
 * ends inside or before a record header, or only zeros follow: the clean or torn end) or
 * GW_ECORRUPT (bad magic, length or checksum; *pos unchanged). A zeroed record header with a
 * valid record somewhere after it is damage (GW_ECORRUPT), not the end. */
int gw_wal_next_record(const uint8_t *data, size_t len, size_t *pos, gw_wal_record *rec);
/* After a GW_ECORRUPT at *pos: moves *pos to the next offset holding a record that passes its
 * checksum and returns GW_OK, or to len and returns GW_ETRUNC when there is none. */
int gw_wal_resync(const uint8_t *data, size_t len, size_t *pos);
/* 1 when data[pos..len) holds only zeros (the unused part of a preallocated segment). */
int gw_wal_zero_tail(const uint8_t *data, size_t len, size_t pos);
/* Decodes a record body, validating all of it before calling the sink (sink may be NULL to
 * validate only). GW_OK, GW_ECORRUPT (structure inconsistent) or GW_ENOMEM. */
int gw_wal_decode_body(const gw_wal_record *rec, const gw_wal_sink *sink);

#endif
