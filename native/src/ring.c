/* Ring file of codec blocks; format in gw_ring.h and docs/format/ring.md.
 *
 * Header (first 64 of the 4096 reserved bytes, little endian):
 *   0  magic "GWRING01"      8  version u32 = 1     12 header_size u32 = 4096
 *   16 capacity u64          24 created_ns i64     32..59 zero    60 crc32c of bytes 0..59
 * The header never changes after creation except on resize, so it cannot be torn by
 * ordinary writes; the write position lives in the caller's checkpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw_codec.h"
#include "gw_ring.h"

#define RING_MAGIC        "GWRING01"
#define RING_VERSION      1
#define ENTRY_MAGIC       0x45525747u  /* "GWRE" little endian */
#define RING_MAX_CAPACITY ((uint64_t)1 << 40)
#define ALIGN8(x)         (((x) + 7u) & ~(uint64_t)7u)

static __thread int open_errno;

int gw_ring_open_errno(void) { return open_errno; }

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) { uint32_t v = 0; for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i); return v; }

static int io_status(int err) { return err == ENOSPC || err == EDQUOT ? GW_ENOSPC : GW_EIO; }

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off) {
    while (len) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w; len -= (size_t)w; off += (uint64_t)w;
    }
    return 0;
}

/* Bytes read, which is less than len only at the end of the file; -1 on error. */
static ssize_t pread_all(int fd, uint8_t *p, size_t len, uint64_t off) {
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, p + got, len - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static void header_bytes(uint8_t h[64], uint64_t capacity, int64_t created) {
    memset(h, 0, 64);
    memcpy(h, RING_MAGIC, 8);
    put32(h + 8, RING_VERSION);
    put32(h + 12, GW_RING_HEADER_SIZE);
    put64(h + 16, capacity);
    put64(h + 24, (uint64_t)created);
    put32(h + 60, gw_crc32c(0, h, 60));
}

static int preallocate(int fd, uint64_t from, uint64_t to) {
    if (to <= from) return 0;
    int rc = posix_fallocate(fd, (off_t)from, (off_t)(to - from));
    if (rc == 0) return 0;
    if (rc == EINVAL || rc == EOPNOTSUPP) return ftruncate(fd, (off_t)to) == 0 ? 0 : errno;
    return rc;
}

int gw_ring_open(const char *path, uint64_t capacity, gw_ring **out) {
    *out = NULL;
    open_errno = 0;
    if (capacity < GW_RING_MIN_CAPACITY || capacity > RING_MAX_CAPACITY) return GW_EINVAL;
    capacity &= ~(uint64_t)7u;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) { open_errno = errno; return io_status(errno); }
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t h[64];
    int rc;
    if (size < 0) { rc = errno; goto io_fail; }
    if (size == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        header_bytes(h, capacity, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
        if ((rc = preallocate(fd, 0, capacity)) != 0) goto io_fail_rc;
        if (pwrite_all(fd, h, sizeof h, 0) != 0 || fdatasync(fd) != 0) { rc = errno; goto io_fail; }
    } else {
        if (pread_all(fd, h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h, RING_MAGIC, 8) != 0
            || get32(h + 60) != gw_crc32c(0, h, 60) || get32(h + 12) != GW_RING_HEADER_SIZE) {
            close(fd);
            return GW_ECORRUPT;
        }
        uint64_t old = get64(h + 16);
        if (old != capacity || (uint64_t)size != capacity) {
            if (capacity > (uint64_t)size && (rc = preallocate(fd, (uint64_t)size, capacity)) != 0) goto io_fail_rc;
            if (capacity < (uint64_t)size && ftruncate(fd, (off_t)capacity) != 0) { rc = errno; goto io_fail; }
            header_bytes(h, capacity, (int64_t)get64(h + 24));
            if (pwrite_all(fd, h, sizeof h, 0) != 0 || fdatasync(fd) != 0) { rc = errno; goto io_fail; }
        }
    }
    gw_ring *r = calloc(1, sizeof *r);
    if (!r) { close(fd); return GW_ENOMEM; }
    r->fd = fd;
    r->info.capacity = capacity;
    r->info.write_pos = GW_RING_HEADER_SIZE;
    r->info.next_seq = 1;
    *out = r;
    return GW_OK;
io_fail:
    rc = errno;
io_fail_rc:
    open_errno = rc;
    close(fd);
    return io_status(rc);
}

void gw_ring_close(gw_ring *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    free(r);
}

static void entry_header(uint8_t *h, uint64_t seq, uint32_t series_id, uint32_t block_len, uint64_t lsn) {
    put32(h, ENTRY_MAGIC);
    put64(h + 8, seq);
    put32(h + 16, series_id);
    put32(h + 20, block_len);
    put64(h + 24, lsn);
}

int gw_ring_append(gw_ring *r, const uint8_t *block, uint32_t block_len, uint32_t series_id,
                   uint64_t wal_lsn, gw_ring_entry *out) {
    uint64_t length = ALIGN8((uint64_t)GW_RING_ENTRY_HEADER + block_len);
    if (length > r->info.capacity - GW_RING_HEADER_SIZE) return GW_EINVAL;
    uint64_t pos = r->info.write_pos;
    if (pos < GW_RING_HEADER_SIZE || pos + length > r->info.capacity) pos = GW_RING_HEADER_SIZE;
    uint8_t *buf = malloc(length);
    if (!buf) return GW_ENOMEM;
    entry_header(buf, r->info.next_seq, series_id, block_len, wal_lsn);
    memcpy(buf + GW_RING_ENTRY_HEADER, block, block_len);
    memset(buf + GW_RING_ENTRY_HEADER + block_len, 0, length - GW_RING_ENTRY_HEADER - block_len);
    put32(buf + 4, gw_crc32c(0, buf + 8, GW_RING_ENTRY_HEADER - 8 + (size_t)block_len));
    int rc = pwrite_all(r->fd, buf, (size_t)length, pos);
    free(buf);
    if (rc != 0) { r->info.last_errno = errno; return io_status(errno); }
    memset(out, 0, sizeof *out);
    out->seq = r->info.next_seq;
    out->offset = pos;
    out->length = (uint32_t)length;
    out->series_id = series_id;
    out->block_len = block_len;
    out->wal_lsn = wal_lsn;
    gw_block_info info;
    if (gw_block_header_read(block, block_len, &info) == GW_OK) {
        out->min_ts = info.min_ts;
        out->max_ts = info.max_ts;
        out->n = info.n;
        out->type = info.type;
    }
    r->info.next_seq++;
    r->info.write_pos = pos + length;
    r->info.bytes_written += length;
    r->info.entries_written++;
    return GW_OK;
}

/* Checks an entry read into buf (avail bytes): magic, sequence number (any when seq is 0),
 * lengths, both checksums. */
static int verify(const uint8_t *buf, size_t avail, uint64_t offset, uint64_t seq, gw_ring_entry *out) {
    if (avail < GW_RING_ENTRY_HEADER || get32(buf) != ENTRY_MAGIC) return GW_ECORRUPT;
    uint32_t block_len = get32(buf + 20);
    uint64_t length = ALIGN8((uint64_t)GW_RING_ENTRY_HEADER + block_len);
    if (length > avail) return GW_ECORRUPT;
    if (get32(buf + 4) != gw_crc32c(0, buf + 8, GW_RING_ENTRY_HEADER - 8 + (size_t)block_len))
        return GW_ECORRUPT;
    if (seq == 0) seq = get64(buf + 8);
    if (seq == 0 || get64(buf + 8) != seq) return GW_RING_STALE;
    gw_block_info info;
    if (gw_block_info_read(buf + GW_RING_ENTRY_HEADER, block_len, &info) != GW_OK) return GW_ECORRUPT;
    out->seq = seq;
    out->offset = offset;
    out->length = (uint32_t)length;
    out->series_id = get32(buf + 16);
    out->block_len = block_len;
    out->wal_lsn = get64(buf + 24);
    out->min_ts = info.min_ts;
    out->max_ts = info.max_ts;
    out->n = info.n;
    out->type = info.type;
    return GW_OK;
}

int gw_ring_read_entry(gw_ring *r, uint64_t offset, uint32_t length, uint64_t seq,
                       uint8_t *buf, gw_ring_entry *out) {
    if (offset < GW_RING_HEADER_SIZE || length < GW_RING_ENTRY_HEADER
        || offset + length > r->info.capacity) return GW_EINVAL;
    ssize_t got = pread_all(r->fd, buf, length, offset);
    if (got < 0) { r->info.last_errno = errno; return GW_EIO; }
    if ((size_t)got < length) return GW_ECORRUPT;
    int rc = verify(buf, length, offset, seq, out);
    /* A different, valid entry at this place means ours was overwritten: stale, not corrupt.
     * So does a checksum failure whose header names a later sequence number (an entry of
     * another length was written over ours and we read past its end). */
    if (rc == GW_ECORRUPT && get32(buf) == ENTRY_MAGIC && get64(buf + 8) > seq) return GW_RING_STALE;
    return rc;
}

static int scan_at(gw_ring *r, uint64_t pos, uint64_t seq, uint8_t *buf, size_t cap, gw_ring_entry *out) {
    if (pos < GW_RING_HEADER_SIZE || pos + GW_RING_ENTRY_HEADER > r->info.capacity) return GW_RING_STALE;
    ssize_t got = pread_all(r->fd, buf, GW_RING_ENTRY_HEADER, pos);
    if (got < 0) { r->info.last_errno = errno; return GW_EIO; }
    if (got < GW_RING_ENTRY_HEADER || get32(buf) != ENTRY_MAGIC || get64(buf + 8) != seq) return GW_RING_STALE;
    uint64_t length = ALIGN8((uint64_t)GW_RING_ENTRY_HEADER + get32(buf + 20));
    if (pos + length > r->info.capacity) return GW_RING_STALE;
    if (length > cap) return GW_ENOMEM;
    got = pread_all(r->fd, buf, (size_t)length, pos);
    if (got < 0) { r->info.last_errno = errno; return GW_EIO; }
    return verify(buf, (size_t)got, pos, seq, out) == GW_OK ? GW_OK : GW_RING_STALE;
}

int gw_ring_scan_next(gw_ring *r, uint64_t pos, uint64_t seq, uint8_t *buf, size_t cap,
                      gw_ring_entry *out) {
    int rc = scan_at(r, pos, seq, buf, cap, out);
    if (rc != GW_RING_STALE || pos == GW_RING_HEADER_SIZE) return rc;
    return scan_at(r, GW_RING_HEADER_SIZE, seq, buf, cap, out);
}

#define FIND_WINDOW (1u << 20)

int gw_ring_find_next(gw_ring *r, uint64_t from, gw_ring_entry *out) {
    uint64_t pos = from < GW_RING_HEADER_SIZE ? GW_RING_HEADER_SIZE : (from + 7) & ~(uint64_t)7;
    uint8_t *win = malloc(FIND_WINDOW);
    if (!win) return GW_ENOMEM;
    int rc = GW_RING_STALE;
    while (pos + GW_RING_ENTRY_HEADER <= r->info.capacity) {
        size_t want = (size_t)(r->info.capacity - pos < FIND_WINDOW ? r->info.capacity - pos : FIND_WINDOW);
        ssize_t got = pread_all(r->fd, win, want, pos);
        if (got < 0) { r->info.last_errno = errno; rc = GW_EIO; break; }
        if ((size_t)got < GW_RING_ENTRY_HEADER) break;
        size_t k;
        int found = 0;
        for (k = 0; k + GW_RING_ENTRY_HEADER <= (size_t)got; k += 8) {
            if (get32(win + k) != ENTRY_MAGIC) continue;
            uint64_t length = ALIGN8((uint64_t)GW_RING_ENTRY_HEADER + get32(win + k + 20));
            if (pos + k + length > r->info.capacity) continue;
            uint8_t *buf = malloc((size_t)length);
            if (!buf) { rc = GW_ENOMEM; found = -1; break; }
            ssize_t n = pread_all(r->fd, buf, (size_t)length, pos + k);
            int ok = n == (ssize_t)length && verify(buf, (size_t)length, pos + k, 0, out) == GW_OK;
            free(buf);
            if (n < 0) { r->info.last_errno = errno; rc = GW_EIO; found = -1; break; }
            if (ok) { rc = GW_OK; found = 1; break; }
        }
        if (found) break;
        /* The next window starts where an entry header could still begin. */
        pos += k;
        if ((size_t)got < want || k == 0) break;
    }
    free(win);
    return rc;
}

int gw_ring_sync(gw_ring *r) {
    if (fdatasync(r->fd) != 0) { r->info.last_errno = errno; return io_status(errno); }
    return GW_OK;
}

void gw_ring_get_info(gw_ring *r, gw_ring_info *out) {
    *out = r->info;
}

void gw_ring_set_position(gw_ring *r, uint64_t write_pos, uint64_t next_seq) {
    r->info.write_pos = write_pos >= GW_RING_HEADER_SIZE && write_pos <= r->info.capacity
                   ? write_pos : GW_RING_HEADER_SIZE;
    r->info.next_seq = next_seq ? next_seq : 1;
}
