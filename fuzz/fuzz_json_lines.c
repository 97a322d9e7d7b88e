/* Fuzz target for the flat-JSON converter (native/src/jsonlines.c), libFuzzer with ASan+UBSan.
 *
 * The first byte picks the spec (time key and unit, measurement key, tag keys, field key and
 * string field lists, base tags); the rest is split at 0x1e bytes into payloads. Each payload
 * is converted alone from a buffer of exactly its size (so any read past its end is caught),
 * into an output buffer of exactly gw_json_lines_bound bytes (so any write past it is caught).
 * Then the output must hold exactly one line per taken payload, as the line protocol parser
 * counts lines: nothing may turn into a comment, a blank line or two lines.
 */
#include <stdlib.h>
#include <string.h>

#include "gw_jsonlines.h"
#include "gw_lineproto.h"

#define SET(field, text) (spec.field = (text), spec.field##_len = (uint32_t)(sizeof(text) - 1))

static void check(const gw_json_spec *spec, const uint8_t *data, size_t len) {
    char *payload = malloc(len ? len : 1);
    if (!payload) return;
    memcpy(payload, data, len);
    uint64_t end = len;
    int64_t arrival = 1700000000000000000LL;
    size_t cap = gw_json_lines_bound(spec, len, 1);
    char *out = malloc(cap);
    uint8_t status = 0xAA;
    if (out) {
        int64_t written = gw_json_lines(spec, payload, &end, 1, &arrival, out, cap, &status);
        if (written < 0 || (size_t)written > cap) abort();
        if (status != GW_JSON_LINE && status != GW_JSON_GENERAL) abort();
        if (status == GW_JSON_GENERAL && written != 0) abort();
        if (status == GW_JSON_LINE) {
            if (written < 2 || out[written - 1] != '\n' || memchr(out, '\n', (size_t)written - 1))
                abort();
            gw_batch *b = gw_batch_new();
            gw_lp_stats stats;
            gw_lp_error err;
            if (b && gw_lp_parse(b, out, (size_t)written, 1, 0, &err, 1, &stats) == GW_OK
                && stats.lines != 1)
                abort();
            gw_batch_free(b);
        }
        if (gw_json_lines(spec, payload, &end, 1, &arrival, out, cap - 1, &status) != GW_ENOMEM)
            abort();   /* a buffer below the bound is refused, not overrun */
    }
    free(out);
    free(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    gw_json_spec spec;
    memset(&spec, 0, sizeof spec);
    if (mode & 1) SET(measurement, "env");
    if (mode & 2) { SET(base_tags, ",site=a\\ b"); SET(base_tag_keys, "site"); }
    if (mode & 4) { SET(time_key, "ts"); spec.time_scale = (mode & 8) ? 1000000000 : 0; }
    if (mode & 16) SET(measurement_key, "kind");
    if (mode & 32) SET(tag_keys, "room\0dev\0site");
    if (mode & 64) SET(field_keys, "t\0h\0note");
    if (mode & 128) SET(string_fields, "note\0state");
    const uint8_t *p = data + 1, *end = data + size;
    while (p <= end) {
        const uint8_t *stop = memchr(p, 0x1e, (size_t)(end - p));
        if (!stop) stop = end;
        check(&spec, p, (size_t)(stop - p));
        p = stop + 1;
    }
    return 0;
}
