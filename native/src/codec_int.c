/* Integer columns of the block codec: delta order, common factor and entropy-coded residuals.
 *
 * Every column in a block (timestamps, integer values, scaled decimal floats, run lengths,
 * dictionary indices) ends up here as n 64-bit integers. Layout of one column (details and a
 * worked example in docs/format/block.md):
 *
 *   head     1 byte   bits 0-1 delta order (0, 1, 2), bits 2-3 residual coding
 *                     (0 constant, 1 bit-packed, 2 rANS, 3 sparse), bit 4 base is zigzagged
 *   order 0: base     varint (zigzag when bit 4)       x[i] = base + r[i] * factor
 *   order 1: x0       zigzag varint                    x[i] = x[i-1] + unzigzag(r[i-1]) * factor
 *   order 2: x0, d0   zigzag varints                   d[i] = d[i-1] + unzigzag(r[i-2]) * factor
 *   factor   varint   common factor of the differences (1 = none), at most 2^62
 *   residuals         constant: varint | bit-packed: width byte + n*width bits, LSB first |
 *                     rANS: codec_rans.c | sparse: count varint, then per non-zero
 *                     residual its gap from the previous one's successor and its value
 *
 * Bit I/O is in codec_bits.h/.c, the rebuild of values from residuals in codec_delta.h.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "codec_rans.h"

#define MAX_FACTOR      ((uint64_t)1 << 62)

enum { ORDER_MAX = 2 };
enum { RES_CONST = 0, RES_PACKED = 1, RES_ANS = 2, RES_SPARSE = 3 };
/* Sparse residuals are considered when at most 1 in SPARSE_SHARE is non-zero. */
#define SPARSE_SHARE 8

/* ---------------------------------------------------------------- bit packing */

static size_t encode_packed(const uint64_t *r, uint32_t n, int width, uint8_t *out) {
    size_t pos = 0;
    out[pos++] = (uint8_t)width;
    bit_writer w = {out, pos, 0, 0};
    if (width) for (uint32_t i = 0; i < n; i++) bw_put_long(&w, r[i], width);
    bw_flush(&w);
    return w.pos;
}

static int decode_packed(gw_codec_in *in, uint64_t *r, uint32_t n) {
    uint8_t width;
    if (gw_codec_get_byte(in, &width, "bit width")) return GW_ETRUNC;
    if (width > 64) { in->why = "bit width above 64"; return GW_ECORRUPT; }
    uint64_t bytes = ((uint64_t)n * width + 7) / 8;
    if (bytes > in->len - in->pos) { in->why = "bit-packed residuals truncated"; return GW_ETRUNC; }
    bit_reader br;
    br_init(&br, in->p + in->pos, (size_t)bytes);
    for (uint32_t i = 0; i < n; i++) r[i] = br_get_long(&br, width);
    in->pos += (size_t)bytes;
    return GW_OK;
}

/* ---------------------------------------------------------------- sparse residuals */

static size_t varint_size(uint64_t v) { size_t k = 1; while (v >= 0x80) { v >>= 7; k++; } return k; }

/* Bytes of the sparse form: count, then (gap, value) of each non-zero residual. */
static size_t sparse_size(const uint64_t *r, uint32_t n) {
    size_t bytes = 0, count = 0;
    uint32_t next = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!r[i]) continue;
        bytes += varint_size(i - next) + varint_size(r[i]);
        next = i + 1;
        count++;
    }
    return bytes + varint_size(count);
}

static size_t encode_sparse(const uint64_t *r, uint32_t n, uint8_t *out) {
    size_t pos = 0;
    uint32_t count = 0, next = 0;
    for (uint32_t i = 0; i < n; i++) count += r[i] != 0;
    gw_codec_put_uvarint(out, &pos, count);
    for (uint32_t i = 0; i < n; i++) {
        if (!r[i]) continue;
        gw_codec_put_uvarint(out, &pos, i - next);
        gw_codec_put_uvarint(out, &pos, r[i]);
        next = i + 1;
    }
    return pos;
}

static int decode_sparse(gw_codec_in *in, uint64_t *r, uint32_t n) {
    uint64_t count, at = 0;
    int rc;
    if ((rc = gw_codec_get_uvarint(in, &count, "sparse residual count"))) return rc;
    if (count > n) { in->why = "more sparse residuals than points"; return GW_ECORRUPT; }
    memset(r, 0, sizeof(uint64_t) * n);
    for (uint64_t k = 0; k < count; k++) {
        uint64_t gap, v;
        if ((rc = gw_codec_get_uvarint(in, &gap, "sparse residual position"))) return rc;
        if (gap >= n - at) { in->why = "sparse residual position out of range"; return GW_ECORRUPT; }
        if ((rc = gw_codec_get_uvarint(in, &v, "sparse residual value"))) return rc;
        if (v == 0) { in->why = "sparse residual of zero"; return GW_ECORRUPT; }
        at += gap;
        r[at++] = v;
    }
    return GW_OK;
}

/* ---------------------------------------------------------------- delta order and factor */

static uint64_t gcd64(uint64_t a, uint64_t b) {
    while (b) { uint64_t t = a % b; a = b; b = t; }
    return a;
}

/* Multiplicative inverse of an odd number modulo 2^64 (Newton's iteration doubles the bits). */
static uint64_t inverse_odd(uint64_t a) {
    uint64_t x = a;   /* correct to 3 bits */
    for (int i = 0; i < 5; i++) x *= 2 - a * x;
    return x;
}

static uint64_t magnitude(uint64_t d) { return (int64_t)d < 0 ? (uint64_t)0 - d : d; }

/* Differences of the given order (mod 2^64) divided exactly by the factor (through the odd
 * part's inverse) and zigzagged for orders 1 and 2, into d; returns how many (n - order). */
static uint32_t residuals(const uint64_t *x, uint32_t n, int order, uint64_t base, uint64_t g,
                          uint64_t *d) {
    if (g == 1) {
        if (order == 0) {
            for (uint32_t i = 0; i < n; i++) d[i] = x[i] - base;
            return n;
        }
        if (order == 1) {
            for (uint32_t i = 1; i < n; i++) d[i - 1] = gw_codec_zigzag(x[i] - x[i - 1]);
            return n - 1;
        }
    }
    int shift = __builtin_ctzll(g);
    uint64_t inv = inverse_odd(g >> shift);
    if (order == 0) {
        for (uint32_t i = 0; i < n; i++) d[i] = ((x[i] - base) >> shift) * inv;
        return n;
    }
    if (order == 1) {
        for (uint32_t i = 1; i < n; i++)
            d[i - 1] = gw_codec_zigzag((uint64_t)((int64_t)(x[i] - x[i - 1]) >> shift) * inv);
        return n - 1;
    }
    for (uint32_t i = 2; i < n; i++) {
        uint64_t dd = (x[i] - x[i - 1]) - (x[i - 1] - x[i - 2]);
        d[i - 2] = gw_codec_zigzag((uint64_t)((int64_t)dd >> shift) * inv);
    }
    return n - 2;
}

static inline void factor_update(uint64_t *g, uint64_t v) {
    if (*g == 1 || v == 0 || v == *g) return;
    *g = *g ? gcd64(*g, v) : v;
}

/* Bits of v for cost estimates (1 for zero: keeps the count branch-free). */
static inline int est_bits(uint64_t v) { return 64 - __builtin_clzll(v | 1); }

#define ORDER_SAMPLE 256   /* consecutive triples looked at to choose the order */

/* Picks the delta order (0, 1 or 2) by the total bit length of each order's residuals over an
 * even sample of the column; order 0 costs the width of the column's range. */
static int choose_order(const uint64_t *x, uint32_t n, uint64_t range) {
    if (n < 3) return n == 2 ? 1 : 0;
    uint64_t bits1 = 0, bits2 = 0, seen = 0;
    uint32_t stride = (n - 2) > ORDER_SAMPLE ? (n - 2) / ORDER_SAMPLE : 1;
    for (uint32_t i = 2; i < n; i += stride, seen++) {
        uint64_t d1 = x[i] - x[i - 1], d0 = x[i - 1] - x[i - 2];
        bits1 += (uint64_t)est_bits(gw_codec_zigzag(d1));
        bits2 += (uint64_t)est_bits(gw_codec_zigzag(d1 - d0));
    }
    double cost0 = (double)est_bits(range) * (double)seen;
    double cost1 = (double)bits1 + 64.0 * seen / n, cost2 = (double)bits2 + 128.0 * seen / n;
    if (cost0 <= cost1 && cost0 <= cost2) return 0;
    return cost1 <= cost2 ? 1 : 2;
}

/* Greatest common divisor of the order's differences (1 when none, or above 2^62). Stops at
 * the first coprime pair, so it costs a few steps on ordinary data. */
static uint64_t order_factor(const uint64_t *x, uint32_t n, int order, uint64_t base) {
    uint64_t g = 0;
    for (uint32_t i = (uint32_t)order; i < n && g != 1; i++) {
        uint64_t v = order == 0 ? x[i] - base
                   : order == 1 ? magnitude(x[i] - x[i - 1])
                   : magnitude((x[i] - x[i - 1]) - (x[i - 1] - x[i - 2]));
        factor_update(&g, v);
    }
    return (g == 0 || g > MAX_FACTOR) ? 1 : g;
}

size_t gw_codec_int_bound(uint32_t n) { return (size_t)n * 8 + 64; }

int gw_codec_int_encode(const uint64_t *x, uint32_t n, int is_signed, uint8_t *out, size_t *pos) {
    uint64_t *d = malloc(sizeof(uint64_t) * (n ? n : 1));
    if (!d) return GW_ENOMEM;
    uint64_t base = x[0], top = x[0];
    if (is_signed) {
        int64_t lo = (int64_t)x[0], hi = lo;
        for (uint32_t i = 1; i < n; i++) {
            int64_t v = (int64_t)x[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        base = (uint64_t)lo;
        top = (uint64_t)hi;
    } else {
        for (uint32_t i = 1; i < n; i++) {
            base = x[i] < base ? x[i] : base;
            top = x[i] > top ? x[i] : top;
        }
    }
    int order = choose_order(x, n, top - base);
    uint64_t factor = order_factor(x, n, order, base);
    uint32_t m = residuals(x, n, order, base, factor, d);

    uint8_t *o = out + *pos;
    size_t p = 0;
    int zig_base = is_signed && order == 0;
    size_t head_at = p++;
    if (order == 0) gw_codec_put_uvarint(o, &p, zig_base ? gw_codec_zigzag(base) : base);
    if (order >= 1) gw_codec_put_uvarint(o, &p, gw_codec_zigzag(x[0]));
    if (order == 2) gw_codec_put_uvarint(o, &p, gw_codec_zigzag(x[1] - x[0]));
    gw_codec_put_uvarint(o, &p, factor);

    int mode = RES_CONST;
    uint64_t maxr = 0, differ = 0;
    uint32_t nonzero = 0;
    for (uint32_t i = 0; i < m; i++) { differ |= d[i] ^ d[0]; maxr |= d[i]; nonzero += d[i] != 0; }
    if (differ) mode = RES_PACKED;
    int rc = GW_OK;
    if (mode == RES_CONST) {
        gw_codec_put_uvarint(o, &p, d[0]);
    } else {
        int width = bitlen64(maxr);
        size_t best = 1 + ((size_t)m * width + 7) / 8;   /* bit-packed */
        if (nonzero <= m / SPARSE_SHARE) {
            size_t sparse = sparse_size(d, m);
            if (sparse <= best) { best = sparse; mode = RES_SPARSE; }
        }
        gw_codec_rans *ans = gw_codec_rans_plan(d, m, width);
        if (!ans) { free(d); return GW_ENOMEM; }
        size_t len = 0;
        if (gw_codec_rans_estimate(ans) < (double)best)
            rc = gw_codec_rans_encode(ans, d, m, o + p, best, &len);
        gw_codec_rans_free(ans);
        if (rc) { free(d); return rc; }
        if (len) {
            mode = RES_ANS;
            p += len;
        }
        if (mode == RES_PACKED) p += encode_packed(d, m, width, o + p);
        if (mode == RES_SPARSE) p += encode_sparse(d, m, o + p);
    }
    o[head_at] = (uint8_t)(order | mode << 2 | zig_base << 4);
    *pos += p;
    free(d);
    return rc;
}

int gw_codec_int_decode(gw_codec_in *in, uint64_t *x, uint32_t n) {
    uint8_t head;
    int rc;
    if ((rc = gw_codec_get_byte(in, &head, "integer column header"))) return rc;
    int order = head & 3, mode = (head >> 2) & 3, zig_base = (head >> 4) & 1;
    if (order > ORDER_MAX || (head >> 5) || (uint32_t)order >= n ||
        (zig_base && order)) {
        in->why = "bad integer column header";
        return GW_ECORRUPT;
    }
    uint64_t base = 0, x0 = 0, d0 = 0, factor;
    if (order == 0 && (rc = gw_codec_get_uvarint(in, &base, "integer column base"))) return rc;
    if (order >= 1 && (rc = gw_codec_get_uvarint(in, &x0, "integer column start"))) return rc;
    if (order == 2 && (rc = gw_codec_get_uvarint(in, &d0, "integer column start"))) return rc;
    if ((rc = gw_codec_get_uvarint(in, &factor, "integer column factor"))) return rc;
    if (factor == 0 || factor > MAX_FACTOR) { in->why = "bad integer column factor"; return GW_ECORRUPT; }
    if (zig_base) base = gw_codec_unzigzag(base);

    gw_codec_delta col = {order, base, gw_codec_unzigzag(x0), gw_codec_unzigzag(d0), factor};
    if (mode == RES_ANS) return gw_codec_rans_decode(in, x, n, col);
    uint32_t m = n - (uint32_t)order;
    uint64_t *r = x + order;
    if (mode == RES_CONST) {
        uint64_t v;
        if ((rc = gw_codec_get_uvarint(in, &v, "constant residual"))) return rc;
        for (uint32_t i = 0; i < m; i++) r[i] = v;
    } else if (mode == RES_SPARSE) {
        if ((rc = decode_sparse(in, r, m))) return rc;
    } else if ((rc = decode_packed(in, r, m))) {
        return rc;
    }
    gw_codec_delta_rebuild(x, n, col);
    return GW_OK;
}
