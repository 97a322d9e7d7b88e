/* InfluxDB line protocol: a parser that fills a gw_batch and a serializer for whole series.
 *
 * The grammar, escaping table and error reasons are specified in docs/format/line-protocol.md.
 * Parsing works line by line with partial-write semantics: a bad line contributes no point,
 * is counted and (up to a cap chosen by the caller) described by a gw_lp_error; every good
 * line around it still lands in the batch. Each field of a line becomes one point whose
 * series key is the canonical text of gw_batch.h (tags sorted by unescaped key bytes).
 */
#ifndef GW_LINEPROTO_H
#define GW_LINEPROTO_H

#include "gw_batch.h"

/* cdef: begin */
/* Timestamp bounds (nanoseconds) accepted by the parser, after precision scaling. */
#define GW_LP_MIN_TIME -9223372036854775806
#define GW_LP_MAX_TIME 9223372036854775806

/* Why a line was rejected: gw_lp_error.reason; gw_lp_reason() gives the short text. */
#define GW_LP_E_MEASUREMENT_MISSING   1
#define GW_LP_E_TAG_KEY_MISSING       2
#define GW_LP_E_TAG_EQUALS_MISSING    3
#define GW_LP_E_TAG_VALUE_MISSING     4
#define GW_LP_E_TAG_VALUE_EQUALS      5
#define GW_LP_E_TAG_DUPLICATE         6
#define GW_LP_E_FIELDS_MISSING        7
#define GW_LP_E_FIELD_KEY_MISSING     8
#define GW_LP_E_FIELD_EQUALS_MISSING  9
#define GW_LP_E_FIELD_VALUE_MISSING  10
#define GW_LP_E_FIELD_VALUE_INVALID  11
#define GW_LP_E_FLOAT_INVALID        12
#define GW_LP_E_FLOAT_RANGE          13
#define GW_LP_E_INT_INVALID          14
#define GW_LP_E_INT_RANGE            15
#define GW_LP_E_UINT_INVALID         16
#define GW_LP_E_UINT_RANGE           17
#define GW_LP_E_BOOL_INVALID         18
#define GW_LP_E_STRING_UNTERMINATED  19
#define GW_LP_E_STRING_TOO_LONG      20
#define GW_LP_E_AFTER_FIELD          21
#define GW_LP_E_TIME_INVALID         22
#define GW_LP_E_TIME_RANGE           23
#define GW_LP_E_AFTER_TIME           24
#define GW_LP_E_NAME_RESERVED        25
#define GW_LP_E_CONTROL_CHAR         26
#define GW_LP_E_UTF8                 27
#define GW_LP_E_KEY_TOO_LONG         28
#define GW_LP_E_MEASUREMENT_HASH     29   /* series keys only: a line starting '#' is a comment */
#define GW_LP_E_LINE_KEYS_TOO_BIG    30
#define GW_LP_E_TRAILING_BACKSLASH  31
#define GW_LP_E_MEASUREMENT_BOM     32
#define GW_LP_E_LAST                 32

/* Every field of a line repeats the line's measurement and tags in its series key, so a short
 * hostile line (a long tag set, thousands of one-byte fields) could otherwise make gigabytes
 * of keys. Real lines stay far below this many key bytes. */
#define GW_LP_MAX_LINE_KEY_BYTES 4194304

typedef struct gw_lp_error {
    uint64_t line;      /* 1-based physical line of the offending byte */
    uint32_t column;    /* 1-based, in Unicode characters from the start of that line */
    uint32_t reason;    /* GW_LP_E_* */
} gw_lp_error;

typedef struct gw_lp_stats {
    uint64_t lines;       /* lines that hold data (not blank, not comments), good or bad */
    uint64_t points;      /* points appended to the batch */
    uint64_t bad_lines;   /* lines rejected; every one is counted */
    uint32_t n_errors;    /* gw_lp_error entries filled (at most max_errors) */
} gw_lp_stats;

/* Parses len bytes of line protocol and appends one point per field of each good line to b.
 * precision_ns is the length of one timestamp unit in ns (1, 1000, 1000000 or 1000000000);
 * default_ts (ns), truncated to the precision, is the time of lines without a timestamp. The
 * first max_errors bad lines are described in errors[]; all are counted in stats. Returns GW_OK
 * (even when lines were rejected), GW_EINVAL for a bad precision or a default_ts outside the
 * line protocol's time range, or GW_ENOMEM when the batch cannot grow (the
 * points of the lines parsed before that stay in the batch). */
int gw_lp_parse(gw_batch *b, const char *data, size_t len, int64_t precision_ns,
                int64_t default_ts, gw_lp_error *errors, uint32_t max_errors,
                gw_lp_stats *stats);

/* The short text of a GW_LP_E_* reason ("unknown error" for anything else). */
const char *gw_lp_reason(int reason);

/* Returns 0 when key is a well-formed series key (measurement[,tag=value]... field, escaped as
 * in line protocol, no reserved names), else the GW_LP_E_* reason it fails with. */
int gw_lp_check_series_key(const char *key, size_t len);

/* Bytes that gw_lp_format_series needs at most for n points of a series with this key. */
size_t gw_lp_format_bound(size_t key_len, size_t n);

/* Writes one line "key=value timestamp\n" per point of a float, int, uint or bool series.
 * values holds the 64-bit words of gw_point.value. Floats are written with the fewest
 * digits that parse back to the same bits; NaN and infinities have no line protocol form and
 * are left out, counted in *skipped. Returns the bytes written, GW_EINVAL for a string or
 * unknown type, or GW_ENOMEM when out_cap is smaller than gw_lp_format_bound(). */
int64_t gw_lp_format_series(const char *key, size_t key_len, uint8_t type,
                            const int64_t *ts, const uint64_t *values, size_t n,
                            char *out, size_t out_cap, uint64_t *skipped);

/* One series' points for gw_lp_format_bodies. Numbers and booleans: values holds n value
 * words (as gw_point.value). Strings: strings holds the UTF-8 bytes of every value one after
 * another, string_ends[k] the offset just past value k. */
typedef struct gw_lp_series {
    const char *key;        /* escaped series key: measurement[,tag=value]... field */
    size_t key_len;
    uint8_t type;           /* GW_FLOAT .. GW_STRING */
    size_t n;
    const int64_t *ts;      /* n timestamps, ns */
    const uint64_t *values;
    const char *strings;
    const uint32_t *string_ends;
} gw_lp_series;

/* What gw_lp_format_bodies wrote. The caller gives body_ends, body_points and line_ends room
 * for one item a point (every series' n together). */
typedef struct gw_lp_bodies {
    size_t *body_ends;      /* offset just past each body in out */
    uint64_t *body_points;  /* points (lines) of each body */
    size_t bodies;
    size_t *line_ends;      /* offset just past each line in out */
    size_t lines;
    uint64_t skipped;       /* NaN and infinities left out (no line protocol form) */
    int newline_in_string;  /* a string value holds a line feed: newlines are not all line ends */
    size_t bad_series;      /* on GW_EINVAL: the series refused */
    int bad_reason;         /* on GW_EINVAL: its key's GW_LP_E_* reason (0: bad type or strings) */
} gw_lp_bodies;

/* Bytes that gw_lp_format_bodies needs at most for these series (SIZE_MAX: too many). */
size_t gw_lp_bodies_bound(const gw_lp_series *series, size_t count);

/* Writes one line "key=value timestamp\n" per point of every series, in order, into out, cut
 * into bodies of at most `limit` bytes at line ends (a line longer than limit is a body of its
 * own). Numbers as in gw_lp_format_series (NaN and infinities left out and counted); a string
 * between quotes with '"' and '\\' escaped. Each series key is checked as
 * gw_lp_check_series_key does. Returns the bytes written, GW_ENOMEM when out_cap is below
 * gw_lp_bodies_bound(), or GW_EINVAL naming the series in r->bad_series. */
int64_t gw_lp_format_bodies(const gw_lp_series *series, size_t count, size_t limit,
                            char *out, size_t out_cap, gw_lp_bodies *r);
/* cdef: end */

#endif
