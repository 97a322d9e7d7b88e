/* InfluxDB line protocol parser and series serializer; see gw_lineproto.h and
 * docs/format/line-protocol.md.
 *
 * A line is scanned once into descriptors (names, typed values, timestamp) that point into the
 * input, or into a scratch buffer for names and strings that contained escapes. Only when the
 * whole line is valid are its points appended to the batch, so a bad line never leaves half of
 * itself behind and needs no rollback.
 *
 *   line      = measurement { "," tag_key "=" tag_value } " "+ field { "," field } [ " "+ time ] " "*
 *   field     = field_key "=" ( float | int "i" | uint "u" | bool | '"' string '"' )
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_lineproto.h"
#include "utf8.h"

#define LP_MIN_TIME ((int64_t)-9223372036854775806LL)
#define LP_MAX_TIME ((int64_t)9223372036854775806LL)
/* Below this many items a sort is an insertion sort: lines rarely have more tags or fields. */
#define LP_SMALL_SORT 12
/* Longest float token parsed from a stack buffer; longer ones (legal, e.g. many zeros) go
 * through the heap. */
#define LP_FLOAT_STACK 64

/* Byte classes for the scanners. PLAIN bytes need no thought in any name or number. */
enum { PLAIN = 0, SPECIAL = 1, CONTROL = 2, HIGH = 3 };
static const unsigned char byte_class[256] = {
    /* 0x00-0x1f control */
    2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,
    /* ' ' ! " # $ % & ' ( ) * + , - . / */
    1,0,0,0,0,0,0,0, 0,0,0,0,1,0,0,0,
    /* 0-9 : ; < = > ? */
    0,0,0,0,0,0,0,0, 0,0,0,0,0,1,0,0,
    /* @ A-O */
    0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,
    /* P-Z [ \ ] ^ _ */
    0,0,0,0,0,0,0,0, 0,0,0,0,1,0,0,0,
    /* ` a-o */
    0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,
    /* p-z { | } ~ DEL */
    0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,2,
    3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3,
    3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3,
    3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3,
    3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3,
};

/* Where a name's escaping rules differ, as in InfluxDB's parser: a measurement escapes comma and
 * space (it does not end at '=', so '\=' is a backslash and '=' in it); tag keys and tag values
 * also escape the equals sign; field keys also the double quote. A backslash before any other
 * byte, a backslash included, is an ordinary character. */
enum { NAME_MEASUREMENT = 0, NAME_TAG = 1, NAME_FIELD = 2 };

typedef struct {
    size_t raw;        /* offset of the raw (escaped) text in the input */
    size_t text;       /* offset of the unescaped text: input if !esc, scratch if esc */
    uint32_t raw_len;
    uint32_t len;      /* unescaped length */
    uint8_t esc;       /* the raw text may differ from the name or from its canonical escaping */
} lp_name;

typedef struct {
    lp_name key, value;
} lp_tag;

typedef struct {
    lp_name key;
    uint64_t value;    /* for strings: offset of the bytes (input if !str_esc, else scratch) */
    uint32_t str_len;
    uint8_t type;
    uint8_t str_esc;
    uint8_t skip;      /* a later field of the same line has the same key */
} lp_field;

typedef struct {
    const char *data;
    size_t len;
    char *scratch;
    size_t scratch_len, scratch_cap;
    lp_tag *tags;
    uint32_t ntags, tags_cap;
    lp_field *fields;
    uint32_t nfields, fields_cap;
    uint32_t *order, *order_tmp;
    uint32_t order_cap;
    char *key;
    size_t key_cap;
    /* set by a failing step */
    size_t err_pos, resume_pos;
    /* newlines met inside string values of the current line */
    uint64_t string_newlines;
} lp_parser;

static const char *const reasons[GW_LP_E_LAST + 1] = {
    "unknown error",
    "missing measurement",
    "missing tag key",
    "expected '=' after tag key",
    "missing tag value",
    "unescaped '=' in tag value",
    "duplicate tag key",
    "missing fields",
    "missing field key",
    "expected '=' after field key",
    "missing field value",
    "invalid field value",
    "invalid float",
    "float out of range",
    "invalid integer",
    "integer out of range",
    "invalid unsigned integer",
    "unsigned integer out of range",
    "invalid boolean",
    "unterminated string",
    "string longer than 64 KiB",
    "expected ',' or space after field value",
    "invalid timestamp",
    "timestamp out of range",
    "unexpected text after timestamp",
    "name starts with reserved '_'",
    "control character not allowed",
    "invalid UTF-8",
    "series key longer than 65530 bytes (the store's limit)",
    "measurement starts with '#', a comment",
    "series keys of the line exceed 4 MiB",
    "name ends in a backslash, which line protocol cannot write",
    "measurement starts with U+FEFF, read as a byte order mark at the start of input",
};

const char *gw_lp_reason(int reason) {
    if (reason < 1 || reason > GW_LP_E_LAST) return reasons[0];
    return reasons[reason];
}

/* ---- small helpers ------------------------------------------------------------------- */

static int grow(void **ptr, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return GW_OK;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) {
        if (cap2 > SIZE_MAX / 2 / item) return GW_ENOMEM;
        cap2 *= 2;
    }
    void *p = realloc(*ptr, cap2 * item);
    if (!p) return GW_ENOMEM;
    *ptr = p;
    *cap = cap2;
    return GW_OK;
}

static int grow32(void **ptr, uint32_t *cap, uint32_t need, size_t item) {
    size_t c = *cap;
    if (need > UINT32_MAX / 2) return GW_ENOMEM;
    int rc = grow(ptr, &c, need, item);
    *cap = (uint32_t)c;
    return rc;
}

static inline const char *name_text(const lp_parser *p, const lp_name *n) {
    return n->esc ? p->scratch + n->text : p->data + n->text;
}

static int compare_bytes(const char *a, size_t alen, const char *b, size_t blen) {
    size_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return (alen > blen) - (alen < blen);
}

/* ---- scanning ------------------------------------------------------------------------ */

/* True when data[i] ends the line: "\n", or "\r" followed by "\n" or the end of the input. */
static inline int at_eol(const lp_parser *p, size_t i) {
    if (i >= p->len) return 1;
    char c = p->data[i];
    if (c == '\n') return 1;
    return c == '\r' && (i + 1 == p->len || p->data[i + 1] == '\n');
}

/* Position just past the end of line at i (at_eol(i) holds). */
static inline size_t past_eol(const lp_parser *p, size_t i) {
    if (i >= p->len) return p->len;
    if (p->data[i] == '\r') i++;
    return i < p->len ? i + 1 : p->len;
}

static inline int escapable(int kind, unsigned char c) {
    return c == ',' || c == ' ' || (kind != NAME_MEASUREMENT && c == '=') ||
           (kind == NAME_FIELD && c == '"');
}

static int fail(lp_parser *p, int reason, size_t pos) {
    p->err_pos = pos;
    p->resume_pos = pos;
    return reason;
}

/* Scans a name starting at *pos. It ends at an unescaped ',' or ' ', at '=' for keys, at the
 * end of the line or of the input; *pos is left on that byte. Returns 0 or a reason. A byte is
 * escaped when a backslash comes right before it, however many backslashes precede that one
 * (InfluxDB's rule), so "a\\,b" is the name "a\,b". */
static int scan_name(lp_parser *p, size_t *pos, int kind, lp_name *out) {
    const unsigned char *d = (const unsigned char *)p->data;
    size_t i = *pos, n = p->len;
    int esc = 0;
    while (i < n) {
        unsigned char c = d[i];
        unsigned char cls = byte_class[c];
        if (cls == PLAIN) { i++; continue; }
        if (cls == SPECIAL) {
            if (c == ',' || c == ' ') break;
            if (c == '=') {
                if (kind != NAME_MEASUREMENT) break;
                i++;
                continue;
            }
            /* backslash: an escape only before a character this kind of name escapes */
            esc = 1;
            i += (i + 1 < n && escapable(kind, d[i + 1])) ? 2 : 1;
            continue;
        }
        if (cls == CONTROL) {
            if (at_eol(p, i)) break;
            return fail(p, GW_LP_E_CONTROL_CHAR, i);
        }
        size_t u = utf8_len(d + i, n - i);
        if (!u) return fail(p, GW_LP_E_UTF8, i);
        i += u;
    }
    size_t raw_len = i - *pos;
    if (raw_len > UINT32_MAX) return fail(p, GW_LP_E_KEY_TOO_LONG, *pos);
    /* a plain '"' in a field key is escaped in the canonical key: take the copying path */
    if (!esc && kind == NAME_FIELD && memchr(d + *pos, '"', raw_len)) esc = 1;
    out->raw = *pos;
    out->raw_len = (uint32_t)raw_len;
    out->esc = (uint8_t)esc;
    if (!esc) {
        out->text = *pos;
        out->len = (uint32_t)raw_len;
    } else {
        if (grow((void **)&p->scratch, &p->scratch_cap, p->scratch_len + raw_len, 1)) return -1;
        char *w = p->scratch + p->scratch_len;
        size_t k = 0;
        for (size_t j = *pos; j < i; j++) {
            if (d[j] == '\\' && j + 1 < i && escapable(kind, d[j + 1])) j++;
            w[k++] = (char)d[j];
        }
        out->text = p->scratch_len;
        out->len = (uint32_t)k;
        p->scratch_len += k;
    }
    *pos = i;
    return 0;
}

/* Scans a string value; *pos is on the opening quote and is left past the closing one. */
static int scan_string(lp_parser *p, size_t *pos, lp_field *f) {
    const unsigned char *d = (const unsigned char *)p->data;
    size_t open = *pos, i = open + 1, n = p->len;
    int esc = 0;
    uint64_t newlines = 0;
    for (;;) {
        if (i >= n) {
            p->err_pos = open;
            p->resume_pos = open + 1;
            return GW_LP_E_STRING_UNTERMINATED;
        }
        unsigned char c = d[i];
        if (c == '"') break;
        if (c == '\\') {
            if (i + 1 < n && (d[i + 1] == '"' || d[i + 1] == '\\')) { esc = 1; i += 2; }
            else i++;
            continue;
        }
        if (c < 0x80) {
            newlines += (c == '\n');
            i++;
            continue;
        }
        size_t u = utf8_len(d + i, n - i);
        if (!u) return fail(p, GW_LP_E_UTF8, i);
        i += u;
    }
    size_t raw_len = i - open - 1;
    size_t len = raw_len;
    if (esc) {
        if (grow((void **)&p->scratch, &p->scratch_cap, p->scratch_len + raw_len, 1)) return -1;
        char *w = p->scratch + p->scratch_len;
        size_t k = 0;
        for (size_t j = open + 1; j < i; j++) {
            if (d[j] == '\\' && j + 1 < i && (d[j + 1] == '"' || d[j + 1] == '\\')) j++;
            w[k++] = (char)d[j];
        }
        len = k;
    }
    if (len > GW_MAX_STRING_LEN) {
        p->err_pos = open;
        p->resume_pos = i + 1;
        return GW_LP_E_STRING_TOO_LONG;
    }
    f->type = GW_STRING;
    f->str_len = (uint32_t)len;
    f->str_esc = (uint8_t)esc;
    if (esc) {
        f->value = p->scratch_len;
        p->scratch_len += len;
    } else {
        f->value = open + 1;
    }
    p->string_newlines += newlines;
    *pos = i + 1;
    return 0;
}

/* The end of a number, boolean or timestamp token starting at i. */
static size_t token_end(const lp_parser *p, size_t i) {
    while (i < p->len) {
        char c = p->data[i];
        if (c == ',' || c == ' ' || byte_class[(unsigned char)c] == CONTROL) break;
        i++;
    }
    return i;
}

/* Digits of an unsigned decimal into *out; returns 0, 1 (not only digits / none) or 2 (overflow). */
static int parse_u64(const char *s, size_t n, uint64_t *out) {
    if (n == 0) return 1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9) return 1;
        if (v > (UINT64_MAX - d) / 10) {
            /* keep checking the syntax so "99999999999999999999x" is invalid, not too big */
            for (size_t j = i + 1; j < n; j++)
                if ((unsigned)((unsigned char)s[j] - '0') > 9) return 1;
            return 2;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Signed 64-bit decimal with an optional '-': returns 0, 1 (syntax) or 2 (range). */
static int parse_i64(const char *s, size_t n, int64_t *out) {
    int neg = n > 0 && s[0] == '-';
    uint64_t v;
    int rc = parse_u64(s + neg, n - neg, &v);
    if (rc) return rc;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return 2;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return 2;
        *out = (int64_t)v;
    }
    return 0;
}

static const double exact_pow10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A float token: ["-"] (digits ["." digits*] | "." digits) [("e"|"E") ["+"|"-"] digits].
 * Returns 0, GW_LP_E_FLOAT_INVALID or GW_LP_E_FLOAT_RANGE. */
static int parse_float(const char *s, size_t n, double *out) {
    size_t i = 0;
    int neg = 0;
    if (i < n && s[i] == '-') { neg = 1; i++; }
    uint64_t mant = 0;
    int digits = 0, sig = 0, frac = 0;
    int mant_ok = 1;   /* the digits fit the exact fast path */
    while (i < n && (unsigned)((unsigned char)s[i] - '0') <= 9) {
        if (sig || s[i] != '0') {
            if (sig < 19) mant = mant * 10 + (unsigned)(s[i] - '0');
            else mant_ok = 0;
            sig++;
        }
        digits++;
        i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && (unsigned)((unsigned char)s[i] - '0') <= 9) {
            if (sig || s[i] != '0') {
                if (sig < 19) mant = mant * 10 + (unsigned)(s[i] - '0');
                else mant_ok = 0;
                sig++;
            }
            if (mant_ok) frac++;
            digits++;
            i++;
        }
    }
    if (digits == 0) return GW_LP_E_FLOAT_INVALID;
    long exp10 = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '+' || s[i] == '-')) { eneg = s[i] == '-'; i++; }
        size_t e0 = i;
        while (i < n && (unsigned)((unsigned char)s[i] - '0') <= 9) {
            if (exp10 < 100000) exp10 = exp10 * 10 + (s[i] - '0');
            i++;
        }
        if (i == e0) return GW_LP_E_FLOAT_INVALID;
        if (eneg) exp10 = -exp10;
    }
    if (i != n) return GW_LP_E_FLOAT_INVALID;

    /* Exact fast path: an integer mantissa below 2^53 scaled by an exactly representable power
     * of ten gives the correctly rounded result with one IEEE multiply or divide. */
    long e = exp10 - frac;
    if (mant_ok && mant <= (UINT64_C(1) << 53) && e >= -22 && e <= 22) {
        double v = (double)mant;
        v = e < 0 ? v / exact_pow10[-e] : v * exact_pow10[e];
        *out = neg ? -v : v;
        return 0;
    }
    /* strtod needs a terminated copy; the token was validated above, so only digits, '.',
     * 'e', signs reach it and the C locale's '.' is the decimal point. */
    char stack[LP_FLOAT_STACK];
    char *buf = n < sizeof stack ? stack : malloc(n + 1);
    if (!buf) return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    char *end;
    double v = strtod(buf, &end);
    int bad = (size_t)(end - buf) != n;
    if (buf != stack) free(buf);
    if (bad) return GW_LP_E_FLOAT_INVALID;
    if (isinf(v)) return GW_LP_E_FLOAT_RANGE;
    *out = v;
    return 0;
}

static int is_bool(const char *s, size_t n, uint64_t *out) {
    switch (n) {
    case 1:
        if (s[0] == 't' || s[0] == 'T') { *out = 1; return 1; }
        if (s[0] == 'f' || s[0] == 'F') { *out = 0; return 1; }
        return 0;
    case 4:
        if (!memcmp(s, "true", 4) || !memcmp(s, "True", 4) || !memcmp(s, "TRUE", 4)) {
            *out = 1;
            return 1;
        }
        return 0;
    case 5:
        if (!memcmp(s, "false", 5) || !memcmp(s, "False", 5) || !memcmp(s, "FALSE", 5)) {
            *out = 0;
            return 1;
        }
        return 0;
    default:
        return 0;
    }
}

/* Scans a non-string field value at *pos into f; *pos is left past the token. */
static int scan_value(lp_parser *p, size_t *pos, lp_field *f) {
    size_t start = *pos;
    size_t end = token_end(p, start);
    const char *s = p->data + start;
    size_t n = end - start;
    if (n == 0) return fail(p, GW_LP_E_FIELD_VALUE_MISSING, start);
    char c = s[0];
    if (c == 't' || c == 'T' || c == 'f' || c == 'F') {
        if (!is_bool(s, n, &f->value)) return fail(p, GW_LP_E_BOOL_INVALID, start);
        f->type = GW_BOOL;
    } else if (c == '-' || c == '.' || (c >= '0' && c <= '9')) {
        char last = s[n - 1];
        if (last == 'i') {
            int64_t v;
            int rc = parse_i64(s, n - 1, &v);
            if (rc) return fail(p, rc == 2 ? GW_LP_E_INT_RANGE : GW_LP_E_INT_INVALID, start);
            f->type = GW_INT;
            f->value = (uint64_t)v;
        } else if (last == 'u') {
            int rc = parse_u64(s, n - 1, &f->value);
            if (rc) return fail(p, rc == 2 ? GW_LP_E_UINT_RANGE : GW_LP_E_UINT_INVALID, start);
            f->type = GW_UINT;
        } else {
            double v;
            int rc = parse_float(s, n, &v);
            if (rc < 0) return -1;
            if (rc) return fail(p, rc, start);
            f->type = GW_FLOAT;
            memcpy(&f->value, &v, sizeof v);
        }
    } else {
        return fail(p, GW_LP_E_FIELD_VALUE_INVALID, start);
    }
    *pos = end;
    return 0;
}

static inline size_t skip_spaces(const lp_parser *p, size_t i) {
    while (i < p->len && p->data[i] == ' ') i++;
    return i;
}

/* ---- sorting and validation ---------------------------------------------------------- */

typedef int (*lp_cmp)(const lp_parser *p, uint32_t a, uint32_t b);

static int cmp_tags(const lp_parser *p, uint32_t a, uint32_t b) {
    const lp_name *x = &p->tags[a].key, *y = &p->tags[b].key;
    return compare_bytes(name_text(p, x), x->len, name_text(p, y), y->len);
}

static int cmp_fields(const lp_parser *p, uint32_t a, uint32_t b) {
    const lp_name *x = &p->fields[a].key, *y = &p->fields[b].key;
    return compare_bytes(name_text(p, x), x->len, name_text(p, y), y->len);
}

/* Stable merge sort of idx[0..n) (tmp has room for n); lines with thousands of tags or fields
 * are legal, so no quadratic sort on them. */
static void sort_idx(const lp_parser *p, uint32_t *idx, uint32_t *tmp, uint32_t n, lp_cmp cmp) {
    if (n <= LP_SMALL_SORT) {
        for (uint32_t i = 1; i < n; i++) {
            uint32_t v = idx[i], j = i;
            while (j > 0 && cmp(p, idx[j - 1], v) > 0) { idx[j] = idx[j - 1]; j--; }
            idx[j] = v;
        }
        return;
    }
    uint32_t h = n / 2;
    sort_idx(p, idx, tmp, h, cmp);
    sort_idx(p, idx + h, tmp, n - h, cmp);
    uint32_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cmp(p, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

static int ensure_order(lp_parser *p, uint32_t n) {
    if (n <= p->order_cap) return GW_OK;
    uint32_t cap = p->order_cap;
    if (grow32((void **)&p->order, &cap, n, sizeof *p->order)) return GW_ENOMEM;
    uint32_t cap2 = p->order_cap;
    if (grow32((void **)&p->order_tmp, &cap2, n, sizeof *p->order_tmp)) return GW_ENOMEM;
    p->order_cap = cap < cap2 ? cap : cap2;
    return GW_OK;
}

/* ---- key building -------------------------------------------------------------------- */

/* Length of a name in canonical escaping. */
static size_t escaped_len(const lp_parser *p, const lp_name *nm, int kind) {
    if (!nm->esc) return nm->raw_len;
    const unsigned char *s = (const unsigned char *)name_text(p, nm);
    size_t n = nm->len;
    for (uint32_t i = 0; i < nm->len; i++) n += escapable(kind, s[i]);
    return n;
}

/* Appends a name in canonical escaping to the key buffer at *klen. */
static int put_name(lp_parser *p, size_t *klen, const lp_name *nm, int kind) {
    size_t need = *klen + (nm->esc ? 2 * (size_t)nm->len : nm->raw_len);
    if (grow((void **)&p->key, &p->key_cap, need, 1)) return GW_ENOMEM;
    char *w = p->key + *klen;
    if (!nm->esc) {
        /* without a backslash (or a field key's '"') the raw text holds no escapable byte: it
         * is already canonical */
        memcpy(w, p->data + nm->raw, nm->raw_len);
        *klen += nm->raw_len;
        return GW_OK;
    }
    const unsigned char *s = (const unsigned char *)name_text(p, nm);
    size_t k = 0;
    for (uint32_t i = 0; i < nm->len; i++) {
        if (escapable(kind, s[i])) w[k++] = '\\';
        w[k++] = (char)s[i];
    }
    *klen += k;
    return GW_OK;
}

/* ---- one line -------------------------------------------------------------------------- */

/* Parses the line at *pos (leading spaces skipped, not blank, not a comment) and appends its
 * points. Returns 0 with *pos past the line, a reason (>0) with err_pos/resume_pos set, or -1
 * when out of memory. */
static int parse_line(lp_parser *p, gw_batch *b, size_t *pos, int64_t precision,
                      int64_t default_ts, uint64_t *points) {
    size_t i = *pos;
    int rc;
    lp_name meas;
    p->ntags = p->nfields = 0;
    p->scratch_len = 0;
    p->string_newlines = 0;

    if ((rc = scan_name(p, &i, NAME_MEASUREMENT, &meas))) return rc;
    if (meas.raw_len == 0) return fail(p, GW_LP_E_MEASUREMENT_MISSING, i);
    if (p->data[meas.raw] == '_') return fail(p, GW_LP_E_NAME_RESERVED, meas.raw);

    while (i < p->len && p->data[i] == ',') {
        i++;
        if (grow32((void **)&p->tags, &p->tags_cap, p->ntags + 1, sizeof *p->tags)) return -1;
        lp_tag *t = &p->tags[p->ntags];
        if ((rc = scan_name(p, &i, NAME_TAG, &t->key))) return rc;
        if (t->key.raw_len == 0) return fail(p, GW_LP_E_TAG_KEY_MISSING, i);
        if (p->data[t->key.raw] == '_') return fail(p, GW_LP_E_NAME_RESERVED, t->key.raw);
        if (i >= p->len || p->data[i] != '=') return fail(p, GW_LP_E_TAG_EQUALS_MISSING, i);
        i++;
        if ((rc = scan_name(p, &i, NAME_TAG, &t->value))) return rc;
        if (i < p->len && p->data[i] == '=') return fail(p, GW_LP_E_TAG_VALUE_EQUALS, i);
        if (t->value.raw_len == 0) return fail(p, GW_LP_E_TAG_VALUE_MISSING, i);
        p->ntags++;
    }
    if (at_eol(p, i)) return fail(p, GW_LP_E_FIELDS_MISSING, i);
    /* scan_name stops only at ',', ' ', '=' (keys) or the end of line, so this is a space */
    i = skip_spaces(p, i);
    if (at_eol(p, i)) return fail(p, GW_LP_E_FIELDS_MISSING, i);

    for (;;) {
        if (grow32((void **)&p->fields, &p->fields_cap, p->nfields + 1, sizeof *p->fields))
            return -1;
        lp_field *f = &p->fields[p->nfields];
        f->skip = 0;
        f->str_len = 0;
        f->str_esc = 0;
        if ((rc = scan_name(p, &i, NAME_FIELD, &f->key))) return rc;
        if (f->key.raw_len == 0) return fail(p, GW_LP_E_FIELD_KEY_MISSING, i);
        if (p->data[f->key.raw] == '_') return fail(p, GW_LP_E_NAME_RESERVED, f->key.raw);
        if (i >= p->len || p->data[i] != '=') return fail(p, GW_LP_E_FIELD_EQUALS_MISSING, i);
        i++;
        if (i < p->len && p->data[i] == '"') rc = scan_string(p, &i, f);
        else rc = scan_value(p, &i, f);
        if (rc) return rc;
        p->nfields++;
        if (i < p->len && p->data[i] == ',') { i++; continue; }
        if (at_eol(p, i) || p->data[i] == ' ') break;
        return fail(p, GW_LP_E_AFTER_FIELD, i);
    }

    int64_t ts = default_ts;
    i = skip_spaces(p, i);
    if (!at_eol(p, i)) {
        size_t t0 = i, t1 = token_end(p, i);
        int64_t raw;
        rc = parse_i64(p->data + t0, t1 - t0, &raw);
        if (rc == 1) return fail(p, GW_LP_E_TIME_INVALID, t0);
        if (rc == 2) return fail(p, GW_LP_E_TIME_RANGE, t0);
        if (raw > LP_MAX_TIME / precision || raw < LP_MIN_TIME / precision)
            return fail(p, GW_LP_E_TIME_RANGE, t0);
        ts = raw * precision;
        if (ts > LP_MAX_TIME || ts < LP_MIN_TIME) return fail(p, GW_LP_E_TIME_RANGE, t0);
        i = skip_spaces(p, t1);
        if (!at_eol(p, i)) return fail(p, GW_LP_E_AFTER_TIME, i);
    }
    size_t eol = i, line_end = past_eol(p, i);

    /* Tags sorted by unescaped key; a key twice is an error (which value would be meant?). */
    uint32_t nmax = p->ntags > p->nfields ? p->ntags : p->nfields;
    if (ensure_order(p, nmax)) return -1;
    if (p->ntags > 1) {
        for (uint32_t k = 0; k < p->ntags; k++) p->order[k] = k;
        sort_idx(p, p->order, p->order_tmp, p->ntags, cmp_tags);
        for (uint32_t k = 1; k < p->ntags; k++) {
            if (cmp_tags(p, p->order[k - 1], p->order[k]) == 0) {
                uint32_t later = p->order[k - 1] > p->order[k] ? p->order[k - 1] : p->order[k];
                p->err_pos = p->tags[later].key.raw;
                p->resume_pos = eol;
                return GW_LP_E_TAG_DUPLICATE;
            }
        }
    } else if (p->ntags == 1) {
        p->order[0] = 0;
    }

    /* The measurement and tag set, shared by every field's key. */
    size_t klen = 0;
    if (put_name(p, &klen, &meas, NAME_MEASUREMENT)) return -1;
    for (uint32_t k = 0; k < p->ntags; k++) {
        const lp_tag *t = &p->tags[p->order[k]];
        if (grow((void **)&p->key, &p->key_cap, klen + 1, 1)) return -1;
        p->key[klen++] = ',';
        if (put_name(p, &klen, &t->key, NAME_TAG)) return -1;
        if (grow((void **)&p->key, &p->key_cap, klen + 1, 1)) return -1;
        p->key[klen++] = '=';
        if (put_name(p, &klen, &t->value, NAME_TAG)) return -1;
    }
    size_t prefix_len = klen;

    /* A field key given twice keeps the later value, as a later write of the same point does. */
    if (p->nfields > 1) {
        for (uint32_t k = 0; k < p->nfields; k++) p->order[k] = k;
        sort_idx(p, p->order, p->order_tmp, p->nfields, cmp_fields);
        for (uint32_t k = 1; k < p->nfields; k++)
            if (cmp_fields(p, p->order[k - 1], p->order[k]) == 0)
                p->fields[p->order[k - 1]].skip = 1;  /* stable sort: k-1 came first */
    }

    uint64_t key_bytes = 0;
    for (uint32_t k = 0; k < p->nfields; k++)
        if (!p->fields[k].skip)
            key_bytes += prefix_len + 1 + escaped_len(p, &p->fields[k].key, NAME_FIELD);
    if (key_bytes > GW_LP_MAX_LINE_KEY_BYTES) {
        p->err_pos = meas.raw;
        p->resume_pos = eol;
        return GW_LP_E_LINE_KEYS_TOO_BIG;
    }

    size_t arena_mark = b->arena_len;
    uint32_t n_mark = b->n;
    uint64_t added = 0;
    for (uint32_t k = 0; k < p->nfields; k++) {
        const lp_field *f = &p->fields[k];
        if (f->skip) continue;
        klen = prefix_len;
        if (grow((void **)&p->key, &p->key_cap, klen + 1, 1)) goto nomem;
        p->key[klen++] = ' ';
        if (put_name(p, &klen, &f->key, NAME_FIELD)) goto nomem;
        if (klen > GW_MAX_KEY_LEN) {
            b->arena_len = arena_mark;
            b->n = n_mark;
            p->err_pos = meas.raw;
            p->resume_pos = eol;
            return GW_LP_E_KEY_TOO_LONG;
        }
        int64_t koff = gw_batch_arena_append(b, p->key, klen);
        if (koff < 0) goto nomem;
        uint64_t value = f->value;
        if (f->type == GW_STRING) {
            const char *src = f->str_esc ? p->scratch + f->value : p->data + f->value;
            int64_t soff = gw_batch_arena_append(b, src, f->str_len);
            if (soff < 0) goto nomem;
            value = (uint64_t)soff;
        }
        rc = gw_batch_push(b, (uint32_t)koff, (uint32_t)klen, f->type, value, f->str_len, ts);
        if (rc != GW_OK) goto nomem;
        added++;
    }
    *points += added;
    *pos = line_end;
    return 0;

nomem:
    b->arena_len = arena_mark;
    b->n = n_mark;
    return -1;
}

/* ---- the whole input ----------------------------------------------------------------- */

static void record_error(const lp_parser *p, size_t line_start, uint64_t line_no, int reason,
                         gw_lp_error *errors, uint32_t max_errors, gw_lp_stats *st) {
    st->bad_lines++;
    if (st->n_errors >= max_errors || !errors) return;
    size_t pos = p->err_pos < p->len ? p->err_pos : p->len;
    size_t phys = line_start;
    for (size_t j = line_start; j < pos; j++) {
        if (p->data[j] == '\n') {
            line_no++;
            phys = j + 1;
        }
    }
    uint32_t col = 1;
    for (size_t j = phys; j < pos; j++)
        if (((unsigned char)p->data[j] & 0xC0) != 0x80 && col < UINT32_MAX) col++;
    gw_lp_error *e = &errors[st->n_errors++];
    e->line = line_no;
    e->column = col;
    e->reason = (uint32_t)reason;
}

static void parser_free(lp_parser *p) {
    free(p->scratch);
    free(p->tags);
    free(p->fields);
    free(p->order);
    free(p->order_tmp);
    free(p->key);
}

int gw_lp_parse(gw_batch *b, const char *data, size_t len, int64_t precision_ns,
                int64_t default_ts, gw_lp_error *errors, uint32_t max_errors,
                gw_lp_stats *stats) {
    if (precision_ns != 1 && precision_ns != 1000 && precision_ns != 1000000 &&
        precision_ns != 1000000000)
        return GW_EINVAL;
    if (default_ts < LP_MIN_TIME || default_ts > LP_MAX_TIME) return GW_EINVAL;
    /* A default time is truncated to the precision, as InfluxDB does, so a line without a
     * timestamp gets the time a line with one could have said (rounded up only where the
     * floor would leave the range). */
    int64_t below = default_ts % precision_ns;
    if (below < 0) below += precision_ns;
    if (default_ts >= LP_MIN_TIME + below) default_ts -= below;
    else default_ts += precision_ns - below;
    memset(stats, 0, sizeof *stats);
    lp_parser p;
    memset(&p, 0, sizeof p);
    p.data = data;
    p.len = len;
    /* A UTF-8 byte order mark (editors on Windows write one) is not part of the first name. */
    size_t pos = len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0;
    uint64_t line_no = 1;
    int result = GW_OK;
    while (pos < len) {
        size_t line_start = pos;
        size_t i = skip_spaces(&p, pos);
        if (at_eol(&p, i)) {
            line_no += i < len;   /* a lone "\r" at the very end ends no line */
            pos = past_eol(&p, i);
            continue;
        }
        if (data[i] == '#') {
            const char *nl = memchr(data + i, '\n', len - i);
            pos = nl ? (size_t)(nl - data) + 1 : len;
            line_no++;
            continue;
        }
        stats->lines++;
        int rc = parse_line(&p, b, &i, precision_ns, default_ts, &stats->points);
        if (rc < 0) { result = GW_ENOMEM; break; }
        if (rc == 0) {
            line_no += p.string_newlines + 1;
            pos = i;
            continue;
        }
        record_error(&p, line_start, line_no, rc, errors, max_errors, stats);
        size_t from = p.resume_pos < len ? p.resume_pos : len;
        const char *nl = memchr(data + from, '\n', len - from);
        size_t next = nl ? (size_t)(nl - data) + 1 : len;
        for (size_t j = line_start; j < next; j++) line_no += data[j] == '\n';
        pos = next;
    }
    parser_free(&p);
    return result;
}

/* ---- series keys and serialization --------------------------------------------------- */

int gw_lp_check_series_key(const char *key, size_t len) {
    lp_parser p;
    memset(&p, 0, sizeof p);
    p.data = key;
    p.len = len;
    size_t i = 0;
    int rc;
    lp_name nm;
    if ((rc = scan_name(&p, &i, NAME_MEASUREMENT, &nm))) goto done;
    if (nm.raw_len == 0) { rc = GW_LP_E_MEASUREMENT_MISSING; goto done; }
    if (key[0] == '_') { rc = GW_LP_E_NAME_RESERVED; goto done; }
    if (key[0] == '#') { rc = GW_LP_E_MEASUREMENT_HASH; goto done; }
    if (len >= 3 && !memcmp(key, "\xEF\xBB\xBF", 3)) { rc = GW_LP_E_MEASUREMENT_BOM; goto done; }
    while (i < len && key[i] == ',') {
        i++;
        if (grow32((void **)&p.tags, &p.tags_cap, p.ntags + 1, sizeof *p.tags)) { rc = -1; goto done; }
        if ((rc = scan_name(&p, &i, NAME_TAG, &p.tags[p.ntags].key))) goto done;
        nm = p.tags[p.ntags++].key;
        if (nm.raw_len == 0) { rc = GW_LP_E_TAG_KEY_MISSING; goto done; }
        if (key[nm.raw] == '_') { rc = GW_LP_E_NAME_RESERVED; goto done; }
        if (i >= len || key[i] != '=') { rc = GW_LP_E_TAG_EQUALS_MISSING; goto done; }
        i++;
        if ((rc = scan_name(&p, &i, NAME_TAG, &nm))) goto done;
        if (i < len && key[i] == '=') { rc = GW_LP_E_TAG_VALUE_EQUALS; goto done; }
        if (nm.raw_len == 0) { rc = GW_LP_E_TAG_VALUE_MISSING; goto done; }
    }
    if (i >= len || key[i] != ' ') { rc = GW_LP_E_FIELDS_MISSING; goto done; }
    i++;
    if ((rc = scan_name(&p, &i, NAME_FIELD, &nm))) goto done;
    if (nm.raw_len == 0) { rc = GW_LP_E_FIELD_KEY_MISSING; goto done; }
    if (key[nm.raw] == '_') { rc = GW_LP_E_NAME_RESERVED; goto done; }
    /* the other names end at an unescaped separator, so only the field key can end in a
     * backslash: written before '=', that backslash would escape it */
    if (key[len - 1] == '\\') { rc = GW_LP_E_TRAILING_BACKSLASH; goto done; }
    /* a key is one line: anything left (a second space, a newline, '=') is malformed */
    if (i != len) { rc = GW_LP_E_FIELD_EQUALS_MISSING; goto done; }
    if (len > GW_MAX_KEY_LEN) { rc = GW_LP_E_KEY_TOO_LONG; goto done; }
    /* a tag key twice: the parser refuses such a line, so it cannot be written */
    if (p.ntags > 1) {
        if (ensure_order(&p, p.ntags)) { rc = -1; goto done; }
        for (uint32_t k = 0; k < p.ntags; k++) p.order[k] = k;
        sort_idx(&p, p.order, p.order_tmp, p.ntags, cmp_tags);
        for (uint32_t k = 1; k < p.ntags; k++)
            if (cmp_tags(&p, p.order[k - 1], p.order[k]) == 0) { rc = GW_LP_E_TAG_DUPLICATE; break; }
    }
done:
    parser_free(&p);
    return rc < 0 ? GW_LP_E_KEY_TOO_LONG : rc;
}

/* Longest value text: "-1.2345678901234567e-308" is 24 bytes, "-9223372036854775808i" 21. */
#define LP_VALUE_MAX 32
#define LP_TIME_MAX 20

size_t gw_lp_format_bound(size_t key_len, size_t n) {
    size_t per = key_len + 1 + LP_VALUE_MAX + 1 + LP_TIME_MAX + 1;
    if (n && per > SIZE_MAX / n) return SIZE_MAX;
    return per * n;
}

static size_t put_u64(char *out, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

static size_t put_i64(char *out, int64_t v) {
    if (v >= 0) return put_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + put_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

/* Sensor values are mostly short decimals (21.37, 1013.25): when v is d / 10^k for an integer
 * d below 2^53 and k <= LP_MAX_PLAIN_DECIMALS, print d with the point shifted. The test
 * divides exactly as the parser's fast path will, so the text reads back to the same bits; the
 * smallest k that passes leaves no trailing zero. Returns 0 when v is not such a decimal. */
#define LP_MAX_PLAIN_DECIMALS 8
static size_t put_plain_decimal(char *out, double v) {
    double a = fabs(v);
    if (!(a > 0 && a < 1e15)) return 0;
    for (int k = 1; k <= LP_MAX_PLAIN_DECIMALS; k++) {
        double r = nearbyint(a * exact_pow10[k]);
        if (r >= 9007199254740992.0) return 0;
        if (r / exact_pow10[k] != a) continue;
        uint64_t d = (uint64_t)r, scale = 1;
        for (int j = 0; j < k; j++) scale *= 10;
        size_t n = 0;
        if (v < 0) out[n++] = '-';
        n += put_u64(out + n, d / scale);
        out[n++] = '.';
        uint64_t frac = d % scale;
        for (int j = k - 1; j >= 0; j--) {
            out[n + (size_t)j] = (char)('0' + frac % 10);
            frac /= 10;
        }
        return n + (size_t)k;
    }
    return 0;
}

/* v as text that reads back as the same double: a plain integer or short decimal when v is
 * one, else the shortest of %.15g, %.16g, %.17g (17 significant digits always suffice). */
static size_t put_double(char *out, double v) {
    /* integral values below 2^53 print exactly as integers, without the printf round trips */
    if (v == v && fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v &&
        !(v == 0 && signbit(v))) {
        return put_i64(out, (int64_t)v);
    }
    size_t plain = put_plain_decimal(out, v);
    if (plain) return plain;
    char buf[LP_VALUE_MAX];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v) break;
    }
    /* printf follows LC_NUMERIC; should a program switch it to a comma locale the round trip
     * test above fails, 17 digits are written, and the decimal point is put right here. */
    for (int k = 0; k < n; k++)
        if (buf[k] == ',') buf[k] = '.';
    memcpy(out, buf, (size_t)n);
    return (size_t)n;
}

/* One point's "key=value timestamp\n" for a number or boolean series (raw: its value word). */
static char *put_number_line(char *w, const char *key, size_t key_len, uint8_t type,
                             uint64_t raw, int64_t ts) {
    memcpy(w, key, key_len);
    w += key_len;
    *w++ = '=';
    switch (type) {
    case GW_FLOAT: {
        double d;
        memcpy(&d, &raw, sizeof d);
        w += put_double(w, d);
        break;
    }
    case GW_INT: w += put_i64(w, (int64_t)raw); *w++ = 'i'; break;
    case GW_UINT: w += put_u64(w, raw); *w++ = 'u'; break;
    default:
        if (raw) { memcpy(w, "true", 4); w += 4; }
        else { memcpy(w, "false", 5); w += 5; }
        break;
    }
    *w++ = ' ';
    w += put_i64(w, ts);
    *w++ = '\n';
    return w;
}

static int is_number_type(uint8_t type) {
    return type == GW_FLOAT || type == GW_INT || type == GW_UINT || type == GW_BOOL;
}

static int is_nonfinite(uint8_t type, uint64_t raw) {
    double d;
    memcpy(&d, &raw, sizeof d);
    return type == GW_FLOAT && !isfinite(d);
}

int64_t gw_lp_format_series(const char *key, size_t key_len, uint8_t type,
                            const int64_t *ts, const uint64_t *values, size_t n,
                            char *out, size_t out_cap, uint64_t *skipped) {
    if (!is_number_type(type)) return GW_EINVAL;
    if (out_cap < gw_lp_format_bound(key_len, n)) return GW_ENOMEM;
    char *w = out;
    uint64_t skip = 0;
    for (size_t k = 0; k < n; k++) {
        if (is_nonfinite(type, values[k])) { skip++; continue; }
        w = put_number_line(w, key, key_len, type, values[k], ts[k]);
    }
    *skipped = skip;
    return (int64_t)(w - out);
}

size_t gw_lp_bodies_bound(const gw_lp_series *series, size_t count) {
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        const gw_lp_series *s = &series[i];
        size_t b = gw_lp_format_bound(s->key_len, s->n);
        /* a string value is at most twice its bytes escaped, plus its two quotes */
        if (s->type == GW_STRING && s->n) {
            size_t bytes = s->string_ends[s->n - 1];
            if (bytes > (SIZE_MAX - b) / 2) return SIZE_MAX;
            b += 2 * bytes;
        }
        if (b == SIZE_MAX || b > SIZE_MAX - total) return SIZE_MAX;
        total += b;
    }
    return total;
}

/* A string value between quotes, '"' and '\\' escaped; a line feed stays as it is. */
static char *put_string(char *w, const char *s, size_t n) {
    *w++ = '"';
    for (size_t k = 0; k < n; k++) {
        char c = s[k];
        if (c == '"' || c == '\\') *w++ = '\\';
        *w++ = c;
    }
    *w++ = '"';
    return w;
}

int64_t gw_lp_format_bodies(const gw_lp_series *series, size_t count, size_t limit,
                            char *out, size_t out_cap, gw_lp_bodies *r) {
    r->bodies = r->lines = 0;
    r->skipped = 0;
    r->newline_in_string = 0;
    r->bad_series = 0;
    r->bad_reason = 0;
    size_t need = gw_lp_bodies_bound(series, count);
    if (need == SIZE_MAX || out_cap < need) return GW_ENOMEM;
    char *w = out, *body = out;
    uint64_t body_points = 0;
    for (size_t i = 0; i < count; i++) {
        const gw_lp_series *s = &series[i];
        if (!is_number_type(s->type) && s->type != GW_STRING) {
            r->bad_series = i;
            return GW_EINVAL;
        }
        int reason = gw_lp_check_series_key(s->key, s->key_len);
        if (reason) {
            r->bad_series = i;
            r->bad_reason = reason;
            return GW_EINVAL;
        }
        uint32_t from = 0;
        for (size_t k = 0; k < s->n; k++) {
            char *line = w;
            if (s->type == GW_STRING) {
                uint32_t to = s->string_ends[k];
                if (to < from) {
                    r->bad_series = i;
                    return GW_EINVAL;
                }
                memcpy(w, s->key, s->key_len);
                w += s->key_len;
                *w++ = '=';
                if (memchr(s->strings + from, '\n', to - from)) r->newline_in_string = 1;
                w = put_string(w, s->strings + from, to - from);
                *w++ = ' ';
                w += put_i64(w, s->ts[k]);
                *w++ = '\n';
                from = to;
            } else {
                if (is_nonfinite(s->type, s->values[k])) { r->skipped++; continue; }
                w = put_number_line(w, s->key, s->key_len, s->type, s->values[k], s->ts[k]);
            }
            /* the line does not fit in the body begun before it: that body ends where it began */
            if ((size_t)(w - body) > limit && line > body) {
                r->body_ends[r->bodies] = (size_t)(line - out);
                r->body_points[r->bodies++] = body_points;
                body = line;
                body_points = 0;
            }
            body_points++;
            r->line_ends[r->lines++] = (size_t)(w - out);
        }
    }
    if (w > body) {
        r->body_ends[r->bodies] = (size_t)(w - out);
        r->body_points[r->bodies++] = body_points;
    }
    return (int64_t)(w - out);
}
