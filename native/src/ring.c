/* Ring file of codec blocks; format in gw_ring.h and docs/format/ring.md.
 *
 * Header (64 bytes at offset 0, and a copy at GW_RING_HEADER_COPY; little endian):
 *   0  magic "GWRING01"      8  version u32 = 2     12 header_size u32 = 4096
 *   16 capacity u64          24 created_ns i64      32 retention_ns i64 (0: none)
 *   40..59 zero              60 crc32c of bytes 0..59
 * The header changes only when the bucket's size or retention does (gw_ring_configure), so
 * ordinary writes cannot tear it; the write position lives in the caller's checkpoint.
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

static void header_bytes(uint8_t h[64], uint64_t capacity, int64_t created, int64_t retention) {
    memset(h, 0, 64);
    memcpy(h, RING_MAGIC, 8);
    put32(h + 8, GW_RING_VERSION);
    put32(h + 12, GW_RING_HEADER_SIZE);
    put64(h + 16, capacity);
    put64(h + 24, (uint64_t)created);
    put64(h + 32, (uint64_t)retention);
    put32(h + 60, gw_crc32c(0, h, 60));
}

/* A header copy that checks out: magic, checksum, header size; version 2 and later have the
 * retention. GW_OK, GW_ECORRUPT or GW_RING_NEWER. */
static int header_valid(const uint8_t h[64]) {
    if (memcmp(h, RING_MAGIC, 8) != 0 || get32(h + 60) != gw_crc32c(0, h, 60)
        || get32(h + 12) != GW_RING_HEADER_SIZE || get32(h + 8) == 0) return GW_ECORRUPT;
    return get32(h + 8) > GW_RING_VERSION ? GW_RING_NEWER : GW_OK;
}

static int preallocate(int fd, uint64_t from, uint64_t to) {
    if (to <= from) return 0;
    int rc = posix_fallocate(fd, (off_t)from, (off_t)(to - from));
    if (rc == 0) return 0;
    if (rc == EINVAL || rc == EOPNOTSUPP) return ftruncate(fd, (off_t)to) == 0 ? 0 : errno;
    return rc;
}

/* Both header copies, the second first: a cut during the write leaves one of them whole. */
static int write_headers(int fd, const uint8_t h[64]) {
    if (pwrite_all(fd, h, 64, GW_RING_HEADER_COPY) != 0 || fdatasync(fd) != 0) return errno;
    if (pwrite_all(fd, h, 64, 0) != 0 || fdatasync(fd) != 0) return errno;
    return 0;
}

static int capacity_ok(uint64_t capacity) {
    return capacity >= GW_RING_MIN_CAPACITY && capacity <= RING_MAX_CAPACITY;
}

static gw_ring *new_ring(int fd, int readonly) {
    gw_ring *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fd = fd;
    r->readonly = readonly;
    r->info.write_pos = GW_RING_HEADER_SIZE;
    r->info.next_seq = 1;
    /* The first sync always runs: the file may hold pages a killed process left unsynced. */
    r->appends = 1;
    return r;
}

int gw_ring_create(const char *path, uint64_t capacity, int64_t retention_ns, gw_ring **out) {
    *out = NULL;
    open_errno = 0;
    if (!capacity_ok(capacity) || retention_ns < 0) return GW_EINVAL;
    capacity &= ~(uint64_t)7u;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) { open_errno = errno; return errno == EEXIST ? GW_EINVAL : io_status(errno); }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t created = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    uint8_t h[64];
    header_bytes(h, capacity, created, retention_ns);
    int rc = preallocate(fd, 0, capacity);
    if (rc == 0) rc = write_headers(fd, h);
    gw_ring *r = rc == 0 ? new_ring(fd, 0) : NULL;
    if (!r) {
        open_errno = rc;
        close(fd);
        unlink(path);  /* no half-made ring: the next open creates it again */
        return rc ? io_status(rc) : GW_ENOMEM;
    }
    r->info.version = GW_RING_VERSION;
    r->info.capacity = capacity;
    r->info.created_ns = created;
    r->info.retention_ns = retention_ns;
    *out = r;
    return GW_OK;
}

int gw_ring_open(const char *path, int flags, gw_ring **out) {
    *out = NULL;
    open_errno = 0;
    int readonly = (flags & GW_RING_READONLY) != 0;
    int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) { open_errno = errno; return io_status(errno); }
    uint8_t h[64], copy[64];
    int damage = 0, rc;
    ssize_t got = pread_all(fd, h, sizeof h, 0);
    if (got < 0) { open_errno = errno; close(fd); return GW_EIO; }
    int primary = got == (ssize_t)sizeof h ? header_valid(h) : GW_ECORRUPT;
    got = pread_all(fd, copy, sizeof copy, GW_RING_HEADER_COPY);
    if (got < 0) { open_errno = errno; close(fd); return GW_EIO; }
    int second = got == (ssize_t)sizeof copy ? header_valid(copy) : GW_ECORRUPT;
    if (primary == GW_RING_NEWER || (primary != GW_OK && second == GW_RING_NEWER)) {
        close(fd);
        return GW_RING_NEWER;
    }
    if (primary == GW_OK) {
        /* Version 1 files have no copy; from version 2 on a copy that differs is damaged. */
        if (get32(h + 8) >= 2 && (second != GW_OK || memcmp(h, copy, 64) != 0))
            damage |= GW_RING_HEADER_COPY_BAD;
    } else if (second == GW_OK) {
        damage |= GW_RING_HEADER_PRIMARY_BAD;
        memcpy(h, copy, 64);
    } else {
        close(fd);
        return GW_ECORRUPT;
    }
    uint64_t capacity = get64(h + 16);
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) { rc = errno; open_errno = rc; close(fd); return io_status(rc); }
    if (!capacity_ok(capacity) || (capacity & 7u)) { close(fd); return GW_ECORRUPT; }
    /* A file cut short reads as entries that end early (damage); opened for writing it gets
     * its reserved space back. A longer one is read as far as the header says. */
    if ((uint64_t)size < capacity && !readonly
        && (rc = preallocate(fd, (uint64_t)size, capacity)) != 0) {
        open_errno = rc;
        close(fd);
        return io_status(rc);
    }
    gw_ring *r = new_ring(fd, readonly);
    if (!r) { close(fd); return GW_ENOMEM; }
    r->info.version = get32(h + 8);
    r->info.header_damage = damage;
    r->info.capacity = capacity;
    r->info.created_ns = (int64_t)get64(h + 24);
    r->info.retention_ns = r->info.version >= 2 ? (int64_t)get64(h + 32) : -1;
    *out = r;
    return GW_OK;
}

int gw_ring_configure(gw_ring *r, uint64_t capacity, int64_t retention_ns) {
    if (r->readonly || !capacity_ok(capacity) || retention_ns < 0) return GW_EINVAL;
    capacity &= ~(uint64_t)7u;
    int rc = 0;
    off_t size = lseek(r->fd, 0, SEEK_END);
    if (size < 0) rc = errno;
    if (rc == 0 && capacity > (uint64_t)size) rc = preallocate(r->fd, (uint64_t)size, capacity);
    if (rc == 0 && capacity < (uint64_t)size && ftruncate(r->fd, (off_t)capacity) != 0) rc = errno;
    uint8_t h[64];
    header_bytes(h, capacity, r->info.created_ns, retention_ns);
    if (rc == 0) rc = write_headers(r->fd, h);
    if (rc != 0) { r->info.last_errno = rc; return io_status(rc); }
    r->info.capacity = capacity;
    r->info.retention_ns = retention_ns;
    r->info.version = GW_RING_VERSION;
    r->info.header_damage = 0;
    if (r->info.write_pos > capacity) { r->info.write_pos = GW_RING_HEADER_SIZE; }
    return GW_OK;
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
    if (r->readonly || block_len > GW_RING_MAX_BLOCK || length > r->info.capacity - GW_RING_HEADER_SIZE)
        return GW_EINVAL;
    uint64_t pos = r->info.write_pos;
    if (pos < GW_RING_HEADER_SIZE || pos + length > r->info.capacity) pos = GW_RING_HEADER_SIZE;
    uint8_t *buf = malloc(length);
    if (!buf) return GW_ENOMEM;
    entry_header(buf, r->info.next_seq, series_id, block_len, wal_lsn);
    memcpy(buf + GW_RING_ENTRY_HEADER, block, block_len);
    memset(buf + GW_RING_ENTRY_HEADER + block_len, 0, length - GW_RING_ENTRY_HEADER - block_len);
    put32(buf + 4, gw_crc32c(0, buf + 8, GW_RING_ENTRY_HEADER - 8 + (size_t)block_len));
    int rc = pwrite_all(r->fd, buf, (size_t)length, pos);
    int err = errno;
    free(buf);
    /* After the write, so that a sync that saw this count began after the write ended. */
    __atomic_add_fetch(&r->appends, 1, __ATOMIC_RELEASE);
    if (rc != 0) { r->info.last_errno = err; return io_status(err); }
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
    if (block_len > GW_RING_MAX_BLOCK || length > avail) return GW_ECORRUPT;
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
    /* A length past the largest block is damage (or a torn header), never an allocation. */
    if (get32(buf + 20) > GW_RING_MAX_BLOCK) return GW_RING_STALE;
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
            if (get32(win + k) != ENTRY_MAGIC || get32(win + k + 20) > GW_RING_MAX_BLOCK) continue;
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
    uint64_t appends = __atomic_load_n(&r->appends, __ATOMIC_ACQUIRE);
    if (appends == __atomic_load_n(&r->synced_appends, __ATOMIC_ACQUIRE)) return GW_OK;
    r->info.syncs++;
    if (fdatasync(r->fd) != 0) { r->info.last_errno = errno; return io_status(errno); }
    __atomic_store_n(&r->synced_appends, appends, __ATOMIC_RELEASE);
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
