/* Write-ahead log: segment files, record framing and the compact body coding.
 *
 * Body (docs/format/wal.md has the worked example):
 *
 *   base_ts u64 | unit_exp u8 | uvarint n_defs | def... | uvarint n_groups | group...
 *   def:   uvarint series_id | type u8 | uvarint key_len | key bytes
 *   group: uvarint (series_id << 3 | type) | uvarint n | timestamps | values
 *   timestamps: each ts is base_ts + off * 10^unit_exp; uvarint off[0], then, when n > 1,
 *               the zigzag deltas of off as a packed run
 *   packed run: uvarint min | width u8 (0..64) | ceil((n-1) * width / 8) bytes holding each
 *               value - min in `width` bits, least significant bit first
 *   values: integers, unsigned and booleans: uvarint zigzag(v[0]) then a packed run of the
 *           zigzag deltas; floats: scale u8, then either (scale <= 15) the values times
 *           10^scale as integers coded like integers, or (scale 255) n raw 64-bit words;
 *           strings: uvarint length and bytes for each value.
 *
 * Why this shape: sensor timestamps are regular (the deltas are equal, so width 0) and
 * decimal readings step by a few units of their resolution (a handful of bits), and the
 * points of a group commit are many per series, so headers are paid once per series.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_codec.h"
#include "gw_wal.h"

#define SEGMENT_MAGIC  "GWWAL001"
#define WAL_VERSION_APPENDED 1   /* still replayed */
#define APPENDED_HEADER      32
#define RECORD_MAGIC   0x52575747u   /* "GWWR" little endian */
#define MAX_SCALE      15
#define RAW_SCALE      255

static const double POW10[MAX_SCALE + 1] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
                                             1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
static const uint64_t UNIT[4] = {1, 1000, 1000000, 1000000000};

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) { uint32_t v = 0; for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i); return v; }
static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t z) { return (int64_t)(z >> 1) ^ -(int64_t)(z & 1); }
static int io_status(int err) { return err == ENOSPC || err == EDQUOT ? GW_ENOSPC : GW_EIO; }

/* ------------------------------------------------------------------ buffers */

int gw_buf_reserve(gw_buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return GW_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return GW_ENOMEM;
    b->p = p;
    b->cap = cap;
    return GW_OK;
}

void gw_buf_free(gw_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Callers reserve first; these only write. */
static void put_uvarint(gw_buf *b, uint64_t v) {
    while (v >= 0x80) { b->p[b->len++] = (uint8_t)(v | 0x80); v >>= 7; }
    b->p[b->len++] = (uint8_t)v;
}

static unsigned bit_width(uint64_t v) {
    unsigned w = 0;
    while (v) { w++; v >>= 1; }
    return w;
}

/* Writes the packed run of z[0..n): uvarint min, width, bits. Reserve 11 + n*8 bytes. */
static void put_packed(gw_buf *b, const uint64_t *z, uint32_t n) {
    uint64_t lo = z[0], hi = z[0];
    for (uint32_t i = 1; i < n; i++) {
        if (z[i] < lo) lo = z[i];
        if (z[i] > hi) hi = z[i];
    }
    unsigned width = bit_width(hi - lo);
    put_uvarint(b, lo);
    b->p[b->len++] = (uint8_t)width;
    if (width == 0) return;
    uint64_t acc = 0;
    unsigned bits = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = z[i] - lo;
        acc |= v << bits;
        if (bits + width >= 64) {
            put64(b->p + b->len, acc);
            b->len += 8;
            acc = bits ? v >> (64 - bits) : 0;
            bits = bits + width - 64;
        } else {
            bits += width;
        }
    }
    for (unsigned i = 0; i < (bits + 7) / 8; i++) b->p[b->len++] = (uint8_t)(acc >> (8 * i));
}

/* ------------------------------------------------------------------ encoding */

/* Smallest decimal scale at which every value round-trips bit for bit, or RAW_SCALE. */
static uint8_t float_scale(const uint64_t *values, uint32_t n, int64_t *scaled) {
    for (int k = 0; k <= MAX_SCALE; k++) {
        uint32_t i;
        for (i = 0; i < n; i++) {
            double x;
            memcpy(&x, &values[i], 8);
            double m = nearbyint(x * POW10[k]);
            if (!(fabs(m) < 9007199254740992.0)) break;  /* also rejects NaN and inf */
            int64_t v = (int64_t)m;
            double back = (double)v / POW10[k];
            uint64_t bits;
            memcpy(&bits, &back, 8);
            if (bits != values[i]) break;
            scaled[i] = v;
        }
        if (i == n) return (uint8_t)k;
    }
    return RAW_SCALE;
}

static void put_ints(gw_buf *b, const int64_t *v, uint32_t n, uint64_t *z) {
    put_uvarint(b, zigzag(v[0]));
    if (n < 2) return;
    for (uint32_t i = 1; i < n; i++) z[i - 1] = zigzag((int64_t)((uint64_t)v[i] - (uint64_t)v[i - 1]));
    put_packed(b, z, n - 1);
}

size_t gw_wal_group_bound(const gw_wal_group *g) {
    /* Group header and packed-run headers, then at most 10 bytes a timestamp offset and 9 a
     * value (raw doubles: 8), and each string's bytes behind its length. */
    size_t b = GW_WAL_GROUP_FIXED + (size_t)g->n * GW_WAL_POINT_MAX;
    if (g->type == GW_STRING) b += (size_t)(g->str_off[g->n] - g->str_off[0]);
    return b;
}

size_t gw_wal_def_bound(uint32_t key_len) { return 24 + (size_t)key_len; }

int gw_wal_encode_record(gw_buf *out, uint64_t lsn, const gw_wal_def *defs, uint32_t n_defs,
                         const gw_wal_group *groups, uint32_t n_groups) {
    uint64_t n_points = 0;
    int64_t min_ts = INT64_MAX;
    size_t bound = GW_WAL_BODY_FIXED, max_n = 1;
    for (uint32_t g = 0; g < n_groups; g++) {
        const gw_wal_group *gr = &groups[g];
        if (gr->n == 0 || gr->type < GW_FLOAT || gr->type > GW_STRING || gr->series_id == 0) return GW_EINVAL;
        n_points += gr->n;
        if (gr->n > max_n) max_n = gr->n;
        bound += gw_wal_group_bound(gr);
        for (uint32_t i = 0; i < gr->n; i++) if (gr->ts[i] < min_ts) min_ts = gr->ts[i];
    }
    uint64_t base = (uint64_t)min_ts;
    for (uint32_t d = 0; d < n_defs; d++) bound += gw_wal_def_bound(defs[d].key_len);
    if (n_points > GW_WAL_MAX_POINTS) return GW_EINVAL;
    /* The coarsest unit (s, ms, us, ns) that divides every timestamp's distance from base. */
    int unit = 3;
    for (; unit > 0; unit--) {
        int ok = 1;
        for (uint32_t g = 0; g < n_groups && ok; g++)
            for (uint32_t i = 0; i < groups[g].n; i++)
                if (((uint64_t)groups[g].ts[i] - base) % UNIT[unit]) { ok = 0; break; }
        if (ok) break;
    }
    uint64_t *z = malloc(max_n * sizeof(uint64_t));
    int64_t *iv = malloc(max_n * sizeof(int64_t));
    if (!z || !iv || gw_buf_reserve(out, bound + GW_WAL_RECORD_HEADER) != GW_OK) {
        free(z); free(iv);
        return GW_ENOMEM;
    }
    size_t start = out->len;
    out->len += GW_WAL_RECORD_HEADER;
    put64(out->p + out->len, base);
    out->len += 8;
    out->p[out->len++] = (uint8_t)(unit * 3);
    put_uvarint(out, n_defs);
    for (uint32_t d = 0; d < n_defs; d++) {
        put_uvarint(out, defs[d].series_id);
        out->p[out->len++] = defs[d].type;
        put_uvarint(out, defs[d].key_len);
        memcpy(out->p + out->len, defs[d].key, defs[d].key_len);
        out->len += defs[d].key_len;
    }
    put_uvarint(out, n_groups);
    for (uint32_t g = 0; g < n_groups; g++) {
        const gw_wal_group *gr = &groups[g];
        uint32_t n = gr->n;
        put_uvarint(out, ((uint64_t)gr->series_id << 3) | gr->type);
        put_uvarint(out, n);
        uint64_t prev = ((uint64_t)gr->ts[0] - base) / UNIT[unit];
        put_uvarint(out, prev);
        if (n > 1) {
            for (uint32_t i = 1; i < n; i++) {
                uint64_t off = ((uint64_t)gr->ts[i] - base) / UNIT[unit];
                z[i - 1] = zigzag((int64_t)(off - prev));
                prev = off;
            }
            put_packed(out, z, n - 1);
        }
        switch (gr->type) {
        case GW_FLOAT: {
            uint8_t scale = float_scale(gr->values, n, iv);
            out->p[out->len++] = scale;
            if (scale == RAW_SCALE) {
                for (uint32_t i = 0; i < n; i++) { put64(out->p + out->len, gr->values[i]); out->len += 8; }
            } else {
                put_ints(out, iv, n, z);
            }
            break;
        }
        case GW_STRING:
            for (uint32_t i = 0; i < n; i++) {
                uint32_t len = gr->str_off[i + 1] - gr->str_off[i];
                put_uvarint(out, len);
                memcpy(out->p + out->len, gr->strings + gr->str_off[i], len);
                out->len += len;
            }
            break;
        default:
            put_ints(out, (const int64_t *)gr->values, n, z);
        }
    }
    free(z);
    free(iv);
    uint8_t *h = out->p + start;
    size_t body_len = out->len - start - GW_WAL_RECORD_HEADER;
    if (body_len > GW_WAL_MAX_BODY) {   /* replay would refuse it: never write it */
        out->len = start;
        return GW_EINVAL;
    }
    put32(h, RECORD_MAGIC);
    put64(h + 8, lsn);
    put32(h + 16, (uint32_t)body_len);
    put32(h + 20, (uint32_t)n_points);
    put32(h + 4, gw_crc32c(0, h + 8, 16 + body_len));
    return GW_OK;
}

/* ------------------------------------------------------------------ decoding */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
} reader;

static int get_uvarint(reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->len) return GW_ECORRUPT;
        uint8_t b = r->p[r->pos++];
        if (shift == 63 && b > 1) return GW_ECORRUPT;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *out = v; return GW_OK; }
    }
    return GW_ECORRUPT;
}

static int get_u8(reader *r, uint8_t *out) {
    if (r->pos >= r->len) return GW_ECORRUPT;
    *out = r->p[r->pos++];
    return GW_OK;
}

/* Reads a packed run of n values into z. */
static int get_packed(reader *r, uint64_t *z, uint32_t n) {
    uint64_t lo;
    uint8_t width;
    if (get_uvarint(r, &lo) || get_u8(r, &width) || width > 64) return GW_ECORRUPT;
    uint64_t nbytes = ((uint64_t)n * width + 7) / 8;
    if (nbytes > r->len - r->pos) return GW_ECORRUPT;
    const uint8_t *p = r->p + r->pos;
    uint64_t bitpos = 0;
    uint64_t mask = width == 64 ? ~(uint64_t)0 : (((uint64_t)1 << width) - 1);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = 0;
        unsigned got = 0;
        size_t byte = (size_t)(bitpos >> 3);
        unsigned off = (unsigned)(bitpos & 7);
        while (got < width) {
            v |= (uint64_t)(p[byte] >> off) << got;
            got += 8 - off;
            off = 0;
            byte++;
        }
        z[i] = lo + (v & mask);
        bitpos += width;
    }
    r->pos += (size_t)nbytes;
    return GW_OK;
}

static int get_ints(reader *r, uint64_t *out, uint32_t n, uint64_t *z) {
    uint64_t first;
    if (get_uvarint(r, &first)) return GW_ECORRUPT;
    out[0] = (uint64_t)unzigzag(first);
    if (n > 1) {
        if (get_packed(r, z, n - 1)) return GW_ECORRUPT;
        for (uint32_t i = 1; i < n; i++) out[i] = out[i - 1] + (uint64_t)unzigzag(z[i - 1]);
    }
    return GW_OK;
}

int gw_wal_segment_info_of(const uint8_t *data, size_t len, gw_wal_segment_info *info) {
    memset(info, 0, sizeof *info);
    if (len < APPENDED_HEADER) return GW_ETRUNC;
    if (memcmp(data, SEGMENT_MAGIC, 8) != 0) return GW_ECORRUPT;
    uint32_t version = get32(data + 8), size = get32(data + 12);
    uint32_t want = version == WAL_VERSION_APPENDED ? APPENDED_HEADER : GW_WAL_SEGMENT_HEADER;
    /* The size must be the version's (a newer version may have another, checked first). */
    if (version <= GW_WAL_VERSION && size != want) return GW_ECORRUPT;
    if (size < APPENDED_HEADER || size > 4096) return GW_ECORRUPT;
    if (len < size) return GW_ETRUNC;
    if (get32(data + size - 4) != gw_crc32c(0, data, size - 4)) return GW_ECORRUPT;
    info->version = version;
    info->header_size = size;
    info->first_lsn = get64(data + 16);
    if (version < WAL_VERSION_APPENDED || version > GW_WAL_VERSION) return GW_WAL_EVERSION;
    if (version >= 2) {
        info->created = get32(data + 24);
        info->prev_lsn = get64(data + 28);
    }
    return GW_OK;
}

int gw_wal_segment_scan(const uint8_t *data, size_t len, gw_wal_segment_info *info) {
    int rc = gw_wal_segment_info_of(data, len, info);
    if (rc != GW_OK) return rc;
    size_t pos = info->header_size;
    info->end = pos;
    for (;;) {
        gw_wal_record rec;
        int r = gw_wal_next_record(data, len, &pos, &rec);
        if (r == GW_ETRUNC) break;
        if (r == GW_OK) {
            info->end = pos;
            info->last_lsn = rec.lsn;
        } else if (gw_wal_resync(data, len, &pos) != GW_OK) {
            break;
        }
    }
    return GW_OK;
}

int gw_wal_zero_tail(const uint8_t *data, size_t len, size_t pos) {
    for (size_t i = pos; i < len; i++) if (data[i]) return 0;
    return 1;
}

int gw_wal_next_record(const uint8_t *data, size_t len, size_t *pos, gw_wal_record *rec) {
    size_t p = *pos;
    if (p > len || len - p < GW_WAL_RECORD_HEADER) return GW_ETRUNC;
    const uint8_t *h = data + p;
    if (gw_wal_zero_tail(h, GW_WAL_RECORD_HEADER, 0)) {
        /* The zeros of a preallocated segment, unless a valid record follows: a header that
         * was zeroed by damage must not hide the records after it. */
        size_t q = p;
        return gw_wal_resync(data, len, &q) == GW_OK ? GW_ECORRUPT : GW_ETRUNC;
    }
    if (get32(h) != RECORD_MAGIC) return GW_ECORRUPT;
    uint32_t body_len = get32(h + 16);
    if (body_len > GW_WAL_MAX_BODY) return GW_ECORRUPT;
    if (len - p - GW_WAL_RECORD_HEADER < body_len) return GW_ETRUNC;
    if (get32(h + 4) != gw_crc32c(0, h + 8, 16 + (size_t)body_len)) return GW_ECORRUPT;
    rec->lsn = get64(h + 8);
    rec->n_points = get32(h + 20);
    rec->body = h + GW_WAL_RECORD_HEADER;
    rec->body_len = body_len;
    *pos = p + GW_WAL_RECORD_HEADER + body_len;
    return GW_OK;
}

int gw_wal_resync(const uint8_t *data, size_t len, size_t *pos) {
    gw_wal_record rec;
    for (size_t p = *pos + 1; p + GW_WAL_RECORD_HEADER <= len; p++) {
        if (get32(data + p) != RECORD_MAGIC) continue;
        size_t q = p;
        if (gw_wal_next_record(data, len, &q, &rec) == GW_OK) { *pos = p; return GW_OK; }
    }
    *pos = len;
    return GW_ETRUNC;
}

static int decode_pass(const gw_wal_record *rec, const gw_wal_sink *sink, int64_t *ts,
                       uint64_t *values, uint64_t *z, char *sbuf, uint32_t *str_off) {
    reader r = {rec->body, rec->body_len, 0};
    if (r.len < 9) return GW_ECORRUPT;
    uint64_t base = get64(r.p);
    uint8_t unit_exp = r.p[8];
    r.pos = 9;
    if (unit_exp % 3 || unit_exp > 9) return GW_ECORRUPT;
    uint64_t unit = UNIT[unit_exp / 3];
    uint64_t n_defs, n_groups, left = rec->n_points;
    if (get_uvarint(&r, &n_defs) || n_defs > r.len) return GW_ECORRUPT;
    for (uint64_t d = 0; d < n_defs; d++) {
        uint64_t id, key_len;
        uint8_t type;
        if (get_uvarint(&r, &id) || get_u8(&r, &type) || get_uvarint(&r, &key_len)) return GW_ECORRUPT;
        if (id == 0 || id > UINT32_MAX || type < GW_FLOAT || type > GW_STRING || key_len == 0
            || key_len > 65535 || key_len > r.len - r.pos) return GW_ECORRUPT;
        if (sink && sink->on_def) {
            gw_wal_def def = {(uint32_t)id, type, (uint32_t)key_len, (const char *)r.p + r.pos};
            sink->on_def(sink->ctx, &def);
        }
        r.pos += (size_t)key_len;
    }
    if (get_uvarint(&r, &n_groups) || n_groups > left) return GW_ECORRUPT;
    for (uint64_t g = 0; g < n_groups; g++) {
        uint64_t tag, n, first;
        if (get_uvarint(&r, &tag) || get_uvarint(&r, &n)) return GW_ECORRUPT;
        uint8_t type = (uint8_t)(tag & 7);
        uint64_t id = tag >> 3;
        if (id == 0 || id > UINT32_MAX || type < GW_FLOAT || type > GW_STRING || n == 0 || n > left)
            return GW_ECORRUPT;
        left -= n;
        if (get_uvarint(&r, &first)) return GW_ECORRUPT;
        uint64_t off = first;
        ts[0] = (int64_t)(base + off * unit);
        if (n > 1) {
            if (get_packed(&r, z, (uint32_t)n - 1)) return GW_ECORRUPT;
            for (uint64_t i = 1; i < n; i++) {
                off += (uint64_t)unzigzag(z[i - 1]);
                ts[i] = (int64_t)(base + off * unit);
            }
        }
        const char *strings = NULL;
        if (type == GW_FLOAT) {
            uint8_t scale;
            if (get_u8(&r, &scale)) return GW_ECORRUPT;
            if (scale == RAW_SCALE) {
                if (n * 8 > r.len - r.pos) return GW_ECORRUPT;
                for (uint64_t i = 0; i < n; i++) values[i] = get64(r.p + r.pos + 8 * i);
                r.pos += (size_t)n * 8;
            } else {
                if (scale > MAX_SCALE || get_ints(&r, values, (uint32_t)n, z)) return GW_ECORRUPT;
                for (uint64_t i = 0; i < n; i++) {
                    double x = (double)(int64_t)values[i] / POW10[scale];
                    memcpy(&values[i], &x, 8);
                }
            }
        } else if (type == GW_STRING) {
            /* Copied out so the group's strings are contiguous; they fit: they came from the body. */
            strings = sbuf;
            str_off[0] = 0;
            for (uint64_t i = 0; i < n; i++) {
                uint64_t len;
                if (get_uvarint(&r, &len) || len > 65536 || len > r.len - r.pos) return GW_ECORRUPT;
                memcpy(sbuf + str_off[i], r.p + r.pos, (size_t)len);
                str_off[i + 1] = str_off[i] + (uint32_t)len;
                values[i] = 0;
                r.pos += (size_t)len;
            }
        } else {
            if (get_ints(&r, values, (uint32_t)n, z)) return GW_ECORRUPT;
            if (type == GW_BOOL)
                for (uint64_t i = 0; i < n; i++) if (values[i] > 1) return GW_ECORRUPT;
        }
        if (sink && sink->on_group) {
            gw_wal_group gr = {(uint32_t)id, type, (uint32_t)n, ts, values, strings, str_off};
            sink->on_group(sink->ctx, rec->lsn, &gr);
        }
    }
    if (left != 0 || r.pos != r.len) return GW_ECORRUPT;
    return GW_OK;
}

int gw_wal_decode_body(const gw_wal_record *rec, const gw_wal_sink *sink) {
    if (rec->n_points > GW_WAL_MAX_POINTS) return GW_ECORRUPT;
    size_t n = rec->n_points ? rec->n_points : 1;
    int64_t *ts = malloc(n * sizeof *ts);
    uint64_t *values = malloc(n * sizeof *values);
    uint64_t *z = malloc(n * sizeof *z);
    uint32_t *str_off = malloc((n + 1) * sizeof *str_off);
    char *sbuf = malloc(rec->body_len + 1);
    int rc = GW_ENOMEM;
    if (ts && values && z && str_off && sbuf) {
        rc = decode_pass(rec, NULL, ts, values, z, sbuf, str_off);
        if (rc == GW_OK && sink) rc = decode_pass(rec, sink, ts, values, z, sbuf, str_off);
    }
    free(ts); free(values); free(z); free(str_off); free(sbuf);
    return rc;
}

/* ------------------------------------------------------------------ files */

gw_wal *gw_wal_new(void) {
    gw_wal *w = calloc(1, sizeof *w);
    if (w) {
        w->fd = -1;
        w->max_body = GW_WAL_MAX_BODY;
    }
    return w;
}

void gw_wal_free(gw_wal *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    free(w);
}

/* Zeros are written a page at a time: the page cache then holds the segment in single pages.
 * One large write would put it in large folios (ext4 since Linux 6.16), and every later record
 * that dirties a few bytes of one would be charged to the process's write_bytes as the whole
 * folio (up to the segment), though only the dirty blocks reach the device. */
#define ZERO_CHUNK 4096

static int write_zeros(int fd, uint64_t off, uint64_t len) {
    static const uint8_t zeros[ZERO_CHUNK];
    while (len) {
        size_t n = ZERO_CHUNK - (size_t)(off % ZERO_CHUNK);   /* page-aligned pieces */
        if (n > len) n = (size_t)len;
        ssize_t k = pwrite(fd, zeros, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        off += (uint64_t)k; len -= (uint64_t)k;
    }
    return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off) {
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n; len -= (size_t)n; off += (uint64_t)n;
    }
    return 0;
}

static void make_current(gw_wal *w, int fd, uint64_t first_lsn, uint64_t size, uint64_t capacity) {
    if (w->fd >= 0) close(w->fd);
    w->fd = fd;
    w->info.segment_first_lsn = first_lsn;
    w->info.size = size;
    w->info.capacity = capacity;
}

int gw_wal_create_segment(gw_wal *w, const char *path, uint64_t first_lsn, uint64_t prev_lsn,
                          uint64_t segment_size, uint32_t created) {
    if (segment_size < GW_WAL_SEGMENT_HEADER) return GW_EINVAL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) { w->info.last_errno = errno; return io_status(errno); }
    uint8_t h[GW_WAL_SEGMENT_HEADER] = {0};
    memcpy(h, SEGMENT_MAGIC, 8);
    put32(h + 8, GW_WAL_VERSION);
    put32(h + 12, GW_WAL_SEGMENT_HEADER);
    put64(h + 16, first_lsn);
    put32(h + 24, created);
    put64(h + 28, prev_lsn);
    put32(h + 36, gw_crc32c(0, h, 36));
    /* Zeros written, not fallocate()d: an unwritten extent would turn each later overwrite
     * into an extent conversion that the filesystem journals, the cost this avoids. */
    if (pwrite_all(fd, h, sizeof h, 0) != 0
        || write_zeros(fd, sizeof h, segment_size - sizeof h) != 0 || fdatasync(fd) != 0) {
        w->info.last_errno = errno;
        close(fd);
        unlink(path);
        return io_status(w->info.last_errno);
    }
    make_current(w, fd, first_lsn, sizeof h, segment_size);
    w->info.bytes_written += segment_size;
    if (prev_lsn > w->info.last_lsn) w->info.last_lsn = prev_lsn;
    return GW_OK;
}

int gw_wal_resume_segment(gw_wal *w, const char *path, gw_wal_segment_info *info) {
    memset(info, 0, sizeof *info);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) { w->info.last_errno = errno; return io_status(errno); }
    off_t file_len = lseek(fd, 0, SEEK_END);
    uint8_t *data = file_len > 0 ? malloc((size_t)file_len) : NULL;
    int rc = GW_OK;
    if (file_len < 0) { w->info.last_errno = errno; rc = io_status(errno); }
    else if (file_len < GW_WAL_SEGMENT_HEADER) rc = GW_ECORRUPT;
    else if (!data) rc = GW_ENOMEM;
    else {
        size_t got = 0;
        while (got < (size_t)file_len) {
            ssize_t n = pread(fd, data + got, (size_t)file_len - got, (off_t)got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) { w->info.last_errno = n < 0 ? errno : EIO; rc = GW_EIO; break; }
            got += (size_t)n;
        }
    }
    if (rc == GW_OK) rc = gw_wal_segment_scan(data, (size_t)file_len, info);
    if (rc == GW_OK && info->version != GW_WAL_VERSION) rc = GW_ECORRUPT;  /* appended: start anew */
    if (rc == GW_OK) {
        /* Zero what follows the last valid record (a record cut by a crash) so that the next
         * record's end is not followed by leftovers of the old one. */
        size_t last_nonzero = (size_t)file_len;
        while (last_nonzero > info->end && data[last_nonzero - 1] == 0) last_nonzero--;
        if (last_nonzero > info->end) {
            if (write_zeros(fd, info->end, last_nonzero - info->end) != 0 || fdatasync(fd) != 0) {
                w->info.last_errno = errno;
                rc = io_status(errno);
            } else {
                w->info.bytes_written += last_nonzero - info->end;
            }
        }
    }
    free(data);
    if (rc != GW_OK) { close(fd); return rc; }
    /* Reading the segment cached it in large folios (see write_zeros); they are clean now, so
     * drop them and let the records to come bring back single pages. */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    make_current(w, fd, info->first_lsn, info->end, (uint64_t)file_len);
    w->info.last_lsn = info->last_lsn ? info->last_lsn : info->prev_lsn;
    return GW_OK;
}

int gw_wal_append(gw_wal *w, const uint8_t *data, size_t len) {
    if (w->fd < 0) return GW_EINVAL;
    if (pwrite_all(w->fd, data, len, w->info.size) != 0) {
        w->info.last_errno = errno;
        /* Undo whatever part of the record reached the file; if even that fails the partial
         * record fails its checksum on replay. */
        uint64_t end = w->info.size + len;
        if (end > w->info.capacity) {
            if (ftruncate(w->fd, (off_t)(w->info.size > w->info.capacity ? w->info.size : w->info.capacity)) != 0) {
                /* keep the first errno; the torn bytes fail their checksum on replay */
            }
            end = w->info.capacity;
        }
        if (end > w->info.size && write_zeros(w->fd, w->info.size, end - w->info.size) != 0) { /* keep the first errno */ }
        return io_status(w->info.last_errno);
    }
    w->info.size += len;
    if (w->info.size > w->info.capacity) w->info.capacity = w->info.size;
    w->info.bytes_written += len;
    /* The LSN of the last of the records written, for the next segment's header. */
    for (size_t p = 0; p + GW_WAL_RECORD_HEADER <= len;) {
        uint64_t lsn = get64(data + p + 8);
        if (lsn > w->info.last_lsn) w->info.last_lsn = lsn;
        p += GW_WAL_RECORD_HEADER + get32(data + p + 16);
    }
    return GW_OK;
}

int gw_wal_sync(gw_wal *w) {
    if (w->fd < 0) return GW_EINVAL;
    if (fdatasync(w->fd) != 0) { w->info.last_errno = errno; return io_status(errno); }
    return GW_OK;
}

void gw_wal_set_max_body(gw_wal *w, uint32_t max_body) {
    w->max_body = max_body && max_body < GW_WAL_MAX_BODY ? max_body : GW_WAL_MAX_BODY;
}

void gw_wal_get_info(gw_wal *w, gw_wal_info *out) {
    *out = w->info;
}
