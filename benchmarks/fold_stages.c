/* The C fold of benchmarks/fold_stages.py by stage: each stage timed over all blocks (thread
 * CPU time, best of the repetitions), in ns a point.
 *
 *   fold_stages RING REFS REPEAT    REFS: the blocks as (series, seq, offset, length, min_ts,
 *                                   max_ts) int64 LE, in order of series and min_ts */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "codec_internal.h"
#include "gw_fold.h"

typedef struct { int64_t series, seq, offset, length, min_ts, max_ts; } block_ref;
enum { PREAD, ENTRY_CRC, BLOCK_CRC, DECODE, INT_COLUMN, FLOAT_COLUMN, FOLD, STAGES };
static const char *names[STAGES] = {
    "pread of the entries", "entry CRC32C", "block CRC32C", "block decode (all of it)",
    "value column: its integer column", "value column (integers + q / 10^k)",
    "fold: read, check, decode, fold"};

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static size_t skip_varint(const uint8_t *b, size_t p) { while (b[p] & 0x80) p++; return p + 1; }

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: fold_stages RING REFS REPEAT\n"); return 2; }
    int repeat = atoi(argv[3]);
    FILE *f = fopen(argv[2], "rb");
    if (!f || fseek(f, 0, SEEK_END)) return 2;
    size_t nb = (size_t)ftell(f) / sizeof(block_ref);
    block_ref *refs = malloc(nb * sizeof *refs);
    rewind(f);
    if (!refs || fread(refs, sizeof *refs, nb, f) != nb) return 2;
    fclose(f);
    gw_ring *ring;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0 || gw_ring_open(argv[1], GW_RING_READONLY, &ring)) { perror(argv[1]); return 2; }
    /* every entry in memory, for the stages after pread */
    uint8_t **entry = malloc(nb * sizeof *entry), *scratch = malloc(GW_RING_ENTRY_HEADER + (1 << 24));
    uint32_t *len = malloc(nb * 4), *n = malloc(nb * 4);
    size_t *values_at = malloc(nb * sizeof *values_at), points = 0, max_n = 0;
    for (size_t i = 0; i < nb; i++) {
        gw_ring_entry e;
        entry[i] = malloc((size_t)refs[i].length);
        if (gw_ring_read_entry(ring, (uint64_t)refs[i].offset, (uint32_t)refs[i].length,
                               (uint64_t)refs[i].seq, entry[i], &e) != GW_OK
            || e.type != GW_FLOAT) { fprintf(stderr, "block %zu unreadable\n", i); return 1; }
        len[i] = e.block_len;
        n[i] = e.n;
        points += e.n;
        if (e.n > max_n) max_n = e.n;
        /* the value column of a regular block: after magic, version, type, flags, n, min_ts, span */
        const uint8_t *b = entry[i] + GW_RING_ENTRY_HEADER;
        if (!(b[4] & GW_BLOCK_REGULAR)) { fprintf(stderr, "block %zu not regular\n", i); return 1; }
        values_at[i] = skip_varint(b, skip_varint(b, skip_varint(b, 4)) + 8);
    }
    int64_t *ts = malloc(max_n * 8);
    uint64_t *w = malloc(max_n * 8);
    double best[STAGES];
    for (int s = 0; s < STAGES; s++) best[s] = 1e30;
    volatile uint64_t sink = 0;
    for (int rep = 0; rep < repeat; rep++) {
        double t[STAGES + 1];
        t[0] = cpu_now();
        for (size_t i = 0; i < nb; i++)
            sink += (uint64_t)pread(fd, scratch, (size_t)refs[i].length, refs[i].offset);
        t[1] = cpu_now();
        for (size_t i = 0; i < nb; i++) sink += gw_crc32c(0, entry[i] + 8, GW_RING_ENTRY_HEADER - 8 + len[i]);
        t[2] = cpu_now();
        for (size_t i = 0; i < nb; i++) sink += gw_crc32c(0, entry[i] + GW_RING_ENTRY_HEADER, len[i] - 4);
        t[3] = cpu_now();
        for (size_t i = 0; i < nb; i++)
            sink += (uint64_t)gw_block_decode_n(entry[i] + GW_RING_ENTRY_HEADER, len[i], n[i], ts, w);
        t[4] = cpu_now();
        for (size_t i = 0; i < nb; i++) {   /* skips the float column's scheme, digits, 0 exceptions */
            gw_codec_in in = {entry[i] + GW_RING_ENTRY_HEADER, values_at[i] + 3, len[i] - 4, 0};
            sink += (uint64_t)gw_codec_int_decode(&in, w, n[i]);
        }
        t[5] = cpu_now();
        for (size_t i = 0; i < nb; i++) {
            gw_codec_in in = {entry[i] + GW_RING_ENTRY_HEADER, values_at[i], len[i] - 4, 0};
            sink += (uint64_t)gw_codec_float_decode(&in, w, n[i]);
        }
        t[6] = cpu_now();
        for (size_t a = 0, z; a < nb; a = z) {   /* 10-minute means, a fold per series */
            for (z = a; z < nb && refs[z].series == refs[a].series; z++) {}
            gw_fold *fold = gw_fold_new(GW_FLOAT, 0, 600 * 1000000000LL, 0, refs[a].min_ts,
                                        refs[z - 1].max_ts + 1, 1u << 20);
            gw_fold_ref *fr = malloc((z - a) * sizeof *fr);
            int32_t *status = malloc((z - a) * 4);
            uint32_t done;
            for (size_t k = a; k < z; k++)
                fr[k - a] = (gw_fold_ref){refs[k].seq, refs[k].offset, refs[k].length,
                                          refs[k].min_ts, refs[k].max_ts};
            if (gw_fold_blocks(fold, ring, fr, (uint32_t)(z - a), status, &done) < 0) return 1;
            gw_fold_windows out;
            gw_fold_finish(fold, &out);
            sink += out.n;
            gw_fold_free(fold);
            free(fr);
            free(status);
        }
        t[7] = cpu_now();
        for (int s = 0; s < STAGES; s++) if (t[s + 1] - t[s] < best[s]) best[s] = t[s + 1] - t[s];
    }
    printf("%zu blocks, %zu points\n", nb, points);
    for (int s = 0; s < STAGES; s++)
        printf("%-40s %8.2f ms %7.2f ns a point\n", names[s], best[s] * 1e3, best[s] * 1e9 / (double)points);
    return 0;
}
