/* The window fold's block lists read from the block index file in C.
 *
 * A window query over many series needs each series' blocks in its time range (seq, offset,
 * length, min_ts, max_ts: gw_fold_ref) before it folds them. Read through Python's sqlite3, every
 * row becomes a tuple (about a microsecond each, and on the one database thread); read here,
 * the rows go straight from SQLite into an array of gw_fold_ref, on the thread that folds the
 * series, several threads at once.
 *
 * The reader is a read-only SQLite connection of its own to the index file: it sees what the
 * writer has committed (a call is one read transaction; a commit in progress makes it wait, up
 * to the busy timeout). SQLite is not linked in: the functions are taken from the
 * libsqlite3.so.0 that Python's sqlite3 module has already loaded (RTLD_NOLOAD), so that the
 * process has one copy of SQLite, whose POSIX locks of the file are shared by all its
 * connections (a second copy would drop the other's locks when it closes the file). When that
 * library is not loaded, gw_index_reader_open fails and the caller reads the rows in Python.
 *
 * A reader is used by one thread at a time.
 */
#ifndef GW_INDEX_H
#define GW_INDEX_H

#include "gw_common.h"
#include "gw_fold.h"

/* cdef: begin */
typedef struct gw_index_reader gw_index_reader;

/* A reader of the index file at path (read-only), waiting up to busy_ms for a commit in
 * progress. NULL on failure, with the reason in *why (a static string, or the reader's
 * message copied into why_buf of why_room bytes). */
gw_index_reader *gw_index_reader_open(const char *path, int busy_ms, char *why_buf,
                                      size_t why_room);
void gw_index_reader_close(gw_index_reader *r);
/* The block lists of several series in one read transaction (a statement that starts one of
 * its own costs more than listing a short series: the file's lock taken and released, its
 * change counter and journal checked; the lock held keeps the writer from committing until the
 * end, so a call lists a bounded number of rows). Series series[k]'s list is the index rows of
 * bucket `bucket` that may hold points in [lo, hi), those with lo <= max_ts <= max_ts_bound
 * and min_ts < hi, plus the blocks extra[extra_at[k] .. extra_at[k + 1]) (blocks not indexed
 * yet; extra may be NULL) whose seq has no row, ordered by (min_ts, seq); max_ts_bound: hi - 1
 * + the longest span (max_ts - min_ts) of any row, or INT64_MAX (a smaller bound loses
 * blocks). The lists are refs[refs_at[k] .. refs_at[k + 1]) of gw_index_reader_refs (until the
 * next call). The listing stops before a series once max_rows blocks are listed (the first
 * series is always listed): returns the series listed, m (refs_at has m + 1 entries), or
 * GW_ENOMEM, or GW_EIO (message at gw_index_reader_error). */
int64_t gw_index_block_refs_many(gw_index_reader *r, int64_t bucket, const int64_t *series,
                                 uint32_t n, int64_t lo, int64_t hi, int64_t max_ts_bound,
                                 const gw_fold_ref *extra, const uint32_t *extra_at,
                                 uint32_t max_rows, uint32_t *refs_at);
const gw_fold_ref *gw_index_reader_refs(const gw_index_reader *r);
const char *gw_index_reader_error(const gw_index_reader *r);
/* cdef: end */

#endif
