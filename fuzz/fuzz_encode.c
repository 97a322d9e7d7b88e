/* Fuzz target for the encoders (libFuzzer: clang -fsanitize=fuzzer,address,undefined): what
 * the gateway writes from values it was given, where the decoders' fuzzers never look.
 *
 * The first byte picks the encoder and the type; the rest is the input:
 *   even: a block of any type, strings included, with a declared float resolution taken from
 *         8 input bytes (any double: NaN, infinities, negatives, 1e300, subnormals), then
 *         points of 16 bytes (timestamp, value word); encoded, decoded, compared bit for bit;
 *   odd:  line protocol lines of a series ("key=value time"): the key is the input up to the
 *         first 0x00 (written only when gw_lp_check_series_key accepts it), then points of 16
 *         bytes; the lines are parsed back and every value must come back with the same bits
 *         (NaN and infinities are left out and counted).
 * Built by tests/codec/test_fuzz.py; run longer by hand (see fuzz/README.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gw_batch.h"
#include "gw_codec.h"
#include "gw_lineproto.h"

/* String lengths come from the value words, kept short so that a block holds many. */
#define MAX_FUZZ_STRING 23

static void block_round_trip(uint8_t type, const uint8_t *data, size_t size) {
    if (size < 8) return;
    double resolution;
    memcpy(&resolution, data, sizeof resolution);
    data += 8;
    size -= 8;
    uint32_t n = (uint32_t)(size / 16);
    if (n == 0) return;
    int64_t *ts = malloc(sizeof(int64_t) * n), *ts2 = malloc(sizeof(int64_t) * n);
    uint64_t *v = malloc(sizeof(uint64_t) * n), *v2 = malloc(sizeof(uint64_t) * n);
    uint32_t *offsets = malloc(sizeof(uint32_t) * ((size_t)n + 1));
    uint32_t *offsets2 = malloc(sizeof(uint32_t) * ((size_t)n + 1));
    if (!ts || !ts2 || !v || !v2 || !offsets || !offsets2) abort();
    memcpy(ts, data, sizeof(int64_t) * n);
    memcpy(v, data + 8 * (size_t)n, sizeof(uint64_t) * n);
    if (type == GW_BOOL)
        for (uint32_t i = 0; i < n; i++) v[i] &= 1;
    offsets[0] = 0;
    for (uint32_t i = 0; i < n; i++) offsets[i + 1] = offsets[i] + (uint32_t)(v[i] % (MAX_FUZZ_STRING + 1));
    size_t string_bytes = type == GW_STRING ? offsets[n] : 0;
    char *strings = malloc(string_bytes + 1), *strings2 = malloc(string_bytes + 1);
    if (!strings || !strings2) abort();
    for (size_t i = 0; i < string_bytes; i++) strings[i] = (char)data[i % size];

    size_t cap = gw_block_bound(type, n, string_bytes);
    uint8_t *out = malloc(cap ? cap : 1);
    if (!out) abort();
    int64_t len = gw_block_encode(type, n, ts, v, strings, offsets, resolution, out, cap);
    int bad_resolution = !(resolution >= 0.0) || resolution > 1e300;
    if (bad_resolution) {
        if (len != GW_EINVAL) abort();
    } else {
        if (len <= 0 || (size_t)len > cap) abort();
        if (gw_block_decode(out, (size_t)len, ts2, v2, strings2, offsets2, string_bytes) != GW_OK)
            abort();
        if (memcmp(ts, ts2, sizeof(int64_t) * n)) abort();
        if (type == GW_STRING) {
            if (memcmp(offsets, offsets2, sizeof(uint32_t) * ((size_t)n + 1))) abort();
            if (string_bytes && memcmp(strings, strings2, string_bytes)) abort();
        } else if (memcmp(v, v2, sizeof(uint64_t) * n)) {
            abort();
        }
    }
    free(ts); free(ts2); free(v); free(v2); free(offsets); free(offsets2);
    free(strings); free(strings2); free(out);
}

static void series_round_trip(uint8_t type, const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul) return;
    size_t key_len = (size_t)(nul - data);
    const char *key = (const char *)data;
    if (gw_lp_check_series_key(key, key_len) != 0) return;
    data = nul + 1;
    size -= key_len + 1;
    size_t n = size / 16;
    if (n == 0) return;
    int64_t *ts = malloc(sizeof(int64_t) * n);
    uint64_t *v = malloc(sizeof(uint64_t) * n);
    if (!ts || !v) abort();
    memcpy(ts, data, sizeof(int64_t) * n);
    memcpy(v, data + 8 * n, sizeof(uint64_t) * n);
    for (size_t i = 0; i < n; i++) {
        /* the timestamps line protocol can hold; bools are 0 or 1 */
        if (ts[i] < GW_LP_MIN_TIME || ts[i] > GW_LP_MAX_TIME) ts[i] = (int64_t)(ts[i] / 4);
        if (type == GW_BOOL) v[i] &= 1;
    }
    size_t cap = gw_lp_format_bound(key_len, n);
    char *out = malloc(cap);
    if (!out) abort();
    uint64_t skipped = 0;
    int64_t written = gw_lp_format_series(key, key_len, type, ts, v, n, out, cap, &skipped);
    if (written < 0 || (size_t)written > cap) abort();
    gw_batch *b = gw_batch_new();
    if (!b) abort();
    gw_lp_stats stats;
    if (gw_lp_parse(b, out, (size_t)written, 1, 0, NULL, 0, &stats) != GW_OK) abort();
    if (stats.bad_lines || b->n != n - skipped) abort();
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double d;
        memcpy(&d, &v[i], sizeof d);
        if (type == GW_FLOAT && !isfinite(d)) continue;
        const gw_point *p = &b->points[k++];
        if (p->ts != ts[i] || p->value != v[i]) abort();
        /* an integral float is written without a fraction and still reads back as a float */
        if (p->type != type) abort();
        /* one series: the parser writes the key canonically (a field key's '"' escaped), so
         * it is compared with the first point's, not with the key as given */
        const gw_point *first = &b->points[0];
        if (p->key_len != first->key_len ||
            memcmp(b->arena + p->key_off, b->arena + first->key_off, p->key_len))
            abort();
    }
    gw_batch_free(b);
    free(ts); free(v); free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (mode % 2 == 0)
        block_round_trip((uint8_t)(GW_FLOAT + (mode / 2) % 5), data, size);
    else
        series_round_trip((uint8_t)(GW_FLOAT + (mode / 2) % 4), data, size);
    return 0;
}
