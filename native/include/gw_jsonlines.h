/* Flat JSON objects to line protocol, for the common shape of sensor messages.
 *
 * A sensor that publishes {"ts": 1714564800000, "device": "d1", "temperature": 21.5} sends
 * the same flat shape thousands of times a second. Decoding each with a general JSON parser
 * and building its series keys in Python costs more than receiving it, so this converter
 * turns a group of such payloads into line protocol in one call: one line per payload, which
 * the line protocol parser then turns into points (and whose rules it checks).
 *
 * It only takes what it can take exactly as the general decoder would (the MQTT reader's
 * gateway/readers/mqtt/payloads.py): a single flat object of UTF-8 keys and values without
 * escape sequences: numbers, booleans, null and plain strings. Anything else - nested values,
 * arrays, escapes, invalid UTF-8, duplicate keys, a time the spec cannot scale, a message that would
 * be refused - is marked GW_JSON_GENERAL and left to the general decoder, which then either
 * decodes it or names what is wrong with it. So this path changes speed, never results.
 */
#ifndef GW_JSONLINES_H
#define GW_JSONLINES_H

#include "gw_common.h"

/* cdef: begin */
#define GW_JSON_LINE    0   /* the payload became one line of the output */
#define GW_JSON_GENERAL 1   /* not taken: decode it with the general decoder */

/* How keys map to the line. Name lists are names separated by NUL bytes ("a\0b"), length
 * in bytes; an empty list has length 0. Names are unescaped except where noted. */
typedef struct gw_json_spec {
    const char *measurement;      /* escaped line protocol measurement; empty: payload must name it */
    uint32_t    measurement_len;
    const char *base_tags;        /* escaped ",key=value..." added to every line, or empty */
    uint32_t    base_tags_len;
    const char *base_tag_keys;    /* the keys of base_tags: a payload tag of the same key is
                                     left to the general decoder (the payload's value wins) */
    uint32_t    base_tag_keys_len;
    const char *time_key;         /* empty: every point gets its arrival time */
    uint32_t    time_key_len;
    int64_t     time_scale;       /* ns per unit of an integer time; 0: times need the general decoder */
    const char *measurement_key;  /* empty: none */
    uint32_t    measurement_key_len;
    const char *tag_keys;
    uint32_t    tag_keys_len;
    const char *field_keys;       /* empty: every number and boolean is a field */
    uint32_t    field_keys_len;
    const char *string_fields;
    uint32_t    string_fields_len;
} gw_json_spec;

/* Bytes gw_json_lines needs at most for n payloads of total_len bytes. */
size_t gw_json_lines_bound(const gw_json_spec *spec, size_t total_len, uint32_t n);

/* Converts n payloads; payload i is data[ends[i-1] .. ends[i]) (ends[-1] = 0). Payload i that
 * is taken becomes one line, timestamped with its time key or arrival_ns[i], and status[i] is
 * GW_JSON_LINE; otherwise status[i] is GW_JSON_GENERAL and nothing is written for it. Lines
 * come out in payload order. Returns the bytes written, or GW_ENOMEM when out_cap is below
 * gw_json_lines_bound. */
int64_t gw_json_lines(const gw_json_spec *spec, const char *data, const uint64_t *ends,
                      uint32_t n, const int64_t *arrival_ns, char *out, size_t out_cap,
                      uint8_t *status);
/* cdef: end */

#endif
