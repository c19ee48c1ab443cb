/*
 * sqlite_validate.c - input checks with Flipt's messages (rpc/flipt/validation.go and the SQL
 * store's normalisation), page tokens, and small string helpers for the SQLite backend.
 *
 * Everything here is pure: no database access, no global state. A check must never accept what
 * Flipt rejects at create/update, because the evaluation engine relies on stored data being valid
 * (operators lower-cased, isoneof values real JSON arrays, datetimes parseable).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "eval/eval.h"
#include "store/sqlite_int.h"

ef_bytes sq_ns(ef_bytes ns)
{
    return ns.n ? ns : EF_BYTES_LIT("default");
}

char *sq_cstr(ef_arena *a, ef_bytes b)
{
    return ef_arena_memdup(a, b.n ? b.p : "", b.n);
}

/* ^[-_,A-Za-z0-9]+$ */
/* Drops insignificant whitespace, keeping every string byte and escape as written (what Go's
 * json.Compact does, so stored attachments equal Flipt's). in must already be valid JSON. */
static ef_bytes json_compact_text(ef_bytes in, ef_arena *a)
{
    char *o = ef_arena_alloc(a, in.n + 1);
    if (!o) return (ef_bytes){NULL, 0};
    size_t n = 0;
    bool str = false, esc = false;
    for (size_t i = 0; i < in.n; i++) {
        char c = in.p[i];
        if (str) {
            o[n++] = c;
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                str = false;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        if (c == '"') str = true;
        o[n++] = c;
    }
    o[n] = '\0';
    return (ef_bytes){o, n};
}

int sq_json_compact(ef_bytes in, const char *field, size_t max, bool object_only, ef_arena *a,
                    ef_bytes *out, ef_store_err *err)
{
    *out = (ef_bytes){"", 0};
    if (in.n == 0) return 0;
    ef_arena tmp;
    ef_arena_init(&tmp, 4096);
    ef_json_error jerr;
    ef_json_opts jo = {.max_depth = 64};
    ef_json *root = ef_json_parse(in.p, in.n, &tmp, &jo, &jerr);
    bool is_object = root && root->type == EF_JSON_OBJECT;
    ef_arena_free(&tmp);
    if (!root) return ef_store_fail(err, EF_STORE_INVALID, "invalid field %s: must be a json string",
                                 field);
    if (object_only && !is_object)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field %s: must be a json object", field);
    if (max && in.n > max)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field %s: must be less than %zu KB",
                          field, max);
    *out = json_compact_text(in, a);
    if (!out->p) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    return 0;
}

/* ---- constraints ---- */

typedef struct op_set {
    const char *names[12];
} op_set;

static const op_set STRING_OPS = {{"eq", "neq", "empty", "notempty", "prefix", "suffix", "isoneof",
                                   "isnotoneof", "contains", "notcontains"}};
static const op_set NUMBER_OPS = {{"eq", "neq", "lt", "lte", "gt", "gte", "present", "notpresent",
                                   "isoneof", "isnotoneof"}};
static const op_set BOOLEAN_OPS = {{"true", "false", "present", "notpresent"}};
static const op_set ENTITY_OPS = {{"eq", "neq", "isoneof", "isnotoneof", "contains",
                                   "notcontains"}};
static const op_set NO_VALUE_OPS = {{"true", "false", "empty", "notempty", "present",
                                     "notpresent"}};

static bool op_in(const op_set *set, ef_bytes op)
{
    for (size_t i = 0; i < 12 && set->names[i]; i++)
        if (ef_bytes_eq(op, ef_bytes_of(set->names[i]))) return true;
    return false;
}

static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool parse_date(const char *p, int *y, int *mo, int *d)
{
    return digits(p, 4, y) && p[4] == '-' && digits(p + 5, 2, mo) && p[7] == '-' &&
           digits(p + 8, 2, d) && *mo >= 1 && *mo <= 12 && *d >= 1 &&
           *d <= days_in_month(*y, *mo);
}

/* Go's time.Parse(time.RFC3339) then .UTC().Format(time.RFC3339), or time.DateOnly; out holds 21. */
static bool datetime_normalise(ef_bytes v, char out[32])
{
    const char *p = v.p;
    int y, mo, d, h, mi, sec;
    if (v.n == 10) {
        if (!parse_date(p, &y, &mo, &d)) return false;
        snprintf(out, 32, "%04d-%02d-%02d", y, mo, d);
        return true;
    }
    if (v.n < 20 || !parse_date(p, &y, &mo, &d) || p[10] != 'T' || !digits(p + 11, 2, &h) ||
        p[13] != ':' || !digits(p + 14, 2, &mi) || p[16] != ':' || !digits(p + 17, 2, &sec) ||
        h > 23 || mi > 59 || sec > 59)
        return false;
    size_t i = 19;
    if (p[i] == '.') {
        size_t f = ++i;
        while (i < v.n && p[i] >= '0' && p[i] <= '9') i++;
        if (i == f) return false;
    }
    int64_t off = 0;
    if (i < v.n && p[i] == 'Z') {
        i++;
    } else if (i + 6 == v.n && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':') {
        int oh, om;
        if (!digits(p + i + 1, 2, &oh) || !digits(p + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = (int64_t)(oh * 3600 + om * 60) * (p[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    if (i != v.n) return false;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t rem = t - days * 86400;
    int64_t yy;
    civil_from_days(days, &yy, &mo, &d);
    if (yy < 0 || yy > 9999) return false;
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)yy, mo, d, (int)(rem / 3600),
             (int)(rem % 3600 / 60), (int)(rem % 60));
    return true;
}

/* isoneof/isnotoneof values: a JSON array of strings (or numbers), at most 100 items. */
static int check_array(ef_doc_ctype type, ef_bytes value, ef_bytes property, ef_store_err *err)
{
    const char *tname = type == EF_DOC_CT_STRING ? "string"
                        : type == EF_DOC_CT_NUMBER ? "number"
                                                   : "entityId";
    if (type != EF_DOC_CT_STRING && type != EF_DOC_CT_NUMBER && type != EF_DOC_CT_ENTITY_ID)
        return 0;
    ef_arena tmp;
    ef_arena_init(&tmp, 4096);
    ef_json_error jerr;
    ef_json *root = ef_json_parse(value.p, value.n, &tmp, NULL, &jerr);
    bool ok = root && root->type == EF_JSON_ARRAY;
    size_t count = 0;
    for (const ef_json *c = ok ? root->child : NULL; c; c = c->next, count++)
        if (c->type != (type == EF_DOC_CT_NUMBER ? EF_JSON_NUMBER : EF_JSON_STRING)) ok = false;
    ef_arena_free(&tmp);
    if (!ok)
        return ef_store_fail(err, EF_STORE_INVALID,
                          "invalid value provided for property \"%.*s\" of type %s",
                          (int)property.n, property.p, tname);
    if (count > 100)
        return ef_store_fail(err, EF_STORE_INVALID,
                          "too many values provided for property \"%.*s\" of type %s (maximum "
                          "100)",
                          (int)property.n, property.p, tname);
    return 0;
}

int sq_constraint_check(const ef_store_constraint_in *in, bool normalise_dates, ef_arena *a,
                        ef_bytes *op_out, ef_bytes *value_out, ef_store_err *err)
{
    if (in->property.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field property: must not be empty");
    if (in->op.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field operator: must not be empty");
    char *lower = ef_arena_memdup(a, in->op.p, in->op.n);
    if (!lower) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    for (size_t i = 0; i < in->op.n; i++) lower[i] = (char)tolower((unsigned char)lower[i]);
    ef_bytes op = {lower, in->op.n};
    const op_set *set = NULL;
    const char *tname = "";
    switch (in->type) {
    case EF_DOC_CT_STRING: set = &STRING_OPS, tname = "string"; break;
    case EF_DOC_CT_NUMBER: set = &NUMBER_OPS, tname = "number"; break;
    case EF_DOC_CT_BOOLEAN: set = &BOOLEAN_OPS, tname = "boolean"; break;
    case EF_DOC_CT_DATETIME: set = &NUMBER_OPS, tname = "datetime"; break;
    case EF_DOC_CT_ENTITY_ID:
        if (!ef_bytes_eq(in->property, EF_BYTES_LIT("entityId")))
            return ef_store_fail(err, EF_STORE_INVALID, "property is %.*s instead of \"entityId\"",
                              (int)in->property.n, in->property.p);
        set = &ENTITY_OPS, tname = "entityId";
        break;
    default:
        /* protobuf's String() of an enum: its name, or the number when it has none */
        if (in->type == EF_DOC_CT_UNKNOWN)
            return ef_store_fail(err, EF_STORE_INVALID,
                              "invalid constraint type: \"UNKNOWN_COMPARISON_TYPE\"");
        return ef_store_fail(err, EF_STORE_INVALID, "invalid constraint type: \"%d\"",
                          (int)in->type);
    }
    if (!op_in(set, op))
        return ef_store_fail(err, EF_STORE_INVALID,
                          "constraint operator \"%.*s\" is not valid for type %s", (int)in->op.n,
                          in->op.p, tname);
    ef_bytes value = in->value;
    if (op_in(&NO_VALUE_OPS, op)) {
        /* Flipt's SQL store blanks the value of operators that take none. */
        value = (ef_bytes){"", 0};
    } else if (value.n == 0) {
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field value: must not be empty");
    } else if (in->type == EF_DOC_CT_DATETIME) {
        char norm[32];
        if (!datetime_normalise(value, norm))
            return ef_store_fail(err, EF_STORE_INVALID, "parsing datetime from \"%.*s\"",
                              (int)value.n, value.p);
        if (normalise_dates) {
            size_t n = strlen(norm);
            value = (ef_bytes){ef_arena_memdup(a, norm, n), n};
            if (!value.p) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        }
    } else if (ef_bytes_eq(op, EF_BYTES_LIT("isoneof")) ||
               ef_bytes_eq(op, EF_BYTES_LIT("isnotoneof"))) {
        if (check_array(in->type, value, in->property, err)) return -1;
    }
    *op_out = op;
    *value_out = value;
    return 0;
}

int sq_segment_keys(ef_bytes single, const ef_bytes *keys, size_t n, ef_arena *a, ef_bytes **out,
                    size_t *nout, ef_store_err *err)
{
    if (single.n == 0 && n == 0)
        return ef_store_fail(err, EF_STORE_INVALID,
                          "invalid field segmentKey or segmentKeys: must not be empty");
    if (single.n && n)
        return ef_store_fail(err, EF_STORE_INVALID,
                          "invalid field segmentKey or segmentKeys: only one can be present");
    if (single.n) {
        keys = &single;
        n = 1;
    }
    ef_bytes *r = ef_arena_alloc(a, n * sizeof(*r));
    if (!r) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < m && !dup; j++) dup = ef_bytes_eq(r[j], keys[i]);
        if (!dup) r[m++] = keys[i];
    }
    /* The compiler matches a rule's segments in a fixed-size bit set; a write it would refuse
     * must be refused here, before the commit (issue 19, item 8). */
    if (m > EF_MAX_RULE_SEGMENTS)
        return ef_store_fail(err, EF_STORE_INVALID,
                             "invalid field segmentKeys: at most %d distinct segments, got %zu",
                             EF_MAX_RULE_SEGMENTS, m);
    *out = r;
    *nout = m;
    return 0;
}

/* ---- base64 (standard alphabet, padded: what Go's base64.StdEncoding produces) ---- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sq_base64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = B64[v >> 18 & 63];
        out[o++] = B64[v >> 12 & 63];
        out[o++] = i + 1 < n ? B64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? B64[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

int sq_base64_decode(ef_bytes in, ef_arena *a, ef_bytes *out)
{
    if (in.n % 4) return -1;
    unsigned char *o = ef_arena_alloc(a, in.n / 4 * 3 + 1);
    if (!o) return -1;
    size_t n = 0;
    for (size_t i = 0; i < in.n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in.p[i + k];
            const char *f = c ? strchr(B64, c) : NULL;
            if (c == '=' && i + 4 == in.n && k >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (!f || pad) return -1;
            v = v << 6 | (uint32_t)(f - B64);
        }
        o[n++] = (unsigned char)(v >> 16);
        if (pad < 2) o[n++] = (unsigned char)(v >> 8);
        if (pad < 1) o[n++] = (unsigned char)v;
    }
    o[n] = 0;
    *out = (ef_bytes){(const char *)o, n};
    return 0;
}

int sq_page_begin(const ef_store_page *p, unsigned flags, int64_t *limit, int64_t *offset,
                  ef_store_err *err)
{
    static const ef_store_page none = {0, 0, {NULL, 0}};
    if (!p) p = &none;
    /* rpc/flipt/validation.go: List{Flag,Segment,Rule}Request only */
    if (!(flags & SQ_PAGE_LIMIT_OPTIONAL) && p->limit == 0 && (p->offset > 0 || p->page_token.n))
        return ef_store_fail(err, EF_STORE_INVALID, "limit must be set when offset or pageToken is set");
    *limit = p->limit > 0 ? p->limit : -1;
    *offset = p->offset > 0 && !(flags & SQ_PAGE_NO_OFFSET) ? p->offset : 0;
    if (p->page_token.n) {
        /* internal/storage/sql/common/util.go: base64, then JSON into {key string, offset uint64};
         * both members are optional (`{}` and `null` decode to offset 0), a wrong type is not */
        ef_bytes raw;
        ef_arena tmp;
        ef_arena_init(&tmp, 1024);
        ef_json_error jerr;
        const ef_json *root = NULL;
        if (sq_base64_decode(p->page_token, &tmp, &raw) == 0)
            root = ef_json_parse(raw.p, raw.n, &tmp, NULL, &jerr);
        bool ok = root && (root->type == EF_JSON_OBJECT || root->type == EF_JSON_NULL);
        int64_t off = 0;
        if (ok && root->type == EF_JSON_OBJECT) {
            const ef_json *o = ef_json_get(root, "offset"), *k = ef_json_get(root, "key");
            if (o && o->type != EF_JSON_NULL)
                ok = o->type == EF_JSON_NUMBER && o->num >= 0 && o->num < 9e15 &&
                     o->num == (double)(int64_t)o->num;
            if (ok && o && o->type == EF_JSON_NUMBER) off = (int64_t)o->num;
            if (ok && k && k->type != EF_JSON_NULL && k->type != EF_JSON_STRING) ok = false;
        }
        ef_arena_free(&tmp);
        if (!ok) {
            char q[300];
            ef_store_go_quote(p->page_token, q, sizeof(q));
            return ef_store_fail(err, EF_STORE_INVALID, "pageToken is not valid: %s", q);
        }
        *offset = off;
    }
    return 0;
}

void sq_page_end(const ef_store_page *p, int64_t offset, size_t *n, ef_bytes last_key, ef_arena *a,
                 ef_store_page_out *po)
{
    po->next_page_token = (ef_bytes){"", 0};
    if (!p || p->limit <= 0 || *n <= (size_t)p->limit) return;
    *n = (size_t)p->limit;
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "{\"key\":");
    ef_json_put_str(&b, last_key);
    ef_buf_printf(&b, ",\"offset\":%lld}", (long long)(offset + p->limit));
    if (ef_buf_ok(&b)) {
        char *o = ef_arena_alloc(a, (b.len + 2) / 3 * 4 + 1);
        if (o) po->next_page_token = (ef_bytes){o, sq_base64_encode((unsigned char *)b.data, b.len, o)};
    }
    ef_buf_free(&b);
}

void *sq_grow(ef_arena *a, void *arr, size_t n, size_t *cap, size_t elsz)
{
    return sq_grow_from(a, arr, n, cap, elsz, 16);
}

void *sq_grow_from(ef_arena *a, void *arr, size_t n, size_t *cap, size_t elsz, size_t first)
{
    if (n < *cap) return arr;
    size_t nc = *cap ? *cap * 2 : first;
    void *g = ef_arena_alloc(a, nc * elsz);
    if (!g) return NULL;
    if (n) memcpy(g, arr, n * elsz);
    *cap = nc;
    return g;
}

static int okey_cmp(const void *x, const void *y)
{
    const sq_okey *a = x, *b = y;
    for (int j = 0; j < 3; j++)
        if (a->k[j] != b->k[j]) return a->k[j] < b->k[j] ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

int sq_order_children(void *el, size_t elsz, sq_okey *keys, size_t n, ef_arena *a)
{
    size_t j = 1;
    while (j < n && okey_cmp(&keys[j - 1], &keys[j]) <= 0) j++;
    if (j >= n) return 0; /* already in order: the common case */
    qsort(keys, n, sizeof(*keys), okey_cmp);
    char *copy = ef_arena_memdup(a, el, n * elsz);
    if (!copy) return -1;
    for (size_t m = 0; m < n; m++) memcpy((char *)el + m * elsz, copy + (size_t)keys[m].i * elsz, elsz);
    return 0;
}

bool sq_okey_put(ef_arena *a, sq_okey **keys, size_t n, size_t *cap, int64_t k0, int64_t k1,
                 int64_t k2, uint32_t ref)
{
    if (!(*keys = sq_grow_from(a, *keys, n, cap, sizeof(**keys), 2))) return false;
    (*keys)[n] = (sq_okey){{k0, k1, k2}, (uint32_t)n, ref};
    return true;
}

static int bind_params(sqlite3_stmt *st, const sq_list *l)
{
    for (int i = 0; i < l->nparams; i++) sq_bind_bytes(st, i + 1, l->params[i]);
    return l->nparams;
}

int sq_list_page(sq *s, const sq_list *l, const ef_store_page *p, ef_arena *a, void **out,
                 size_t *n, ef_store_page_out *po, ef_store_err *err)
{
    int64_t limit, offset;
    *out = NULL;
    *n = 0;
    if (sq_page_begin(p, l->page_flags, &limit, &offset, err)) return -1;
    sq_lock(s);
    int rc = -1;
    sqlite3_stmt *st = sq_stmt(s, l->count_slot, l->count_sql, err);
    if (!st) goto out;
    bind_params(st, l);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sq_db_err(s, err, l->what);
        goto out;
    }
    po->total_count = (uint64_t)sqlite3_column_int64(st, 0);
    if (!(st = sq_stmt(s, l->list_slot, l->list_sql, err))) goto out;
    int i = bind_params(st, l);
    /* one row more than the page: whether there is a next page */
    sqlite3_bind_int64(st, i + 1, limit < 0 ? -1 : limit + 1);
    sqlite3_bind_int64(st, i + 2, offset);
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sq_grow(a, *out, *n, &cap, l->elem_size);
        if (!*out) {
            ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
            goto out;
        }
        if (l->read(s, st, a, (char *)*out + *n * l->elem_size, err)) goto out;
        (*n)++;
    }
    if (r != SQLITE_DONE) {
        sq_db_err(s, err, l->what);
        goto out;
    }
    po->next_page_token = (ef_bytes){"", 0};
    if (p && p->limit > 0 && *n > (size_t)p->limit)
        sq_page_end(p, offset, n, l->key((char *)*out + ((size_t)p->limit - 1) * l->elem_size), a, po);
    rc = 0;
out:
    sq_unlock(s);
    return rc;
}
