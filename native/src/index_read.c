/* The window fold's block lists read from the block index file (see gw_index.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_index.h"

/* The handful of SQLite's C interface used here (sqlite3.h, stable since 3.5): declared here
 * rather than included, since the build root of the image has no SQLite headers. */
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
#define SQLITE_OK 0
#define SQLITE_ROW 100
#define SQLITE_DONE 101
#define SQLITE_OPEN_READONLY 0x00000001
#define SQLITE_OPEN_NOMUTEX 0x00008000

static struct {
    int (*open_v2)(const char *, sqlite3 **, int, const char *);
    int (*close)(sqlite3 *);
    int (*busy_timeout)(sqlite3 *, int);
    const char *(*errmsg)(sqlite3 *);
    int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
    int (*bind_int64)(sqlite3_stmt *, int, int64_t);
    int (*step)(sqlite3_stmt *);
    int64_t (*column_int64)(sqlite3_stmt *, int);
    int (*reset)(sqlite3_stmt *);
    int (*finalize)(sqlite3_stmt *);
} sq;
static const char *sq_missing;   /* why SQLite could not be used, once resolved */
static pthread_once_t sq_once = PTHREAD_ONCE_INIT;

static void sq_resolve(void) {
    void *h = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_NOLOAD);
    if (!h) { sq_missing = "libsqlite3.so.0 is not loaded in this process"; return; }
    struct { void **slot; const char *name; } want[] = {
        {(void **)&sq.open_v2, "sqlite3_open_v2"}, {(void **)&sq.close, "sqlite3_close"},
        {(void **)&sq.busy_timeout, "sqlite3_busy_timeout"}, {(void **)&sq.errmsg, "sqlite3_errmsg"},
        {(void **)&sq.prepare_v2, "sqlite3_prepare_v2"}, {(void **)&sq.bind_int64, "sqlite3_bind_int64"},
        {(void **)&sq.step, "sqlite3_step"}, {(void **)&sq.column_int64, "sqlite3_column_int64"},
        {(void **)&sq.reset, "sqlite3_reset"}, {(void **)&sq.finalize, "sqlite3_finalize"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        *want[i].slot = dlsym(h, want[i].name);
        if (!*want[i].slot) { sq_missing = "libsqlite3.so.0 lacks a function it needs"; return; }
    }
    /* the handle stays open: the library is Python's, loaded for the life of the process */
}

/* The rows of one series' blocks, in the order of the index on (bucket, series, max_ts), which
 * needs no sort in SQLite; nearly always already the fold's order (min_ts, seq), else sorted
 * here. The bound ?5 on max_ts ends the index's range where the range's blocks end, not at the
 * series' newest block. */
static const char BLOCKS_SQL[] =
    "SELECT seq, offset, length, min_ts, max_ts FROM blocks "
    "WHERE bucket = ?1 AND series = ?2 AND max_ts >= ?3 AND max_ts <= ?5 AND min_ts < ?4 "
    "ORDER BY max_ts";

/* A query reads each page of its series' rows about once: a small page cache (256 KiB instead
 * of SQLite's 2 MB) keeps a reader per fold thread from growing the process. */
static const char CACHE_SQL[] = "PRAGMA cache_size = -256";
static const char BEGIN_SQL[] = "BEGIN";
static const char END_SQL[] = "COMMIT";

struct gw_index_reader {
    sqlite3 *db;
    sqlite3_stmt *blocks, *begin, *end;
    gw_fold_ref *refs;
    uint32_t room;
    char error[256];
};

static void copy_why(char *buf, size_t room, const char *why) {
    if (room) snprintf(buf, room, "%s", why);
}

gw_index_reader *gw_index_reader_open(const char *path, int busy_ms, char *why_buf,
                                      size_t why_room) {
    pthread_once(&sq_once, sq_resolve);
    if (sq_missing) { copy_why(why_buf, why_room, sq_missing); return NULL; }
    gw_index_reader *r = calloc(1, sizeof *r);
    if (!r) { copy_why(why_buf, why_room, "out of memory"); return NULL; }
    /* one thread at a time uses a reader: SQLite's own mutex would only cost */
    sqlite3_stmt *pragma = NULL;
    if (sq.open_v2(path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK
        || sq.busy_timeout(r->db, busy_ms) != SQLITE_OK
        || sq.prepare_v2(r->db, CACHE_SQL, -1, &pragma, NULL) != SQLITE_OK
        || sq.step(pragma) != SQLITE_DONE
        || sq.prepare_v2(r->db, BLOCKS_SQL, -1, &r->blocks, NULL) != SQLITE_OK
        || sq.prepare_v2(r->db, BEGIN_SQL, -1, &r->begin, NULL) != SQLITE_OK
        || sq.prepare_v2(r->db, END_SQL, -1, &r->end, NULL) != SQLITE_OK) {
        copy_why(why_buf, why_room, r->db ? sq.errmsg(r->db) : "out of memory");
        if (pragma) sq.finalize(pragma);
        gw_index_reader_close(r);
        return NULL;
    }
    sq.finalize(pragma);
    return r;
}

void gw_index_reader_close(gw_index_reader *r) {
    if (!r) return;
    if (r->blocks) sq.finalize(r->blocks);
    if (r->begin) sq.finalize(r->begin);
    if (r->end) sq.finalize(r->end);
    if (r->db) sq.close(r->db);
    free(r->refs);
    free(r);
}

static int reserve(gw_index_reader *r, uint64_t need) {
    if (need <= r->room) return 1;
    if (need > UINT32_MAX / 2) return 0;
    uint32_t room = r->room ? r->room : 256;
    while (room < need) room *= 2;
    gw_fold_ref *p = realloc(r->refs, (size_t)room * sizeof *p);
    if (!p) return 0;
    r->refs = p;
    r->room = room;
    return 1;
}

static int by_seq(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int by_time_then_seq(const void *a, const void *b) {
    const gw_fold_ref *x = a, *y = b;
    if (x->min_ts != y->min_ts) return (x->min_ts > y->min_ts) - (x->min_ts < y->min_ts);
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int in_fold_order(const gw_fold_ref *refs, uint32_t n) {
    for (uint32_t i = 1; i < n; i++)
        if (by_time_then_seq(&refs[i - 1], &refs[i]) > 0) return 0;
    return 1;
}

/* Adds the extra blocks whose seq has no row among the n refs at base, then orders them all. */
static int64_t add_extra(gw_index_reader *r, uint32_t base, uint32_t n, const gw_fold_ref *extra,
                         uint32_t n_extra) {
    int64_t *seqs = malloc(((size_t)n + 1) * sizeof *seqs);
    if (!seqs || !reserve(r, (uint64_t)base + n + n_extra)) { free(seqs); return GW_ENOMEM; }
    gw_fold_ref *refs = r->refs + base;
    for (uint32_t i = 0; i < n; i++) seqs[i] = refs[i].seq;
    qsort(seqs, n, sizeof *seqs, by_seq);
    uint32_t total = n;
    for (uint32_t i = 0; i < n_extra; i++)
        if (!bsearch(&extra[i].seq, seqs, n, sizeof *seqs, by_seq)) refs[total++] = extra[i];
    free(seqs);
    qsort(refs, total, sizeof *refs, by_time_then_seq);
    return total;
}

/* One series' list (see gw_index_block_refs_many), written at r->refs + base. */
static int64_t list_series(gw_index_reader *r, uint32_t base, int64_t bucket, int64_t series,
                           int64_t lo, int64_t hi, int64_t max_ts_bound,
                           const gw_fold_ref *extra, uint32_t n_extra) {
    sqlite3_stmt *s = r->blocks;
    sq.bind_int64(s, 1, bucket);
    sq.bind_int64(s, 2, series);
    sq.bind_int64(s, 3, lo);
    sq.bind_int64(s, 4, hi);
    sq.bind_int64(s, 5, max_ts_bound);
    uint32_t n = 0;
    int rc;
    while ((rc = sq.step(s)) == SQLITE_ROW) {
        if (!reserve(r, (uint64_t)base + n + 1)) { sq.reset(s); return GW_ENOMEM; }
        r->refs[base + n++] = (gw_fold_ref){sq.column_int64(s, 0), sq.column_int64(s, 1),
                                            sq.column_int64(s, 2), sq.column_int64(s, 3),
                                            sq.column_int64(s, 4)};
    }
    if (rc != SQLITE_DONE) {
        snprintf(r->error, sizeof r->error, "%s", sq.errmsg(r->db));
        sq.reset(s);
        return GW_EIO;
    }
    sq.reset(s);
    if (n_extra) return add_extra(r, base, n, extra, n_extra);
    if (!in_fold_order(r->refs + base, n))
        qsort(r->refs + base, n, sizeof *r->refs, by_time_then_seq);
    return n;
}

static int run_once(gw_index_reader *r, sqlite3_stmt *s) {
    int rc = sq.step(s);
    sq.reset(s);
    if (rc == SQLITE_DONE) return GW_OK;
    snprintf(r->error, sizeof r->error, "%s", sq.errmsg(r->db));
    return GW_EIO;
}

static int reader_begin(gw_index_reader *r) { return run_once(r, r->begin); }

static int reader_end(gw_index_reader *r) { return run_once(r, r->end); }

const gw_fold_ref *gw_index_reader_refs(const gw_index_reader *r) { return r->refs; }

const char *gw_index_reader_error(const gw_index_reader *r) { return r->error; }

int64_t gw_index_block_refs_many(gw_index_reader *r, int64_t bucket, const int64_t *series,
                                 uint32_t n, int64_t lo, int64_t hi, int64_t max_ts_bound,
                                 const gw_fold_ref *extra, const uint32_t *extra_at,
                                 uint32_t max_rows, uint32_t *refs_at) {
    if (n == 0) return 0;
    int rc = reader_begin(r);
    if (rc != GW_OK) return rc;
    uint32_t k = 0, rows = 0;
    int64_t got = 0;
    for (; k < n && (k == 0 || rows < max_rows); k++) {
        refs_at[k] = rows;
        uint32_t n_extra = extra ? extra_at[k + 1] - extra_at[k] : 0;
        got = list_series(r, rows, bucket, series[k], lo, hi, max_ts_bound,
                          n_extra ? extra + extra_at[k] : NULL, n_extra);
        if (got < 0) break;
        if ((uint64_t)rows + (uint64_t)got > UINT32_MAX / 2) { got = GW_ENOMEM; break; }
        rows += (uint32_t)got;
    }
    if (got < 0) {
        char why[sizeof r->error];
        memcpy(why, r->error, sizeof why);   /* the failure's message, not the end's */
        reader_end(r);
        memcpy(r->error, why, sizeof why);
        return got;
    }
    refs_at[k] = rows;
    rc = reader_end(r);
    return rc != GW_OK ? rc : (int64_t)k;
}
