/* Drives the line protocol parser and serializer over input files, for a build with
 * AddressSanitizer and UndefinedBehaviorSanitizer (see test_lp_sanitizer.py).
 *
 * Every prefix of each input is copied into a buffer of exactly its length, so reading one
 * byte past the end is caught, and parsed at every precision. The same bytes also serve as a
 * series key and as 64-bit words for the serializer. Exits 1 when a result is inconsistent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_lineproto.h"

#define MAX_KEPT 3

static int check_parse(const char *data, size_t len) {
    static const int64_t precisions[] = {1, 1000, 1000000, 1000000000};
    for (size_t p = 0; p < sizeof precisions / sizeof *precisions; p++) {
        gw_batch *b = gw_batch_new();
        gw_lp_error errors[MAX_KEPT];
        gw_lp_stats st;
        if (!b) return 1;
        int rc = gw_lp_parse(b, data, len, precisions[p], 42, errors, MAX_KEPT, &st);
        int bad = rc != GW_OK || st.points != b->n || st.bad_lines > st.lines ||
                  st.n_errors > MAX_KEPT || st.n_errors > st.bad_lines;
        for (uint32_t k = 0; k < st.n_errors; k++)
            bad |= errors[k].line < 1 || errors[k].column < 1 || errors[k].reason < 1 ||
                   errors[k].reason > GW_LP_E_LAST;
        for (uint32_t k = 0; k < b->n; k++) {
            const gw_point *pt = &b->points[k];
            bad |= (uint64_t)pt->key_off + pt->key_len > b->arena_len;
            bad |= gw_lp_check_series_key(b->arena + pt->key_off, pt->key_len) != 0;
            if (pt->type == GW_STRING) bad |= pt->value + pt->str_len > b->arena_len;
        }
        gw_batch_free(b);
        if (bad) return 1;
    }
    return 0;
}

static int check_format(const char *data, size_t len) {
    size_t n = len / 16;
    int64_t *ts = malloc(n * sizeof *ts + 1);
    uint64_t *values = malloc(n * sizeof *values + 1);
    if (!ts || !values) return 1;
    memcpy(ts, data, n * 8);
    memcpy(values, data + n * 8, n * 8);
    int bad = 0;
    for (uint8_t type = GW_FLOAT; type <= GW_BOOL; type++) {
        size_t cap = gw_lp_format_bound(3, n);
        char *out = malloc(cap + 1);
        uint64_t skipped = 0;
        if (!out) return 1;
        int64_t w = gw_lp_format_series("m f", 3, type, ts, values, n, out, cap, &skipped);
        bad |= w < 0 || (size_t)w > cap || skipped > n;
        if (!bad) {
            /* what was written must parse back, one good line per point not skipped */
            gw_batch *b = gw_batch_new();
            gw_lp_stats st;
            if (!b) return 1;
            gw_lp_parse(b, out, (size_t)w, 1, 0, NULL, 0, &st);
            bad |= st.bad_lines != 0 || st.points != n - skipped;
            gw_batch_free(b);
        }
        free(out);
    }
    free(ts);
    free(values);
    return bad;
}

int main(int argc, char **argv) {
    unsigned long runs = 0;
    for (int a = 1; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (!f) { perror(argv[a]); return 2; }
        static char buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        size_t step = len <= 300 ? 1 : len / 97 + 1;
        for (size_t cut = 0;; cut = cut + step < len ? cut + step : len) {
            char *copy = malloc(cut ? cut : 1);
            if (!copy) return 2;
            memcpy(copy, buf, cut);
            gw_lp_check_series_key(copy, cut);
            if (check_parse(copy, cut) || check_format(copy, cut)) {
                fprintf(stderr, "inconsistent result on %s, first %zu bytes\n", argv[a], cut);
                free(copy);
                return 1;
            }
            free(copy);
            runs++;
            if (cut == len) break;
        }
    }
    printf("%lu inputs checked\n", runs);
    return 0;
}
