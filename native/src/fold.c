/* Window aggregation of a series from its ring blocks (see gw_fold.h for the contract). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gw_aggregate.h"
#include "gw_codec.h"
#include "gw_fold.h"

#define N_COLUMNS 15

struct gw_fold {
    uint8_t type;
    uint32_t want;            /* GW_FOLD_WANT_* */
    int64_t every, offset, lo, hi;
    uint32_t max_windows;
    int64_t newest;           /* the latest point folded, for the order check */
    int any;                  /* a point was folded */
    /* windows: column arrays of room entries; n closed windows plus the open one */
    uint32_t n, room;
    int open;
    int64_t *start, *isum, *min_ts, *max_ts, *first_ts, *last_ts;
    uint64_t *count, *min_v, *max_v, *first_v, *last_v;
    double *sum, *m2, *min, *max;
    /* scratch, reused from block to block */
    uint8_t *entry;
    size_t entry_room;
    int64_t *ts;
    uint64_t *words;
    double *values;
    uint32_t scratch_room;
    int32_t *status;          /* gw_fold_many's block statuses of a series */
    uint32_t status_room;
    /* gw_fold_many's output: the wanted columns of a batch's windows, series after series */
    void *many[N_COLUMNS];
    uint32_t many_n, many_room;
};

gw_fold *gw_fold_new(uint8_t type, uint32_t want, int64_t every, int64_t offset, int64_t lo,
                     int64_t hi, uint32_t max_windows) {
    if (every <= 0 || lo >= hi || type < GW_FLOAT || type > GW_BOOL) return NULL;
    gw_fold *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    offset %= every;
    if (offset < 0) offset += every;
    *f = (gw_fold){.type = type, .want = want, .every = every, .offset = offset, .lo = lo,
                   .hi = hi, .max_windows = max_windows};
    return f;
}

void gw_fold_free(gw_fold *f) {
    if (!f) return;
    void *cols[] = {f->start, f->isum, f->min_ts, f->max_ts, f->first_ts, f->last_ts, f->count,
                    f->min_v, f->max_v, f->first_v, f->last_v, f->sum, f->m2, f->min, f->max};
    for (int i = 0; i < N_COLUMNS; i++) {
        free(cols[i]);
        free(f->many[i]);
    }
    free(f->status);
    free(f->entry);
    free(f->ts);
    free(f->words);
    free(f->values);
    free(f);
}

static int grow(void **p, size_t size) {
    void *q = realloc(*p, size);
    if (!q) return 0;
    *p = q;
    return 1;
}

/* Room for the windows the range can hold, up to 1,024 (120 KiB): the columns of a day of
 * 10-minute windows in one allocation instead of growing from 64 in steps, and a sparse
 * series over a long range of short windows not paying for the range. */
static uint32_t first_room(const gw_fold *f) {
    uint64_t windows = ((uint64_t)f->hi - (uint64_t)f->lo) / (uint64_t)f->every + 2;
    return windows < 64 ? 64 : windows > 1024 ? 1024 : (uint32_t)windows;
}

static int windows_reserve(gw_fold *f, uint32_t need) {
    if (need <= f->room) return 1;
    if (need > f->max_windows) return 0;
    uint32_t room = f->room ? f->room : first_room(f);
    while (room < need) room = room > UINT32_MAX / 2 ? UINT32_MAX : room * 2;
    if (room > f->max_windows) room = f->max_windows;
    void **cols[] = {(void **)&f->start, (void **)&f->isum, (void **)&f->min_ts,
                     (void **)&f->max_ts, (void **)&f->first_ts, (void **)&f->last_ts,
                     (void **)&f->count, (void **)&f->min_v, (void **)&f->max_v,
                     (void **)&f->first_v, (void **)&f->last_v, (void **)&f->sum,
                     (void **)&f->m2, (void **)&f->min, (void **)&f->max};
    for (int i = 0; i < N_COLUMNS; i++)
        if (!grow(cols[i], (size_t)room * 8)) return 0;
    f->room = room;
    return 1;
}

static int scratch_reserve(gw_fold *f, uint32_t n) {
    if (n <= f->scratch_room) return 1;
    if (!grow((void **)&f->ts, (size_t)n * 8) || !grow((void **)&f->words, (size_t)n * 8)
        || !grow((void **)&f->values, (size_t)n * 8)) return 0;
    f->scratch_room = n;
    return 1;
}

static void as_doubles(uint8_t type, const uint64_t *w, double *out, uint32_t n) {
    switch (type) {
    case GW_FLOAT: memcpy(out, w, (size_t)n * 8); break;
    case GW_INT:   for (uint32_t i = 0; i < n; i++) out[i] = (double)(int64_t)w[i]; break;
    case GW_BOOL:  for (uint32_t i = 0; i < n; i++) out[i] = w[i] ? 1.0 : 0.0; break;
    default:       for (uint32_t i = 0; i < n; i++) out[i] = (double)w[i]; break;
    }
}

/* First index in [a, z) whose time is >= t (z when none). */
static uint32_t lower_bound(const int64_t *ts, uint32_t a, uint32_t z, int64_t t) {
    while (a < z) {
        uint32_t mid = a + (z - a) / 2;
        if (ts[mid] < t) a = mid + 1; else z = mid;
    }
    return a;
}

/* Up to SLICES windows' slices are summed at once: a window's sum is one chain of additions
 * (each waits for the one before, 3 to 4 cycles on x86 and the Pi's cores), so four
 * independent chains side by side go about as fast as one alone. */
#define SLICES 4

/* x when it is a number, else +0.0 (NaN is skipped); *c counts the numbers. Adding +0.0 is
 * the same as skipping: a sum started at +0.0 never becomes -0.0, and t + 0.0 = t for every
 * other t, NaN and infinities included. */
static inline double number_or_zero(double x, uint64_t *c) {
    uint64_t b;
    memcpy(&b, &x, 8);
    uint64_t is_number = (b & 0x7fffffffffffffffull) <= 0x7ff0000000000000ull;
    *c += is_number;
    b &= (uint64_t)0 - is_number;
    memcpy(&x, &b, 8);
    return x;
}

/* total[k] + the values of slice k, [cut[k], cut[k + 1]), that are not NaN, added one by one
 * in time order: a window's sum is then the same bits however its points were cut into
 * blocks, runs or batches (a task's rerun of a window writes back the value it wrote).
 * count[k]: the values added. m <= SLICES slices, summed side by side. */
static void sum_slices(const double *v, const uint32_t *cut, int m, double *total,
                       uint64_t *count) {
    uint32_t common = UINT32_MAX;
    for (int k = 0; k < m; k++) {
        count[k] = 0;
        if (cut[k + 1] - cut[k] < common) common = cut[k + 1] - cut[k];
    }
    if (m == SLICES) {
        const double *v0 = v + cut[0], *v1 = v + cut[1], *v2 = v + cut[2], *v3 = v + cut[3];
        double t0 = total[0], t1 = total[1], t2 = total[2], t3 = total[3];
        uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (uint32_t i = 0; i < common; i++) {
            t0 += number_or_zero(v0[i], &c0);
            t1 += number_or_zero(v1[i], &c1);
            t2 += number_or_zero(v2[i], &c2);
            t3 += number_or_zero(v3[i], &c3);
        }
        total[0] = t0, total[1] = t1, total[2] = t2, total[3] = t3;
        count[0] = c0, count[1] = c1, count[2] = c2, count[3] = c3;
    } else {
        common = 0;
    }
    for (int k = 0; k < m; k++) {
        double t = total[k];
        uint64_t c = count[k];
        for (uint32_t i = cut[k] + common; i < cut[k + 1]; i++) t += number_or_zero(v[i], &c);
        total[k] = t;
        count[k] = c;
    }
}

/* The sum the slice of window s adds to: the open window's when the slice goes on with it. */
static double sum_before(const gw_fold *f, int64_t s) {
    return f->open && f->start[f->n] == s ? f->sum[f->n] : 0.0;
}

/* Folds points [a, z) of one window (start s) into the fold's windows, given their sum
 * (sum_slices: total, from sum_before, and c values); computes the min/max, m2 and integer
 * sum only when wanted. */
static int fold_slice(gw_fold *f, int64_t s, const int64_t *ts, const uint64_t *w,
                      const double *v, uint32_t a, uint32_t z, double total, uint64_t c) {
    if (c == 0) return 1;   /* every value NaN: skipped */
    uint32_t fi = a, la = z;
    while (v[fi] != v[fi]) fi++;
    while (v[la - 1] != v[la - 1]) la--;
    la--;
    uint32_t k = f->n;
    int same = f->open && f->start[k] == s;   /* the open window goes on */
    double before = same ? f->sum[k] : 0.0, sum = total - before;
    double mn = v[fi], mx = v[fi], m2 = 0.0;
    uint32_t mi = fi, ma = fi;
    if (f->want & GW_FOLD_WANT_MINMAX) {
        for (uint32_t i = fi + 1; i <= la; i++) {
            double x = v[i];
            if (x < mn) { mn = x; mi = i; }
            else if (x > mx) { mx = x; ma = i; }
        }
    }
    double mean = sum / (double)c;
    if (f->want & GW_FOLD_WANT_M2) {
        for (uint32_t i = fi; i <= la; i++) {
            double x = v[i];
            if (x == x) m2 += (x - mean) * (x - mean);
        }
    }
    int64_t isum = 0;
    if ((f->want & GW_FOLD_WANT_ISUM) && (f->type == GW_INT || f->type == GW_UINT)) {
        uint64_t u = 0;
        for (uint32_t i = fi; i <= la; i++) if (v[i] == v[i]) u += w[i];
        isum = (int64_t)u;
    }
    if (same) {
        uint64_t n0 = f->count[k], n = n0 + c;
        double delta = mean - before / (double)n0;
        f->m2[k] += m2 + delta * delta * ((double)n0 * (double)c / (double)n);
        f->count[k] = n;
        f->sum[k] = total;
        f->isum[k] = (int64_t)((uint64_t)f->isum[k] + (uint64_t)isum);
        if (mn < f->min[k]) { f->min[k] = mn; f->min_ts[k] = ts[mi]; f->min_v[k] = w[mi]; }
        if (mx > f->max[k]) { f->max[k] = mx; f->max_ts[k] = ts[ma]; f->max_v[k] = w[ma]; }
        f->last_ts[k] = ts[la];
        f->last_v[k] = w[la];
        return 1;
    }
    if (f->open) k = ++f->n;
    if (!windows_reserve(f, k + 1)) return 0;
    f->open = 1;
    f->start[k] = s;
    f->count[k] = c;
    f->sum[k] = total;
    f->isum[k] = isum;
    f->m2[k] = m2;
    f->min[k] = mn;
    f->max[k] = mx;
    f->min_ts[k] = ts[mi];
    f->min_v[k] = w[mi];
    f->max_ts[k] = ts[ma];
    f->max_v[k] = w[ma];
    f->first_ts[k] = ts[fi];
    f->first_v[k] = w[fi];
    f->last_ts[k] = ts[la];
    f->last_v[k] = w[la];
    return 1;
}

/* Whether ts[0..n) strictly increases (four compares a step, no branch on each). */
static int increasing(const int64_t *ts, uint32_t n) {
    int bad = 0;
    uint32_t i = 1;
    for (; i + 4 <= n; i += 4)
        bad |= (ts[i] <= ts[i - 1]) | (ts[i + 1] <= ts[i]) | (ts[i + 2] <= ts[i + 1])
               | (ts[i + 3] <= ts[i + 2]);
    for (; i < n; i++) bad |= ts[i] <= ts[i - 1];
    return !bad;
}

/* Folds points in time order; v holds the values as doubles. `increasing_known`: the
 * caller knows the times strictly increase (a regular block). Returns the points in
 * [lo, hi) or an error. */
static int64_t fold_run(gw_fold *f, const int64_t *ts, const uint64_t *w, const double *v,
                        uint32_t n, int increasing_known) {
    if (n == 0) return 0;
    if (f->any && ts[0] <= f->newest) return GW_FOLD_UNORDERED;
    if (!increasing_known && !increasing(ts, n)) return GW_FOLD_UNORDERED;
    f->any = 1;
    f->newest = ts[n - 1];
    uint32_t a = lower_bound(ts, 0, n, f->lo), z = lower_bound(ts, a, n, f->hi);
    /* Slices of about the same length are summed SLICES at a time, each other alone: a run's
     * first and last slices are mostly parts of windows, and the side by side sums run for as
     * long as the shortest of them. */
    uint32_t cut[SLICES + 1] = {a};
    int64_t start[SLICES];
    int m = 0;
    for (uint32_t i = a; i < z || m;) {
        uint32_t next = i;
        int64_t s = 0;
        if (i < z) {
            s = gw_window_start(ts[i], f->every, f->offset);
            /* the window's end, saturated: no later point lies beyond INT64_MAX */
            next = (uint64_t)s + (uint64_t)f->every > (uint64_t)INT64_MAX && s >= 0
                       ? z : lower_bound(ts, i + 1, z, s + f->every);
        }
        uint32_t len = next - i, first = m ? cut[1] - cut[0] : len;
        if (m && (i == z || m == SLICES || len < first - first / 8 || len > first + first / 8)) {
            double total[SLICES] = {sum_before(f, start[0])};
            uint64_t count[SLICES];
            sum_slices(v, cut, m, total, count);
            for (int k = 0; k < m; k++)
                if (!fold_slice(f, start[k], ts, w, v, cut[k], cut[k + 1], total[k], count[k]))
                    return GW_ENOMEM;
            cut[0] = i;
            m = 0;
        }
        if (i == z) break;
        start[m] = s;
        cut[++m] = next;
        i = next;
    }
    return (int64_t)(z - a);
}

int64_t gw_fold_columns(gw_fold *f, const int64_t *ts, const uint64_t *values, uint32_t n) {
    if (!scratch_reserve(f, n)) return GW_ENOMEM;
    as_doubles(f->type, values, f->values, n);
    return fold_run(f, ts, values, f->values, n, 0);
}

/* Blocks are decoded one after another into one run of about RUN_POINTS points before it is
 * folded: a run holds several windows, whose sums sum_slices adds side by side (a block of
 * 1,024 points at 1 Hz holds two or three slices of 10-minute windows, four blocks six or seven). */
#define RUN_POINTS 4096

/* Folds the run of points in the scratch (`have`, `regular`: every block of it regular). */
static int64_t fold_scratch(gw_fold *f, uint32_t *have, int regular) {
    if (*have == 0) return 0;
    int64_t got = fold_run(f, f->ts, f->words, f->values, *have, regular);
    *have = 0;
    return got;
}

int64_t gw_fold_blocks(gw_fold *f, struct gw_ring *r, const gw_fold_ref *refs, uint32_t n,
                       int32_t *status, uint32_t *done) {
    int64_t points = 0, got;
    uint32_t have = 0;        /* points of the run decoded so far */
    int regular = 1;          /* every block of the run is regular */
    *done = 0;
    for (uint32_t b = 0; b < n; b++) {
        /* the next block shares time with this one: the caller merges them */
        if (b + 1 < n && refs[b + 1].min_ts <= refs[b].max_ts) break;
        *done = b + 1;
        if (refs[b].length < 0
            || (uint64_t)refs[b].length > GW_RING_ENTRY_HEADER + (uint64_t)GW_RING_MAX_BLOCK + 8) {
            status[b] = GW_FOLD_DAMAGED;
            continue;
        }
        uint32_t length = (uint32_t)refs[b].length;
        if (length > f->entry_room) {
            if (!grow((void **)&f->entry, length)) return GW_ENOMEM;
            f->entry_room = length;
        }
        gw_ring_entry e;
        int rc = gw_ring_read_entry(r, refs[b].offset, length, refs[b].seq, f->entry, &e);
        if (rc == GW_EIO) return GW_EIO;
        if (rc != GW_OK) {
            status[b] = rc == GW_RING_STALE ? GW_FOLD_STALE : GW_FOLD_DAMAGED;
            continue;
        }
        if (e.type != f->type) { status[b] = GW_FOLD_BAD_BLOCK; continue; }
        if (have && have + e.n > RUN_POINTS) {
            if ((got = fold_scratch(f, &have, regular)) < 0) return got;
            points += got;
            regular = 1;
        }
        if (!scratch_reserve(f, have + e.n)) return GW_ENOMEM;
        if (gw_block_decode_n(f->entry + GW_RING_ENTRY_HEADER, e.block_len, e.n, f->ts + have,
                              f->words + have) != GW_OK) {
            status[b] = GW_FOLD_BAD_BLOCK;
            continue;
        }
        status[b] = GW_FOLD_OK;
        as_doubles(f->type, f->words + have, f->values + have, e.n);
        /* a regular block with a span strictly increases; the check is left out, but not
         * the one between this block and the run's last point */
        gw_block_info info;
        regular &= gw_block_header_read(f->entry + GW_RING_ENTRY_HEADER, e.block_len, &info)
                       == GW_OK && (info.flags & GW_BLOCK_REGULAR)
                   && (info.n == 1 || info.max_ts > info.min_ts);
        if (have && f->ts[have] <= f->ts[have - 1]) return GW_FOLD_UNORDERED;
        have += e.n;
        if (have >= RUN_POINTS) {
            if ((got = fold_scratch(f, &have, regular)) < 0) return got;
            points += got;
            regular = 1;
        }
    }
    if ((got = fold_scratch(f, &have, regular)) < 0) return got;
    return points + got;
}

int gw_fold_finish(gw_fold *f, gw_fold_windows *out) {
    if (f->open) { f->n++; f->open = 0; }
    *out = (gw_fold_windows){f->n, f->start, f->count, f->sum, f->isum, f->m2, f->min, f->max,
                             f->min_ts, f->max_ts, f->first_ts, f->last_ts,
                             f->min_v, f->max_v, f->first_v, f->last_v};
    return GW_OK;
}

/* The window columns in the order of gw_fold_windows (and of gw_fold_many's `columns` bits). */
static void *window_column(const gw_fold *f, int c) {
    void *cols[N_COLUMNS] = {f->start, f->count, f->sum, f->isum, f->m2, f->min, f->max,
                             f->min_ts, f->max_ts, f->first_ts, f->last_ts,
                             f->min_v, f->max_v, f->first_v, f->last_v};
    return cols[c];
}

/* Appends the finished fold's windows to the batch output (the columns asked for). */
static int many_append(gw_fold *f, uint32_t columns) {
    uint32_t need = f->many_n + f->n;
    if (need < f->many_n) return 0;
    if (need > f->many_room) {
        uint32_t room = f->many_room ? f->many_room : 1024;
        while (room < need) room = room > UINT32_MAX / 2 ? UINT32_MAX : room * 2;
        for (int c = 0; c < N_COLUMNS; c++)
            if ((columns >> c & 1) && !grow(&f->many[c], (size_t)room * 8)) return 0;
        f->many_room = room;
    }
    for (int c = 0; c < N_COLUMNS; c++)
        if ((columns >> c & 1) && f->n)
            memcpy((char *)f->many[c] + (size_t)f->many_n * 8, window_column(f, c),
                   (size_t)f->n * 8);
    f->many_n = need;
    return 1;
}

/* One series of gw_fold_many: its blocks, then its head points, into the fold's windows
 * (emptied first). The points folded, or GW_FOLD_NOT_PLAIN. */
static int64_t fold_one(gw_fold *f, struct gw_ring *r, uint8_t type, const gw_fold_ref *refs,
                        uint32_t n_refs, const int64_t *head_ts, const uint64_t *head_v,
                        uint32_t n_head) {
    if (type < GW_FLOAT || type > GW_BOOL) return GW_FOLD_NOT_PLAIN;
    f->type = type;
    f->n = 0;
    f->open = 0;
    f->any = 0;
    if (n_refs > f->status_room) {
        if (!grow((void **)&f->status, (size_t)n_refs * sizeof *f->status))
            return GW_FOLD_NOT_PLAIN;
        f->status_room = n_refs;
    }
    uint32_t done = 0;
    int64_t points = gw_fold_blocks(f, r, refs, n_refs, f->status, &done);
    if (points < 0 || done < n_refs) return GW_FOLD_NOT_PLAIN;   /* an error, an overlap */
    for (uint32_t b = 0; b < n_refs; b++)
        if (f->status[b] != GW_FOLD_OK) return GW_FOLD_NOT_PLAIN;
    if (n_head) {
        int64_t got = gw_fold_columns(f, head_ts, head_v, n_head);
        if (got < 0) return GW_FOLD_NOT_PLAIN;
        points += got;
    }
    if (f->open) { f->n++; f->open = 0; }
    return points;
}

int64_t gw_fold_many(gw_fold *f, struct gw_ring *r, uint32_t n, const uint8_t *types,
                     const gw_fold_ref *refs, const uint32_t *refs_at, const int64_t *head_ts,
                     const uint64_t *head_v, const uint32_t *head_at, uint32_t columns,
                     int64_t *points, uint32_t *windows_at, gw_fold_windows *out) {
    columns &= (1u << N_COLUMNS) - 1;
    f->many_n = 0;
    for (uint32_t k = 0; k < n; k++) {
        windows_at[k] = f->many_n;
        points[k] = fold_one(f, r, types[k], refs + refs_at[k], refs_at[k + 1] - refs_at[k],
                             head_ts + head_at[k], head_v + head_at[k],
                             head_at[k + 1] - head_at[k]);
        if (points[k] >= 0 && !many_append(f, columns)) return GW_ENOMEM;
    }
    windows_at[n] = f->many_n;
    /* the columns not asked for are left NULL (none of their rows is read) */
    const void *c[N_COLUMNS];
    for (int i = 0; i < N_COLUMNS; i++) c[i] = columns >> i & 1 ? f->many[i] : NULL;
    *out = (gw_fold_windows){f->many_n, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8],
                             c[9], c[10], c[11], c[12], c[13], c[14]};
    return f->many_n;
}
