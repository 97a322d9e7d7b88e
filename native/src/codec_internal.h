/* Internals shared by the codec's C files (not part of the cffi interface). */
#ifndef GW_CODEC_INTERNAL_H
#define GW_CODEC_INTERNAL_H

#include "codec_bits.h"

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
