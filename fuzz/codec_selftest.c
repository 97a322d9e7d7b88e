/* Self-test of the codec's C code for sanitizer builds (-fsanitize=address,undefined).
 *
 * Checks CRC32C against its bit-by-bit definition (every path: instructions or tables), then
 * round-trips generated series of every type and edge value, then feeds the decoder every
 * truncation, every single-byte corruption, and (through the fuzz target's checksum-fixing
 * mode) hostile bodies derived from each block. Any out-of-bounds access or undefined
 * behaviour aborts under the sanitizers; a wrong round trip aborts here. Prints a summary.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_aggregate.h"
#include "gw_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {   /* xorshift64*: deterministic across runs */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned long blocks_checked, corruptions_fed;

static void feed_corruptions(const uint8_t *block, size_t len) {
    uint8_t *buf = malloc(len + 1);
    if (!buf) abort();
    for (size_t cut = 0; cut < len; cut += 1 + len / 64) {   /* truncations, as-is */
        buf[0] = 0;
        memcpy(buf + 1, block, cut);
        LLVMFuzzerTestOneInput(buf, cut + 1);
        corruptions_fed++;
    }
    for (size_t at = 0; at + 4 < len; at += 1 + len / 128) {   /* hostile bodies, CRC fixed */
        buf[0] = 1;
        memcpy(buf + 1, block, len - 4);
        buf[1 + at] ^= (uint8_t)(1u << (rnd() % 8)) | (uint8_t)(rnd() & 0xff);
        LLVMFuzzerTestOneInput(buf, len - 4 + 1);
        buf[0] = 1;   /* and the same body cut short */
        LLVMFuzzerTestOneInput(buf, (at + 1) < (len - 4) ? at + 1 : len - 4);
        corruptions_fed += 2;
    }
    free(buf);
}

static void check(uint8_t type, uint32_t n, const int64_t *ts, const uint64_t *v, double res) {
    size_t cap = gw_block_bound(type, n, 0);
    uint8_t *out = malloc(cap);
    int64_t *ts2 = malloc(sizeof(int64_t) * n);
    uint64_t *v2 = malloc(sizeof(uint64_t) * n);
    if (!out || !ts2 || !v2) abort();
    int64_t len = gw_block_encode(type, n, ts, v, NULL, NULL, res, out, cap);
    if (len <= 0) { fprintf(stderr, "encode failed: %lld\n", (long long)len); abort(); }
    int rc = gw_block_decode(out, (size_t)len, ts2, v2, NULL, NULL, 0);
    if (rc != GW_OK) { fprintf(stderr, "decode failed: %s\n", gw_block_last_error()); abort(); }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t want = type == GW_BOOL ? (v[i] != 0) : v[i];
        if (ts2[i] != ts[i] || v2[i] != want) {
            fprintf(stderr, "mismatch type %d n %u at %u\n", type, n, i);
            abort();
        }
    }
    blocks_checked++;
    feed_corruptions(out, (size_t)len);
    free(out);
    free(ts2);
    free(v2);
}

static uint64_t bits_of(double d) { uint64_t b; memcpy(&b, &d, 8); return b; }

static void check_strings(uint32_t n) {
    static const char *words[] = {"", "ok", "fault", "a longer status text", "\xff\xfe"};
    uint32_t *off = malloc(sizeof(uint32_t) * (n + 1));
    char *s = malloc((size_t)n * 24 + 1);
    int64_t *ts = malloc(sizeof(int64_t) * n);
    if (!off || !s || !ts) abort();
    off[0] = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *w = words[rnd() % 5];
        size_t l = strlen(w);
        memcpy(s + off[i], w, l);
        off[i + 1] = off[i] + (uint32_t)l;
        ts[i] = (int64_t)(rnd() % 1000000);
    }
    size_t cap = gw_block_bound(GW_STRING, n, off[n]);
    uint8_t *out = malloc(cap);
    uint32_t *off2 = malloc(sizeof(uint32_t) * (n + 1));
    char *s2 = malloc(off[n] + 1);
    int64_t *ts2 = malloc(sizeof(int64_t) * n);
    if (!out || !off2 || !s2 || !ts2) abort();
    int64_t len = gw_block_encode(GW_STRING, n, ts, NULL, s, off, 0.0, out, cap);
    if (len <= 0) abort();
    if (gw_block_decode(out, (size_t)len, ts2, NULL, s2, off2, off[n]) != GW_OK) abort();
    if (memcmp(off, off2, sizeof(uint32_t) * (n + 1)) || memcmp(s, s2, off[n]) ||
        memcmp(ts, ts2, sizeof(int64_t) * n)) abort();
    blocks_checked++;
    feed_corruptions(out, (size_t)len);
    free(off); free(s); free(ts); free(out); free(off2); free(s2); free(ts2);
}

/* Window aggregation over sorted and shuffled columns: every point lands in exactly one window,
 * windows ascend, each window's min <= mean <= max, the selected points are in range and hold
 * the min/max, and the quantiles of the same windows lie between min and max. */
static void check_aggregate(uint32_t n) {
    int64_t *ts = malloc(sizeof(int64_t) * n), *start = malloc(sizeof(int64_t) * n);
    int64_t *isum = malloc(sizeof(int64_t) * n);
    uint64_t *v = malloc(sizeof(uint64_t) * n), *count = malloc(sizeof(uint64_t) * n);
    double *cols = malloc(sizeof(double) * n * 8), *q = malloc(sizeof(double) * n);
    uint32_t *at = malloc(sizeof(uint32_t) * n * 5);
    if (!ts || !start || !isum || !v || !count || !cols || !q || !at) abort();
    for (int shuffled = 0; shuffled < 2; shuffled++) {
        for (uint32_t i = 0; i < n; i++) {
            ts[i] = shuffled ? (int64_t)(rnd() % 100000) - 50000 : (int64_t)i * 7 - 3000;
            v[i] = bits_of(i % 13 == 0 ? NAN : (double)(rnd() % 1000) / 10.0);
        }
        gw_windows out = {start, count, cols, isum, cols + n, cols + 2 * (size_t)n,
                          cols + 3 * (size_t)n, cols + 4 * (size_t)n, cols + 5 * (size_t)n,
                          cols + 6 * (size_t)n, at, at + n, at + 2 * (size_t)n, at + 3 * (size_t)n};
        int64_t w = gw_aggregate_windows(GW_FLOAT, ts, v, n, 100, 30, &out, n);
        if (w < 0) abort();
        int64_t wq = gw_window_quantile(GW_FLOAT, ts, v, n, 100, 30, 0.5, (int)(n & 1), q,
                                        at + 4 * (size_t)n, n);
        if (wq != w) abort();
        uint64_t total = 0, nan_count = 0;
        for (uint32_t i = 0; i < n; i++) nan_count += i % 13 == 0;
        for (int64_t k = 0; k < w; k++) {
            total += count[k];
            if (k && start[k] <= start[k - 1]) abort();
            if ((start[k] - 30) % 100 != 0) abort();
            double mn = out.min[k], mean = out.mean[k], mx = out.max[k];
            if (!(mn <= mean + 1e-9 && mean <= mx + 1e-9)) abort();
            if (!(mn <= q[k] && q[k] <= mx) || out.m2[k] < -1e-9) abort();
            if (out.min_at[k] >= n || out.max_at[k] >= n || out.first_at[k] >= n ||
                out.last_at[k] >= n) abort();
            if (bits_of(mn) != v[out.min_at[k]] || bits_of(mx) != v[out.max_at[k]]) abort();
        }
        if (total + nan_count != n) abort();
    }
    free(ts); free(start); free(isum); free(v); free(count); free(cols); free(q); free(at);
}

/* CRC32C bit by bit, the definition (reflected 0x82F63B78), to hold gw_crc32c's path of
 * this build (the SSE4.2 or ARMv8 CRC32 instructions, or the tables) to. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t len) {
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
    }
    return ~crc;
}

static void check_crc(void) {
    if (gw_crc32c(0, "123456789", 9) != 0xe3069283u) { fprintf(stderr, "CRC32C check value\n"); abort(); }
    uint8_t buf[1100];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)rnd();
    for (size_t start = 0; start < 9; start++)            /* every alignment */
        for (size_t len = 0; start + len <= sizeof buf; len += 1 + len / 8) {
            uint32_t one = gw_crc32c(0, buf + start, len);
            size_t half = len / 3;                       /* and continued from a prefix */
            uint32_t two = gw_crc32c(gw_crc32c(0, buf + start, half), buf + start + half, len - half);
            if (one != crc32c_bitwise(buf + start, len) || two != one) {
                fprintf(stderr, "CRC32C differs at start %zu, length %zu\n", start, len);
                abort();
            }
        }
}

int main(int argc, char **argv) {
    static const uint32_t sizes[] = {1, 2, 3, 7, 64, 129, 1000, 5000};
    check_crc();
    if (argc > 1 && strcmp(argv[1], "--crc") == 0) {   /* the checksum alone */
        printf("codec self-test: CRC32C agrees with its definition\n");
        return 0;
    }
    const double edge[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 5e-324, 2.2250738585072014e-308,
                           1.7976931348623157e308, 0.1, -21.5, 1e15, 123456.789};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        uint32_t n = sizes[si];
        int64_t *ts = malloc(sizeof(int64_t) * n);
        uint64_t *v = malloc(sizeof(uint64_t) * n);
        if (!ts || !v) abort();
        for (int shape = 0; shape < 6; shape++) {
            int64_t t = 1464739200000000000ll;
            for (uint32_t i = 0; i < n; i++) {
                switch (shape) {
                case 0: ts[i] = t + (int64_t)i * 60000000000ll; break;                 /* regular */
                case 1: ts[i] = t + (int64_t)i * 15000000 + (int64_t)(rnd() % 2000000); break; /* jitter */
                case 2: ts[i] = (int64_t)rnd(); break;                                 /* any order */
                case 3: ts[i] = i % 2 ? INT64_MAX - (int64_t)i : INT64_MIN + (int64_t)i; break;
                case 4: ts[i] = t; break;                                              /* all equal */
                default: ts[i] = t + (int64_t)(i / 3) * 1000 + (i % 17 == 0 ? 555 : 0); break;
                }
            }
            for (uint32_t i = 0; i < n; i++) v[i] = bits_of(round((20.0 + sin(i / 50.0) * 5) * 10) / 10);
            check(GW_FLOAT, n, ts, v, 0.0);
            check(GW_FLOAT, n, ts, v, 0.1);
            for (uint32_t i = 0; i < n; i++) v[i] = bits_of(edge[rnd() % 12]);
            check(GW_FLOAT, n, ts, v, 0.0);
            /* decimals at every digit count, |q| up to 2^51: the decoder's q / 10^k (without
             * a division where the CPU has FMA) must give the division's bits */
            for (int k = 0, once = shape == 0; once && k <= 18; k++) {
                double scale = pow(10.0, k);
                for (uint32_t i = 0; i < n; i++) {
                    uint64_t r = rnd();   /* one draw: the order of two in one expression is open */
                    int64_t q = (int64_t)(r >> (13 + r % 50));
                    v[i] = bits_of((double)(r & 1 ? -q : q) / scale);
                }
                check(GW_FLOAT, n, ts, v, 1.0 / scale);
            }
            for (uint32_t i = 0; i < n; i++) v[i] = rnd();
            check(GW_FLOAT, n, ts, v, 0.0);
            check(GW_INT, n, ts, v, 0.0);
            check(GW_UINT, n, ts, v, 0.0);
            for (uint32_t i = 0; i < n; i++) v[i] = (uint64_t)(1000 + (int64_t)i * 7);   /* counter */
            check(GW_INT, n, ts, v, 0.0);
            for (uint32_t i = 0; i < n; i++) v[i] = rnd() % 100 < 97 ? 42 : rnd() % 5;   /* near constant */
            check(GW_UINT, n, ts, v, 0.0);
            for (uint32_t i = 0; i < n; i++) v[i] = (i / 10) % 2;
            check(GW_BOOL, n, ts, v, 0.0);
            for (uint32_t i = 0; i < n; i++) v[i] = rnd() & 1;
            check(GW_BOOL, n, ts, v, 0.0);
        }
        check_strings(n);
        check_aggregate(n);
        free(ts);
        free(v);
    }
    printf("codec self-test: %lu blocks round-tripped, %lu corrupt inputs rejected or decoded safely\n",
           blocks_checked, corruptions_fed);
    return 0;
}
