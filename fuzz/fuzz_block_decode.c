/* Fuzz target for the block decoder (libFuzzer: clang -fsanitize=fuzzer,address,undefined).
 *
 * The checksum would stop almost every mutated input at the door, so the first byte picks
 * what the rest is:
 *   0: a block, decoded as is (checksum and all);
 *   1: a block body whose CRC32C is recomputed, so the structure parsers see hostile bytes;
 *   2: columns (timestamps, 64-bit values) encoded, decoded, and compared bit for bit.
 * Built by tests/codec/test_fuzz.py; run longer by hand (see fuzz/README.md).
 */
#include <stdlib.h>
#include <string.h>

#include "gw_codec.h"

static void decode_checked(const uint8_t *block, size_t len) {
    gw_block_info info;
    if (gw_block_info_read(block, len, &info) != GW_OK) return;
    if (info.n == 0 || info.n > GW_BLOCK_MAX_POINTS) abort();
    int64_t *ts = malloc(sizeof(int64_t) * info.n);
    uint64_t *values = malloc(sizeof(uint64_t) * info.n);
    uint32_t *offsets = malloc(sizeof(uint32_t) * ((size_t)info.n + 1));
    char *strings = malloc(info.string_bytes ? (size_t)info.string_bytes : 1);
    if (ts && values && offsets && strings) {
        int rc = gw_block_decode(block, len, ts, values, strings, offsets, (size_t)info.string_bytes);
        if (rc != GW_OK && rc != GW_ECORRUPT && rc != GW_ETRUNC && rc != GW_ENOMEM) abort();
        if (rc == GW_OK) {
            for (uint32_t i = 0; i < info.n; i++)
                if (ts[i] < info.min_ts || ts[i] > info.max_ts) abort();
        }
        if (info.type != GW_STRING) {   /* the sized entry point agrees with the plain one */
            int rc_n = gw_block_decode_n(block, len, info.n, ts, values);
            if (rc_n != rc && !(rc == GW_ENOMEM || rc_n == GW_ENOMEM)) abort();
            if (info.n > 1 && gw_block_decode_n(block, len, info.n - 1, ts, values) != GW_EINVAL) abort();
        }
    }
    free(ts);
    free(values);
    free(offsets);
    free(strings);
}

static void round_trip(const uint8_t *data, size_t size) {
    if (size < 2) return;
    uint8_t type = (uint8_t)(GW_FLOAT + data[0] % 4);   /* numeric types */
    data++;
    size--;
    uint32_t n = (uint32_t)(size / 16);
    if (n == 0) return;
    int64_t *ts = malloc(sizeof(int64_t) * n), *ts2 = malloc(sizeof(int64_t) * n);
    uint64_t *v = malloc(sizeof(uint64_t) * n), *v2 = malloc(sizeof(uint64_t) * n);
    size_t cap = gw_block_bound(type, n, 0);
    uint8_t *out = malloc(cap);
    if (!ts || !ts2 || !v || !v2 || !out) abort();
    memcpy(ts, data, sizeof(int64_t) * n);
    memcpy(v, data + 8 * (size_t)n, sizeof(uint64_t) * n);
    if (type == GW_BOOL) for (uint32_t i = 0; i < n; i++) v[i] &= 1;
    int64_t len = gw_block_encode(type, n, ts, v, NULL, NULL, 0.0, out, cap);
    if (len <= 0 || (size_t)len > cap) abort();
    if (gw_block_decode(out, (size_t)len, ts2, v2, NULL, NULL, 0) != GW_OK) abort();
    if (memcmp(ts, ts2, sizeof(int64_t) * n) || memcmp(v, v2, sizeof(uint64_t) * n)) abort();
    free(ts); free(ts2); free(v); free(v2); free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    if (mode == 0) {
        decode_checked(data, size);
    } else if (mode == 1) {
        uint8_t *block = malloc(size + 4);
        if (!block) return 0;
        if (size) memcpy(block, data, size);
        uint32_t crc = gw_crc32c(0, block, size);
        for (int b = 0; b < 4; b++) block[size + b] = (uint8_t)(crc >> (8 * b));
        decode_checked(block, size + 4);
        free(block);
    } else {
        round_trip(data, size);
    }
    return 0;
}
