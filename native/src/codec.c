/* Block codec (provisional raw layout; the compressed layout replaces the payload coding). */
#include <string.h>
#include <stdlib.h>

#include "gw_codec.h"

#if defined(__GNUC__)
#define GW_THREAD_LOCAL __thread
#else
#define GW_THREAD_LOCAL
#endif

#define HEADER_FIXED 4
static GW_THREAD_LOCAL const char *last_error = "no error";

const char *gw_block_last_error(void) { return last_error; }

static int fail(int code, const char *why) { last_error = why; return code; }

static size_t put_uvarint(uint8_t *p, uint64_t v) {
    size_t i = 0;
    while (v >= 0x80) { p[i++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[i++] = (uint8_t)v;
    return i;
}

static int get_uvarint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) return GW_ETRUNC;
        uint8_t b = p[(*pos)++];
        if (shift == 63 && b > 1) return GW_ECORRUPT;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *out = v; return GW_OK; }
    }
    return GW_ECORRUPT;
}

static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i); return v; }

size_t gw_block_bound(uint8_t type, uint32_t n, size_t string_bytes) {
    if (type < GW_FLOAT || type > GW_STRING || n > GW_BLOCK_MAX_POINTS || string_bytes > GW_BLOCK_MAX_STRING_BYTES) return 0;
    return 64 + (size_t)n * 26 + string_bytes;
}

int64_t gw_block_encode(uint8_t type, uint32_t n, const int64_t *ts, const uint64_t *values,
                        const char *strings, const uint32_t *string_offsets,
                        double resolution, uint8_t *out, size_t out_cap) {
    (void)resolution;
    if (type < GW_FLOAT || type > GW_STRING || n == 0 || n > GW_BLOCK_MAX_POINTS) return GW_EINVAL;
    size_t sbytes = 0;
    if (type == GW_STRING) {
        if (!string_offsets || string_offsets[0] != 0) return GW_EINVAL;
        for (uint32_t i = 0; i < n; i++) if (string_offsets[i + 1] < string_offsets[i]) return GW_EINVAL;
        sbytes = string_offsets[n];
        if (sbytes > GW_BLOCK_MAX_STRING_BYTES) return GW_EINVAL;
    }
    if (out_cap < gw_block_bound(type, n, sbytes)) return GW_ENOMEM;
    int64_t lo = ts[0], hi = ts[0];
    for (uint32_t i = 1; i < n; i++) { if (ts[i] < lo) lo = ts[i]; if (ts[i] > hi) hi = ts[i]; }
    size_t p = 0;
    out[p++] = 'G'; out[p++] = 'B'; out[p++] = GW_BLOCK_VERSION; out[p++] = type;
    p += put_uvarint(out + p, 0);
    p += put_uvarint(out + p, n);
    put_u64(out + p, (uint64_t)lo); p += 8;
    p += put_uvarint(out + p, (uint64_t)hi - (uint64_t)lo);
    if (type == GW_STRING) p += put_uvarint(out + p, sbytes);
    for (uint32_t i = 0; i < n; i++) { put_u64(out + p, (uint64_t)ts[i]); p += 8; }
    if (type == GW_STRING) {
        for (uint32_t i = 0; i < n; i++) p += put_uvarint(out + p, string_offsets[i + 1] - string_offsets[i]);
        if (sbytes) memcpy(out + p, strings, sbytes);
        p += sbytes;
    } else {
        for (uint32_t i = 0; i < n; i++) { put_u64(out + p, values[i]); p += 8; }
    }
    uint32_t crc = gw_crc32c(0, out, p);
    for (int i = 0; i < 4; i++) out[p++] = (uint8_t)(crc >> (8 * i));
    return (int64_t)p;
}

static int read_header(const uint8_t *b, size_t len, gw_block_info *info, size_t *payload, int check_crc) {
    if (len < HEADER_FIXED + 4) return fail(GW_ETRUNC, "block shorter than its header");
    if (b[0] != 'G' || b[1] != 'B') return fail(GW_ECORRUPT, "bad magic");
    uint32_t want = (uint32_t)b[len - 4] | (uint32_t)b[len - 3] << 8 | (uint32_t)b[len - 2] << 16 | (uint32_t)b[len - 1] << 24;
    if (check_crc && gw_crc32c(0, b, len - 4) != want) return fail(GW_ECORRUPT, "checksum mismatch");
    if (b[2] != GW_BLOCK_VERSION) return fail(GW_ECORRUPT, "unknown format version");
    if (b[3] < GW_FLOAT || b[3] > GW_STRING) return fail(GW_ECORRUPT, "unknown value type");
    size_t body = len - 4, p = HEADER_FIXED;
    uint64_t flags, n, span, sb = 0;
    if (get_uvarint(b, body, &p, &flags) || flags > 0xffff) return fail(GW_ECORRUPT, "bad flags");
    if (get_uvarint(b, body, &p, &n) || n == 0 || n > GW_BLOCK_MAX_POINTS) return fail(GW_ECORRUPT, "bad point count");
    if (body - p < 8) return fail(GW_ETRUNC, "header truncated");
    int64_t lo = (int64_t)get_u64(b + p); p += 8;
    if (get_uvarint(b, body, &p, &span) || span > (uint64_t)INT64_MAX - (uint64_t)lo) return fail(GW_ECORRUPT, "bad time span");
    if (b[3] == GW_STRING && (get_uvarint(b, body, &p, &sb) || sb > GW_BLOCK_MAX_STRING_BYTES)) return fail(GW_ECORRUPT, "bad string byte count");
    info->type = b[3]; info->version = b[2]; info->flags = (uint16_t)flags; info->n = (uint32_t)n;
    info->min_ts = lo; info->max_ts = (int64_t)((uint64_t)lo + span); info->string_bytes = sb;
    *payload = p;
    return GW_OK;
}

int gw_block_header_read(const uint8_t *block, size_t len, gw_block_info *info) {
    size_t p;
    return read_header(block, len, info, &p, 0);
}

int gw_block_info_read(const uint8_t *block, size_t len, gw_block_info *info) {
    size_t p;
    return read_header(block, len, info, &p, 1);
}

int gw_block_decode(const uint8_t *block, size_t len, int64_t *ts, uint64_t *values,
                    char *strings, uint32_t *string_offsets, size_t strings_cap) {
    gw_block_info info;
    size_t p;
    int rc = read_header(block, len, &info, &p, 1);
    if (rc) return rc;
    size_t body = len - 4;
    if ((body - p) / 8 < info.n) return fail(GW_ETRUNC, "timestamps truncated");
    for (uint32_t i = 0; i < info.n; i++) { ts[i] = (int64_t)get_u64(block + p); p += 8; }
    if (info.type == GW_STRING) {
        if (strings_cap < info.string_bytes || !string_offsets || (info.string_bytes && !strings)) return fail(GW_EINVAL, "string buffer too small");
        uint64_t off = 0;
        string_offsets[0] = 0;
        for (uint32_t i = 0; i < info.n; i++) {
            uint64_t l;
            if (get_uvarint(block, body, &p, &l)) return fail(GW_ECORRUPT, "bad string length");
            off += l;
            if (off > info.string_bytes) return fail(GW_ECORRUPT, "string lengths exceed the declared total");
            string_offsets[i + 1] = (uint32_t)off;
        }
        if (off != info.string_bytes || body - p != off) return fail(GW_ECORRUPT, "string bytes do not match the declared total");
        if (off) memcpy(strings, block + p, off);
        return GW_OK;
    }
    if ((body - p) / 8 < info.n) return fail(GW_ETRUNC, "values truncated");
    for (uint32_t i = 0; i < info.n; i++) { values[i] = get_u64(block + p); p += 8; }
    return GW_OK;
}

void gw_block_bools_widen(const uint8_t *in, uint64_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] != 0;
}

void gw_block_bools_narrow(const uint64_t *in, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(in[i] != 0);
}
