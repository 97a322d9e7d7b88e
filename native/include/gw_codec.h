/* The block codec: one series' points (timestamps + typed values) in one checksummed block.
 *
 * The byte format is specified in docs/format/block.md and summarised at the top of
 * native/src/codec.c. Encoders take columns; decoders treat every input byte as untrusted and
 * answer bad blocks with GW_ECORRUPT / GW_ETRUNC, never with a crash or an out-of-bounds access.
 */
#ifndef GW_CODEC_H
#define GW_CODEC_H

#include "gw_common.h"

/* cdef: begin */
#define GW_BLOCK_VERSION          1
/* A block never holds more points than this, so a hostile header cannot make a reader
 * allocate more than 16 bytes x GW_BLOCK_MAX_POINTS for its columns. */
#define GW_BLOCK_MAX_POINTS       4194304
/* Nor more string bytes than this (runs of a long string could otherwise expand without bound). */
#define GW_BLOCK_MAX_STRING_BYTES 67108864
/* gw_block_info.flags: the timestamps are min_ts + i * span / (n - 1), no timestamp column. */
#define GW_BLOCK_REGULAR          0x0001

typedef struct gw_block_info {
    uint8_t  type;          /* GW_FLOAT .. GW_STRING (gw_common.h) */
    uint8_t  version;       /* format version */
    uint16_t flags;
    uint32_t n;             /* points */
    int64_t  min_ts, max_ts;/* smallest and largest timestamp in the block (ns) */
    uint64_t string_bytes;  /* total bytes of string values (0 for other types) */
} gw_block_info;

/* Upper bound of the encoded size, for sizing the output buffer. Returns 0 when the type is
 * unknown or n / string_bytes exceed the block limits. */
size_t  gw_block_bound(uint8_t type, uint32_t n, size_t string_bytes);
/* Encodes n points (timestamps in any order, as given) into out. values: n 64-bit words
 * (float bits / int / uint / bool 0|1); for GW_STRING values is ignored and the strings are
 * strings[string_offsets[i] .. string_offsets[i+1]) with n+1 offsets. resolution: 0 = detect,
 * else the declared decimal resolution of float values (e.g. 0.01).
 * Returns the number of bytes written, or a negative GW_E* code: GW_EINVAL for a bad type,
 * n == 0 or above GW_BLOCK_MAX_POINTS, bad string offsets or a bad resolution; GW_ENOMEM when
 * out_cap is too small (gw_block_bound() is always enough) or memory runs out. */
int64_t gw_block_encode(uint8_t type, uint32_t n, const int64_t *ts, const uint64_t *values,
                        const char *strings, const uint32_t *string_offsets,
                        double resolution, uint8_t *out, size_t out_cap);
/* Validates the header and CRC32C of a block and fills info. GW_OK or GW_ECORRUPT/GW_ETRUNC. */
int     gw_block_info_read(const uint8_t *block, size_t len, gw_block_info *info);
/* Reads the header only (no checksum, no payload) to size the buffers for gw_block_decode,
 * which validates everything. GW_OK or GW_ECORRUPT/GW_ETRUNC. */
int     gw_block_header_read(const uint8_t *block, size_t len, gw_block_info *info);
/* Points in a block from its header alone (no checksum): n > 0, or GW_ECORRUPT/GW_ETRUNC.
 * Lets a caller size buffers for gw_block_decode in one call. */
int64_t gw_block_count(const uint8_t *block, size_t len);
/* Decodes into caller buffers sized from info (ts[n], values[n], strings[string_bytes],
 * string_offsets[n+1]). Returns GW_OK, or GW_ECORRUPT/GW_ETRUNC/GW_EINVAL; never reads or
 * writes out of bounds whatever the input bytes. strings / string_offsets may be NULL for
 * types other than GW_STRING. */
int     gw_block_decode(const uint8_t *block, size_t len, int64_t *ts, uint64_t *values,
                        char *strings, uint32_t *string_offsets, size_t strings_cap);
/* gw_block_decode for callers that sized ts[n] and values[n] from their own reading of the
 * header: GW_EINVAL (buffers untouched) unless the block holds exactly n points of a type
 * other than GW_STRING; otherwise as gw_block_decode. */
int     gw_block_decode_n(const uint8_t *block, size_t len, uint32_t n, int64_t *ts, uint64_t *values);
/* gw_block_decode_n with the buffers given as addresses, for callers whose buffers are
 * objects that report their address cheaply (array.array.buffer_info()) where wrapping each
 * one in a pointer object would cost more than decoding a small block. */
int     gw_block_decode_at(const uint8_t *block, size_t len, uint32_t n, uintptr_t ts, uintptr_t values);
/* A short English description of what was wrong with the last block this thread failed to
 * read (gw_block_info_read / gw_block_decode), e.g. "checksum mismatch". Never NULL. */
const char *gw_block_last_error(void);
/* Widens n one-byte booleans (any non-zero byte is true) to 64-bit words 0/1, and back. */
void    gw_block_bools_widen(const uint8_t *in, uint64_t *out, size_t n);
void    gw_block_bools_narrow(const uint64_t *in, uint8_t *out, size_t n);
/* CRC32C (Castagnoli) of len bytes, continuing from crc (start with 0). Shared by WAL and ring. */
uint32_t gw_crc32c(uint32_t crc, const void *data, size_t len);
/* cdef: end */

#endif
