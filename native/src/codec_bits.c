/* Varints and single bytes of the block codec (bit streams: codec_bits.h). */
#include "codec_bits.h"

void gw_codec_put_uvarint(uint8_t *out, size_t *pos, uint64_t v) {
    size_t p = *pos;
    while (v >= 0x80) { out[p++] = (uint8_t)(v | 0x80); v >>= 7; }
    out[p++] = (uint8_t)v;
    *pos = p;
}

int gw_codec_get_uvarint(gw_codec_in *in, uint64_t *v, const char *what) {
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (in->pos >= in->len) { in->why = what; return GW_ETRUNC; }
        uint8_t b = in->p[in->pos++];
        if (shift == 63 && b > 1) break;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *v = r; return GW_OK; }
    }
    in->why = what;
    return GW_ECORRUPT;
}

int gw_codec_get_byte(gw_codec_in *in, uint8_t *v, const char *what) {
    if (in->pos >= in->len) { in->why = what; return GW_ETRUNC; }
    *v = in->p[in->pos++];
    return GW_OK;
}
