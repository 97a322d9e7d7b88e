/* A plain Gorilla codec (Pelkonen et al., VLDB 2015) as the benchmark's baseline:
 * delta-of-delta timestamps with the paper's prefix classes, XOR floats with the
 * leading/meaningful-bits window. Reference only; the product's codec is native/src/codec*.c. */
#include <stdint.h>
#include <string.h>

typedef struct { uint8_t *p; uint64_t acc; int cnt; size_t pos; } gw_bits_out;
typedef struct { const uint8_t *p; size_t len, pos; uint64_t acc; int cnt; } gw_bits_in;

static void put32(gw_bits_out *w, uint64_t v, int n) {   /* MSB-first, n <= 32 */
    w->acc = (w->acc << n) | (v & (((uint64_t)1 << n) - 1));
    w->cnt += n;
    while (w->cnt >= 8) { w->cnt -= 8; w->p[w->pos++] = (uint8_t)(w->acc >> w->cnt); }
}

static void put(gw_bits_out *w, uint64_t v, int n) {
    if (n > 32) { put32(w, v >> 32, n - 32); n = 32; }
    if (n) put32(w, v, n);
}

static uint64_t get32(gw_bits_in *r, int n) {   /* n <= 32 */
    while (r->cnt < n) { r->acc = (r->acc << 8) | (r->pos < r->len ? r->p[r->pos++] : 0); r->cnt += 8; }
    r->cnt -= n;
    return (r->acc >> r->cnt) & (((uint64_t)1 << n) - 1);
}

static uint64_t get(gw_bits_in *r, int n) {
    if (n > 32) { uint64_t hi = get32(r, n - 32); return hi << 32 | get32(r, 32); }
    return n ? get32(r, n) : 0;
}

size_t gorilla_bound(uint32_t n) { return 32 + (size_t)n * 20; }

size_t gorilla_encode(const int64_t *ts, const uint64_t *v, uint32_t n, uint8_t *out) {
    gw_bits_out w = {out, 0, 0, 0};
    put(&w, (uint64_t)ts[0], 64);
    put(&w, v[0], 64);
    int64_t delta = 0;
    int lead = 65, trail = 0;
    for (uint32_t i = 1; i < n; i++) {
        int64_t d = (int64_t)((uint64_t)ts[i] - (uint64_t)ts[i - 1]);
        int64_t dod = (int64_t)((uint64_t)d - (uint64_t)delta);
        delta = d;
        if (dod == 0) put(&w, 0, 1);
        else if (dod >= -63 && dod <= 64) { put(&w, 2, 2); put(&w, (uint64_t)dod, 7); }
        else if (dod >= -255 && dod <= 256) { put(&w, 6, 3); put(&w, (uint64_t)dod, 9); }
        else if (dod >= -2047 && dod <= 2048) { put(&w, 14, 4); put(&w, (uint64_t)dod, 12); }
        else { put(&w, 15, 4); put(&w, (uint64_t)dod, 64); }
        uint64_t x = v[i] ^ v[i - 1];
        if (!x) { put(&w, 0, 1); continue; }
        int l = __builtin_clzll(x), t = __builtin_ctzll(x);
        if (l > 31) l = 31;
        if (lead <= 64 && l >= lead && t >= trail) {
            put(&w, 2, 2);
            put(&w, x >> trail, 64 - lead - trail);
        } else {
            lead = l; trail = t;
            put(&w, 3, 2);
            put(&w, (uint64_t)l, 5);
            put(&w, (uint64_t)(64 - l - t) & 63, 6);   /* 64 meaningful bits written as 0 */
            put(&w, x >> t, 64 - l - t);
        }
    }
    if (w.cnt) put32(&w, 0, 8 - w.cnt);
    return w.pos;
}

static int64_t sign_extend(uint64_t v, int bits) {
    uint64_t m = (uint64_t)1 << (bits - 1);
    return (int64_t)((v ^ m) - m);
}

void gorilla_decode(const uint8_t *in, size_t len, uint32_t n, int64_t *ts, uint64_t *v) {
    gw_bits_in r = {in, len, 0, 0, 0};
    ts[0] = (int64_t)get(&r, 64);
    v[0] = get(&r, 64);
    int64_t delta = 0;
    int lead = 0, trail = 0;
    for (uint32_t i = 1; i < n; i++) {
        int64_t dod;
        if (!get(&r, 1)) dod = 0;
        else if (!get(&r, 1)) dod = sign_extend(get(&r, 7), 7);
        else if (!get(&r, 1)) dod = sign_extend(get(&r, 9), 9);
        else if (!get(&r, 1)) dod = sign_extend(get(&r, 12), 12);
        else dod = (int64_t)get(&r, 64);
        delta = (int64_t)((uint64_t)delta + (uint64_t)dod);
        ts[i] = (int64_t)((uint64_t)ts[i - 1] + (uint64_t)delta);
        if (!get(&r, 1)) { v[i] = v[i - 1]; continue; }
        if (get(&r, 1)) {
            lead = (int)get(&r, 5);
            int m = (int)get(&r, 6);
            if (m == 0) m = 64;
            trail = 64 - lead - m;
        }
        v[i] = v[i - 1] ^ (get(&r, 64 - lead - trail) << trail);
    }
}
