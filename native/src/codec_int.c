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
 *                     rANS: see encode_ans() below | sparse: count varint, then per non-zero
 *                     residual its gap from the previous one's successor and its value
 *
 * rANS residuals: each residual r becomes a token (r itself when r < 2^E, otherwise its bit
 * length and its m bits below the top bit) plus the remaining low bits stored raw. Tokens are
 * coded with a static rANS model (precision P bits, K = 1, 2 or 4 interleaved 32-bit states,
 * 16-bit renormalisation) whose frequency table travels in the column. E, m, P and K are chosen
 * per column from its histogram: small blocks get small tables, skewed data near-zero cost.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

#define RANS_L          (1u << 16)   /* lower bound of a state; 16-bit words renormalise it */
#define MAX_PRECISION   14           /* M <= 16384 keeps the decode table at 128 KiB */
#define MIN_PRECISION   4
#define MAX_SPLIT       8            /* E: residuals below 2^E are tokens of their own */
#define MAX_MSB         2            /* m: bits below the top bit that go into the token */
#define MAX_TOKENS      ((1 << MAX_SPLIT) + (64 - MAX_SPLIT) * (1 << MAX_MSB))
#define MAX_FACTOR      ((uint64_t)1 << 62)

enum { ORDER_MAX = 2 };
enum { RES_CONST = 0, RES_PACKED = 1, RES_ANS = 2, RES_SPARSE = 3 };
/* Sparse residuals are considered when at most 1 in SPARSE_SHARE is non-zero. */
#define SPARSE_SHARE 8

/* ---------------------------------------------------------------- byte helpers */

void gw_codec_put_uvarint(uint8_t *out, size_t *pos, uint64_t v) {
    size_t p = *pos;
    while (v >= 0x80) { out[p++] = (uint8_t)(v | 0x80); v >>= 7; }
    out[p++] = (uint8_t)v;
    *pos = p;
}

int gw_codec_get_uvarint(gw_codec_in *in, uint64_t *v, const char *what) {
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (in->pos >= in->len) { in->why = what; return GW_ETRUNC; }
        uint8_t b = in->p[in->pos++];
        if (shift == 63 && b > 1) break;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = r; return GW_OK; }
    }
    in->why = what;
    return GW_ECORRUPT;
}

int gw_codec_get_byte(gw_codec_in *in, uint8_t *v, const char *what) {
    if (in->pos >= in->len) { in->why = what; return GW_ETRUNC; }
    *v = in->p[in->pos++];
    return GW_OK;
}

static int bitlen64(uint64_t v) { return v ? 64 - __builtin_clzll(v) : 0; }

static uint64_t load64le(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
#endif
}

/* ---------------------------------------------------------------- bit streams (LSB first) */

typedef struct { uint8_t *out; size_t pos; uint64_t acc; int cnt; } bit_writer;

static void bw_put(bit_writer *w, uint64_t bits, int n) {   /* n <= 32; acc keeps < 32 bits */
    w->acc |= bits << w->cnt;
    w->cnt += n;
    if (w->cnt >= 32) {
        uint32_t word = (uint32_t)w->acc;
        for (int b = 0; b < 4; b++) w->out[w->pos++] = (uint8_t)(word >> (8 * b));
        w->acc >>= 32;
        w->cnt -= 32;
    }
}

static void bw_put_long(bit_writer *w, uint64_t bits, int n) {   /* n <= 64 */
    if (n > 32) { bw_put(w, bits & 0xffffffffu, 32); bits >>= 32; n -= 32; }
    if (n) bw_put(w, bits & (((uint64_t)1 << n) - 1), n);
}

static void bw_flush(bit_writer *w) {
    while (w->cnt > 0) { w->out[w->pos++] = (uint8_t)w->acc; w->acc >>= 8; w->cnt -= 8; }
    w->acc = 0;
    w->cnt = 0;
}

/* Elias gamma of v >= 1: (bitlen-1) zeros, a one, then the bits below the top bit. */
static void bw_gamma(bit_writer *w, uint32_t v) {
    int nb = bitlen64(v);
    bw_put(w, 0, nb - 1);
    bw_put(w, 1, 1);
    if (nb > 1) bw_put(w, v & ((1u << (nb - 1)) - 1), nb - 1);
}

/* Reads past the end yield zero bits and count as overrun, which callers treat as corruption. */
typedef struct { const uint8_t *p; size_t pos, len; uint64_t acc; int cnt; size_t overrun; } bit_reader;

static void br_init(bit_reader *r, const uint8_t *p, size_t len) {
    r->p = p; r->pos = 0; r->len = len; r->acc = 0; r->cnt = 0; r->overrun = 0;
}

static inline void br_refill(bit_reader *r) {
    if (r->pos + 8 <= r->len) {
        r->acc |= load64le(r->p + r->pos) << r->cnt;
        int take = (63 - r->cnt) >> 3;
        r->pos += (size_t)take;
        r->cnt += take * 8;
    } else {
        while (r->cnt <= 56) {
            if (r->pos < r->len) r->acc |= (uint64_t)r->p[r->pos++] << r->cnt;
            else r->overrun++;
            r->cnt += 8;
        }
    }
}

static inline uint64_t br_get(bit_reader *r, int n) {   /* n <= 56 */
    if (r->cnt < n) br_refill(r);
    uint64_t v = n ? r->acc & (((uint64_t)1 << n) - 1) : 0;
    r->acc = n == 64 ? 0 : r->acc >> n;
    r->cnt -= n;
    return v;
}

static inline uint64_t br_get_long(bit_reader *r, int n) {   /* n <= 64 */
    if (n <= 56) return br_get(r, n);
    uint64_t lo = br_get(r, 32);
    return lo | br_get(r, n - 32) << 32;
}

static int br_gamma(bit_reader *r, uint32_t *v) {
    int zeros = 0;
    while (br_get(r, 1) == 0) {
        if (++zeros > 31) return GW_ECORRUPT;
    }
    *v = (uint32_t)(((uint64_t)1 << zeros) | br_get(r, zeros));
    return GW_OK;
}

/* Bits the reader handed out, counting zero bits invented past the end. */
static uint64_t br_bits_used(const bit_reader *r) {
    return ((uint64_t)r->pos + r->overrun) * 8 - (uint64_t)r->cnt;
}

static int br_past_end(const bit_reader *r) { return br_bits_used(r) > (uint64_t)r->len * 8; }

/* ---------------------------------------------------------------- tokens */

static int token_count(int E, int m) { return (1 << E) + (64 - E) * (1 << m); }

static inline uint32_t token_of(uint64_t r, int E, int m, int *raw_bits) {
    /* Branch-free: residuals above and below 2^E alternate unpredictably in noisy data. */
    int e = 63 - __builtin_clzll(r | 1);
    int big = (r >> E) != 0;
    int shift = big ? e - m : 0;
    uint32_t top = (uint32_t)(r >> shift) & ((1u << m) - 1);
    uint32_t t_big = (1u << E) + ((uint32_t)(e - E) << m) + top;
    *raw_bits = shift;
    return big ? t_big : (uint32_t)r;
}

/* Smallest value and raw bit count of each token. */
static void token_table(int E, int m, int nt, uint64_t *base, uint8_t *raw_bits) {
    for (int t = 0; t < nt; t++) {
        if (t < (1 << E)) { base[t] = (uint64_t)t; raw_bits[t] = 0; continue; }
        int u = t - (1 << E), e = E + (u >> m);
        uint64_t top = (uint64_t)((1 << m) | (u & ((1 << m) - 1)));
        base[t] = top << (e - m);
        raw_bits[t] = (uint8_t)(e - m);
    }
}

/* ---------------------------------------------------------------- cost model */

/* log2(v) for v >= 1 within about 0.01: only steers choices, never the format. */
static double approx_log2(double v) {
    uint64_t b;
    memcpy(&b, &v, 8);
    int e = (int)((b >> 52) & 0x7ff) - 1023;
    b = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull;   /* mantissa in [1, 2) */
    double f;
    memcpy(&f, &b, 8);
    f -= 1.0;
    return e + f * (1.4425 - f * (0.7213 - f * 0.2787));
}

/* Histogram from which the token counts of every (E, m) follow without another pass. */
typedef struct {
    uint32_t small[1 << MAX_SPLIT];
    uint32_t big[64][1 << MAX_MSB];   /* residuals >= 2^MAX_SPLIT by bit length-1 and top bits */
    uint32_t n, small_max;            /* no residual below 2^MAX_SPLIT is above small_max */
    int big_end;                      /* big[e] is empty for e >= big_end */
    int small_used;                   /* how many small residuals occur, listed in small_list */
    uint8_t small_list[1 << MAX_SPLIT];
} residual_hist;

static void hist_build(residual_hist *h, const uint64_t *r, uint32_t n) {
    memset(h, 0, sizeof *h);
    h->n = n;
    uint64_t all = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t v = r[i];
        all |= v;
        if (v < (1u << MAX_SPLIT)) { h->small[v]++; continue; }
        int e = 63 - __builtin_clzll(v);
        h->big[e][(v >> (e - MAX_MSB)) & ((1 << MAX_MSB) - 1)]++;
    }
    /* Bounds of the loops over the histogram: every residual is below 2^bitlen(all). */
    int top_bits = all ? 64 - __builtin_clzll(all) : 0;
    h->small_max = top_bits >= MAX_SPLIT ? (1u << MAX_SPLIT) - 1 : (1u << top_bits) - 1;
    h->big_end = top_bits > MAX_SPLIT ? top_bits : MAX_SPLIT;
    for (uint32_t v = 0; v <= h->small_max; v++)
        if (h->small[v]) h->small_list[h->small_used++] = (uint8_t)v;
}

/* Token counts for (E, m); returns the raw bits the tokens leave. */
static uint64_t hist_tokens(const residual_hist *h, int E, int m, uint32_t *counts) {
    uint64_t raw = 0;
    memset(counts, 0, sizeof(uint32_t) * (size_t)token_count(E, m));
    for (int u = 0; u < h->small_used; u++) {
        uint32_t v = h->small_list[u];
        int rb;
        counts[token_of(v, E, m, &rb)] += h->small[v];
        raw += (uint64_t)rb * h->small[v];
    }
    for (int e = MAX_SPLIT; e < h->big_end; e++) {
        for (int top = 0; top < (1 << MAX_MSB); top++) {
            uint32_t c = h->big[e][top];
            if (!c) continue;
            uint32_t t = (1u << E) + ((uint32_t)(e - E) << m) + ((uint32_t)top >> (MAX_MSB - m));
            counts[t] += c;
            raw += (uint64_t)(e - m) * c;
        }
    }
    return raw;
}

/* Scales counts (summing to total) to frequencies summing to 2^P, each used token >= 1.
 * used[] lists the tokens with a count. Returns 0, or -1 when more tokens are used than
 * 2^P has slots. */
static int normalise(const uint32_t *counts, const uint16_t *used, int nused, uint32_t total,
                     int P, uint32_t *freq) {
    uint32_t M = 1u << P, sum = 0;
    if ((uint32_t)nused > M || nused == 0) return -1;
    int biggest = used[0];
    for (int u = 0; u < nused; u++) {
        int t = used[u];
        uint64_t f = ((uint64_t)counts[t] * M + total / 2) / total;
        freq[t] = f ? (uint32_t)f : 1;
        sum += freq[t];
        if (counts[t] > counts[biggest]) biggest = t;
    }
    while (sum != M) {
        if (sum < M) { freq[biggest] += M - sum; break; }
        /* Take the excess from the largest frequencies, never below 1. */
        int top = -1;
        for (int u = 0; u < nused; u++) {
            int t = used[u];
            if (freq[t] > 1 && (top < 0 || freq[t] > freq[top])) top = t;
        }
        if (top < 0) return -1;
        uint32_t give = sum - M;
        if (give > freq[top] - 1) give = freq[top] - 1;
        if (give > freq[top] / 4 + 1) give = freq[top] / 4 + 1;
        freq[top] -= give;
        sum -= give;
    }
    return 0;
}

static uint32_t gamma_bits(uint32_t v) { return 2u * (uint32_t)bitlen64(v) - 1u; }

/* Estimated bits of tokens plus frequency table (gamma(last + 1), gamma(f + 1) per token up to
 * the last used; unused tokens below it cost one bit each). */
static double model_bits(const uint32_t *counts, const uint16_t *used, int nused,
                         const uint32_t *freq, int P) {
    int last = used[nused - 1];
    double bits = gamma_bits((uint32_t)last + 1) + (last + 1 - nused);
    for (int u = 0; u < nused; u++) {
        int t = used[u];
        bits += gamma_bits(freq[t] + 1) + counts[t] * (P - approx_log2(freq[t]));
    }
    return bits;
}

typedef struct { int E, m, P, K; double bits; } ans_plan;

static int states_for(uint32_t n) { return n >= 512 ? 4 : n >= 64 ? 2 : 1; }

/* Largest precision worth its decode table: about one slot per residual, so building the
 * table never costs more than decoding the symbols. */
static int max_precision_for(uint32_t n) {
    int p = bitlen64(n) - 2;
    return p > MAX_PRECISION ? MAX_PRECISION : p < MIN_PRECISION ? MIN_PRECISION : p;
}

/* Best (E, m) for these residuals by their empirical entropy plus raw bits and a table
 * estimate, then the best precision P for it by the size of the normalised model. */
static ans_plan plan_ans(const residual_hist *h, int max_bits) {
    static const int configs[][2] = {{2, 0}, {4, 1}, {6, 2}, {8, 2}};
    uint32_t counts[MAX_TOKENS], freq[MAX_TOKENS];
    uint16_t used[MAX_TOKENS];
    ans_plan best = {4, 1, 8, states_for(h->n), 1e300};
    double ln = approx_log2((double)h->n);
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        int E = configs[c][0], m = configs[c][1], nt = token_count(E, m);
        if (c > 0 && configs[c - 1][0] >= max_bits) break;   /* all residuals already direct */
        uint64_t raw = hist_tokens(h, E, m, counts);
        double bits = (double)raw;
        int nused = 0;
        for (int t = 0; t < nt; t++) {
            if (!counts[t]) continue;
            nused++;
            bits += counts[t] * (ln - approx_log2((double)counts[t]));
            bits += 2.0 * approx_log2((double)counts[t] + 1.0) + 1.0;   /* its table entry */
        }
        if (bits < best.bits) { best.E = E; best.m = m; best.bits = bits; }
    }
    int nt = token_count(best.E, best.m), nused = 0, pmax = max_precision_for(h->n);
    hist_tokens(h, best.E, best.m, counts);
    for (int t = 0; t < nt; t++) if (counts[t]) used[nused++] = (uint16_t)t;
    double best_bits = 1e300;
    for (int P = pmax - 2; P <= pmax; P++) {
        if (P < MIN_PRECISION || normalise(counts, used, nused, h->n, P, freq) < 0) continue;
        double bits = model_bits(counts, used, nused, freq, P);
        if (bits < best_bits) { best_bits = bits; best.P = P; }
    }
    best.bits = best_bits + (double)hist_tokens(h, best.E, best.m, counts) + 32.0 * best.K + 24.0;
    return best;
}

/* ---------------------------------------------------------------- rANS residuals */

/* Writes the rANS form of r[0..n) at out (room: n * 10 + 4096 bytes); returns bytes written. */
static size_t encode_ans(const uint64_t *r, uint32_t n, const residual_hist *h, ans_plan plan,
                         uint8_t *out, uint16_t *tokens, uint16_t *words) {
    uint32_t counts[MAX_TOKENS], freq[MAX_TOKENS], cum[MAX_TOKENS + 1];
    int E = plan.E, m = plan.m, P = plan.P, K = plan.K, nt = token_count(E, m);
    uint16_t used[MAX_TOKENS] = {0};
    int nused = 0;
    hist_tokens(h, E, m, counts);
    for (int t = 0; t < nt; t++) {
        freq[t] = 0;
        if (counts[t]) used[nused++] = (uint16_t)t;
    }
    normalise(counts, used, nused, n, P, freq);
    cum[0] = 0;
    for (int t = 0; t < nt; t++) cum[t + 1] = cum[t] + freq[t];

    size_t pos = 0;
    out[pos++] = (uint8_t)(E | m << 4);
    out[pos++] = (uint8_t)(P | (K == 4 ? 2 : K == 2 ? 1 : 0) << 4);
    bit_writer w = {out, pos, 0, 0};
    int last = nt - 1;
    while (last > 0 && !freq[last]) last--;
    bw_gamma(&w, (uint32_t)last + 1);
    for (int t = 0; t <= last; t++) bw_gamma(&w, freq[t] + 1);
    bw_flush(&w);
    pos = w.pos;

    /* Raw low bits in forward order, into their own byte stream after a length varint. The
     * length is not known yet: write the bits at a fixed offset and move them once. */
    size_t raw_at = pos + 10;
    bit_writer raw = {out, raw_at, 0, 0};
    for (uint32_t i = 0; i < n; i++) {
        int rb;
        uint32_t t = token_of(r[i], E, m, &rb);
        tokens[i] = (uint16_t)t;
        if (rb) bw_put_long(&raw, r[i] & (((uint64_t)1 << rb) - 1), rb);
    }
    bw_flush(&raw);
    size_t raw_len = raw.pos - raw_at;
    gw_codec_put_uvarint(out, &pos, raw_len);
    memmove(out + pos, out + raw_at, raw_len);
    pos += raw_len;

    /* Tokens in reverse: the decoder then reads states and words front to back. */
    uint32_t x[4] = {RANS_L, RANS_L, RANS_L, RANS_L};
    uint16_t *wp = words + n;   /* at most one word per token */
    /* x / f through a double reciprocal: the product is within 2^-20 of x / f, so the
     * truncated quotient is exact except when x is a multiple of f, which the remainder
     * check corrects. Pipelines where an integer divide would not. */
    double inv[MAX_TOKENS];
    for (int t = 0; t < nt; t++) inv[t] = freq[t] ? 1.0 / freq[t] : 0.0;
#define RANS_PUT(state, i)                                                           \
    do {                                                                             \
        uint32_t t_ = tokens[i], f_ = freq[t_];                                      \
        if ((uint64_t)(state) >= ((uint64_t)f_ << (32 - P))) { *--wp = (uint16_t)(state); (state) >>= 16; } \
        uint32_t q_ = (uint32_t)((double)(state) * inv[t_]);                          \
        uint32_t r_ = (state) - q_ * f_;                                             \
        uint32_t fix_ = r_ >= f_;                                                    \
        q_ += fix_;                                                                  \
        r_ -= fix_ ? f_ : 0;                                                         \
        (state) = (q_ << P) + r_ + cum[t_];                                          \
    } while (0)
    uint32_t i = n;
    while (i % (uint32_t)K) { i--; RANS_PUT(x[i % (uint32_t)K], i); }
    if (K == 4) {
        uint32_t x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];
        for (; i; i -= 4) { RANS_PUT(x3, i - 1); RANS_PUT(x2, i - 2); RANS_PUT(x1, i - 3); RANS_PUT(x0, i - 4); }
        x[0] = x0; x[1] = x1; x[2] = x2; x[3] = x3;
    } else if (K == 2) {
        uint32_t x0 = x[0], x1 = x[1];
        for (; i; i -= 2) { RANS_PUT(x1, i - 1); RANS_PUT(x0, i - 2); }
        x[0] = x0; x[1] = x1;
    } else {
        for (; i; i--) RANS_PUT(x[0], i - 1);
    }
#undef RANS_PUT
    for (int k = 0; k < K; k++)
        for (int b = 0; b < 4; b++) out[pos++] = (uint8_t)(x[k] >> (8 * b));
    size_t nwords = (size_t)(words + n - wp);
    gw_codec_put_uvarint(out, &pos, nwords);
    for (size_t i = 0; i < nwords; i++) { out[pos++] = (uint8_t)wp[i]; out[pos++] = (uint8_t)(wp[i] >> 8); }
    return pos;
}

/* One decode table slot: the token, its frequency, and the slot's offset in its range. */
typedef struct { uint16_t sym, freq; uint32_t bias; } slot_entry;

static void release(slot_entry *table, slot_entry *scratch) {
    if (table != scratch) free(table);
}

static inline uint32_t load16le(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#else
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
#endif
}

/* Raw low bits for the tokens, with the reader's state in locals so it stays in registers
 * beside the running sums. It refills every `per` residuals (per * widest raw bits <= 56), a
 * periodic branch the CPU predicts, instead of testing the bit count before every read. Bytes
 * past `end` read as zero and count as overrun; the caller's bit count check rejects them. */
#define RAW_READER(p_, end_) const uint8_t *rp_ = (p_), *rend_ = (end_);                \
    uint64_t racc_ = 0, rover_ = 0;                                                    \
    int rcnt_ = 0, rleft_ = 0
#define RAW_REFILL()                                                                   \
    do {                                                                               \
        if (rend_ - rp_ >= 8) {                                                        \
            racc_ |= load64le(rp_) << rcnt_;                                           \
            int take_ = (63 - rcnt_) >> 3;                                             \
            rp_ += take_;                                                              \
            rcnt_ += take_ * 8;                                                        \
        } else {                                                                       \
            while (rcnt_ <= 56) {                                                      \
                if (rp_ < rend_) racc_ |= (uint64_t)*rp_++ << rcnt_;                   \
                else rover_++;                                                         \
                rcnt_ += 8;                                                            \
            }                                                                          \
        }                                                                              \
    } while (0)
#define RAW_RESIDUAL(t_, per_, out_)                                                   \
    do {                                                                               \
        if (rleft_ == 0) { RAW_REFILL(); rleft_ = (per_); }                            \
        rleft_--;                                                                      \
        int nb_ = rbits[t_];                                                           \
        (out_) = tbase[t_] + (racc_ & (((uint64_t)1 << nb_) - 1));                     \
        racc_ >>= nb_;                                                                 \
        rcnt_ -= nb_;                                                                  \
    } while (0)
#define RAW_BITS_USED(start_) (((uint64_t)(rp_ - (start_)) + rover_) * 8 - (uint64_t)rcnt_)

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* Residuals from tokens plus raw bits, rebuilt into x[0 .. n + order) for one delta order;
 * returns the raw bits consumed. A function of its own so the running sums and the reader
 * stay in registers (inside the rANS decoder they would spill). */
#define DEFINE_REBUILD_RAW(NAME, FACTOR, ATTR)                                         \
    static NOINLINE ATTR uint64_t NAME(uint64_t *x, uint32_t n, int order, const uint16_t *tok, \
                                  const uint64_t *tbase, const uint8_t *rbits,         \
                                  const uint8_t *raw_p, const uint8_t *raw_end, int per, \
                                  uint64_t base, uint64_t x0, uint64_t d0, uint64_t factor) { \
        RAW_READER(raw_p, raw_end);                                                    \
        (void)factor;                                                                  \
        if (order == 0) {                                                              \
            for (uint32_t j = 0; j < n; j++) {                                         \
                uint64_t r_; RAW_RESIDUAL(tok[j], per, r_);                           \
                x[j] = base + r_ * (FACTOR);                                           \
            }                                                                          \
        } else if (order == 1) {                                                       \
            uint64_t acc = x0;                                                         \
            x[0] = acc;                                                                \
            for (uint32_t j = 0; j < n; j++) {                                         \
                uint64_t r_; RAW_RESIDUAL(tok[j], per, r_);                           \
                acc += gw_codec_unzigzag(r_) * (FACTOR);                               \
                x[j + 1] = acc;                                                        \
            }                                                                          \
        } else {                                                                       \
            uint64_t acc = x0, delta = d0;                                             \
            x[0] = acc;                                                                \
            acc += delta;                                                              \
            x[1] = acc;                                                                \
            for (uint32_t j = 0; j < n; j++) {                                         \
                uint64_t r_; RAW_RESIDUAL(tok[j], per, r_);                           \
                delta += gw_codec_unzigzag(r_) * (FACTOR);                             \
                acc += delta;                                                          \
                x[j + 2] = acc;                                                        \
            }                                                                          \
        }                                                                              \
        return RAW_BITS_USED(raw_p);                                                   \
    }
DEFINE_REBUILD_RAW(rebuild_raw_unit, 1, )
DEFINE_REBUILD_RAW(rebuild_raw_factor, factor, )
typedef uint64_t (*rebuild_raw_fn)(uint64_t *, uint32_t, int, const uint16_t *, const uint64_t *,
                                   const uint8_t *, const uint8_t *, const uint8_t *, int,
                                   uint64_t, uint64_t, uint64_t, uint64_t);
#if defined(__x86_64__) && defined(__GNUC__)
/* With BMI2 (chosen at run time; the build targets baseline x86-64) the variable shifts and
 * the low-bit mask of the raw reader are one instruction each: about a fifth fewer per value. */
DEFINE_REBUILD_RAW(rebuild_raw_unit_bmi2, 1, __attribute__((target("bmi2"))))
DEFINE_REBUILD_RAW(rebuild_raw_factor_bmi2, factor, __attribute__((target("bmi2"))))
static rebuild_raw_fn rebuild_raw_for(uint64_t factor) {
    if (__builtin_cpu_supports("bmi2")) return factor == 1 ? rebuild_raw_unit_bmi2 : rebuild_raw_factor_bmi2;
    return factor == 1 ? rebuild_raw_unit : rebuild_raw_factor;
}
#else
static rebuild_raw_fn rebuild_raw_for(uint64_t factor) {
    return factor == 1 ? rebuild_raw_unit : rebuild_raw_factor;
}
#endif

/* Rebuilds x[0..n) from residuals already stored at x[order..n). */
static void reconstruct(uint64_t *x, uint32_t n, int order, uint64_t base, uint64_t x0, uint64_t d0,
                        uint64_t factor) {
    if (order == 0) {
        for (uint32_t i = 0; i < n; i++) x[i] = base + x[i] * factor;
    } else if (order == 1) {
        uint64_t acc = x0;
        x[0] = acc;
        for (uint32_t i = 1; i < n; i++) { acc += gw_codec_unzigzag(x[i]) * factor; x[i] = acc; }
    } else {
        uint64_t acc = x0, delta = d0;
        x[0] = acc;
        acc += delta;
        x[1] = acc;
        for (uint32_t i = 2; i < n; i++) { delta += gw_codec_unzigzag(x[i]) * factor; acc += delta; x[i] = acc; }
    }
}

/* Decodes rANS residuals and rebuilds the column x[0..total) in the same pass over the tokens. */
static int decode_ans(gw_codec_in *in, uint64_t *x, uint32_t total, int order, uint64_t base,
                      uint64_t x0, uint64_t d0, uint64_t factor) {
    uint32_t n = total - (uint32_t)order;
    uint8_t em, pk;
    if (gw_codec_get_byte(in, &em, "rANS parameters") || gw_codec_get_byte(in, &pk, "rANS parameters"))
        return GW_ETRUNC;
    int E = em & 15, m = em >> 4, P = pk & 15, kk = pk >> 4;
    if (E > MAX_SPLIT || m > MAX_MSB || m > E || P < MIN_PRECISION || P > MAX_PRECISION || kk > 2) {
        in->why = "bad rANS parameters";
        return GW_ECORRUPT;
    }
    int K = 1 << kk, nt = token_count(E, m);
    uint32_t M = 1u << P, freq[MAX_TOKENS], cum[MAX_TOKENS + 1];
    bit_reader br;
    br_init(&br, in->p + in->pos, in->len - in->pos);
    uint32_t last1;
    if (br_gamma(&br, &last1) || last1 > (uint32_t)nt || br_past_end(&br)) {
        in->why = "bad rANS frequency table";
        return GW_ECORRUPT;
    }
    /* Only tokens below T = last1 can occur: every per-token loop below stops there. */
    nt = (int)last1;
    cum[0] = 0;
    for (int t = 0; t < nt; t++) {
        uint32_t f1;
        if (br_gamma(&br, &f1) || br_past_end(&br)) {
            in->why = "bad rANS frequency table";
            return GW_ECORRUPT;
        }
        freq[t] = f1 - 1;
        if (freq[t] > M - cum[t]) { in->why = "rANS frequencies exceed the table"; return GW_ECORRUPT; }
        cum[t + 1] = cum[t] + freq[t];
    }
    if (cum[nt] != M) { in->why = "rANS frequencies do not fill the table"; return GW_ECORRUPT; }
    in->pos += (size_t)((br_bits_used(&br) + 7) / 8);

    uint64_t raw_len;
    int rc = gw_codec_get_uvarint(in, &raw_len, "raw bit length");
    if (rc) return rc;
    if (raw_len > in->len - in->pos) { in->why = "raw bits truncated"; return GW_ETRUNC; }
    const uint8_t *raw_p = in->p + in->pos;
    in->pos += (size_t)raw_len;
    uint32_t st[4] = {0, 0, 0, 0};
    if (in->len - in->pos < (size_t)4 * K) { in->why = "rANS states truncated"; return GW_ETRUNC; }
    for (int k = 0; k < K; k++) {
        const uint8_t *q = in->p + in->pos + 4 * k;
        st[k] = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    }
    in->pos += (size_t)4 * K;
    uint64_t nwords;
    if ((rc = gw_codec_get_uvarint(in, &nwords, "rANS word count"))) return rc;
    if (nwords > (in->len - in->pos) / 2 || nwords > n) { in->why = "rANS words truncated"; return GW_ETRUNC; }
    const uint8_t *wp = in->p + in->pos, *wend = wp + 2 * nwords;
    in->pos += (size_t)(2 * nwords);

    /* One region: the decode table, then the tokens (two bytes each). Small columns (the
     * common block of a thousand points) use the stack: malloc and free would cost a tenth
     * of their decode. */
    enum { SCRATCH_BYTES = 16384 };
    slot_entry scratch[SCRATCH_BYTES / sizeof(slot_entry)];
    size_t need = sizeof(slot_entry) * M + sizeof(uint16_t) * (n + 4);
    slot_entry *table = need <= sizeof scratch ? scratch : malloc(need);
    if (!table) { in->why = "out of memory"; return GW_ENOMEM; }
    uint16_t *tok = (uint16_t *)(table + M);
    for (int t = 0; t < nt; t++)
        for (uint32_t s = cum[t]; s < cum[t + 1]; s++)
            table[s] = (slot_entry){(uint16_t)t, (uint16_t)freq[t], s - cum[t]};

    /* Each step takes at most one word, so while a whole group's words are there the steps run
     * without bounds checks; renormalisation is a select, not a branch. */
    const uint32_t mask = M - 1;
    int starved = 0;
#define RANS_STEP(xk, i)                                                             \
    do {                                                                             \
        const slot_entry *e_ = &table[(xk) & mask];                                  \
        tok[i] = e_->sym;                                                            \
        uint32_t y_ = (uint32_t)e_->freq * ((xk) >> P) + e_->bias;                   \
        uint32_t need_ = y_ < RANS_L;                                                \
        uint32_t w_ = load16le(wp);                                                  \
        (xk) = need_ ? y_ << 16 | w_ : y_;                                           \
        wp += 2 * need_;                                                             \
    } while (0)
#define RANS_STEP_CHECKED(xk, i)                                                     \
    do {                                                                             \
        const slot_entry *e_ = &table[(xk) & mask];                                  \
        tok[i] = e_->sym;                                                            \
        uint32_t y_ = (uint32_t)e_->freq * ((xk) >> P) + e_->bias;                   \
        if (y_ < RANS_L) {                                                           \
            if (wp < wend) { y_ = y_ << 16 | load16le(wp); wp += 2; }                \
            else starved = 1;                                                        \
        }                                                                            \
        (xk) = y_;                                                                   \
    } while (0)
    uint32_t i = 0, s0 = st[0], s1 = st[1], s2 = st[2], s3 = st[3];
    if (K == 4) {
        for (; i + 4 <= n && wend - wp >= 8; i += 4) {
            RANS_STEP(s0, i); RANS_STEP(s1, i + 1); RANS_STEP(s2, i + 2); RANS_STEP(s3, i + 3);
        }
        for (; i + 4 <= n; i += 4) {
            RANS_STEP_CHECKED(s0, i); RANS_STEP_CHECKED(s1, i + 1);
            RANS_STEP_CHECKED(s2, i + 2); RANS_STEP_CHECKED(s3, i + 3);
        }
    } else if (K == 2) {
        for (; i + 2 <= n && wend - wp >= 4; i += 2) { RANS_STEP(s0, i); RANS_STEP(s1, i + 1); }
        for (; i + 2 <= n; i += 2) { RANS_STEP_CHECKED(s0, i); RANS_STEP_CHECKED(s1, i + 1); }
    }
    for (; i < n; i++) {
        switch (i & (uint32_t)(K - 1)) {
        case 0: RANS_STEP_CHECKED(s0, i); break;
        case 1: RANS_STEP_CHECKED(s1, i); break;
        case 2: RANS_STEP_CHECKED(s2, i); break;
        default: RANS_STEP_CHECKED(s3, i); break;
        }
    }
#undef RANS_STEP
#undef RANS_STEP_CHECKED
    uint32_t ends[4] = {s0, s1, s2, s3};
    for (int k = 0; k < K; k++) if (ends[k] != RANS_L) starved = 1;
    if (starved || wp != wend) {
        release(table, scratch);
        in->why = "rANS stream does not decode to its end";
        return GW_ECORRUPT;
    }

    /* Tokens to residuals (adding raw bits where a token has them) and residuals to values,
     * fused per delta order so the column is written once. */
    uint64_t tbase[MAX_TOKENS];
    uint8_t rbits[MAX_TOKENS];
    token_table(E, m, nt, tbase, rbits);
    int has_raw = nt > (1 << E) && cum[1 << E] != M, widest = 0;
    for (int t = 0; t < nt; t++) if (freq[t] && rbits[t] > widest) widest = rbits[t];
    if (!has_raw && raw_len) { release(table, scratch); in->why = "raw bits where no token has any"; return GW_ECORRUPT; }
    /* The reader may look past the raw bits into the rest of the column (never past it) so
     * its refills stay on the fast path; the bit count check below catches any overrun. */
    bit_reader raw;
    br_init(&raw, raw_p, (size_t)(in->p + in->len - raw_p));
    uint64_t raw_total = 0;
#define RECONSTRUCT(NEXT, FACTOR)                                                        \
    do {                                                                             \
        if (order == 0) {                                                            \
            for (uint32_t j = 0; j < n; j++) { uint64_t r_; NEXT(r_); x[j] = base + r_ * (FACTOR); } \
        } else if (order == 1) {                                                     \
            uint64_t acc_ = x0;                                                      \
            x[0] = acc_;                                                             \
            for (uint32_t j = 0; j < n; j++) {                                       \
                uint64_t r_; NEXT(r_);                                              \
                acc_ += gw_codec_unzigzag(r_) * (FACTOR);                              \
                x[j + 1] = acc_;                                                     \
            }                                                                        \
        } else {                                                                     \
            uint64_t acc_ = x0, delta_ = d0;                                         \
            x[0] = acc_;                                                             \
            acc_ += delta_;                                                          \
            x[1] = acc_;                                                             \
            for (uint32_t j = 0; j < n; j++) {                                       \
                uint64_t r_; NEXT(r_);                                              \
                delta_ += gw_codec_unzigzag(r_) * (FACTOR);                            \
                acc_ += delta_;                                                      \
                x[j + 2] = acc_;                                                     \
            }                                                                        \
        }                                                                            \
    } while (0)
    /* Separate instances for factor 1 (sensor data, mostly) let the compiler drop the multiply. */
#define TOKEN_ONLY(out_) ((out_) = tok[j])
    if (!has_raw && factor == 1) {
        RECONSTRUCT(TOKEN_ONLY, 1);
    } else if (!has_raw) {
        RECONSTRUCT(TOKEN_ONLY, factor);
    } else if (widest <= 56) {
        int per = widest == 0 ? 56 : 56 / widest;
        raw_total = rebuild_raw_for(factor)(
            x, n, order, tok, tbase, rbits, raw_p, in->p + in->len, per, base, x0, d0, factor);
    } else {
        for (uint32_t j = 0; j < n; j++) x[order + j] = tbase[tok[j]] + br_get_long(&raw, rbits[tok[j]]);
        raw_total = br_bits_used(&raw);
        reconstruct(x, total, order, base, x0, d0, factor);
    }
#undef TOKEN_ONLY
#undef RECONSTRUCT
    release(table, scratch);
    if (has_raw && (raw_total + 7) / 8 != raw_len) {
        in->why = "raw bits do not match the tokens";
        return GW_ECORRUPT;
    }
    return GW_OK;
}

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
        residual_hist *h = malloc(sizeof *h);
        if (!h) { free(d); return GW_ENOMEM; }
        hist_build(h, d, m);
        ans_plan plan = plan_ans(h, width);
        if (plan.bits / 8.0 < (double)best) {
            size_t cap = (size_t)m * 10 + 4096;
            uint8_t *tmp = malloc(cap + sizeof(uint16_t) * 2 * ((size_t)m + 1));
            if (!tmp) { free(h); free(d); return GW_ENOMEM; }
            uint16_t *tokens = (uint16_t *)(tmp + cap);
            size_t len = encode_ans(d, m, h, plan, tmp, tokens, tokens + m + 1);
            if (len < best) {
                mode = RES_ANS;
                memcpy(o + p, tmp, len);
                p += len;
            }
            free(tmp);
        }
        free(h);
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

    x0 = gw_codec_unzigzag(x0);
    d0 = gw_codec_unzigzag(d0);
    if (mode == RES_ANS) return decode_ans(in, x, n, order, base, x0, d0, factor);
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
    reconstruct(x, n, order, base, x0, d0, factor);
    return GW_OK;
}
