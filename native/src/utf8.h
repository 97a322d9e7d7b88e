/* UTF-8 validation shared by the parsers of outside text (line protocol, flat JSON). */
#ifndef GW_UTF8_H
#define GW_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at s[0] (a byte >= 0x80), or 0 if invalid:
 * no overlong forms, no UTF-16 surrogates, nothing above U+10FFFF (what Python's strict
 * decoder accepts). */
static inline size_t utf8_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;   /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;   /* nothing above U+10FFFF */
    } else return 0;
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

#endif
