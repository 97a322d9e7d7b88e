/* Block codec: one series' points in one self-checking block (spec: docs/format/block.md).
 *
 *   +------+---+---+-------+-------+----------+-------+---------+------------+--------+--------+
 *   | "GB" |ver|typ| flags |   n   |  min_ts  | span  | strbytes| timestamps | values | CRC32C |
 *   |  2   | 1 | 1 | varint| varint| 8 LE i64 | varint| (string)| (unless    |        | 4 LE   |
 *   |      |   |   |       |       |          |       |  varint | regular)   |        |        |
 *   +------+---+---+-------+-------+----------+-------+---------+------------+--------+--------+
 *   max_ts = min_ts + span; the CRC32C covers every byte before it.
 *   flags bit 0 (REGULAR): timestamps are min_ts + i * span / (n - 1); no timestamp column.
 *   timestamps: integer column (codec_int.c) of ts[i] - min_ts, in the caller's order.
 *   values: float column (codec_float.c) | integer column (int, uint) |
 *           bool: first value byte, run count varint, integer column of run lengths - 1 |
 *           string: dictionary size d varint, integer column of the d entry lengths, the
 *                   entries' bytes, then (d > 1) an integer column of n dictionary indices.
 *
 * Worked example: floats 21.5, 21.6, 21.6 at t = 1000, 2000, 3000 ns (29 bytes):
 *   47 42 01 01          "GB", version 1, type float
 *   01 03                flags REGULAR, n = 3
 *   e8 03 00 00 00 00 00 00   min_ts = 1000
 *   d0 0f                span = 2000 (max_ts 3000; step 2000 / 2 = 1000, no timestamp column)
 *   00 01 00             float column: decimal, k = 1 digit, 0 exceptions
 *   14                   integer column: order 0, bit-packed residuals, zigzagged base
 *   ae 03 01             base = unzigzag(430) = 215, factor 1
 *   01 06                width 1 bit, residuals 0 1 1 (LSB first) -> q = 215 216 216
 *   7c 99 3a 98          CRC32C of the 25 bytes before it -> 21.5 21.6 21.6 (q / 10^1)
 */
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

#if defined(__GNUC__)
#define THREAD_LOCAL __thread
#else
#define THREAD_LOCAL
#endif

#define FLAG_REGULAR    GW_BLOCK_REGULAR
#define KNOWN_FLAGS     FLAG_REGULAR
#define HEADER_MAX      48      /* magic, version, type, varints, min_ts */
#define CRC_BYTES       4

static THREAD_LOCAL const char *last_error = "no error";

const char *gw_block_last_error(void) { return last_error; }

static int fail(int code, const char *why) { last_error = why; return code; }

static int known_type(uint8_t type) { return type >= GW_FLOAT && type <= GW_STRING; }

size_t gw_block_bound(uint8_t type, uint32_t n, size_t string_bytes) {
    if (!known_type(type) || n > GW_BLOCK_MAX_POINTS || string_bytes > GW_BLOCK_MAX_STRING_BYTES) return 0;
    size_t ints = gw_codec_int_bound(n), values;
    switch (type) {
    case GW_FLOAT:  values = gw_codec_float_bound(n); break;
    case GW_BOOL:   values = 16 + ints; break;
    case GW_STRING: values = 16 + 2 * ints + string_bytes; break;
    default:        values = ints; break;
    }
    return HEADER_MAX + ints + values + CRC_BYTES;
}

/* ---------------------------------------------------------------- encoding */

static int encode_bools(const uint64_t *v, uint32_t n, uint8_t *out, size_t *pos) {
    uint64_t *runs = malloc(sizeof(uint64_t) * n);
    if (!runs) return GW_ENOMEM;
    uint32_t nruns = 0, len = 1;
    for (uint32_t i = 1; i < n; i++) {
        if ((v[i] != 0) == (v[i - 1] != 0)) { len++; continue; }
        runs[nruns++] = len - 1;
        len = 1;
    }
    runs[nruns++] = len - 1;
    out[(*pos)++] = (uint8_t)(v[0] != 0);
    gw_codec_put_uvarint(out, pos, nruns);
    int rc = gw_codec_int_encode(runs, nruns, 0, out, pos);
    free(runs);
    return rc;
}

static uint64_t hash_bytes(const char *s, uint32_t len) {
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a */
    for (uint32_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h;
}

static int encode_strings(const char *strings, const uint32_t *off, uint32_t n, uint8_t *out, size_t *pos) {
    size_t slots = 16;
    while (slots < (size_t)n * 2) slots *= 2;
    uint32_t *table = malloc(sizeof(uint32_t) * slots);   /* dictionary entry + 1, 0 = empty */
    uint64_t *index = malloc(sizeof(uint64_t) * n);
    uint32_t *entry_of = malloc(sizeof(uint32_t) * n);     /* point that first had each entry */
    uint64_t *lengths = malloc(sizeof(uint64_t) * n);
    int rc = GW_ENOMEM;
    if (!table || !index || !entry_of || !lengths) goto done;
    memset(table, 0, sizeof(uint32_t) * slots);
    uint32_t d = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *s = strings + off[i];
        uint32_t len = off[i + 1] - off[i];
        size_t slot = (size_t)hash_bytes(s, len) & (slots - 1);
        for (;;) {
            uint32_t e = table[slot];
            if (!e) {
                table[slot] = d + 1;
                entry_of[d] = i;
                lengths[d] = len;
                index[i] = d++;
                break;
            }
            uint32_t j = entry_of[e - 1];
            if (off[j + 1] - off[j] == len && memcmp(strings + off[j], s, len) == 0) {
                index[i] = e - 1;
                break;
            }
            slot = (slot + 1) & (slots - 1);
        }
    }
    gw_codec_put_uvarint(out, pos, d);
    if ((rc = gw_codec_int_encode(lengths, d, 0, out, pos))) goto done;
    for (uint32_t e = 0; e < d; e++) {
        memcpy(out + *pos, strings + off[entry_of[e]], (size_t)lengths[e]);
        *pos += (size_t)lengths[e];
    }
    if (d > 1) rc = gw_codec_int_encode(index, n, 0, out, pos);
done:
    free(table);
    free(index);
    free(entry_of);
    free(lengths);
    return rc;
}

int64_t gw_block_encode(uint8_t type, uint32_t n, const int64_t *ts, const uint64_t *values,
                        const char *strings, const uint32_t *string_offsets,
                        double resolution, uint8_t *out, size_t out_cap) {
    if (!known_type(type) || n == 0 || n > GW_BLOCK_MAX_POINTS || !ts || !out) return GW_EINVAL;
    if (!(resolution >= 0.0) || resolution > 1e300) return GW_EINVAL;   /* also rejects NaN */
    size_t sbytes = 0;
    if (type == GW_STRING) {
        if (!string_offsets || string_offsets[0] != 0) return GW_EINVAL;
        for (uint32_t i = 0; i < n; i++) if (string_offsets[i + 1] < string_offsets[i]) return GW_EINVAL;
        sbytes = string_offsets[n];
        if (sbytes > GW_BLOCK_MAX_STRING_BYTES || (sbytes && !strings)) return GW_EINVAL;
    } else if (!values) {
        return GW_EINVAL;
    }
    if (out_cap < gw_block_bound(type, n, sbytes)) return GW_ENOMEM;

    int64_t lo = ts[0], hi = ts[0];
    int regular = 1;
    uint64_t step = n > 1 ? (uint64_t)ts[1] - (uint64_t)ts[0] : 0;
    for (uint32_t i = 1; i < n; i++) {
        if (ts[i] < lo) lo = ts[i];
        if (ts[i] > hi) hi = ts[i];
        /* Regular means evenly spaced and ascending, so no step may wrap around. */
        if ((uint64_t)ts[i] - (uint64_t)ts[i - 1] != step || ts[i] < ts[i - 1]) regular = 0;
    }
    if (ts[0] != lo) regular = 0;   /* a regular block runs upwards from min_ts */

    size_t pos = 0;
    out[pos++] = 'G';
    out[pos++] = 'B';
    out[pos++] = GW_BLOCK_VERSION;
    out[pos++] = type;
    gw_codec_put_uvarint(out, &pos, regular ? FLAG_REGULAR : 0);
    gw_codec_put_uvarint(out, &pos, n);
    for (int b = 0; b < 8; b++) out[pos++] = (uint8_t)((uint64_t)lo >> (8 * b));
    gw_codec_put_uvarint(out, &pos, (uint64_t)hi - (uint64_t)lo);
    if (type == GW_STRING) gw_codec_put_uvarint(out, &pos, sbytes);

    int rc = GW_OK;
    if (!regular) {
        uint64_t *rel = malloc(sizeof(uint64_t) * n);
        if (!rel) return GW_ENOMEM;
        for (uint32_t i = 0; i < n; i++) rel[i] = (uint64_t)ts[i] - (uint64_t)lo;
        rc = gw_codec_int_encode(rel, n, 0, out, &pos);
        free(rel);
        if (rc) return rc;
    }
    switch (type) {
    case GW_FLOAT:  rc = gw_codec_float_encode(values, n, resolution, out, &pos); break;
    case GW_INT:    rc = gw_codec_int_encode(values, n, 1, out, &pos); break;
    case GW_UINT:   rc = gw_codec_int_encode(values, n, 0, out, &pos); break;
    case GW_BOOL:   rc = encode_bools(values, n, out, &pos); break;
    default:        rc = encode_strings(strings, string_offsets, n, out, &pos); break;
    }
    if (rc) return rc;
    uint32_t crc = gw_crc32c(0, out, pos);
    for (int b = 0; b < 4; b++) out[pos++] = (uint8_t)(crc >> (8 * b));
    return (int64_t)pos;
}

/* ---------------------------------------------------------------- decoding */

static int read_header(const uint8_t *b, size_t len, gw_block_info *info, gw_codec_in *in, int check_crc) {
    if (!b || len < 4 + CRC_BYTES) return fail(GW_ETRUNC, "block shorter than its header");
    if (b[0] != 'G' || b[1] != 'B') return fail(GW_ECORRUPT, "bad magic (not a block)");
    if (check_crc) {
        const uint8_t *c = b + len - CRC_BYTES;
        uint32_t want = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
        if (gw_crc32c(0, b, len - CRC_BYTES) != want) return fail(GW_ECORRUPT, "checksum mismatch");
    }
    if (b[2] != GW_BLOCK_VERSION) return fail(GW_ECORRUPT, "unknown format version");
    if (!known_type(b[3])) return fail(GW_ECORRUPT, "unknown value type");
    *in = (gw_codec_in){b, 4, len - CRC_BYTES, "header"};
    uint64_t flags, n, span, sbytes = 0;
    if (gw_codec_get_uvarint(in, &flags, "flags") || (flags & ~(uint64_t)KNOWN_FLAGS))
        return fail(GW_ECORRUPT, "unknown flags");
    if (gw_codec_get_uvarint(in, &n, "point count") || n == 0 || n > GW_BLOCK_MAX_POINTS)
        return fail(GW_ECORRUPT, "point count out of range");
    if (in->len - in->pos < 8) return fail(GW_ETRUNC, "header truncated at min_ts");
    uint64_t lo = 0;
    for (int i = 0; i < 8; i++) lo |= (uint64_t)b[in->pos + i] << (8 * i);
    in->pos += 8;
    if (gw_codec_get_uvarint(in, &span, "time span") || span > (uint64_t)INT64_MAX - lo)
        return fail(GW_ECORRUPT, "time span out of range");
    if (b[3] == GW_STRING &&
        (gw_codec_get_uvarint(in, &sbytes, "string byte count") || sbytes > GW_BLOCK_MAX_STRING_BYTES))
        return fail(GW_ECORRUPT, "string byte count out of range");
    if ((flags & FLAG_REGULAR) && (n == 1 ? span != 0 : span % (n - 1) != 0))
        return fail(GW_ECORRUPT, "regular time span not a multiple of the point count");
    info->type = b[3];
    info->version = b[2];
    info->flags = (uint16_t)flags;
    info->n = (uint32_t)n;
    info->min_ts = (int64_t)lo;
    info->max_ts = (int64_t)(lo + span);
    info->string_bytes = sbytes;
    return GW_OK;
}

int gw_block_header_read(const uint8_t *block, size_t len, gw_block_info *info) {
    gw_codec_in in;
    return read_header(block, len, info, &in, 0);
}

int64_t gw_block_count(const uint8_t *block, size_t len) {
    gw_block_info info;
    gw_codec_in in;
    int rc = read_header(block, len, &info, &in, 0);
    return rc ? rc : (int64_t)info.n;
}

int gw_block_info_read(const uint8_t *block, size_t len, gw_block_info *info) {
    gw_codec_in in;
    return read_header(block, len, info, &in, 1);
}

static int decode_bools(gw_codec_in *in, uint64_t *v, uint32_t n) {
    uint8_t first;
    uint64_t nruns;
    int rc;
    if ((rc = gw_codec_get_byte(in, &first, "first boolean"))) return rc;
    if (first > 1) { in->why = "first boolean not 0 or 1"; return GW_ECORRUPT; }
    if ((rc = gw_codec_get_uvarint(in, &nruns, "run count"))) return rc;
    if (nruns == 0 || nruns > n) { in->why = "run count out of range"; return GW_ECORRUPT; }
    uint64_t *runs = malloc(sizeof(uint64_t) * (size_t)nruns);
    if (!runs) { in->why = "out of memory"; return GW_ENOMEM; }
    if ((rc = gw_codec_int_decode(in, runs, (uint32_t)nruns))) { free(runs); return rc; }
    uint64_t at = 0, bit = first;
    for (uint64_t r = 0; r < nruns; r++) {
        if (runs[r] >= n - at) { free(runs); in->why = "runs longer than the block"; return GW_ECORRUPT; }
        for (uint64_t j = 0; j <= runs[r]; j++) v[at++] = bit;
        bit ^= 1;
    }
    free(runs);
    if (at != n) { in->why = "runs shorter than the block"; return GW_ECORRUPT; }
    return GW_OK;
}

static int decode_strings(gw_codec_in *in, uint32_t n, uint64_t total, char *strings,
                          uint32_t *offsets, size_t cap) {
    uint64_t d;
    int rc;
    if ((rc = gw_codec_get_uvarint(in, &d, "dictionary size"))) return rc;
    if (d == 0 || d > n) { in->why = "dictionary size out of range"; return GW_ECORRUPT; }
    uint64_t *lengths = malloc(sizeof(uint64_t) * (size_t)d);
    uint64_t *starts = malloc(sizeof(uint64_t) * (size_t)d);
    uint64_t *index = malloc(sizeof(uint64_t) * n);
    if (!lengths || !starts || !index) { rc = GW_ENOMEM; in->why = "out of memory"; goto done; }
    if ((rc = gw_codec_int_decode(in, lengths, (uint32_t)d))) goto done;
    uint64_t at = in->pos;
    for (uint64_t e = 0; e < d; e++) {
        if (lengths[e] > in->len - at) { rc = GW_ETRUNC; in->why = "dictionary bytes truncated"; goto done; }
        starts[e] = at;
        at += lengths[e];
    }
    in->pos = (size_t)at;
    if (d > 1) {
        if ((rc = gw_codec_int_decode(in, index, n))) goto done;
    } else {
        memset(index, 0, sizeof(uint64_t) * n);
    }
    uint64_t out = 0;
    offsets[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t e = index[i];
        if (e >= d) { rc = GW_ECORRUPT; in->why = "dictionary index out of range"; goto done; }
        if (lengths[e] > total - out) { rc = GW_ECORRUPT; in->why = "strings exceed the declared byte count"; goto done; }
        memcpy(strings + out, in->p + starts[e], (size_t)lengths[e]);
        out += lengths[e];
        offsets[i + 1] = (uint32_t)out;
    }
    if (out != total) { rc = GW_ECORRUPT; in->why = "strings fall short of the declared byte count"; goto done; }
    (void)cap;
    rc = GW_OK;
done:
    free(lengths);
    free(starts);
    free(index);
    return rc;
}

#if defined(__GNUC__)
typedef uint64_t v2u64 __attribute__((vector_size(16)));
#endif

#if defined(__x86_64__) && defined(__GNUC__)
typedef uint64_t v4u64 __attribute__((vector_size(32)));
/* Four lanes where the CPU has AVX2 (chosen at run time): half the stores of two lanes. */
__attribute__((target("avx2"))) static void fill_regular_4(uint64_t *t, uint32_t n, uint64_t start, uint64_t step) {
    uint32_t i = 0;
    v4u64 lanes = {start, start + step, start + 2 * step, start + 3 * step};
    v4u64 inc = {4 * step, 4 * step, 4 * step, 4 * step};
    for (; i + 4 <= n; i += 4) {
        memcpy(t + i, &lanes, sizeof lanes);
        lanes += inc;
    }
    for (; i < n; i++) t[i] = start + step * i;
}
#endif

/* t[i] = start + i * step, two lanes at a time where the compiler has vector types. */
static void fill_regular(uint64_t *t, uint32_t n, uint64_t start, uint64_t step) {
    uint32_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) { fill_regular_4(t, n, start, step); return; }
#endif
#if defined(__GNUC__)
    v2u64 lanes = {start, start + step}, inc = {2 * step, 2 * step};
    for (; i + 2 <= n; i += 2) {
        memcpy(t + i, &lanes, sizeof lanes);
        lanes += inc;
    }
#endif
    for (; i < n; i++) t[i] = start + step * i;
}

static int decode_body(const gw_block_info *hdr, gw_codec_in *in_, int64_t *ts, uint64_t *values,
                       char *strings, uint32_t *string_offsets, size_t strings_cap);

int gw_block_decode(const uint8_t *block, size_t len, int64_t *ts, uint64_t *values,
                    char *strings, uint32_t *string_offsets, size_t strings_cap) {
    gw_block_info info;
    gw_codec_in in;
    int rc = read_header(block, len, &info, &in, 1);
    if (rc) return rc;
    return decode_body(&info, &in, ts, values, strings, string_offsets, strings_cap);
}

int gw_block_decode_n(const uint8_t *block, size_t len, uint32_t n, int64_t *ts, uint64_t *values) {
    gw_block_info info;
    gw_codec_in in;
    int rc = read_header(block, len, &info, &in, 1);
    if (rc) return rc;
    if (info.n != n || info.type == GW_STRING) return fail(GW_EINVAL, "block does not fit the buffers");
    return decode_body(&info, &in, ts, values, NULL, NULL, 0);
}

int gw_block_decode_at(const uint8_t *block, size_t len, uint32_t n, uintptr_t ts, uintptr_t values) {
    return gw_block_decode_n(block, len, n, (int64_t *)ts, (uint64_t *)values);
}

static int decode_body(const gw_block_info *hdr, gw_codec_in *in_, int64_t *ts, uint64_t *values,
                       char *strings, uint32_t *string_offsets, size_t strings_cap) {
    gw_block_info info = *hdr;
    gw_codec_in in = *in_;
    int rc;
    uint32_t n = info.n;
    if (!ts) return fail(GW_EINVAL, "no timestamp buffer");
    if (info.type == GW_STRING) {
        if (!string_offsets || strings_cap < info.string_bytes || (info.string_bytes && !strings))
            return fail(GW_EINVAL, "string buffers too small for the block");
    } else if (!values) {
        return fail(GW_EINVAL, "no value buffer");
    }
    uint64_t *t = (uint64_t *)ts;
    uint64_t lo = (uint64_t)info.min_ts;
    if (info.flags & FLAG_REGULAR) {
        uint64_t step = n > 1 ? ((uint64_t)info.max_ts - lo) / (n - 1) : 0;
        fill_regular(t, n, lo, step);
    } else {
        if ((rc = gw_codec_int_decode(&in, t, n))) return fail(rc, in.why);
        uint64_t span = (uint64_t)info.max_ts - lo, seen_lo = UINT64_MAX, seen_hi = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (t[i] < seen_lo) seen_lo = t[i];
            if (t[i] > seen_hi) seen_hi = t[i];
            t[i] += lo;
        }
        if (seen_lo != 0 || seen_hi != span) return fail(GW_ECORRUPT, "timestamps disagree with the header's range");
    }
    switch (info.type) {
    case GW_FLOAT:  rc = gw_codec_float_decode(&in, values, n); break;
    case GW_INT:
    case GW_UINT:   rc = gw_codec_int_decode(&in, values, n); break;
    case GW_BOOL:   rc = decode_bools(&in, values, n); break;
    default:        rc = decode_strings(&in, n, info.string_bytes, strings, string_offsets, strings_cap); break;
    }
    if (rc) return fail(rc, in.why);
    if (in.pos != in.len) return fail(GW_ECORRUPT, "bytes left over after the values");
    return GW_OK;
}

void gw_block_bools_widen(const uint8_t *in, uint64_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] != 0;
}

void gw_block_bools_narrow(const uint64_t *in, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(in[i] != 0);
}
