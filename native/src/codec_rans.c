/* rANS coding of an integer column's residuals (the column itself: codec_int.c).
 *
 * Each residual r becomes a token (r itself when r < 2^E, otherwise its bit length and its m
 * bits below the top bit) plus the remaining low bits stored raw. Tokens are coded with a
 * static rANS model (precision P bits, K = 1, 2 or 4 interleaved 32-bit states, 16-bit
 * renormalisation) whose frequency table travels in the column. E, m, P and K are chosen per
 * column from its histogram: small blocks get small tables, skewed data near-zero cost. The
 * layout is in encode_ans() below and docs/format/block.md.
 */
#include <stdlib.h>
#include <string.h>

#include "codec_rans.h"

#define RANS_L          (1u << 16)   /* lower bound of a state; 16-bit words renormalise it */
#define MAX_PRECISION   14           /* M <= 16384 keeps the decode table at 128 KiB */
#define MIN_PRECISION   4
#define MAX_SPLIT       8            /* E: residuals below 2^E are tokens of their own */
#define MAX_MSB         2            /* m: bits below the top bit that go into the token */
#define MAX_TOKENS      ((1 << MAX_SPLIT) + (64 - MAX_SPLIT) * (1 << MAX_MSB))

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
/* ---------------------------------------------------------------- encoding */

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

/* ---------------------------------------------------------------- planned coding */

struct gw_codec_rans { residual_hist hist; ans_plan plan; };

gw_codec_rans *gw_codec_rans_plan(const uint64_t *r, uint32_t n, int max_bits) {
    gw_codec_rans *c = malloc(sizeof *c);
    if (!c) return NULL;
    hist_build(&c->hist, r, n);
    c->plan = plan_ans(&c->hist, max_bits);
    return c;
}

double gw_codec_rans_estimate(const gw_codec_rans *c) { return c->plan.bits / 8.0; }

int gw_codec_rans_encode(const gw_codec_rans *c, const uint64_t *r, uint32_t n,
                         uint8_t *out, size_t limit, size_t *len) {
    /* The coding is written aside first: it may come out longer than limit, the room the
     * caller has. */
    size_t cap = (size_t)n * 10 + 4096;
    uint8_t *tmp = malloc(cap + sizeof(uint16_t) * 2 * ((size_t)n + 1));
    if (!tmp) return GW_ENOMEM;
    uint16_t *tokens = (uint16_t *)(tmp + cap);
    size_t written = encode_ans(r, n, &c->hist, c->plan, tmp, tokens, tokens + n + 1);
    *len = 0;
    if (written < limit) {
        memcpy(out, tmp, written);
        *len = written;
    }
    free(tmp);
    return GW_OK;
}

void gw_codec_rans_free(gw_codec_rans *c) { free(c); }

/* ---------------------------------------------------------------- decoding */

/* One decode table slot: the token, its frequency, and the slot's offset in its range. */
typedef struct { uint16_t sym, freq; uint32_t bias; } slot_entry;

static void release(slot_entry *table, slot_entry *scratch) {
    if (table != scratch) free(table);
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
#define RAW_NEXT(out_) RAW_RESIDUAL(tok[j], per, out_)
#define DEFINE_REBUILD_RAW(NAME, FACTOR, ATTR)                                         \
    static NOINLINE ATTR uint64_t NAME(uint64_t *x, uint32_t n, int order, const uint16_t *tok, \
                                  const uint64_t *tbase, const uint8_t *rbits,         \
                                  const uint8_t *raw_p, const uint8_t *raw_end, int per, \
                                  uint64_t base, uint64_t x0, uint64_t d0, uint64_t factor) { \
        RAW_READER(raw_p, raw_end);                                                    \
        (void)factor;                                                                  \
        GW_CODEC_DELTA_REBUILD(RAW_NEXT, FACTOR);                                      \
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

/* Residuals that are tokens alone, rebuilt into x[0 .. n + order); a function of its own for
 * the same reason (separate instances for factor 1, sensor data mostly, drop the multiply). */
#define TOKEN_ONLY(out_) ((out_) = tok[j])
static NOINLINE void rebuild_tokens(uint64_t *x, uint32_t n, int order, const uint16_t *tok,
                                    uint64_t base, uint64_t x0, uint64_t d0, uint64_t factor) {
    if (factor == 1) GW_CODEC_DELTA_REBUILD(TOKEN_ONLY, 1);
    else GW_CODEC_DELTA_REBUILD(TOKEN_ONLY, factor);
}
#undef TOKEN_ONLY

int gw_codec_rans_decode(gw_codec_in *in, uint64_t *x, uint32_t total, gw_codec_delta col) {
    int order = col.order;
    uint64_t base = col.base, x0 = col.x0, d0 = col.d0, factor = col.factor;
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
     * without bounds checks; renormalisation is a select, not a branch. Within a group the
     * states first step on their own, then each takes its word at the place the needs of the
     * states before it give (a prefix sum): no state waits for another's table lookup and
     * multiply to know where its word is, as one shared read pointer would have it wait. */
    const uint32_t mask = M - 1;
    int starved = 0;
#define RANS_Y(xk, i, y_)                                                            \
    do {                                                                             \
        const slot_entry *e_ = &table[(xk) & mask];                                  \
        tok[i] = e_->sym;                                                            \
        (y_) = (uint32_t)e_->freq * ((xk) >> P) + e_->bias;                          \
    } while (0)
/* Arithmetic, not a select the compiler may turn back into a branch it cannot predict. */
#define RANS_RENORM(xk, y_, at_)                                                     \
    do {                                                                             \
        uint32_t need_ = (y_) < RANS_L;                                              \
        (xk) = (y_) << (16 * need_) | (load16le(at_) & (0u - need_));                \
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
            uint32_t y0, y1, y2, y3;
            RANS_Y(s0, i, y0); RANS_Y(s1, i + 1, y1); RANS_Y(s2, i + 2, y2); RANS_Y(s3, i + 3, y3);
            const uint8_t *w1 = wp + 2 * (y0 < RANS_L), *w2 = w1 + 2 * (y1 < RANS_L);
            const uint8_t *w3 = w2 + 2 * (y2 < RANS_L);
            RANS_RENORM(s0, y0, wp); RANS_RENORM(s1, y1, w1);
            RANS_RENORM(s2, y2, w2); RANS_RENORM(s3, y3, w3);
            wp = w3 + 2 * (y3 < RANS_L);
        }
        for (; i + 4 <= n; i += 4) {
            RANS_STEP_CHECKED(s0, i); RANS_STEP_CHECKED(s1, i + 1);
            RANS_STEP_CHECKED(s2, i + 2); RANS_STEP_CHECKED(s3, i + 3);
        }
    } else if (K == 2) {
        for (; i + 2 <= n && wend - wp >= 4; i += 2) {
            uint32_t y0, y1;
            RANS_Y(s0, i, y0); RANS_Y(s1, i + 1, y1);
            const uint8_t *w1 = wp + 2 * (y0 < RANS_L);
            RANS_RENORM(s0, y0, wp); RANS_RENORM(s1, y1, w1);
            wp = w1 + 2 * (y1 < RANS_L);
        }
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
#undef RANS_Y
#undef RANS_RENORM
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
    /* Separate instances for factor 1 (sensor data, mostly) let the compiler drop the multiply. */
    if (!has_raw) {
        rebuild_tokens(x, n, order, tok, base, x0, d0, factor);
    } else if (widest <= 56) {
        int per = widest == 0 ? 56 : 56 / widest;
        raw_total = rebuild_raw_for(factor)(
            x, n, order, tok, tbase, rbits, raw_p, in->p + in->len, per, base, x0, d0, factor);
    } else {
        for (uint32_t j = 0; j < n; j++) x[order + j] = tbase[tok[j]] + br_get_long(&raw, rbits[tok[j]]);
        raw_total = br_bits_used(&raw);
        gw_codec_delta_rebuild(x, total, col);
    }
    release(table, scratch);
    if (has_raw && (raw_total + 7) / 8 != raw_len) {
        in->why = "raw bits do not match the tokens";
        return GW_ECORRUPT;
    }
    return GW_OK;
}
