/* Bit and byte I/O of the block codec (internal to the codec's C files).
 *
 * Varints and single bytes go through a bounded reader over untrusted bytes; bit streams are
 * LSB first, written 32 bits at a time and read through a 64-bit accumulator. The bit stream
 * functions are inline: the integer column and rANS coders call them once per value.
 */
#ifndef GW_CODEC_BITS_H
#define GW_CODEC_BITS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gw_codec.h"

/* A bounded reader over untrusted bytes: every get checks the end first. */
typedef struct gw_codec_in {
    const uint8_t *p;
    size_t pos, len;
    const char *why;   /* set on the first failure: what was wrong */
} gw_codec_in;

/* Writes v as a LEB128 varint at out[*pos]; the caller guarantees 10 bytes of room. */
void gw_codec_put_uvarint(uint8_t *out, size_t *pos, uint64_t v);
/* GW_OK and *v, or GW_ETRUNC / GW_ECORRUPT (over-long varint) with in->why set. */
int  gw_codec_get_uvarint(gw_codec_in *in, uint64_t *v, const char *what);
int  gw_codec_get_byte(gw_codec_in *in, uint8_t *v, const char *what);

static inline int bitlen64(uint64_t v) { return v ? 64 - __builtin_clzll(v) : 0; }

static inline uint64_t load64le(const uint8_t *p) {
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

static inline uint32_t load16le(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#else
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
#endif
}

/* ---------------------------------------------------------------- bit streams (LSB first) */

typedef struct { uint8_t *out; size_t pos; uint64_t acc; int cnt; } bit_writer;

static inline void bw_put(bit_writer *w, uint64_t bits, int n) {   /* n <= 32; acc keeps < 32 bits */
    w->acc |= bits << w->cnt;
    w->cnt += n;
    if (w->cnt >= 32) {
        uint32_t word = (uint32_t)w->acc;
        for (int b = 0; b < 4; b++) w->out[w->pos++] = (uint8_t)(word >> (8 * b));
        w->acc >>= 32;
        w->cnt -= 32;
    }
}

static inline void bw_put_long(bit_writer *w, uint64_t bits, int n) {   /* n <= 64 */
    if (n > 32) { bw_put(w, bits & 0xffffffffu, 32); bits >>= 32; n -= 32; }
    if (n) bw_put(w, bits & (((uint64_t)1 << n) - 1), n);
}

static inline void bw_flush(bit_writer *w) {
    while (w->cnt > 0) { w->out[w->pos++] = (uint8_t)w->acc; w->acc >>= 8; w->cnt -= 8; }
    w->acc = 0;
    w->cnt = 0;
}

/* Elias gamma of v >= 1: (bitlen-1) zeros, a one, then the bits below the top bit. */
static inline void bw_gamma(bit_writer *w, uint32_t v) {
    int nb = bitlen64(v);
    bw_put(w, 0, nb - 1);
    bw_put(w, 1, 1);
    if (nb > 1) bw_put(w, v & ((1u << (nb - 1)) - 1), nb - 1);
}

/* Reads past the end yield zero bits and count as overrun, which callers treat as corruption. */
typedef struct { const uint8_t *p; size_t pos, len; uint64_t acc; int cnt; size_t overrun; } bit_reader;

static inline void br_init(bit_reader *r, const uint8_t *p, size_t len) {
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

static inline int br_gamma(bit_reader *r, uint32_t *v) {
    int zeros = 0;
    while (br_get(r, 1) == 0) {
        if (++zeros > 31) return GW_ECORRUPT;
    }
    *v = (uint32_t)(((uint64_t)1 << zeros) | br_get(r, zeros));
    return GW_OK;
}

/* Bits the reader handed out, counting zero bits invented past the end. */
static inline uint64_t br_bits_used(const bit_reader *r) {
    return ((uint64_t)r->pos + r->overrun) * 8 - (uint64_t)r->cnt;
}

static inline int br_past_end(const bit_reader *r) { return br_bits_used(r) > (uint64_t)r->len * 8; }

#endif
