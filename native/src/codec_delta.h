/* Delta order and common factor of an integer column: rebuilding its values from residuals
 * (internal to the codec's C files; the column layout is in codec_int.c). */
#ifndef GW_CODEC_DELTA_H
#define GW_CODEC_DELTA_H

#include <stdint.h>

/* How a column's values follow from its residuals r (factor 1 = none):
 *   order 0: x[i] = base + r[i] * factor
 *   order 1: x[0] = x0, x[i] = x[i-1] + unzigzag(r[i-1]) * factor
 *   order 2: x[0] = x0, x[1] = x0 + d0, deltas d[i] = d[i-1] + unzigzag(r[i-2]) * factor */
typedef struct { int order; uint64_t base, x0, d0, factor; } gw_codec_delta;

static inline uint64_t gw_codec_zigzag(uint64_t d) {
    return (d << 1) ^ (uint64_t)-(int64_t)(d >> 63);
}
static inline uint64_t gw_codec_unzigzag(uint64_t z) {
    return (z >> 1) ^ (uint64_t)-(int64_t)(z & 1);
}

/* Rebuilds x[0 .. n + order) from n residuals in one pass. NEXT(r) assigns the j-th residual
 * to r (j is the loop variable; it may read x[order + j], which is written after). FACTOR is an
 * expression: the constant 1 lets the compiler drop the multiply. Uses the locals x, n, order,
 * base, x0 and d0; a macro so that each decoder's residual source is inlined into the loop. */
#define GW_CODEC_DELTA_REBUILD(NEXT, FACTOR)                                             \
    do {                                                                             \
        if (order == 0) {                                                            \
            for (uint32_t j = 0; j < n; j++) { uint64_t r_; NEXT(r_); x[j] = base + r_ * (FACTOR); } \
        } else if (order == 1) {                                                     \
            uint64_t acc_ = x0;                                                      \
            x[0] = acc_;                                                             \
            for (uint32_t j = 0; j < n; j++) {                                       \
                uint64_t r_; NEXT(r_);                                               \
                acc_ += gw_codec_unzigzag(r_) * (FACTOR);                            \
                x[j + 1] = acc_;                                                     \
            }                                                                        \
        } else {                                                                     \
            uint64_t acc_ = x0, delta_ = d0;                                         \
            x[0] = acc_;                                                             \
            acc_ += delta_;                                                          \
            x[1] = acc_;                                                             \
            for (uint32_t j = 0; j < n; j++) {                                       \
                uint64_t r_; NEXT(r_);                                               \
                delta_ += gw_codec_unzigzag(r_) * (FACTOR);                          \
                acc_ += delta_;                                                      \
                x[j + 2] = acc_;                                                     \
            }                                                                        \
        }                                                                            \
    } while (0)

/* Rebuilds x[0..total) from residuals already stored at x[col.order..total). */
static inline void gw_codec_delta_rebuild(uint64_t *x, uint32_t total, gw_codec_delta col) {
    int order = col.order;
    uint32_t n = total - (uint32_t)order;
    uint64_t base = col.base, x0 = col.x0, d0 = col.d0, factor = col.factor;
#define IN_PLACE(r_) ((r_) = x[order + j])
    GW_CODEC_DELTA_REBUILD(IN_PLACE, factor);
#undef IN_PLACE
}

#endif
