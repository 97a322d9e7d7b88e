/* Flat JSON objects to line protocol; see gw_jsonlines.h for what is taken and why.
 *
 * One payload is scanned once into (key, value) spans that point into it; only when the whole
 * object is understood and every key has its role is its line written, so a payload left to
 * the general decoder writes nothing. The roles mirror the general decoder exactly:
 *
 *   key == time_key -> time;  == measurement_key -> measurement;  in tag_keys -> tag;
 *   starts with '_' -> skipped;  field_keys given and key in neither field_keys nor
 *   string_fields -> skipped;  else field (numbers and booleans; strings only when listed in
 *   string_fields; null is no value).
 */
#include <string.h>

#include "gw_jsonlines.h"
#include "utf8.h"

#define LP_MIN_TIME ((int64_t)-9223372036854775806LL)
#define LP_MAX_TIME ((int64_t)9223372036854775806LL)
/* Objects with more members than this go to the general decoder (duplicate detection here
 * is quadratic in the member count). */
#define JL_MAX_MEMBERS 64

enum { V_NUM, V_INT, V_TRUE, V_FALSE, V_NULL, V_STR };   /* V_INT: a number without . or e */
enum { R_FIELD, R_TIME, R_TAG, R_MEASUREMENT, R_SKIP };

typedef struct member {
    const char *key, *val;   /* key without quotes; a string value without quotes */
    uint32_t key_len, val_len;
    uint8_t type;
} member;

static int in_list(const char *list, uint32_t list_len, const char *k, uint32_t k_len) {
    if (list_len == 0) return 0;   /* an empty list may be NULL */
    const char *p = list, *end = list + list_len;
    while (p < end) {
        const char *stop = memchr(p, '\0', (size_t)(end - p));
        if (!stop) stop = end;
        if ((size_t)(stop - p) == k_len && memcmp(p, k, k_len) == 0) return 1;
        p = stop + 1;
    }
    return 0;
}

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* A JSON string body without escapes or control characters, in valid UTF-8; p is past the
 * opening quote. Returns the closing quote, or NULL when the string is not of that kind. */
static const char *scan_plain_string(const char *p, const char *end) {
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p;
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)p, (size_t)(end - p));
            if (!n) return NULL;   /* the general decoder reports invalid UTF-8 */
            p += n;
            continue;
        }
        if (c == '\\' || c < 0x20 || c == 0x7f) return NULL;
        p++;
    }
    return NULL;
}

static const char *scan_digits(const char *p, const char *end) {
    while (p < end && (unsigned)((unsigned char)*p - '0') <= 9) p++;
    return p;
}

/* A JSON number (RFC 8259 grammar). Returns its end or NULL; *is_int when it has no fraction
 * or exponent. */
static const char *scan_number(const char *p, const char *end, int *is_int) {
    *is_int = 1;
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') p = scan_digits(p, end);
    else return NULL;
    if (p < end && *p == '.') {
        const char *d = scan_digits(p + 1, end);
        if (d == p + 1) return NULL;
        p = d;
        *is_int = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        const char *d = scan_digits(p, end);
        if (d == p) return NULL;
        p = d;
        *is_int = 0;
    }
    return p;
}

static int literal(const char *p, const char *end, const char *word, size_t n) {
    return (size_t)(end - p) >= n && memcmp(p, word, n) == 0;
}

/* Scans one flat object into members; returns the member count or -1 when it is not taken. */
static int scan_object(const char *p, const char *end, member *m) {
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return -1;
    p = skip_ws(p + 1, end);
    int n = 0;
    if (p < end && *p == '}') return -1;   /* no fields: the general decoder says so */
    for (;;) {
        if (n == JL_MAX_MEMBERS || p >= end || *p != '"') return -1;
        const char *k = p + 1, *q = scan_plain_string(k, end);
        if (!q || q == k) return -1;
        m[n].key = k;
        m[n].key_len = (uint32_t)(q - k);
        p = skip_ws(q + 1, end);
        if (p >= end || *p != ':') return -1;
        p = skip_ws(p + 1, end);
        if (p >= end) return -1;
        switch (*p) {
        case '"': {
            const char *v = p + 1, *e = scan_plain_string(v, end);
            if (!e) return -1;
            m[n].val = v;
            m[n].val_len = (uint32_t)(e - v);
            m[n].type = V_STR;
            p = e + 1;
            break;
        }
        case 't':
            if (!literal(p, end, "true", 4)) return -1;
            m[n].type = V_TRUE; m[n].val = p; m[n].val_len = 4; p += 4;
            break;
        case 'f':
            if (!literal(p, end, "false", 5)) return -1;
            m[n].type = V_FALSE; m[n].val = p; m[n].val_len = 5; p += 5;
            break;
        case 'n':
            if (!literal(p, end, "null", 4)) return -1;
            m[n].type = V_NULL; m[n].val = p; m[n].val_len = 4; p += 4;
            break;
        default: {
            int is_int;
            const char *e = scan_number(p, end, &is_int);
            if (!e) return -1;   /* also nested objects, arrays, NaN, Infinity */
            m[n].type = is_int ? V_INT : V_NUM;
            m[n].val = p;
            m[n].val_len = (uint32_t)(e - p);
            p = e;
        }
        }
        n++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') { p = skip_ws(p + 1, end); continue; }
        if (p < end && *p == '}') { p++; break; }
        return -1;
    }
    if (skip_ws(p, end) != end) return -1;
    /* A key given twice: the last one counts in JSON decoders, and a dropped earlier value
     * could differ in role outcome; rare enough to leave to the general decoder. */
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++)
            if (m[i].key_len == m[j].key_len && memcmp(m[i].key, m[j].key, m[i].key_len) == 0)
                return -1;
    return n;
}

static int role_of(const gw_json_spec *s, const member *m) {
    if (s->time_key_len && m->key_len == s->time_key_len
        && memcmp(m->key, s->time_key, m->key_len) == 0) return R_TIME;
    if (s->measurement_key_len && m->key_len == s->measurement_key_len
        && memcmp(m->key, s->measurement_key, m->key_len) == 0) return R_MEASUREMENT;
    if (in_list(s->tag_keys, s->tag_keys_len, m->key, m->key_len)) return R_TAG;
    if (m->key[0] == '_') return R_SKIP;
    if (s->field_keys_len && !in_list(s->field_keys, s->field_keys_len, m->key, m->key_len)
        && !in_list(s->string_fields, s->string_fields_len, m->key, m->key_len)) return R_SKIP;
    return R_FIELD;
}

/* An integer time scaled to ns, within the line protocol range; 0 when it is not. */
static int scaled_time(const member *m, int64_t scale, int64_t *out) {
    const char *p = m->val, *end = m->val + m->val_len;
    int neg = 0;
    if (*p == '-') { neg = 1; p++; }
    if (end - p > 19) return 0;
    uint64_t v = 0;
    for (; p < end; p++) v = v * 10 + (uint64_t)(*p - '0');
    if (v > (uint64_t)INT64_MAX) return 0;
    int64_t t = neg ? -(int64_t)v : (int64_t)v, ns;
    if (__builtin_mul_overflow(t, scale, &ns)) return 0;
    if (ns < LP_MIN_TIME || ns > LP_MAX_TIME) return 0;
    *out = ns;
    return 1;
}

/* Copies a name, escaping the bytes line protocol escapes in it (escape_eq: tag keys, tag
 * values and field keys also escape '='). Names here hold no backslash (scan_plain_string). */
static char *put_name(char *o, const char *s, uint32_t n, int escape_eq) {
    for (uint32_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ',' || c == ' ' || (c == '=' && escape_eq)) *o++ = '\\';
        *o++ = c;
    }
    return o;
}

static char *put_i64(char *o, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) *o++ = '-';
    while (n) *o++ = tmp[--n];
    return o;
}

/* Writes the line of one object, or returns NULL when the object is left to the general
 * decoder. */
static char *one_line(const gw_json_spec *s, const member *m, int n, int64_t ts, char *o) {
    uint8_t roles[JL_MAX_MEMBERS];
    const member *meas = NULL;
    int fields = 0;
    for (int i = 0; i < n; i++) {
        int r = role_of(s, &m[i]);
        switch (r) {
        case R_TIME:
            if (m[i].type != V_INT || !s->time_scale || !scaled_time(&m[i], s->time_scale, &ts))
                return NULL;
            break;
        case R_MEASUREMENT:
            if (m[i].type != V_STR || m[i].val_len == 0 || m[i].val[0] == '#') return NULL;
            meas = &m[i];
            break;
        case R_TAG:
            if (m[i].type == V_NULL || (m[i].type == V_STR && m[i].val_len == 0)) {
                r = R_SKIP;   /* no value is no tag */
            } else if (m[i].type != V_STR
                       || in_list(s->base_tag_keys, s->base_tag_keys_len, m[i].key, m[i].key_len)) {
                return NULL;   /* non-string tags are spelt by the general decoder */
            }
            break;
        case R_FIELD:
            if (m[i].type == V_STR) {
                if (in_list(s->string_fields, s->string_fields_len, m[i].key, m[i].key_len)) fields++;
                else if (in_list(s->field_keys, s->field_keys_len, m[i].key, m[i].key_len)) return NULL;
                else r = R_SKIP;
            } else if (m[i].type == V_NULL) {
                if (in_list(s->field_keys, s->field_keys_len, m[i].key, m[i].key_len)
                    || in_list(s->string_fields, s->string_fields_len, m[i].key, m[i].key_len))
                    return NULL;
                r = R_SKIP;
            } else {
                fields++;
            }
            break;
        default:
            break;
        }
        roles[i] = (uint8_t)r;
    }
    if (!fields) return NULL;
    if (meas) {
        o = put_name(o, meas->val, meas->val_len, 0);
    } else {
        if (!s->measurement_len) return NULL;
        memcpy(o, s->measurement, s->measurement_len);
        o += s->measurement_len;
    }
    if (s->base_tags_len) {
        memcpy(o, s->base_tags, s->base_tags_len);
        o += s->base_tags_len;
    }
    for (int i = 0; i < n; i++) {
        if (roles[i] != R_TAG) continue;
        *o++ = ',';
        o = put_name(o, m[i].key, m[i].key_len, 1);
        *o++ = '=';
        o = put_name(o, m[i].val, m[i].val_len, 1);
    }
    char sep = ' ';
    for (int i = 0; i < n; i++) {
        if (roles[i] != R_FIELD) continue;
        *o++ = sep;
        sep = ',';
        o = put_name(o, m[i].key, m[i].key_len, 1);
        *o++ = '=';
        if (m[i].type == V_STR) *o++ = '"';
        /* JSON numbers are line protocol floats as written: an integer without the 'i'
         * suffix is a float there too, as the general decoder makes every number. */
        memcpy(o, m[i].val, m[i].val_len);
        o += m[i].val_len;
        if (m[i].type == V_STR) *o++ = '"';
    }
    *o++ = ' ';
    o = put_i64(o, ts);
    *o++ = '\n';
    return o;
}

size_t gw_json_lines_bound(const gw_json_spec *spec, size_t total_len, uint32_t n) {
    /* Per payload: measurement, base tags, a timestamp and a newline; its own bytes at most
     * double by escaping, plus two quotes per string and a separator per member (members are
     * at least 5 bytes: "k":0, so one extra byte each stays under 2x). */
    size_t per = (size_t)spec->measurement_len + spec->base_tags_len + 24;
    return (size_t)n * per + 3 * total_len + 1;
}

int64_t gw_json_lines(const gw_json_spec *spec, const char *data, const uint64_t *ends,
                      uint32_t n, const int64_t *arrival_ns, char *out, size_t out_cap,
                      uint8_t *status) {
    uint64_t start = 0;
    if (out_cap < gw_json_lines_bound(spec, n ? ends[n - 1] : 0, n)) return GW_ENOMEM;
    char *o = out;
    member m[JL_MAX_MEMBERS];
    for (uint32_t i = 0; i < n; i++) {
        const char *p = data + start, *end = data + ends[i];
        start = ends[i];
        status[i] = GW_JSON_GENERAL;
        int count = scan_object(p, end, m);
        if (count < 0) continue;
        char *next = one_line(spec, m, count, arrival_ns[i], o);
        if (!next) continue;
        o = next;
        status[i] = GW_JSON_LINE;
    }
    return (int64_t)(o - out);
}
