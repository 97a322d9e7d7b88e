/* rANS coding of an integer column's residuals (internal to the codec's C files). */
#ifndef GW_CODEC_RANS_H
#define GW_CODEC_RANS_H

#include "codec_bits.h"
#include "codec_delta.h"

/* A planned coding of one column's residuals: their histogram and the chosen parameters. */
typedef struct gw_codec_rans gw_codec_rans;

/* Plans the coding of r[0..n) (every residual below 2^max_bits); NULL when out of memory. */
gw_codec_rans *gw_codec_rans_plan(const uint64_t *r, uint32_t n, int max_bits);
/* Estimated bytes of the planned coding, to compare it with the other residual codings. */
double gw_codec_rans_estimate(const gw_codec_rans *plan);
/* Writes the planned coding of r[0..n) at out if it takes fewer than limit bytes: GW_OK with
 * *len the bytes written (0 when it would not be smaller: nothing written), or GW_ENOMEM. */
int  gw_codec_rans_encode(const gw_codec_rans *plan, const uint64_t *r, uint32_t n,
                          uint8_t *out, size_t limit, size_t *len);
void gw_codec_rans_free(gw_codec_rans *plan);
/* Decodes the total - col.order residuals of a column and rebuilds x[0..total) in the same
 * pass over the tokens. GW_OK, or GW_ECORRUPT/GW_ETRUNC/GW_ENOMEM with in->why set; never
 * reads past in->len. */
int  gw_codec_rans_decode(gw_codec_in *in, uint64_t *x, uint32_t total, gw_codec_delta col);

#endif
