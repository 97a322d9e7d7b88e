/* Float columns of the block codec: decimals as scaled integers, everything bit-exact.
 *
 * Sensor floats are nearly always decimals of fixed resolution (21.5 degC, 48.25 %RH). A value v
 * is "decimal at k digits" when the integer q nearest v * 10^k gives back exactly v as
 * (double)q / 10^k: IEEE division is correctly rounded, so this is the same double a parser
 * makes of the text "q * 10^-k", and the decoder reproduces it bit for bit on any IEEE-754
 * machine. The column then stores k and the integers q (an integer column: deltas, common factor,
 * entropy coding). Values that are not decimal at k (NaN with its payload, infinities, -0.0,
 * 1/3, ...) are exceptions stored as raw bits; when they are many, the whole column falls back
 * to the raw bits mapped to order-preserving integers, which is exact for every value.
 *
 *   scheme 0 (decimal): k byte | exceptions varint | per exception: position gap varint,
 *                       8 raw bytes LE | integer column of q
 *   scheme 1 (ordered): integer column of the order-preserving bit patterns
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"

#define MAX_DIGITS      18                       /* 10^18 is exact in binary64 */
#define MAX_SCALED      ((double)(1ull << 51))   /* |q| below this converts exactly, fast */
#define SAMPLE_POINTS   64                       /* decide early when data is not decimal */

enum { SCHEME_DECIMAL = 0, SCHEME_ORDERED = 1 };

static const double pow10_table[MAX_DIGITS + 1] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
    1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
};

static double as_double(uint64_t bits) { double v; memcpy(&v, &bits, 8); return v; }
static uint64_t as_bits(double v) { uint64_t b; memcpy(&b, &v, 8); return b; }

/* Exceptions at any resolution: NaN, infinities and -0.0 (q = 0 gives +0.0). */
static int always_exception(uint64_t bits) {
    return (bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull || bits == 0x8000000000000000ull;
}

/* 1 and *q when v is decimal at k digits. */
static int decimal_at(double v, int k, int64_t *q) {
    double t = v * pow10_table[k];
    if (!(t < MAX_SCALED && t > -MAX_SCALED)) return 0;
    int64_t r = (int64_t)(t < 0 ? t - 0.5 : t + 0.5);
    if ((double)r / pow10_table[k] != v) return 0;
    *q = r;
    return 1;
}

/* Fewest digits at which v is decimal, searching from a hint; -1 when none up to MAX_DIGITS. */
static int digits_needed(double v, int hint) {
    int64_t q;
    if (decimal_at(v, hint, &q)) {
        while (hint > 0 && decimal_at(v, hint - 1, &q)) hint--;
        return hint;
    }
    for (int k = hint + 1; k <= MAX_DIGITS; k++)
        if (decimal_at(v, k, &q)) return k;
    return -1;
}

/* Digits of a declared resolution (0.01 -> 2), or -1 when it is not a power-of-ten fraction
 * times an integer within MAX_DIGITS. */
static int digits_of_resolution(double res) {
    for (int k = 0; k <= MAX_DIGITS; k++) {
        double t = res * pow10_table[k];
        /* floor, not a cast to int64_t: a resolution up to 1e300 scales far beyond its range */
        double r = floor(t + 0.5);
        if (t >= 1.0 && (t - r < 1e-9 * t && r - t < 1e-9 * t)) return k;
    }
    return -1;
}

/* Digits that leave at most max_exceptions of the values bits[0], bits[stride], ... out, or -1. */
static int detect_digits(const uint64_t *bits, uint32_t n, uint32_t stride, uint32_t max_exceptions) {
    uint32_t at[MAX_DIGITS + 1] = {0}, none = 0, seen = 0;
    int hint = 0;
    for (uint32_t i = 0; i < n; i += stride, seen++) {
        if (seen == SAMPLE_POINTS && none > SAMPLE_POINTS / 2) return -1;
        if (always_exception(bits[i])) continue;
        int k = digits_needed(as_double(bits[i]), hint);
        if (k < 0) {
            if (++none > max_exceptions) return -1;
            continue;
        }
        at[k]++;
        hint = k;
    }
    uint32_t covered = 0;
    for (int k = 0; k <= MAX_DIGITS; k++) {
        covered += at[k];
        if (seen - covered <= max_exceptions) return k;
    }
    return -1;
}

size_t gw_codec_float_bound(uint32_t n) {
    return gw_codec_int_bound(n) + 32 + ((size_t)n / 32 + 2) * 18;
}

static uint64_t ordered(uint64_t b) { return (b >> 63) ? ~b : b | 0x8000000000000000ull; }
static uint64_t unordered(uint64_t u) { return (u >> 63) ? u & 0x7fffffffffffffffull : ~u; }

#if defined(__GNUC__)
typedef double v2d __attribute__((vector_size(16)));
typedef uint64_t v2u __attribute__((vector_size(16)));
typedef int64_t v2i __attribute__((vector_size(16)));
#endif
#define MAGIC_BITS   0x4338000000000000ull   /* 1.5 * 2^52: integers |q| < 2^51 sit in its mantissa */
#define MAGIC_DOUBLE 6755399441055744.0

/* q[i] for every value, two at a time: rounded v * 10^k read out of the mantissa of
 * (v * 10^k + 1.5 * 2^52), accepted when |v * 10^k| < 2^51 and dividing back gives v's exact
 * bits (so NaN, infinities and -0.0 never pass). Returns 0 when every value passed, else a
 * positive number (not a count: the caller then looks at each value). */
static uint32_t scale_all(const uint64_t *bits, uint32_t n, int k, uint64_t *q) {
    const double p = pow10_table[k];
    uint32_t failed = 0, i = 0;
#if defined(__GNUC__)
    /* Only SSE2-level operations: double compares give the masks, and -0.0 (equal to 0.0 as
     * a double) is caught by collecting the sign bits of values that compare equal to zero. */
    const v2d vp = {p, p}, magic = {MAGIC_DOUBLE, MAGIC_DOUBLE}, lim = {MAX_SCALED, MAX_SCALED};
    const v2d zero = {0.0, 0.0};
    const v2u mbits = {MAGIC_BITS, MAGIC_BITS};
    v2i bad = {0, 0};
    v2u negative_zero = {0, 0};
    for (; i + 2 <= n; i += 2) {
        v2d v, r;
        v2u u, orig;
        memcpy(&v, bits + i, 16);
        memcpy(&orig, bits + i, 16);
        v2d t = v * vp;
        r = t + magic;
        memcpy(&u, &r, 16);
        v2d back = (r - magic) / vp;
        v2u qq = u - mbits;
        memcpy(q + i, &qq, 16);
        bad |= (back != v) | ~((t < lim) & (t > -lim));
        negative_zero |= (v2u)(v == zero) & orig;
    }
    failed = (bad[0] != 0) + (bad[1] != 0) + ((negative_zero[0] | negative_zero[1]) != 0);
#endif
    for (; i < n; i++) {
        double v = as_double(bits[i]), t = v * p, r = t + MAGIC_DOUBLE;
        q[i] = as_bits(r) - MAGIC_BITS;
        double at = t < 0 ? -t : t;
        if (!(at < MAX_SCALED) || as_bits((r - MAGIC_DOUBLE) / p) != bits[i]) failed++;
    }
    return failed;
}

/* Scaled integers at k digits into q; exception positions into exc. Returns the exception
 * count, or n + 1 as soon as it passes max_exceptions. */
static uint32_t scale(const uint64_t *bits, uint32_t n, int k, uint64_t *q, uint32_t *exc,
                      uint32_t max_exceptions) {
    if (scale_all(bits, n, k, q) == 0) return 0;   /* the common case: every value decimal */
    uint32_t ne = 0;
    int64_t prev = 0, v;
    int have_prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!always_exception(bits[i]) && decimal_at(as_double(bits[i]), k, &v)) {
            if (!have_prev) {   /* leading exceptions take the first decimal's q */
                for (uint32_t j = 0; j < i; j++) q[j] = (uint64_t)v;
                have_prev = 1;
            }
            q[i] = (uint64_t)v;
            prev = v;
            continue;
        }
        if (ne == max_exceptions) return n + 1;
        exc[ne++] = i;
        q[i] = (uint64_t)prev;
    }
    return ne;
}

int gw_codec_float_encode(const uint64_t *bits, uint32_t n, double resolution, uint8_t *out, size_t *pos) {
    uint32_t max_exceptions = n / 32;
    uint64_t *q = malloc(sizeof(uint64_t) * n + sizeof(uint32_t) * (max_exceptions + 1));
    if (!q) return GW_ENOMEM;
    uint32_t *exc = (uint32_t *)(q + n);
    uint32_t ne = n + 1;
    int k = resolution > 0 ? digits_of_resolution(resolution) : -1;
    if (k >= 0) ne = scale(bits, n, k, q, exc, max_exceptions);
    if (ne > max_exceptions && n > 2 * SAMPLE_POINTS) {
        /* Digits from an even sample, confirmed (or refuted) by scaling every value. */
        uint32_t stride = n / SAMPLE_POINTS;
        k = detect_digits(bits, n, stride, SAMPLE_POINTS / 32);
        if (k >= 0) ne = scale(bits, n, k, q, exc, max_exceptions);
    }
    if (ne > max_exceptions) {
        k = detect_digits(bits, n, 1, max_exceptions);
        if (k >= 0) ne = scale(bits, n, k, q, exc, max_exceptions);
    }
    int rc;
    if (ne <= max_exceptions) {
        out[(*pos)++] = SCHEME_DECIMAL;
        out[(*pos)++] = (uint8_t)k;
        gw_codec_put_uvarint(out, pos, ne);
        uint32_t last = 0;
        for (uint32_t e = 0; e < ne; e++) {
            gw_codec_put_uvarint(out, pos, exc[e] - last);
            last = exc[e] + 1;
            uint64_t b = bits[exc[e]];
            for (int j = 0; j < 8; j++) out[(*pos)++] = (uint8_t)(b >> (8 * j));
        }
        rc = gw_codec_int_encode(q, n, 1, out, pos);
    } else {
        out[(*pos)++] = SCHEME_ORDERED;
        for (uint32_t i = 0; i < n; i++) q[i] = ordered(bits[i]);
        rc = gw_codec_int_encode(q, n, 0, out, pos);
    }
    free(q);
    return rc;
}

/* bits[i] = (double)(int64_t)bits[i] / scale. The encoder keeps |q| < 2^51, where adding q to
 * the bit pattern of 1.5 * 2^52 and subtracting 1.5 * 2^52 converts exactly, and that lets
 * the conversion and the (correctly rounded) division run two lanes at a time. Integers
 * outside that range (only in a hostile block) give wrong values, never undefined behaviour. */

static void scaled_to_doubles_2(uint64_t *bits, uint32_t n, double scale_by) {
    uint32_t i = 0;
#if defined(__GNUC__)
    const v2u magic = {MAGIC_BITS, MAGIC_BITS};
    const v2d offset = {MAGIC_DOUBLE, MAGIC_DOUBLE}, divisor = {scale_by, scale_by};
    for (; i + 2 <= n; i += 2) {
        v2u u;
        memcpy(&u, bits + i, sizeof u);
        u += magic;
        v2d d;
        memcpy(&d, &u, sizeof d);
        d = (d - offset) / divisor;
        memcpy(bits + i, &d, sizeof d);
    }
#endif
    for (; i < n; i++) bits[i] = as_bits((as_double(bits[i] + MAGIC_BITS) - MAGIC_DOUBLE) / scale_by);
}

/* Without the division: y = q * RN(1/d), then twice y += (q - y * d) * RN(1/d) with fused
 * multiply-adds (the residual q - y * d is exact in an FMA). The first correction leaves y
 * within half an ulp and a hair of q / d, so faithful, and from a faithful y Markstein's
 * theorem (r = RN(1/d), y' = RN(y + r * RN(q - d * y)) is RN(q / d); Handbook of
 * Floating-Point Arithmetic, "Markstein's theorem") gives the correctly rounded quotient:
 * the same bits as the division for every |q| < 2^51 and 10^k, k <= 18, neither near
 * underflow nor overflow. A division costs 4 to 20 cycles a value (on the Pi's Cortex-A72 it
 * is not pipelined), the five multiply-adds pipeline. tests/codec/test_roundtrip.py holds the
 * two to the same bits. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
#define HAVE_FMA_QUOTIENT 1
#if defined(__x86_64__)
#include <immintrin.h>
#define FMA_TARGET __attribute__((target("avx2,fma")))
#else
#include <arm_neon.h>
#define FMA_TARGET
#endif

FMA_TARGET static inline double quotient_fma(double q, double d, double r) {
    double y = q * r;
    y = __builtin_fma(__builtin_fma(-y, d, q), r, y);
    return __builtin_fma(__builtin_fma(-y, d, q), r, y);
}

FMA_TARGET static void scaled_to_doubles_fma(uint64_t *bits, uint32_t n, double d) {
    const double r = 1.0 / d;
    uint32_t i = 0;
#if defined(__x86_64__)
    const __m256i magic = _mm256_set1_epi64x((long long)MAGIC_BITS);
    const __m256d offset = _mm256_set1_pd(MAGIC_DOUBLE), vd = _mm256_set1_pd(d), vr = _mm256_set1_pd(r);
    for (; i + 4 <= n; i += 4) {
        __m256i u = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(bits + i)), magic);
        __m256d q = _mm256_sub_pd(_mm256_castsi256_pd(u), offset);
        __m256d y = _mm256_mul_pd(q, vr);
        y = _mm256_fmadd_pd(_mm256_fnmadd_pd(y, vd, q), vr, y);
        y = _mm256_fmadd_pd(_mm256_fnmadd_pd(y, vd, q), vr, y);
        _mm256_storeu_si256((__m256i *)(bits + i), _mm256_castpd_si256(y));
    }
#else
    const uint64x2_t magic = vdupq_n_u64(MAGIC_BITS);
    const float64x2_t offset = vdupq_n_f64(MAGIC_DOUBLE), vd = vdupq_n_f64(d), vr = vdupq_n_f64(r);
    for (; i + 2 <= n; i += 2) {
        uint64x2_t u = vaddq_u64(vld1q_u64(bits + i), magic);
        float64x2_t q = vsubq_f64(vreinterpretq_f64_u64(u), offset);
        float64x2_t y = vmulq_f64(q, vr);
        y = vfmaq_f64(y, vfmsq_f64(q, y, vd), vr);
        y = vfmaq_f64(y, vfmsq_f64(q, y, vd), vr);
        vst1q_u64(bits + i, vreinterpretq_u64_f64(y));
    }
#endif
    for (; i < n; i++) bits[i] = as_bits(quotient_fma(as_double(bits[i] + MAGIC_BITS) - MAGIC_DOUBLE, d, r));
}

static int have_fma(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 1;   /* every ARMv8-A has FMA */
#endif
}
#endif

static void scaled_to_doubles(uint64_t *bits, uint32_t n, double scale_by) {
    if (scale_by == 1.0) {   /* whole numbers: the conversion alone, two lanes at a time */
        uint32_t i = 0;
#if defined(__GNUC__)
        const v2u magic = {MAGIC_BITS, MAGIC_BITS};
        const v2d offset = {MAGIC_DOUBLE, MAGIC_DOUBLE};
        for (; i + 2 <= n; i += 2) {
            v2u u;
            v2d d;
            memcpy(&u, bits + i, sizeof u);
            u += magic;
            memcpy(&d, &u, sizeof d);
            d -= offset;
            memcpy(bits + i, &d, sizeof d);
        }
#endif
        for (; i < n; i++) bits[i] = as_bits(as_double(bits[i] + MAGIC_BITS) - MAGIC_DOUBLE);
        return;
    }
#if defined(HAVE_FMA_QUOTIENT)
    if (have_fma()) { scaled_to_doubles_fma(bits, n, scale_by); return; }
#endif
    scaled_to_doubles_2(bits, n, scale_by);
}

int gw_codec_float_decode(gw_codec_in *in, uint64_t *bits, uint32_t n) {
    uint8_t scheme, k;
    int rc;
    if ((rc = gw_codec_get_byte(in, &scheme, "float column scheme"))) return rc;
    if (scheme == SCHEME_ORDERED) {
        if ((rc = gw_codec_int_decode(in, bits, n))) return rc;
        for (uint32_t i = 0; i < n; i++) bits[i] = unordered(bits[i]);
        return GW_OK;
    }
    if (scheme != SCHEME_DECIMAL) { in->why = "unknown float column scheme"; return GW_ECORRUPT; }
    if ((rc = gw_codec_get_byte(in, &k, "decimal digits"))) return rc;
    if (k > MAX_DIGITS) { in->why = "decimal digits above 18"; return GW_ECORRUPT; }
    uint64_t ne;
    if ((rc = gw_codec_get_uvarint(in, &ne, "exception count"))) return rc;
    if (ne > n) { in->why = "more exceptions than points"; return GW_ECORRUPT; }
    /* Exceptions come before the integers; remember where they are and patch afterwards. */
    size_t exc_at = in->pos;
    uint64_t position = 0;
    for (uint64_t e = 0; e < ne; e++) {
        uint64_t gap;
        if ((rc = gw_codec_get_uvarint(in, &gap, "exception position"))) return rc;
        if (gap >= n - position) { in->why = "exception position out of range"; return GW_ECORRUPT; }
        position += gap + 1;
        if (in->len - in->pos < 8) { in->why = "exception value truncated"; return GW_ETRUNC; }
        in->pos += 8;
    }
    if ((rc = gw_codec_int_decode(in, bits, n))) return rc;
    scaled_to_doubles(bits, n, pow10_table[k]);
    gw_codec_in ex = {in->p, exc_at, in->len, 0};
    position = 0;
    for (uint64_t e = 0; e < ne; e++) {
        uint64_t gap, b = 0;
        gw_codec_get_uvarint(&ex, &gap, "exception position");   /* validated above */
        position += gap;
        for (int j = 0; j < 8; j++) b |= (uint64_t)ex.p[ex.pos + j] << (8 * j);
        ex.pos += 8;
        bits[position++] = b;
    }
    return GW_OK;
}
