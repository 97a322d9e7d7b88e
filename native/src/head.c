/* Per-series heads: ingest from batches, group-commit logging to the WAL, sealing into ring
 * blocks, WAL replay. See gw_head.h for the contract between these steps; the series table is
 * in head_table.c, the time-order merge in head_merge.c. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gw_codec.h"
#include "head_internal.h"


/* Grows the array that the pointer at arr points to (items of size item) to room for at
 * least need, doubling from first. GW_OK or GW_ENOMEM (the array is unchanged). The pointer
 * is copied in and out with memcpy, so one function serves arrays of every item type. */
static int grow(void *arr, uint32_t *cap, uint32_t need, size_t item, uint32_t first) {
    if (need <= *cap) return GW_OK;
    uint32_t c = *cap ? *cap : first;
    while (c < need) c *= 2;
    void *old;
    memcpy(&old, arr, sizeof old);
    void *p = realloc(old, (size_t)c * item);
    if (!p) return GW_ENOMEM;
    memcpy(arr, &p, sizeof p);
    *cap = c;
    return GW_OK;
}

static int grow_u32(uint32_t **arr, uint32_t *cap, uint32_t need) {
    return grow(arr, cap, need, sizeof **arr, 16);
}

gw_heads *gw_heads_new(uint32_t head_points, int64_t head_max_age_ms) {
    gw_heads *h = calloc(1, sizeof *h);
    impl *m = calloc(1, sizeof *m);
    if (!h || !m) { free(h); free(m); return NULL; }
    m->table = calloc(MIN_TABLE, sizeof *m->table);
    if (!m->table) { free(h); free(m); return NULL; }
    m->table_cap = MIN_TABLE;
    h->impl = m;
    h->head_points = head_points ? head_points : 1024;
    h->head_max_age_ms = head_max_age_ms;
    h->stats.next_lsn = 1;
    return h;
}

static void free_head(series *s) {
    if (s->cap > 1) free(s->pts.buf);
    free(s->str);
    s->pts.buf = NULL;
    s->str = NULL;
    s->n = s->cap = s->logged = 0;
}

void gw_heads_free(gw_heads *h) {
    if (!h) return;
    impl *m = IMPL(h);
    for (uint32_t i = 0; i < m->by_id_cap; i++) {
        series *s = m->by_id[i];
        if (!s) continue;
        free_head(s);
        free(s);
    }
    free(m->by_id); free(m->table); free(m->dirty); free(m->watched);
    gw_buf_free(&m->record);
    free(m);
    free(h->sealed); free(h->new_series);
    free(h);
}

void gw_heads_get_stats(gw_heads *h, gw_heads_stats *out) {
    *out = h->stats;
}

void gw_heads_outputs(gw_heads *h, uint32_t *n_sealed, uint32_t *n_new_series) {
    *n_sealed = h->n_sealed;
    *n_new_series = h->n_new_series;
}

void gw_heads_take_outputs(gw_heads *h, gw_ring_entry *sealed, uint32_t *new_series) {
    if (h->n_sealed) memcpy(sealed, h->sealed, (size_t)h->n_sealed * sizeof *sealed);
    if (h->n_new_series)
        memcpy(new_series, h->new_series, (size_t)h->n_new_series * sizeof *new_series);
    h->n_sealed = 0;
    h->n_new_series = 0;
}

void gw_heads_resume(gw_heads *h, uint64_t next_lsn, uint32_t max_series_id) {
    if (next_lsn > h->stats.next_lsn) h->stats.next_lsn = next_lsn;
    if (max_series_id > h->stats.max_series_id) h->stats.max_series_id = max_series_id;
}

static series *by_id(gw_heads *h, uint32_t id) {
    impl *m = IMPL(h);
    return id < m->by_id_cap ? m->by_id[id] : NULL;
}

static series *create(gw_heads *h, uint32_t id, uint8_t type, const char *key, uint32_t len, uint64_t hash) {
    impl *m = IMPL(h);
    if (id >= m->by_id_cap) {
        uint32_t cap = m->by_id_cap ? m->by_id_cap : 64;
        while (cap <= id) cap *= 2;
        series **p = realloc(m->by_id, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        memset(p + m->by_id_cap, 0, (size_t)(cap - m->by_id_cap) * sizeof *p);
        m->by_id = p;
        m->by_id_cap = cap;
    }
    series *s = calloc(1, offsetof(series, key) + len);
    if (!s) return NULL;
    memcpy(s->key, key, len);
    s->key_len = len;
    s->id = id;
    s->type = type;
    m->by_id[id] = s;
    if (gw_head_table_insert(m, s, hash) != GW_OK) { m->by_id[id] = NULL; free(s); return NULL; }
    if (id > h->stats.max_series_id) h->stats.max_series_id = id;
    return s;
}

static int note_new(gw_heads *h, uint32_t id) {
    if (grow_u32(&h->new_series, &h->new_series_cap, h->n_new_series + 1) != GW_OK) return GW_ENOMEM;
    h->new_series[h->n_new_series++] = id;
    return GW_OK;
}

int gw_heads_define(gw_heads *h, uint32_t id, uint8_t type, const char *key, uint32_t key_len,
                    uint64_t sealed_lsn) {
    if (id == 0 || type < GW_FLOAT || type > GW_STRING || key_len == 0 || key_len > GW_MAX_KEY_LEN)
        return GW_EINVAL;
    uint64_t hash = gw_head_hash(key, key_len);
    if (by_id(h, id) || gw_head_table_find(IMPL(h), key, key_len, hash)) return GW_EINVAL;
    series *s = create(h, id, type, key, key_len, hash);
    if (!s) return GW_ENOMEM;
    s->sealed_lsn = sealed_lsn;
    return GW_OK;
}

int gw_heads_note_sealed(gw_heads *h, uint32_t id, uint64_t lsn) {
    series *s = by_id(h, id);
    if (!s) return GW_EINVAL;
    if (lsn > s->sealed_lsn) s->sealed_lsn = lsn;
    return GW_OK;
}

const char *gw_heads_series_key(gw_heads *h, uint32_t id, uint32_t *len) {
    series *s = by_id(h, id);
    if (!s) return NULL;
    *len = s->key_len;
    return s->key;
}

int gw_heads_series_type(gw_heads *h, uint32_t id) {
    series *s = by_id(h, id);
    return s ? s->type : 0;
}

uint64_t gw_heads_series_sealed_lsn(gw_heads *h, uint32_t id) {
    series *s = by_id(h, id);
    return s ? s->sealed_lsn : 0;
}

/* ------------------------------------------------------------------ head buffers */

/* Bytes a head's buffers take: 16 per point of room, plus its string arena. */
static uint64_t head_bytes(const series *s) {
    return (uint64_t)s->cap * 16u + (s->str ? s->str->cap : 0);
}

static int reserve_points(gw_heads *h, series *s, uint32_t extra) {
    uint64_t need = (uint64_t)s->n + extra;
    if (need <= s->cap) return GW_OK;
    if (need > GW_BLOCK_MAX_POINTS * 4ull) return GW_ENOMEM;
    /* Start at one point (inline): most series of a high-cardinality load hold one or a few. */
    uint32_t cap = s->cap ? s->cap : 1;
    while (cap < need) cap *= 2;
    if (cap > 1) {
        int64_t *ts = s->cap > 1 ? realloc(s->pts.buf, (size_t)cap * 16u) : malloc((size_t)cap * 16u);
        if (!ts) return GW_ENOMEM;
        if (s->cap > 1) {
            /* The values move up from behind the old room to behind the new. */
            if (s->n) memmove(ts + cap, ts + s->cap, (size_t)s->n * sizeof *ts);
        } else if (s->n) {
            ts[0] = s->pts.one.ts;
            ts[cap] = (int64_t)s->pts.one.value;
        }
        s->pts.buf = ts;
    }
    h->stats.head_bytes += (uint64_t)(cap - s->cap) * 16u;
    s->cap = cap;
    return GW_OK;
}

static int reserve_str(gw_heads *h, series *s, size_t extra) {
    size_t len = head_str_len(s), have = s->str ? s->str->cap : 0;
    if (s->str && len + extra <= have) return GW_OK;
    size_t cap = have ? have : 1024;
    while (cap < len + extra) cap *= 2;
    if (cap >> (64 - LEN_BITS)) return GW_ENOMEM;
    head_strings *p = realloc(s->str, sizeof *p + cap);
    if (!p) return GW_ENOMEM;
    p->len = len;
    p->cap = cap;
    s->str = p;
    h->stats.head_bytes += cap - have;
    return GW_OK;
}

static int mark_dirty(gw_heads *h, series *s) {
    if (s->dirty) return GW_OK;
    impl *m = IMPL(h);
    if (grow_u32(&m->dirty, &m->dirty_cap, m->n_dirty + 1) != GW_OK) return GW_ENOMEM;
    m->dirty[m->n_dirty++] = s->id;
    s->dirty = 1;
    return GW_OK;
}

/* A point taken into a watched series' head: the newest so far if no older than it (the last
 * write of a timestamp wins). */
static void note_newest(gw_heads *h, const series *s, int64_t ts, uint64_t value) {
    newest_point *e = &IMPL(h)->watched[s->watch - 1];
    if (!e->has || ts >= e->ts) {
        e->ts = ts;
        e->value = value;
        e->has = 1;
    }
}

/* The newest point of a watched series may be gone: it is read from the store again. */
static void forget_newest(gw_heads *h, const series *s) {
    newest_point *e = &IMPL(h)->watched[s->watch - 1];
    e->known = e->has = 0;
    e->epoch++;
}

/* Appends one point; the caller reserved room for it. */
static void push(series *s, int64_t ts, uint64_t value, const char *str, uint32_t str_len) {
    if (s->type == GW_STRING) {
        if (str_len) memcpy(s->str->data + s->str->len, str, str_len);
        value = ((uint64_t)s->str->len << LEN_BITS) | str_len;
        s->str->len += str_len;
    }
    head_ts(s)[s->n] = ts;
    head_values(s)[s->n] = value;
    s->n++;
}

/* Points [from, n) are dropped, with their strings. */
static void truncate_head(gw_heads *h, series *s, uint32_t from) {
    if (from >= s->n) return;
    h->stats.head_points_total -= s->n - from;
    if (s->type == GW_STRING && s->str) {
        const uint64_t *v = head_values(s);
        s->str->len = from ? (size_t)(v[from - 1] >> LEN_BITS) + (v[from - 1] & LEN_MASK) : 0;
    }
    s->n = from;
}

static void rollback_unlogged(gw_heads *h) {
    impl *m = IMPL(h);
    for (uint32_t i = 0; i < m->n_dirty; i++) {
        series *s = by_id(h, m->dirty[i]);
        truncate_head(h, s, s->logged);
        if (s->watch) forget_newest(h, s);   /* its newest may have been one of those */
        s->dirty = 0;
    }
    m->n_dirty = 0;
    h->stats.unlogged_points = 0;
}

int64_t gw_heads_ingest(gw_heads *h, const gw_batch *b, int64_t now_ms, int64_t min_ts,
                        uint32_t max_series, gw_ingest_report *out) {
    impl *m = IMPL(h);
    uint64_t taken = 0;
    out->type_conflicts = 0;
    out->too_old = 0;
    out->last_conflict = -1;
    out->series_limited = 0;
    out->last_limited = -1;
    for (uint32_t i = 0; i < b->n; i++) {
        const gw_point *p = &b->points[i];
        if (p->ts < min_ts) {   /* retention would drop it at once: refuse it */
            out->too_old++;
            continue;
        }
        const char *key = b->arena + p->key_off;
        series *s = m->last;
        if (!s || s->key_len != p->key_len || memcmp(s->key, key, p->key_len) != 0) {
            uint64_t hash = gw_head_hash(key, p->key_len);
            s = gw_head_table_find(IMPL(h), key, p->key_len, hash);
            if (!s && max_series && h->stats.max_series_id >= max_series) {
                /* Series ids are dense: the bucket holds max_series_id series. */
                out->series_limited++;
                out->last_limited = i;
                continue;
            }
            if (!s) {
                s = create(h, h->stats.max_series_id + 1, p->type, key, p->key_len, hash);
                if (!s || note_new(h, s->id) != GW_OK) goto nomem;
            }
            m->last = s;
        }
        if (s->type != p->type) {
            out->type_conflicts++;
            out->last_conflict = i;
            continue;
        }
        if (reserve_points(h, s, 1) != GW_OK) goto nomem;
        if (p->type == GW_STRING && reserve_str(h, s, p->str_len) != GW_OK) goto nomem;
        if (s->logged == s->n && mark_dirty(h, s) != GW_OK) goto nomem;
        if (s->n == 0) s->started_ms = now_ms;
        push(s, p->ts, p->value, b->arena + (p->type == GW_STRING ? p->value : 0), p->str_len);
        if (s->watch) note_newest(h, s, p->ts, p->value);
        h->stats.head_points_total++;
        taken++;
    }
    h->stats.unlogged_points += taken;
    h->stats.points_ingested += taken;
    h->stats.type_conflicts += out->type_conflicts;
    h->stats.too_old += out->too_old;
    out->taken = taken;
    out->unlogged_points = h->stats.unlogged_points;
    return (int64_t)taken;
nomem:
    /* The points of this batch cannot be told from earlier unlogged ones, so all unlogged
     * points go: the store fails every write waiting for this commit. */
    rollback_unlogged(h);
    h->stats.type_conflicts += out->type_conflicts;
    h->stats.too_old += out->too_old;
    out->taken = 0;
    out->unlogged_points = 0;
    return GW_ENOMEM;
}

/* ------------------------------------------------------------------ logging */

static int seal_series(gw_heads *h, series *s, gw_ring *r, int64_t now_ms, uint32_t m);

static int commit(gw_heads *h, gw_wal *w, gw_ring *r, int64_t now_ms, uint32_t *sealed_directly);

int gw_heads_commit(gw_heads *h, gw_wal *w, gw_ring *r, int64_t now_ms, gw_commit_report *out) {
    w->info.last_errno = 0;
    if (r) r->info.last_errno = 0;
    out->sealed_directly = 0;
    int rc = commit(h, w, r, now_ms, &out->sealed_directly);
    /* The WAL's errno is set by a failed append, the ring's by a failed direct seal. */
    out->failed_file = rc == GW_OK ? 0 : (r && r->info.last_errno && !w->info.last_errno) ? GW_FILE_RING
                                                                             : GW_FILE_WAL;
    out->failed_errno = rc == GW_OK ? 0 : out->failed_file == GW_FILE_RING ? r->info.last_errno
                                                                           : w->info.last_errno;
    return rc;
}

/* The record a commit is filling: its keys and groups so far, its points, and the bound of its
 * body (the sum of gw_wal_def_bound and gw_wal_group_bound). A series has at most one group
 * and one key in a record: its points go on in the next record only once this one is full and
 * written. So room for one key, one group and each string point's offsets per dirty series
 * (plus one offset per string series) holds any record. */
typedef struct record_fill {
    gw_buf       *out;
    uint64_t      lsn;        /* of the record being filled */
    size_t        max_body;
    gw_wal_def   *defs;
    gw_wal_group *groups;
    uint32_t     *offs;       /* string offsets of this record's groups */
    uint32_t      n_defs, n_groups;
    size_t        n_offs;
    uint64_t      points;
    size_t        bytes;
} record_fill;

static int fill_empty(const record_fill *f) { return !f->n_groups && !f->n_defs; }

/* Encodes the record filled so far (if any) into out and starts the next, with the next LSN
 * (also after a failure: LSNs are never reused). */
static int fill_write(record_fill *f) {
    if (fill_empty(f)) return GW_OK;
    int rc = gw_wal_encode_record(f->out, f->lsn++, f->defs, f->n_defs, f->groups, f->n_groups);
    f->n_defs = f->n_groups = 0;
    f->n_offs = 0;
    f->points = 0;
    f->bytes = GW_WAL_BODY_FIXED;
    return rc;
}

/* Adds the key of s, in the next record if this one has no room for it. */
static int fill_def(record_fill *f, const series *s) {
    size_t need = gw_wal_def_bound(s->key_len);
    if (f->bytes + need > f->max_body && !fill_empty(f)) {
        int rc = fill_write(f);
        if (rc != GW_OK) return rc;
    }
    f->defs[f->n_defs++] = (gw_wal_def){s->id, s->type, s->key_len, s->key};
    f->bytes += need;
    return GW_OK;
}

/* Adds as many of the points [from, n) of s as the record takes by points
 * (GW_WAL_MAX_POINTS) and by bytes (max_body); returns how many, 0 when it is full. The
 * group's bound and its string offsets come from the same walk over the points. A point alone
 * in a record always goes in: one point fits the format. */
static uint32_t fill_group(record_fill *f, const series *s, uint32_t from) {
    uint32_t take = s->n - from;
    if (f->points + take > GW_WAL_MAX_POINTS) take = (uint32_t)(GW_WAL_MAX_POINTS - f->points);
    size_t room = f->max_body > f->bytes ? f->max_body - f->bytes : 0;
    size_t bytes = GW_WAL_GROUP_FIXED;
    int alone = fill_empty(f);
    uint32_t k;
    uint32_t *o = NULL;
    if (s->type != GW_STRING) {
        k = room >= bytes ? (uint32_t)((room - bytes) / GW_WAL_POINT_MAX) : 0;
        if (k > take) k = take;
        if (k == 0 && alone && take) k = 1;
        bytes += (size_t)k * GW_WAL_POINT_MAX;
    } else {
        uint64_t base = head_values(s)[from] >> LEN_BITS;
        o = f->offs + f->n_offs;
        o[0] = 0;
        for (k = 0; k < take; k++) {
            uint64_t v = head_values(s)[from + k];
            size_t cost = GW_WAL_POINT_MAX + (size_t)(v & LEN_MASK);
            if (bytes + cost > room && !(k == 0 && alone)) break;
            bytes += cost;
            o[k + 1] = (uint32_t)((v >> LEN_BITS) - base + (v & LEN_MASK));
        }
    }
    if (k == 0) return 0;
    gw_wal_group *g = &f->groups[f->n_groups++];
    g->series_id = s->id;
    g->type = s->type;
    g->n = k;
    g->ts = head_ts(s) + from;
    g->values = head_values(s) + from;
    g->strings = o ? s->str->data + (head_values(s)[from] >> LEN_BITS) : NULL;
    g->str_off = o;
    if (o) f->n_offs += (size_t)k + 1;
    f->points += k;
    f->bytes += bytes;
    return k;
}

static int commit(gw_heads *h, gw_wal *w, gw_ring *r, int64_t now_ms, uint32_t *sealed_directly) {
    impl *m = IMPL(h);
    if (m->n_dirty == 0) return GW_OK;
    if (w->fd < 0) { rollback_unlogged(h); return GW_EINVAL; }
    uint32_t nd = m->n_dirty;
    size_t n_offs = 0;
    for (uint32_t i = 0; i < nd; i++) {
        series *s = by_id(h, m->dirty[i]);
        if (s->type == GW_STRING) n_offs += (size_t)(s->n - s->logged) + 1;
    }
    m->record.len = 0;
    record_fill f = {&m->record, h->stats.next_lsn, w->max_body,
                     malloc((size_t)nd * sizeof(gw_wal_def)), malloc((size_t)nd * sizeof(gw_wal_group)),
                     n_offs ? malloc(n_offs * sizeof(uint32_t)) : NULL, 0, 0, 0, 0, GW_WAL_BODY_FIXED};
    int rc = (!f.defs || !f.groups || (n_offs && !f.offs)) ? GW_ENOMEM : GW_OK;
    uint64_t *lsn_span = malloc((size_t)nd * 2 * sizeof *lsn_span);  /* first, last per logged */
    if (!lsn_span) rc = GW_ENOMEM;
    uint64_t segment_tag = w->info.segment_first_lsn + 1;
    /* The dirty series split into those logged now and those sealed directly; the dirty
     * list itself stays whole until success, so a failure can roll all of them back. */
    uint32_t nd_logged = 0, n_direct = 0;
    uint32_t *direct = malloc((size_t)nd * sizeof *direct);
    uint32_t *logged = malloc((size_t)nd * sizeof *logged);
    if (!direct || !logged) rc = GW_ENOMEM;
    for (uint32_t i = 0; i < nd && rc == GW_OK; i++) {
        series *s = by_id(h, m->dirty[i]);
        if (s->def_segment != segment_tag && (rc = fill_def(&f, s)) != GW_OK) break;
        if (r && s->n >= h->head_points) {
            /* Full already: its points go straight into blocks, synced with this commit,
             * and need no WAL record (only the key, above, if this segment lacks it). */
            direct[n_direct++] = s->id;
            continue;
        }
        lsn_span[2 * nd_logged] = f.lsn;
        logged[nd_logged++] = s->id;
        uint32_t from = s->logged;
        while (from < s->n && rc == GW_OK) {
            uint32_t took = fill_group(&f, s, from);
            if (took == 0) {   /* the record is full by bytes: write it, go on in the next */
                rc = fill_write(&f);
                if (from == s->logged) lsn_span[2 * (nd_logged - 1)] = f.lsn;
                continue;
            }
            from += took;
            lsn_span[2 * (nd_logged - 1) + 1] = f.lsn;
            if (f.points == GW_WAL_MAX_POINTS) rc = fill_write(&f);
        }
    }
    if (rc == GW_OK) rc = fill_write(&f);
    free(f.defs);
    free(f.groups);
    free(f.offs);
    if (rc == GW_OK && m->record.len) rc = gw_wal_append(w, m->record.p, m->record.len);
    if (m->record.cap > (8u << 20)) gw_buf_free(&m->record);  /* do not keep a huge buffer */
    h->stats.next_lsn = f.lsn;  /* LSNs are never reused, even those of a record that failed */
    if (rc != GW_OK) {
        free(direct);
        free(logged);
        free(lsn_span);
        rollback_unlogged(h);
        return rc;
    }
    /* Which records each series' points went to, as noted while cutting them. */
    for (uint32_t i = 0; i < nd_logged; i++) {
        series *s = by_id(h, logged[i]);
        if (!s->first_lsn) s->first_lsn = lsn_span[2 * i];
        s->last_lsn = lsn_span[2 * i + 1];
        s->logged = s->n;
        s->dirty = 0;
        s->def_segment = segment_tag;
    }
    free(lsn_span);
    /* Direct seals. A failure leaves the remaining direct series' unlogged points nowhere
     * durable, so they are dropped and the commit fails (its writers get the error). */
    m->n_dirty = 0;
    for (uint32_t i = 0; i < n_direct; i++) {
        series *s = by_id(h, direct[i]);
        s->def_segment = segment_tag;
        s->dirty = 0;
        if (rc == GW_OK) rc = seal_series(h, s, r, now_ms, s->n);
        if (rc != GW_OK) truncate_head(h, s, s->logged);
        else { h->stats.direct_sealed++; (*sealed_directly)++; }
    }
    free(direct);
    free(logged);
    h->stats.unlogged_points = 0;
    return rc;
}

/* ------------------------------------------------------------------ sealing */

static int push_sealed(gw_heads *h, const gw_ring_entry *e) {
    if (grow(&h->sealed, &h->sealed_cap, h->n_sealed + 1, sizeof *h->sealed, 64) != GW_OK)
        return GW_ENOMEM;
    h->sealed[h->n_sealed++] = *e;
    return GW_OK;
}

/* Seals the points [0, m) of s: its logged points, or (direct) all of them. */
static int seal_series(gw_heads *h, series *s, gw_ring *r, int64_t now_ms, uint32_t m) {
    uint32_t *order = malloc((size_t)m * sizeof *order);
    if (!order) return GW_ENOMEM;
    int64_t kept = gw_heads_merge_order(head_ts(s), m, order);
    if (kept < 0) { free(order); return GW_ENOMEM; }
    uint32_t k = (uint32_t)kept;
    uint32_t chunks = (k + h->head_points - 1) / h->head_points;
    uint32_t per = (k + chunks - 1) / chunks;
    int64_t *ts = malloc((size_t)per * sizeof *ts);
    uint64_t *vals = malloc((size_t)per * sizeof *vals);
    uint32_t *soff = s->type == GW_STRING ? malloc(((size_t)per + 1) * sizeof *soff) : NULL;
    char *sbuf = NULL;
    uint8_t *out = NULL;
    int rc = (!ts || !vals || (s->type == GW_STRING && !soff)) ? GW_ENOMEM : GW_OK;
    for (uint32_t c = 0; c < chunks && rc == GW_OK; c++) {
        uint32_t lo = c * per, cnt = k - lo < per ? k - lo : per;
        size_t sbytes = 0;
        gw_heads_gather64((const uint64_t *)head_ts(s), order + lo, cnt, (uint64_t *)ts);
        gw_heads_gather64(head_values(s), order + lo, cnt, vals);
        if (s->type == GW_STRING) {
            sbytes = gw_head_gather_strings(s, order + lo, cnt, NULL, soff);
            free(sbuf);
            sbuf = malloc(sbytes + 1);
            if (!sbuf) { rc = GW_ENOMEM; break; }
            gw_head_gather_strings(s, order + lo, cnt, sbuf, soff);
        }
        size_t cap = gw_block_bound(s->type, cnt, sbytes);
        free(out);
        out = cap ? malloc(cap) : NULL;
        if (!out) { rc = GW_ENOMEM; break; }
        int64_t len = gw_block_encode(s->type, cnt, ts, vals, sbuf, soff, 0.0, out, cap);
        if (len < 0) { rc = (int)len; break; }
        gw_ring_entry e;
        /* Only the last block carries the LSN: if sealing stops half way, replay still
         * restores the points of the blocks not written. */
        rc = gw_ring_append(r, out, (uint32_t)len, s->id, c + 1 == chunks ? s->last_lsn : 0, &e);
        if (rc == GW_OK) rc = push_sealed(h, &e);
        if (rc == GW_OK) h->stats.blocks_sealed++;
    }
    free(order); free(ts); free(vals); free(soff); free(sbuf); free(out);
    if (rc != GW_OK) return rc;
    /* Drop the sealed prefix, keep the unlogged tail. */
    uint32_t tail = s->n - m;
    int64_t *hts = head_ts(s);
    uint64_t *hvalues = head_values(s);
    if (tail) {
        if (s->type == GW_STRING) {
            size_t base = (size_t)(hvalues[m] >> LEN_BITS);
            memmove(s->str->data, s->str->data + base, s->str->len - base);
            s->str->len -= base;
            for (uint32_t i = m; i < s->n; i++) hvalues[i] -= (uint64_t)base << LEN_BITS;
        }
        memmove(hts, hts + m, (size_t)tail * sizeof *hts);
        memmove(hvalues, hvalues + m, (size_t)tail * sizeof *hvalues);
    } else if (s->str) {
        s->str->len = 0;
    }
    h->stats.head_points_total -= m;
    s->n = tail;
    s->logged = 0;
    s->dirty = tail ? s->dirty : 0;
    s->sealed_lsn = s->last_lsn;
    s->first_lsn = 0;
    s->started_ms = tail ? now_ms : 0;
    if (s->cap > 2 * h->head_points && tail <= h->head_points) {
        /* A burst made this head big; give the memory back. */
        uint32_t keep = h->head_points > 2 ? h->head_points : 2;   /* (>= tail; a buffer) */
        memmove(hts + keep, hvalues, (size_t)tail * sizeof *hvalues);
        h->stats.head_bytes -= (uint64_t)(s->cap - keep) * 16u;
        s->cap = keep;
        int64_t *t2 = realloc(s->pts.buf, (size_t)keep * 16u);   /* a failed shrink keeps the room */
        if (t2) s->pts.buf = t2;
    }
    if (tail == 0) {
        /* An idle head gives its buffers back: a bucket of many series that are written
         * rarely then costs little more than their keys. */
        h->stats.head_bytes -= head_bytes(s);
        free_head(s);
    }
    return GW_OK;
}

int gw_heads_seal(gw_heads *h, gw_ring *r, int64_t now_ms, int force) {
    impl *m = IMPL(h);
    for (uint32_t id = 1; id < m->by_id_cap; id++) {
        series *s = m->by_id[id];
        if (!s || s->logged == 0) continue;
        int due = force || s->logged >= h->head_points
                  || (h->head_max_age_ms > 0 && now_ms - s->started_ms >= h->head_max_age_ms);
        if (!due) continue;
        int rc = seal_series(h, s, r, now_ms, s->logged);
        if (rc != GW_OK) return rc;
    }
    return GW_OK;
}

uint64_t gw_heads_min_lsn(gw_heads *h) {
    impl *m = IMPL(h);
    uint64_t lo = h->stats.next_lsn;
    for (uint32_t id = 1; id < m->by_id_cap; id++) {
        series *s = m->by_id[id];
        if (s && s->logged && s->first_lsn && s->first_lsn < lo) lo = s->first_lsn;
    }
    return lo;
}

/* ------------------------------------------------------------------ replay */

typedef struct replay_ctx {
    gw_heads *h;
    int       failed;   /* out of memory */
    int64_t   now_ms;
    uint64_t  max_lsn;
    uint64_t  upto_lsn;   /* groups of later records are skipped */
} replay_ctx;

static void on_def(void *ctx, const gw_wal_def *d) {
    replay_ctx *c = ctx;
    gw_heads *h = c->h;
    if (by_id(h, d->series_id)) return;   /* known; a different key would be caught by type/key */
    uint64_t hash = gw_head_hash(d->key, d->key_len);
    if (gw_head_table_find(IMPL(h), d->key, d->key_len, hash)) return;
    series *s = create(h, d->series_id, d->type, d->key, d->key_len, hash);
    if (!s || note_new(h, s->id) != GW_OK) c->failed = 1;
}

static void on_group(void *ctx, uint64_t lsn, const gw_wal_group *g) {
    replay_ctx *c = ctx;
    gw_heads *h = c->h;
    series *s = by_id(h, g->series_id);
    if (!s || s->type != g->type) { h->stats.points_lost += g->n; return; }
    if (lsn <= s->sealed_lsn || lsn > c->upto_lsn) return;
    if (reserve_points(c->h, s, g->n) != GW_OK) { c->failed = 1; return; }
    if (g->type == GW_STRING && reserve_str(c->h, s, g->str_off[g->n]) != GW_OK) { c->failed = 1; return; }
    if (s->n == 0) s->started_ms = c->now_ms;
    for (uint32_t i = 0; i < g->n; i++)
        push(s, g->ts[i], g->values[i], g->strings ? g->strings + g->str_off[i] : NULL,
             g->strings ? g->str_off[i + 1] - g->str_off[i] : 0);
    if (s->watch)
        for (uint32_t i = 0; i < g->n; i++) note_newest(h, s, g->ts[i], g->values[i]);
    s->logged = s->n;
    if (!s->first_lsn || lsn < s->first_lsn) s->first_lsn = lsn;
    if (lsn > s->last_lsn) s->last_lsn = lsn;
    h->stats.head_points_total += g->n;
    h->stats.points_replayed += g->n;
}

int gw_heads_replay(gw_heads *h, const uint8_t *data, size_t len, int64_t now_ms) {
    return gw_heads_replay_upto(h, data, len, now_ms, UINT64_MAX);
}

int gw_heads_replay_upto(gw_heads *h, const uint8_t *data, size_t len, int64_t now_ms,
                         uint64_t upto_lsn) {
    replay_ctx ctx = {h, 0, now_ms, 0, upto_lsn};
    gw_wal_sink sink = {&ctx, on_def, on_group};
    gw_wal_segment_info info;
    int status = gw_wal_segment_info_of(data, len, &info);
    if (status == GW_WAL_EVERSION) return status;   /* a newer format: not ours to guess at */
    int header_bad = status == GW_ECORRUPT;
    if (status == GW_ETRUNC) return GW_OK;  /* created but never written: nothing to replay */
    uint64_t first_lsn = info.first_lsn;
    /* A damaged header's size is unknown: search from the smallest; resync finds records. */
    size_t pos = header_bad ? 32 : info.header_size;
    for (;;) {
        gw_wal_record rec;
        int rc = gw_wal_next_record(data, len, &pos, &rec);
        if (rc == GW_ETRUNC) {
            if (!gw_wal_zero_tail(data, len, pos)) {   /* a torn tail: skipped, counted */
                h->stats.corrupt_records++;
                h->stats.corrupt_bytes += len - pos;
            }
            break;
        }
        if (rc == GW_OK) rc = gw_wal_decode_body(&rec, &sink);
        else {
            size_t bad = pos;
            h->stats.corrupt_records++;
            gw_wal_resync(data, len, &pos);
            h->stats.corrupt_bytes += pos - bad;
            continue;
        }
        if (rc == GW_ENOMEM || ctx.failed) return GW_ENOMEM;
        if (rc != GW_OK) { h->stats.corrupt_records++; continue; }
        h->stats.records_replayed++;
        if (rec.lsn > ctx.max_lsn) ctx.max_lsn = rec.lsn;
    }
    if (ctx.max_lsn + 1 > h->stats.next_lsn) h->stats.next_lsn = ctx.max_lsn + 1;
    if (first_lsn > h->stats.next_lsn) h->stats.next_lsn = first_lsn;
    return header_bad ? GW_ECORRUPT : GW_OK;
}

/* ------------------------------------------------------------------ reading heads */

int gw_heads_head_size(gw_heads *h, uint32_t id, uint32_t *n, uint64_t *string_bytes) {
    series *s = by_id(h, id);
    if (!s) return GW_EINVAL;
    *n = s->n;
    *string_bytes = s->type == GW_STRING ? head_str_len(s) : 0;
    return GW_OK;
}

void gw_heads_head_points(gw_heads *h, const uint32_t *ids, uint32_t n, uint32_t *points) {
    for (uint32_t i = 0; i < n; i++) {
        series *s = by_id(h, ids[i]);
        points[i] = s ? s->n : 0;
    }
}

int gw_heads_head_copy(gw_heads *h, uint32_t id, int64_t *ts, uint64_t *values, char *strings,
                       uint32_t *str_off) {
    series *s = by_id(h, id);
    if (!s) return GW_EINVAL;
    if (s->n) memcpy(ts, head_ts(s), (size_t)s->n * sizeof *ts);
    if (s->type != GW_STRING) {
        if (s->n) memcpy(values, head_values(s), (size_t)s->n * sizeof *values);
        return GW_OK;
    }
    if (!str_off) return GW_EINVAL;
    gw_head_gather_strings(s, NULL, s->n, strings, str_off);
    if (values && s->n) memset(values, 0, (size_t)s->n * sizeof *values);
    return GW_OK;
}

/* ------------------------------------------------------------------ newest points */

int gw_heads_watch(gw_heads *h, uint32_t id, uint32_t *epoch) {
    impl *m = IMPL(h);
    series *s = by_id(h, id);
    if (!s || s->type == GW_STRING) return GW_EINVAL;
    if (!s->watch) {
        if (m->n_watched >= GW_HEADS_MAX_WATCHED) return GW_ENOMEM;
        if (grow(&m->watched, &m->watched_cap, m->n_watched + 1, sizeof *m->watched,
                 64) != GW_OK)
            return GW_ENOMEM;
        memset(&m->watched[m->n_watched], 0, sizeof *m->watched);
        s->watch = ++m->n_watched;
    }
    const newest_point *e = &m->watched[s->watch - 1];
    *epoch = e->epoch;
    return e->known;
}

int gw_heads_newest(gw_heads *h, uint32_t id, int64_t *ts, uint64_t *value) {
    series *s = by_id(h, id);
    if (!s || !s->watch) return 0;
    const newest_point *e = &IMPL(h)->watched[s->watch - 1];
    if (!e->known || !e->has) return 0;
    *ts = e->ts;
    *value = e->value;
    return 1;
}

int gw_heads_newest_fill(gw_heads *h, uint32_t id, uint32_t epoch, int found, int64_t ts,
                         uint64_t value) {
    series *s = by_id(h, id);
    if (!s || !s->watch) return 0;
    newest_point *e = &IMPL(h)->watched[s->watch - 1];
    if (e->epoch != epoch) return 0;
    if (e->known) return 1;
    /* The points taken since the watch are later writes than any the caller read. */
    if (found && (!e->has || ts > e->ts)) {
        e->ts = ts;
        e->value = value;
        e->has = 1;
    }
    e->known = 1;
    return 1;
}

void gw_heads_newest_dropped(gw_heads *h, uint32_t id, int64_t max_ts) {
    series *s = by_id(h, id);
    if (!s || !s->watch) return;
    const newest_point *e = &IMPL(h)->watched[s->watch - 1];
    /* Unknown: a fill under way may have read the dropped block. */
    if (!e->known || !e->has || e->ts <= max_ts) forget_newest(h, s);
}
