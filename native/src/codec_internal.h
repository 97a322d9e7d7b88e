/* Internals shared by the codec's C files (not part of the cffi interface). */
#ifndef GW_CODEC_INTERNAL_H
#define GW_CODEC_INTERNAL_H

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

static inline uint64_t gw_codec_zigzag(uint64_t d) {
    return (d << 1) ^ (uint64_t)-(int64_t)(d >> 63);
}
static inline uint64_t gw_codec_unzigzag(uint64_t z) {
    return (z >> 1) ^ (uint64_t)-(int64_t)(z & 1);
}

/* Upper bound of gw_codec_int_encode's output for n values. */
size_t gw_codec_int_bound(uint32_t n);
/* Encodes n 64-bit integers (any values; signedness only steers the cheap representation of
 * the order-0 base) choosing delta order, common factor and residual coding per column.
 * Writes at out[*pos] (room: gw_codec_int_bound). Returns GW_OK or GW_ENOMEM. */
int  gw_codec_int_encode(const uint64_t *x, uint32_t n, int is_signed, uint8_t *out, size_t *pos);
/* Decodes n integers written by gw_codec_int_encode. GW_OK, or GW_ECORRUPT/GW_ETRUNC with
 * in->why set; writes exactly n values to x and never reads past in->len. */
int  gw_codec_int_decode(gw_codec_in *in, uint64_t *x, uint32_t n);

/* Float columns: decimal detection with exceptions, or an exact order-preserving fallback. */
size_t gw_codec_float_bound(uint32_t n);
int  gw_codec_float_encode(const uint64_t *bits, uint32_t n, double resolution, uint8_t *out, size_t *pos);
int  gw_codec_float_decode(gw_codec_in *in, uint64_t *bits, uint32_t n);

#endif
