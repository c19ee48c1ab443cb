/*
 * decl_read.c - reads Flipt's declarative format (features.yml 1.0-1.4: a YAML stream with one
 * namespace per document, or one JSON document) into an ef_doc, validating everything Flipt's
 * importer and CUE schema check, so a file that passes here imports and serves without surprises.
 *
 * Both syntaxes are first turned into one small tree (dnode) that remembers where each value was
 * written; the validator walks only that tree, so YAML and JSON get the same rules and messages.
 * Plain YAML scalars are resolved with the YAML 1.2 core schema, as Flipt's Go YAML reader does
 * (so `on` and `yes` are strings, `18` is a number). Quoted scalars are always strings.
 *
 * It must never abort or read past its input on bad data: every problem becomes one ef_decl_error
 * with file, line and column. It does no SQL and writes no files.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/file.h"
#include "base/cnum.h"
#include "base/hash.h"
#include "base/json.h"
#include "store/doc.h"
#include "store/yaml_load.h"

/* The store keeps attachments and metadata nested up to 64 deep (sqlite_validate.c), and a
 * variant's attachment starts 5 levels down (document, flags, flag, variants, variant): so
 * whatever export writes, import reads. */
#define MAX_JSON_DEPTH 64
#define MAX_DEPTH (MAX_JSON_DEPTH + 5)
#define MAX_ATTACHMENT 10000
#define MAX_ONEOF_ITEMS 100
#define LATEST_MINOR 4

typedef enum { DN_SCALAR, DN_SEQ, DN_MAP } dn_kind;

/* What a scalar means once resolved. */
typedef enum { SV_STRING, SV_NULL, SV_BOOL, SV_INT, SV_FLOAT } sv_kind;

typedef struct dnode dnode;
struct dnode {
    dn_kind kind;
    bool quoted; /* a quoted YAML scalar or a JSON string: a string whatever it spells */
    ef_bytes text;
    unsigned line, column;
    size_t n;     /* SEQ: items; MAP: pairs */
    dnode *items; /* SEQ: n items; MAP: key0, value0, key1, value1... */
};

typedef struct rctx {
    ef_arena *a;   /* the caller's: everything the ef_doc points to */
    ef_arena tmp;  /* the syntax trees, gone when parsing ends */
    ef_decl_error *err;
    const char *file;
    unsigned minor;  /* version of the document being read: 1.<minor> */
    size_t budget;   /* nodes left; aliases could otherwise expand a small file exponentially */
    bool failed;
} rctx;

static int failf(rctx *c, unsigned line, unsigned column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int failf(rctx *c, unsigned line, unsigned column, const char *fmt, ...)
{
    if (c->failed) return -1;
    c->failed = true;
    if (c->err) {
        snprintf(c->err->file, sizeof(c->err->file), "%s", c->file);
        c->err->line = line;
        c->err->column = column;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
        va_end(ap);
    }
    return -1;
}

#define FAIL_AT(c, node, ...) failf((c), (node)->line, (node)->column, __VA_ARGS__)

static int oom(rctx *c)
{
    return failf(c, 0, 0, "out of memory");
}

/* ---- scalar resolution (YAML 1.2 core schema) ---- */

static bool all_in(ef_bytes s, size_t from, const char *set)
{
    if (from >= s.n) return false;
    for (size_t i = from; i < s.n; i++)
        if (!strchr(set, s.p[i]) || s.p[i] == '\0') return false;
    return true;
}

static bool is_float_text(ef_bytes s)
{
    size_t i = 0;
    if (i < s.n && (s.p[i] == '-' || s.p[i] == '+')) i++;
    if (s.n - i == 4 && s.p[i] == '.' &&
        (!memcmp(s.p + i + 1, "inf", 3) || !memcmp(s.p + i + 1, "Inf", 3) ||
         !memcmp(s.p + i + 1, "INF", 3)))
        return true;
    if (ef_bytes_eq_lit(s, ".nan", 4) || ef_bytes_eq_lit(s, ".NaN", 4) ||
        ef_bytes_eq_lit(s, ".NAN", 4))
        return true;
    size_t digits = 0;
    while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++, digits++;
    if (i < s.n && s.p[i] == '.') {
        i++;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++, digits++;
    }
    if (digits == 0) return false;
    if (i < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        if (i < s.n && (s.p[i] == '-' || s.p[i] == '+')) i++;
        size_t ed = 0;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++, ed++;
        if (ed == 0) return false;
    }
    return i == s.n;
}

static sv_kind resolve_plain(ef_bytes s)
{
    if (s.n == 0 || ef_bytes_eq_lit(s, "~", 1) || ef_bytes_eq_lit(s, "null", 4) ||
        ef_bytes_eq_lit(s, "Null", 4) || ef_bytes_eq_lit(s, "NULL", 4))
        return SV_NULL;
    if (ef_bytes_eq_lit(s, "true", 4) || ef_bytes_eq_lit(s, "True", 4) ||
        ef_bytes_eq_lit(s, "TRUE", 4) || ef_bytes_eq_lit(s, "false", 5) ||
        ef_bytes_eq_lit(s, "False", 5) || ef_bytes_eq_lit(s, "FALSE", 5))
        return SV_BOOL;
    size_t sign = (s.p[0] == '-' || s.p[0] == '+') ? 1 : 0;
    if (all_in(s, sign, "0123456789")) return SV_INT;
    if (s.n > 2 && s.p[0] == '0' && s.p[1] == 'o' && all_in(s, 2, "01234567")) return SV_INT;
    if (s.n > 2 && s.p[0] == '0' && s.p[1] == 'x' && all_in(s, 2, "0123456789abcdefABCDEF"))
        return SV_INT;
    if (is_float_text(s)) return SV_FLOAT;
    return SV_STRING;
}

static sv_kind scalar_kind(const dnode *n)
{
    return n->quoted ? SV_STRING : resolve_plain(n->text);
}

static const char *kind_name(const dnode *n)
{
    if (n->kind == DN_SEQ) return "a list";
    if (n->kind == DN_MAP) return "a map";
    switch (scalar_kind(n)) {
    case SV_NULL: return "null";
    case SV_BOOL: return "a boolean";
    case SV_INT:
    case SV_FLOAT: return "a number";
    default: return "a string";
    }
}

/* ---- building the tree from libyaml ---- */

static dnode *dn_alloc(rctx *c, size_t n)
{
    if (n > c->budget) return NULL;
    c->budget -= n;
    return ef_arena_calloc(&c->tmp, (n ? n : 1) * sizeof(dnode));
}

static int from_yaml(rctx *c, yaml_document_t *doc, yaml_node_t *yn, dnode *out, unsigned depth)
{
    out->line = (unsigned)yn->start_mark.line + 1;
    out->column = (unsigned)yn->start_mark.column + 1;
    if (depth > MAX_DEPTH) return FAIL_AT(c, out, "nesting deeper than %d levels", MAX_DEPTH);
    switch (yn->type) {
    case YAML_SCALAR_NODE: {
        out->kind = DN_SCALAR;
        out->quoted = yn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        char *p = ef_arena_memdup(&c->tmp, yn->data.scalar.value, yn->data.scalar.length);
        if (!p) return oom(c);
        out->text = (ef_bytes){p, yn->data.scalar.length};
        return 0;
    }
    case YAML_SEQUENCE_NODE: {
        out->kind = DN_SEQ;
        out->n = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
        out->items = dn_alloc(c, out->n);
        if (!out->items) return FAIL_AT(c, out, "document too large (aliases expand too far)");
        for (size_t i = 0; i < out->n; i++) {
            yaml_node_t *k = yaml_document_get_node(doc, yn->data.sequence.items.start[i]);
            if (!k || from_yaml(c, doc, k, &out->items[i], depth + 1)) return -1;
        }
        return 0;
    }
    case YAML_MAPPING_NODE: {
        out->kind = DN_MAP;
        out->n = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
        out->items = dn_alloc(c, out->n * 2);
        if (!out->items) return FAIL_AT(c, out, "document too large (aliases expand too far)");
        for (size_t i = 0; i < out->n; i++) {
            yaml_node_pair_t *pr = &yn->data.mapping.pairs.start[i];
            yaml_node_t *k = yaml_document_get_node(doc, pr->key);
            yaml_node_t *v = yaml_document_get_node(doc, pr->value);
            if (!k || !v || from_yaml(c, doc, k, &out->items[2 * i], depth + 1) ||
                from_yaml(c, doc, v, &out->items[2 * i + 1], depth + 1))
                return -1;
        }
        return 0;
    }
    default: return FAIL_AT(c, out, "unsupported YAML node");
    }
}

typedef struct rootlist {
    dnode **v;
    size_t n, cap;
} rootlist;

static int roots_push(rctx *c, rootlist *l, dnode *d)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        dnode **nv = ef_arena_alloc(&c->tmp, cap * sizeof(*nv));
        if (!nv) return oom(c);
        if (l->n) memcpy(nv, l->v, l->n * sizeof(*nv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = d;
    return 0;
}

static int yaml_fail(rctx *c, yaml_parser_t *p, const char *data, size_t len)
{
    const char *what = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR) return oom(c);
    if (p->error == YAML_READER_ERROR) { /* bad bytes: libyaml gives an offset, not a mark */
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++) {
            if (data[i] == '\n') {
                line++;
                col = 1;
            } else if (((unsigned char)data[i] & 0xC0) != 0x80) {
                col++;
            }
        }
        return failf(c, line, col, "invalid YAML: %s", what);
    }
    if (p->context)
        return failf(c, (unsigned)p->problem_mark.line + 1, (unsigned)p->problem_mark.column + 1,
                     "invalid YAML: %s %s", what, p->context);
    return failf(c, (unsigned)p->problem_mark.line + 1, (unsigned)p->problem_mark.column + 1,
                 "invalid YAML: %s", what);
}

/* One document at a time, through ef_yaml_load rather than yaml_parser_load: libyaml's scanner is
 * quadratic in flow nesting, so a document is cut short at its first node deeper than MAX_DEPTH
 * instead of being built whole and refused afterwards. The one visible difference: such a node is
 * now reported before a syntax error further on in the same document. */
static int load_yaml(rctx *c, const char *data, size_t len, rootlist *roots)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return oom(c);
    /* libyaml asserts on a NULL input even when the length is 0 (found by fuzzing) */
    yaml_parser_set_input_string(&p, (const unsigned char *)(data ? data : ""), data ? len : 0);
    int rc = 0;
    for (;;) {
        yaml_document_t doc;
        ef_yaml_cut cut;
        if (!ef_yaml_load(&p, &doc, MAX_DEPTH, &cut)) {
            rc = yaml_fail(c, &p, data, len);
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) { /* end of stream */
            yaml_document_delete(&doc);
            break;
        }
        dnode *d = dn_alloc(c, 1);
        rc = d ? from_yaml(c, &doc, root, d, 0) : oom(c);
        yaml_document_delete(&doc);
        /* A cut document holds a node deeper than MAX_DEPTH, which from_yaml refuses (or an error
         * met before it); this only guards that promise. */
        if (!rc && cut.cut)
            rc = failf(c, (unsigned)cut.mark.line + 1, (unsigned)cut.mark.column + 1,
                       "nesting deeper than %d levels", MAX_DEPTH);
        if (rc || (rc = roots_push(c, roots, d))) break;
    }
    yaml_parser_delete(&p);
    return rc;
}

/* ---- building the tree from JSON ---- */

typedef struct linemap {
    const size_t *starts; /* byte offset of each line's first byte */
    size_t n;
} linemap;

static void line_of(const linemap *m, size_t off, unsigned *line, unsigned *col)
{
    size_t lo = 0, hi = m->n;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (m->starts[mid] <= off)
            lo = mid;
        else
            hi = mid;
    }
    *line = (unsigned)lo + 1;
    *col = (unsigned)(off - m->starts[lo]) + 1;
}

static int from_json(rctx *c, const linemap *m, const ef_json *j, dnode *out)
{
    line_of(m, j->offset, &out->line, &out->column);
    switch (j->type) {
    case EF_JSON_NULL: out->text = EF_BYTES_LIT("null"); break;
    case EF_JSON_TRUE: out->text = EF_BYTES_LIT("true"); break;
    case EF_JSON_FALSE: out->text = EF_BYTES_LIT("false"); break;
    case EF_JSON_NUMBER: out->text = j->str; break;
    case EF_JSON_STRING:
        out->text = j->str;
        out->quoted = true;
        break;
    case EF_JSON_ARRAY:
    case EF_JSON_OBJECT: {
        bool obj = j->type == EF_JSON_OBJECT;
        out->kind = obj ? DN_MAP : DN_SEQ;
        out->n = j->len;
        out->items = dn_alloc(c, obj ? out->n * 2 : out->n);
        if (!out->items) return oom(c);
        size_t i = 0;
        for (const ef_json *k = j->child; k; k = k->next, i++) {
            if (!obj) {
                if (from_json(c, m, k, &out->items[i])) return -1;
                continue;
            }
            dnode *key = &out->items[2 * i];
            line_of(m, k->offset, &key->line, &key->column);
            key->text = k->key;
            key->quoted = true;
            if (from_json(c, m, k, &out->items[2 * i + 1])) return -1;
        }
        return 0;
    }
    }
    out->kind = DN_SCALAR;
    return 0;
}

static int load_json(rctx *c, const char *data, size_t len, rootlist *roots)
{
    size_t nl = 1;
    for (size_t i = 0; i < len; i++) nl += data[i] == '\n';
    size_t *starts = ef_arena_alloc(&c->tmp, nl * sizeof(*starts));
    if (!starts) return oom(c);
    starts[0] = 0;
    for (size_t i = 0, k = 1; i < len; i++)
        if (data[i] == '\n') starts[k++] = i + 1;
    linemap m = {starts, nl};
    ef_json_error jerr;
    ef_json_opts jo = {.max_depth = MAX_DEPTH};
    ef_json *root = ef_json_parse(data, len, &c->tmp, &jo, &jerr);
    if (!root) return failf(c, jerr.line, jerr.column, "invalid JSON: %s", jerr.message);
    dnode *d = dn_alloc(c, 1);
    if (!d) return oom(c);
    if (from_json(c, &m, root, d)) return -1;
    return roots_push(c, roots, d);
}

/* ---- typed access ---- */

static ef_bytes dup_bytes(rctx *c, ef_bytes s)
{
    char *p = ef_arena_memdup(c->a, s.p, s.n);
    if (!p) {
        oom(c);
        return (ef_bytes){"", 0};
    }
    return (ef_bytes){p, s.n};
}

static bool is_null(const dnode *n)
{
    return n->kind == DN_SCALAR && scalar_kind(n) == SV_NULL;
}

static int want_map(rctx *c, const dnode *n, const char *what)
{
    if (n->kind != DN_MAP) return FAIL_AT(c, n, "%s must be a map, found %s", what, kind_name(n));
    return 0;
}

static int want_seq(rctx *c, const dnode *n, const char *what)
{
    if (n->kind != DN_SEQ) return FAIL_AT(c, n, "%s must be a list, found %s", what, kind_name(n));
    return 0;
}

/* A string field; null reads as "". */
static int get_str(rctx *c, const dnode *n, const char *what, ef_bytes *out)
{
    if (is_null(n)) {
        *out = (ef_bytes){"", 0};
        return 0;
    }
    if (n->kind != DN_SCALAR || scalar_kind(n) != SV_STRING)
        return FAIL_AT(c, n, "%s must be a string, found %s", what, kind_name(n));
    *out = dup_bytes(c, n->text);
    return c->failed ? -1 : 0;
}

/* Any scalar as its text: constraint values are often written as bare numbers or booleans. */
static int get_scalar_text(rctx *c, const dnode *n, const char *what, ef_bytes *out)
{
    if (is_null(n)) {
        *out = (ef_bytes){"", 0};
        return 0;
    }
    if (n->kind != DN_SCALAR)
        return FAIL_AT(c, n, "%s must be a string, found %s", what, kind_name(n));
    *out = dup_bytes(c, n->text);
    return c->failed ? -1 : 0;
}

static int get_bool(rctx *c, const dnode *n, const char *what, bool *out)
{
    if (is_null(n)) {
        *out = false;
        return 0;
    }
    if (n->kind != DN_SCALAR || scalar_kind(n) != SV_BOOL)
        return FAIL_AT(c, n, "%s must be true or false, found %s", what, kind_name(n));
    *out = n->text.p[0] == 't' || n->text.p[0] == 'T';
    return 0;
}

static int get_number(rctx *c, const dnode *n, const char *what, double *out)
{
    sv_kind k = n->kind == DN_SCALAR ? scalar_kind(n) : SV_STRING;
    if (n->kind != DN_SCALAR || (k != SV_INT && k != SV_FLOAT))
        return FAIL_AT(c, n, "%s must be a number, found %s", what, kind_name(n));
    char tmp[64];
    if (n->text.n >= sizeof(tmp)) return FAIL_AT(c, n, "%s: number too long", what);
    memcpy(tmp, n->text.p, n->text.n);
    tmp[n->text.n] = '\0';
    if (k == SV_INT && n->text.n > 2 && tmp[0] == '0' && (tmp[1] == 'o' || tmp[1] == 'x'))
        *out = (double)strtoull(tmp + 2, NULL, tmp[1] == 'o' ? 8 : 16);
    else if (k == SV_FLOAT && strchr(tmp, 'n') == NULL && strchr(tmp, 'N') == NULL &&
             (strchr(tmp, 'i') || strchr(tmp, 'I')))
        *out = tmp[0] == '-' ? -INFINITY : INFINITY;
    else if (k == SV_FLOAT && (strchr(tmp, 'n') || strchr(tmp, 'N')))
        *out = NAN;
    else
        *out = ef_strtod_c(tmp, NULL);
    return 0;
}

static bool key_is(const dnode *k, const char *name)
{
    return k->kind == DN_SCALAR && ef_bytes_eq(k->text, ef_bytes_of(name));
}

/* Checks a map's keys against the allowed names (and for duplicates) before any is read. */
static int check_keys(rctx *c, const dnode *m, const char *what, const char *const *allowed)
{
    for (size_t i = 0; i < m->n; i++) {
        const dnode *k = &m->items[2 * i];
        if (k->kind != DN_SCALAR || scalar_kind(k) == SV_NULL)
            return FAIL_AT(c, k, "%s: keys must be strings", what);
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++) ok = key_is(k, *a);
        if (!ok) return FAIL_AT(c, k, "%s: unknown field \"%.*s\"", what, (int)k->text.n, k->text.p);
        for (size_t j = 0; j < i; j++)
            if (ef_bytes_eq(m->items[2 * j].text, k->text))
                return FAIL_AT(c, k, "%s: field \"%.*s\" given twice", what, (int)k->text.n,
                               k->text.p);
    }
    return 0;
}

static const dnode *field(const dnode *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (key_is(&m->items[2 * i], name)) return &m->items[2 * i + 1];
    return NULL;
}

static bool valid_key(ef_bytes k)
{
    if (k.n == 0) return false;
    for (size_t i = 0; i < k.n; i++) {
        char ch = k.p[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '-' || ch == '_' || ch == ',';
        if (!ok) return false;
    }
    return true;
}

static int get_key(rctx *c, const dnode *m, const char *what, ef_bytes *out)
{
    const dnode *k = field(m, "key");
    if (!k || is_null(k)) return FAIL_AT(c, m, "%s: missing key", what);
    if (get_str(c, k, "key", out)) return -1;
    if (!valid_key(*out))
        return FAIL_AT(c, k, "%s key \"%.*s\" is invalid: must match ^[-_,A-Za-z0-9]+$", what,
                       (int)out->n, out->p);
    return 0;
}

static int gate(rctx *c, const dnode *at, unsigned minor, const char *feature)
{
    if (c->minor >= minor) return 0;
    return FAIL_AT(c, at, "%s is supported in version >=1.%u, found 1.%u", feature, minor, c->minor);
}

static ef_doc_pos pos_of(rctx *c, const dnode *n)
{
    return (ef_doc_pos){c->file, n->line, n->column};
}

/* ---- YAML values to compact JSON (attachments, metadata) ---- */

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][-+]?[0-9]+)?: a number JSON can hold as written. */
static bool json_number_text(ef_bytes s)
{
    size_t i = 0;
    if (i < s.n && s.p[i] == '-') i++;
    if (i < s.n && s.p[i] == '0') {
        i++;
    } else {
        if (i >= s.n || s.p[i] < '1' || s.p[i] > '9') return false;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++;
    }
    if (i < s.n && s.p[i] == '.') {
        size_t start = ++i;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++;
        if (i == start) return false;
    }
    if (i < s.n && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        if (i < s.n && (s.p[i] == '-' || s.p[i] == '+')) i++;
        size_t start = i;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++;
        if (i == start) return false;
    }
    return i == s.n;
}

void ef_decl_put_json_number(ef_buf *b, ef_bytes text)
{
    /* Integers keep every digit (a double would round above 2^53). */
    bool integer = text.n < 19 && !memchr(text.p, '.', text.n) && !memchr(text.p, 'e', text.n) &&
                   !memchr(text.p, 'E', text.n);
    char tmp[24];
    if (integer) {
        memcpy(tmp, text.p, text.n);
        tmp[text.n] = '\0';
        ef_json_put_int(b, strtoll(tmp, NULL, 10));
        return;
    }
    char *z = malloc(text.n + 1);
    if (!z) {
        b->failed = true;
        return;
    }
    memcpy(z, text.p, text.n);
    z[text.n] = '\0';
    double v = ef_strtod_c(z, NULL);
    free(z);
    if (isfinite(v))
        ef_json_put_double(b, v);
    else /* past a double's range: valid JSON all the same, and the API stores it (Flipt too) */
        ef_buf_append(b, text.p, text.n);
}

static int put_json_scalar(rctx *c, const dnode *n, ef_buf *b)
{
    switch (scalar_kind(n)) {
    case SV_NULL: ef_buf_puts(b, "null"); return 0;
    case SV_BOOL: ef_buf_puts(b, (n->text.p[0] == 't' || n->text.p[0] == 'T') ? "true" : "false"); return 0;
    case SV_STRING: ef_json_put_str(b, n->text); return 0;
    default: break;
    }
    if (json_number_text(n->text)) {
        ef_decl_put_json_number(b, n->text);
        return 0;
    }
    double v; /* YAML-only spellings: 0x1F, 0o17, +1, .5, .inf */
    if (get_number(c, n, "value", &v)) return -1;
    if (!isfinite(v)) return FAIL_AT(c, n, "%.*s cannot be written as JSON", (int)n->text.n, n->text.p);
    /* Integers keep every digit (a double would round above 2^53). */
    if (scalar_kind(n) == SV_INT && n->text.n < 19 && !(n->text.n > 2 && n->text.p[1] >= 'a')) {
        char tmp[24];
        memcpy(tmp, n->text.p, n->text.n);
        tmp[n->text.n] = '\0';
        ef_json_put_int(b, strtoll(tmp, NULL, 10));
        return 0;
    }
    ef_json_put_double(b, v);
    return 0;
}

/* The first key of map m that repeats an earlier one, or NULL (-1 in *rc when out of memory).
 * YAML forbids it and Flipt's reader refuses it; JSON would keep only one of the values. A hash
 * set, so a metadata map of 100,000 keys costs 100,000 steps. */
static const dnode *repeated_key(rctx *c, const dnode *m, int *rc)
{
    *rc = 0;
    if (m->n < 2) return NULL;
    size_t cap = ef_bytes_set_cap(m->n);
    ef_bytes *seen = ef_arena_calloc(&c->tmp, cap * sizeof(*seen));
    if (!seen) {
        *rc = oom(c);
        return NULL;
    }
    for (size_t i = 0; i < m->n; i++)
        if (ef_bytes_set_add(seen, cap, m->items[2 * i].text)) return &m->items[2 * i];
    return NULL;
}

static int put_json(rctx *c, const dnode *n, const char *what, ef_buf *b)
{
    if (n->kind == DN_SCALAR) return put_json_scalar(c, n, b);
    bool map = n->kind == DN_MAP;
    if (map) {
        for (size_t i = 0; i < n->n; i++)
            if (n->items[2 * i].kind != DN_SCALAR) return FAIL_AT(c, &n->items[2 * i], "map keys must be scalars");
        int rc;
        const dnode *k = repeated_key(c, n, &rc);
        if (rc) return -1;
        if (k) return FAIL_AT(c, k, "%s: key \"%.*s\" given twice", what, (int)k->text.n, k->text.p);
    }
    ef_buf_putc(b, map ? '{' : '[');
    for (size_t i = 0; i < n->n; i++) {
        if (i) ef_buf_putc(b, ',');
        if (map) {
            ef_json_put_str(b, n->items[2 * i].text);
            ef_buf_putc(b, ':');
            if (put_json(c, &n->items[2 * i + 1], what, b)) return -1;
        } else if (put_json(c, &n->items[i], what, b)) {
            return -1;
        }
    }
    ef_buf_putc(b, map ? '}' : ']');
    return 0;
}

static int to_json(rctx *c, const dnode *n, const char *what, size_t max, ef_bytes *out)
{
    ef_buf b;
    ef_buf_init(&b);
    int rc = put_json(c, n, what, &b);
    if (!rc && !ef_buf_ok(&b)) rc = oom(c);
    if (!rc && max && b.len > max)
        rc = FAIL_AT(c, n, "%s is %zu bytes as JSON, more than %zu", what, b.len, max);
    if (!rc) {
        *out = dup_bytes(c, (ef_bytes){b.data, b.len});
        rc = c->failed ? -1 : 0;
    }
    ef_buf_free(&b);
    return rc;
}

/* ---- constraints ---- */

typedef struct op_rule {
    const char *op;
    unsigned types; /* bit per ef_doc_ctype */
    bool needs_value;
} op_rule;

#define T(x) (1u << EF_DOC_CT_##x)
static const op_rule OPS[] = {
    {"eq", T(STRING) | T(NUMBER) | T(DATETIME) | T(ENTITY_ID), true},
    {"neq", T(STRING) | T(NUMBER) | T(DATETIME) | T(ENTITY_ID), true},
    {"lt", T(NUMBER) | T(DATETIME), true},
    {"lte", T(NUMBER) | T(DATETIME), true},
    {"gt", T(NUMBER) | T(DATETIME), true},
    {"gte", T(NUMBER) | T(DATETIME), true},
    {"empty", T(STRING), false},
    {"notempty", T(STRING), false},
    {"prefix", T(STRING), true},
    {"suffix", T(STRING), true},
    {"contains", T(STRING) | T(ENTITY_ID), true},
    {"notcontains", T(STRING) | T(ENTITY_ID), true},
    {"isoneof", T(STRING) | T(NUMBER) | T(DATETIME) | T(ENTITY_ID), true},
    {"isnotoneof", T(STRING) | T(NUMBER) | T(DATETIME) | T(ENTITY_ID), true},
    {"true", T(BOOLEAN), false},
    {"false", T(BOOLEAN), false},
    {"present", T(NUMBER) | T(BOOLEAN) | T(DATETIME), false},
    {"notpresent", T(NUMBER) | T(BOOLEAN) | T(DATETIME), false},
};
#undef T

static const char *const CTYPE_NAMES[] = {
    [EF_DOC_CT_STRING] = "STRING_COMPARISON_TYPE",     [EF_DOC_CT_NUMBER] = "NUMBER_COMPARISON_TYPE",
    [EF_DOC_CT_BOOLEAN] = "BOOLEAN_COMPARISON_TYPE",   [EF_DOC_CT_DATETIME] = "DATETIME_COMPARISON_TYPE",
    [EF_DOC_CT_ENTITY_ID] = "ENTITY_ID_COMPARISON_TYPE",
};

static const op_rule *find_op(ef_bytes op)
{
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++)
        if (op.n == strlen(OPS[i].op) && strncasecmp(op.p, OPS[i].op, op.n) == 0) return &OPS[i];
    return NULL;
}

static bool digits_at(ef_bytes s, size_t at, size_t n, int *out)
{
    if (at + n > s.n) return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s.p[at + i];
        if (ch < '0' || ch > '9') return false;
        v = v * 10 + (ch - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 (as Go's time.RFC3339 reads it) or a bare YYYY-MM-DD, Flipt's two accepted forms. */
static bool datetime_valid(ef_bytes s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    if (!digits_at(s, 0, 4, &y) || s.n < 10 || s.p[4] != '-' || !digits_at(s, 5, 2, &mo) ||
        s.p[7] != '-' || !digits_at(s, 8, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]) return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return false;
    if (s.n == 10) return true;
    if (s.n < 20 || s.p[10] != 'T' || !digits_at(s, 11, 2, &h) || s.p[13] != ':' ||
        !digits_at(s, 14, 2, &mi) || s.p[16] != ':' || !digits_at(s, 17, 2, &se))
        return false;
    if (h > 23 || mi > 59 || se > 59) return false;
    size_t i = 19;
    if (s.p[i] == '.') {
        size_t start = ++i;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') i++;
        if (i == start) return false;
    }
    if (i < s.n && s.p[i] == 'Z') return i + 1 == s.n;
    int oh, om;
    if (i + 6 != s.n || (s.p[i] != '+' && s.p[i] != '-') || !digits_at(s, i + 1, 2, &oh) ||
        s.p[i + 3] != ':' || !digits_at(s, i + 4, 2, &om))
        return false;
    return oh <= 23 && om <= 59;
}

static int check_oneof(rctx *c, const dnode *at, ef_doc_ctype type, ef_bytes value)
{
    ef_json_error jerr;
    ef_json *j = ef_json_parse(value.p, value.n, &c->tmp, NULL, &jerr);
    if (!j || j->type != EF_JSON_ARRAY)
        return FAIL_AT(c, at, "invalid value: isoneof/isnotoneof need a JSON array, e.g. [\"a\",\"b\"]");
    if (j->len > MAX_ONEOF_ITEMS)
        return FAIL_AT(c, at, "invalid value: too many items in list (%u, at most %d)", j->len,
                       MAX_ONEOF_ITEMS);
    bool numbers = type == EF_DOC_CT_NUMBER;
    for (const ef_json *k = j->child; k; k = k->next)
        if (k->type != (numbers ? EF_JSON_NUMBER : EF_JSON_STRING))
            return FAIL_AT(c, at, "invalid value: list items must be %s",
                           numbers ? "numbers" : "strings");
    return 0;
}

static int check_constraint(rctx *c, const dnode *m, const dnode *op_node, ef_doc_constraint *ct)
{
    const op_rule *r = find_op(ct->op);
    if (!r || !(r->types & (1u << ct->type)))
        return FAIL_AT(c, op_node, "operator \"%.*s\" is not supported for %s", (int)ct->op.n,
                       ct->op.p, CTYPE_NAMES[ct->type]);
    if (!r->needs_value) return 0;
    const dnode *vn = field(m, "value");
    const dnode *at = vn ? vn : m;
    if (ct->value.n == 0)
        return FAIL_AT(c, at, "constraint value must not be empty for operator \"%s\"", r->op);
    if (strcmp(r->op, "isoneof") == 0 || strcmp(r->op, "isnotoneof") == 0) {
        if (ct->type == EF_DOC_CT_DATETIME)
            return FAIL_AT(c, op_node, "operator \"%s\" is not supported for %s", r->op,
                           CTYPE_NAMES[ct->type]);
        return check_oneof(c, at, ct->type, ct->value);
    }
    if (ct->type == EF_DOC_CT_DATETIME && !datetime_valid(ct->value))
        return FAIL_AT(c, at, "invalid datetime \"%.*s\": want RFC 3339 or YYYY-MM-DD",
                       (int)ct->value.n, ct->value.p);
    return 0;
}

static int parse_constraint(rctx *c, const dnode *m, ef_doc_constraint *ct)
{
    static const char *const keys[] = {"type", "property", "operator", "value", "description", NULL};
    if (want_map(c, m, "constraint") || check_keys(c, m, "constraint", keys)) return -1;
    ct->pos = pos_of(c, m);
    const dnode *tn = field(m, "type"), *pn = field(m, "property"), *on = field(m, "operator");
    const dnode *vn = field(m, "value"), *dn = field(m, "description");
    if (!tn || is_null(tn)) return FAIL_AT(c, m, "constraint: missing type");
    ef_bytes type;
    if (get_str(c, tn, "constraint type", &type)) return -1;
    ct->type = EF_DOC_CT_UNKNOWN;
    for (int t = EF_DOC_CT_STRING; t <= EF_DOC_CT_ENTITY_ID; t++)
        if (ef_bytes_eq(type, ef_bytes_of(CTYPE_NAMES[t]))) ct->type = (ef_doc_ctype)t;
    if (ct->type == EF_DOC_CT_UNKNOWN)
        return FAIL_AT(c, tn, "unknown constraint type \"%.*s\"", (int)type.n, type.p);
    if (!pn || is_null(pn)) return FAIL_AT(c, m, "constraint: missing property");
    if (get_str(c, pn, "constraint property", &ct->property)) return -1;
    if (ct->property.n == 0) return FAIL_AT(c, pn, "constraint property must not be empty");
    if (!on || is_null(on)) return FAIL_AT(c, m, "constraint: missing operator");
    if (get_str(c, on, "constraint operator", &ct->op)) return -1;
    if (vn && get_scalar_text(c, vn, "constraint value", &ct->value)) return -1;
    if (dn && get_str(c, dn, "constraint description", &ct->description)) return -1;
    return check_constraint(c, m, on, ct);
}

/* ---- segments ---- */

static int parse_segment(rctx *c, const dnode *m, ef_doc_segment *s)
{
    static const char *const keys[] = {"key", "name", "description", "match_type", "constraints",
                                       NULL};
    if (want_map(c, m, "segment") || check_keys(c, m, "segment", keys)) return -1;
    s->pos = pos_of(c, m);
    if (get_key(c, m, "segment", &s->key)) return -1;
    const dnode *n = field(m, "name");
    if (n && get_str(c, n, "segment name", &s->name)) return -1;
    if (s->name.n == 0)
        return FAIL_AT(c, n ? n : m, "segment \"%.*s\": name must not be empty", (int)s->key.n,
                       s->key.p);
    if ((n = field(m, "description")) && get_str(c, n, "segment description", &s->description))
        return -1;
    s->match_type = EF_DOC_MATCH_ALL;
    if ((n = field(m, "match_type")) && !is_null(n)) {
        ef_bytes mt;
        if (get_str(c, n, "match_type", &mt)) return -1;
        if (ef_bytes_eq(mt, EF_BYTES_LIT("ANY_MATCH_TYPE")))
            s->match_type = EF_DOC_MATCH_ANY;
        else if (!ef_bytes_eq(mt, EF_BYTES_LIT("ALL_MATCH_TYPE")))
            return FAIL_AT(c, n, "match_type must be ALL_MATCH_TYPE or ANY_MATCH_TYPE, found \"%.*s\"",
                           (int)mt.n, mt.p);
    }
    if ((n = field(m, "constraints")) && !is_null(n)) {
        if (want_seq(c, n, "constraints")) return -1;
        s->constraints = ef_arena_calloc(c->a, n->n * sizeof(*s->constraints));
        if (!s->constraints) return oom(c);
        s->nconstraints = n->n;
        for (size_t i = 0; i < n->n; i++)
            if (parse_constraint(c, &n->items[i], &s->constraints[i])) return -1;
    }
    return 0;
}

/* ---- segment references (rules and rollouts) ---- */

static int parse_seg_op(rctx *c, const dnode *n, ef_doc_seg_op *op)
{
    *op = EF_DOC_OP_OR;
    if (!n || is_null(n)) return 0;
    ef_bytes s = {0};
    if (get_str(c, n, "operator", &s)) return -1;
    if (ef_bytes_eq(s, EF_BYTES_LIT("AND_SEGMENT_OPERATOR")))
        *op = EF_DOC_OP_AND;
    else if (!ef_bytes_eq(s, EF_BYTES_LIT("OR_SEGMENT_OPERATOR")))
        return FAIL_AT(c, n, "operator must be OR_SEGMENT_OPERATOR or AND_SEGMENT_OPERATOR, found \"%.*s\"",
                       (int)s.n, s.p);
    return 0;
}

/* Segment keys from `key: x` or `keys: [..]`; duplicates are dropped, as Flipt does. */
static int parse_seg_keys(rctx *c, const dnode *m, const char *what, bool keys_gated,
                          ef_bytes **out, size_t *nout)
{
    const dnode *k = field(m, "key"), *ks = field(m, "keys");
    if (k && is_null(k)) k = NULL;
    if (ks && is_null(ks)) ks = NULL;
    if (k && ks) return FAIL_AT(c, ks, "%s: give either key or keys, not both", what);
    if (!k && !ks) return FAIL_AT(c, m, "%s: missing segment key or keys", what);
    if (ks && keys_gated && gate(c, ks, 2, "segment keys")) return -1;
    size_t n = k ? 1 : ks->n;
    if (ks && want_seq(c, ks, "segment keys")) return -1;
    if (n == 0) return FAIL_AT(c, ks, "%s: segment keys must not be empty", what);
    ef_bytes *v = ef_arena_calloc(c->a, n * sizeof(*v));
    if (!v) return oom(c);
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        const dnode *item = k ? k : &ks->items[i];
        ef_bytes key;
        if (is_null(item)) return FAIL_AT(c, item, "%s: segment key must not be empty", what);
        if (get_str(c, item, "segment key", &key)) return -1;
        bool dup = false;
        for (size_t j = 0; j < got && !dup; j++) dup = ef_bytes_eq(v[j], key);
        if (!dup) v[got++] = key;
    }
    *out = v;
    *nout = got;
    return 0;
}

/* ---- flags ---- */

static int parse_variant(rctx *c, const dnode *m, ef_doc_variant *v)
{
    static const char *const keys[] = {"key", "name", "description", "attachment", "default", NULL};
    if (want_map(c, m, "variant") || check_keys(c, m, "variant", keys)) return -1;
    v->pos = pos_of(c, m);
    const dnode *n = field(m, "key");
    if (!n || is_null(n)) return FAIL_AT(c, m, "variant: missing key");
    if (get_str(c, n, "variant key", &v->key)) return -1;
    if (v->key.n == 0) return FAIL_AT(c, n, "variant key must not be empty");
    if ((n = field(m, "name")) && get_str(c, n, "variant name", &v->name)) return -1;
    if ((n = field(m, "description")) && get_str(c, n, "variant description", &v->description))
        return -1;
    if ((n = field(m, "attachment")) && !is_null(n) &&
        to_json(c, n, "attachment", MAX_ATTACHMENT, &v->attachment))
        return -1;
    if ((n = field(m, "default")) && !is_null(n)) {
        if (gate(c, n, 3, "variant default") || get_bool(c, n, "variant default", &v->is_default))
            return -1;
    }
    return 0;
}

static int parse_distribution(rctx *c, const dnode *m, ef_doc_distribution *d)
{
    static const char *const keys[] = {"variant", "rollout", NULL};
    if (want_map(c, m, "distribution") || check_keys(c, m, "distribution", keys)) return -1;
    d->pos = pos_of(c, m);
    const dnode *n = field(m, "variant");
    if (!n || is_null(n)) return FAIL_AT(c, m, "distribution: missing variant");
    if (get_str(c, n, "distribution variant", &d->variant_key)) return -1;
    double r = 0;
    if ((n = field(m, "rollout")) && !is_null(n) && get_number(c, n, "distribution rollout", &r))
        return -1;
    if (!(r >= 0 && r <= 100))
        return FAIL_AT(c, n, "distribution rollout must be between 0 and 100, found %g", r);
    d->rollout = (float)r;
    return 0;
}

static int parse_rule(rctx *c, const dnode *m, ef_doc_rule *r, size_t index)
{
    static const char *const keys[] = {"segment", "rank", "distributions", NULL};
    if (want_map(c, m, "rule") || check_keys(c, m, "rule", keys)) return -1;
    r->pos = pos_of(c, m);
    const dnode *n = field(m, "segment");
    if (!n || is_null(n)) return FAIL_AT(c, m, "rule: missing segment");
    if (n->kind == DN_MAP) {
        static const char *const skeys[] = {"key", "keys", "operator", NULL};
        if (check_keys(c, n, "rule segment", skeys) ||
            parse_seg_keys(c, n, "rule segment", false, &r->segment_keys, &r->nsegments) ||
            parse_seg_op(c, field(n, "operator"), &r->op))
            return -1;
    } else {
        r->segment_keys = ef_arena_calloc(c->a, sizeof(*r->segment_keys));
        if (!r->segment_keys) return oom(c);
        if (get_str(c, n, "rule segment", &r->segment_keys[0])) return -1;
        if (r->segment_keys[0].n == 0) return FAIL_AT(c, n, "rule segment must not be empty");
        r->nsegments = 1;
    }
    if (r->nsegments == 1) r->op = EF_DOC_OP_OR; /* as Flipt stores a single-segment rule */
    if ((n = field(m, "rank")) && !is_null(n)) {
        /* Flipt ranks rules by list position and ignores a written rank; only its type is checked. */
        double rank;
        if (get_number(c, n, "rule rank", &rank)) return -1;
        if (!(rank >= 1) || rank != floor(rank))
            return FAIL_AT(c, n, "rule rank must be a positive integer, found %g", rank);
    }
    if ((n = field(m, "distributions")) && !is_null(n)) {
        if (want_seq(c, n, "distributions")) return -1;
        r->distributions = ef_arena_calloc(c->a, n->n * sizeof(*r->distributions));
        if (!r->distributions) return oom(c);
        r->ndistributions = n->n;
        for (size_t i = 0; i < n->n; i++)
            if (parse_distribution(c, &n->items[i], &r->distributions[i])) return -1;
    }
    return 0;
}

static int parse_threshold(rctx *c, const dnode *t, ef_doc_rollout *r)
{
    static const char *const keys[] = {"percentage", "value", NULL};
    if (want_map(c, t, "threshold") || check_keys(c, t, "threshold", keys)) return -1;
    r->type = EF_DOC_ROLLOUT_THRESHOLD;
    const dnode *n = field(t, "percentage");
    double p = 0;
    if (n && !is_null(n) && get_number(c, n, "threshold percentage", &p)) return -1;
    if (!(p >= 0 && p <= 100))
        return FAIL_AT(c, n, "threshold percentage must be between 0 and 100, found %g", p);
    r->percentage = (float)p;
    n = field(t, "value");
    return n ? get_bool(c, n, "threshold value", &r->value) : 0;
}

static int parse_rollout(rctx *c, const dnode *m, ef_doc_rollout *r)
{
    static const char *const keys[] = {"description", "segment", "threshold", NULL};
    if (want_map(c, m, "rollout") || check_keys(c, m, "rollout", keys)) return -1;
    r->pos = pos_of(c, m);
    const dnode *n = field(m, "description");
    if (n && get_str(c, n, "rollout description", &r->description)) return -1;
    const dnode *seg = field(m, "segment"), *th = field(m, "threshold");
    if (seg && is_null(seg)) seg = NULL;
    if (th && is_null(th)) th = NULL;
    if (seg && th) return FAIL_AT(c, th, "rollout: give either segment or threshold, not both");
    if (!seg && !th) return FAIL_AT(c, m, "rollout: needs a segment or a threshold");
    if (th) return parse_threshold(c, th, r);
    static const char *const skeys[] = {"key", "keys", "operator", "value", NULL};
    if (want_map(c, seg, "rollout segment") || check_keys(c, seg, "rollout segment", skeys) ||
        parse_seg_keys(c, seg, "rollout segment", true, &r->segment_keys, &r->nsegments) ||
        parse_seg_op(c, field(seg, "operator"), &r->op))
        return -1;
    r->type = EF_DOC_ROLLOUT_SEGMENT;
    if (r->nsegments == 1) r->op = EF_DOC_OP_OR;
    n = field(seg, "value");
    return n ? get_bool(c, n, "rollout segment value", &r->value) : 0;
}

/* Parses a list field of a flag into a fresh array of `size`-byte elements. */
typedef int (*item_parser)(rctx *c, const dnode *m, void *item, size_t index);

static int parse_list(rctx *c, const dnode *n, const char *what, size_t size, item_parser fn,
                      void **out, size_t *nout)
{
    if (!n || is_null(n)) return 0;
    if (want_seq(c, n, what)) return -1;
    char *v = ef_arena_calloc(c->a, n->n * size);
    if (!v) return oom(c);
    for (size_t i = 0; i < n->n; i++)
        if (fn(c, &n->items[i], v + i * size, i)) return -1;
    *out = v;
    *nout = n->n;
    return 0;
}

static int variant_item(rctx *c, const dnode *m, void *it, size_t i)
{
    return parse_variant(c, m, it);
}
static int rule_item(rctx *c, const dnode *m, void *it, size_t i)
{
    return parse_rule(c, m, it, i);
}
static int rollout_item(rctx *c, const dnode *m, void *it, size_t i)
{
    return parse_rollout(c, m, it);
}

static int check_variants(rctx *c, const ef_doc_flag *f)
{
    const ef_doc_variant *def = NULL;
    for (size_t i = 0; i < f->nvariants; i++) {
        const ef_doc_variant *v = &f->variants[i];
        for (size_t j = 0; j < i; j++)
            if (ef_bytes_eq(f->variants[j].key, v->key))
                return failf(c, v->pos.line, v->pos.column, "flag \"%.*s\": variant \"%.*s\" defined twice",
                             (int)f->key.n, f->key.p, (int)v->key.n, v->key.p);
        if (v->is_default && def)
            return failf(c, v->pos.line, v->pos.column,
                         "flag \"%.*s\": more than one default variant (\"%.*s\" and \"%.*s\")",
                         (int)f->key.n, f->key.p, (int)def->key.n, def->key.p, (int)v->key.n, v->key.p);
        if (v->is_default) def = v;
    }
    for (size_t i = 0; i < f->nrules; i++)
        for (size_t k = 0; k < f->rules[i].ndistributions; k++) {
            const ef_doc_distribution *d = &f->rules[i].distributions[k];
            bool found = false;
            for (size_t j = 0; j < f->nvariants && !found; j++)
                found = ef_bytes_eq(f->variants[j].key, d->variant_key);
            if (!found)
                return failf(c, d->pos.line, d->pos.column, "flag \"%.*s\": distribution names unknown variant \"%.*s\"",
                             (int)f->key.n, f->key.p, (int)d->variant_key.n, d->variant_key.p);
        }
    return 0;
}

static int parse_flag(rctx *c, const dnode *m, ef_doc_flag *f)
{
    static const char *const keys[] = {"key",      "name",     "type",  "description", "enabled",
                                       "metadata", "variants", "rules", "rollouts",    NULL};
    if (want_map(c, m, "flag") || check_keys(c, m, "flag", keys)) return -1;
    f->pos = pos_of(c, m);
    if (get_key(c, m, "flag", &f->key)) return -1;
    const dnode *n = field(m, "name");
    if (n && get_str(c, n, "flag name", &f->name)) return -1;
    if (f->name.n == 0)
        return FAIL_AT(c, n ? n : m, "flag \"%.*s\": name must not be empty", (int)f->key.n, f->key.p);
    if ((n = field(m, "description")) && get_str(c, n, "flag description", &f->description)) return -1;
    if ((n = field(m, "enabled")) && get_bool(c, n, "flag enabled", &f->enabled)) return -1;
    f->type = EF_DOC_VARIANT_FLAG;
    if ((n = field(m, "type")) && !is_null(n)) {
        ef_bytes t;
        if (gate(c, n, 1, "flag type") || get_str(c, n, "flag type", &t)) return -1;
        if (ef_bytes_eq(t, EF_BYTES_LIT("BOOLEAN_FLAG_TYPE")))
            f->type = EF_DOC_BOOLEAN_FLAG;
        else if (!ef_bytes_eq(t, EF_BYTES_LIT("VARIANT_FLAG_TYPE")))
            return FAIL_AT(c, n, "flag type must be VARIANT_FLAG_TYPE or BOOLEAN_FLAG_TYPE, found \"%.*s\"",
                           (int)t.n, t.p);
    }
    if ((n = field(m, "metadata")) && !is_null(n)) {
        if (gate(c, n, 3, "flag metadata") || want_map(c, n, "flag metadata") ||
            to_json(c, n, "metadata", 0, &f->metadata))
            return -1;
    }
    const dnode *vs = field(m, "variants"), *rs = field(m, "rules"), *ro = field(m, "rollouts");
    bool boolean = f->type == EF_DOC_BOOLEAN_FLAG;
    /* Empty lists are what an exporter may write for "none", so only non-empty ones conflict. */
    if (vs && (is_null(vs) || (vs->kind == DN_SEQ && vs->n == 0))) vs = NULL;
    if (rs && (is_null(rs) || (rs->kind == DN_SEQ && rs->n == 0))) rs = NULL;
    if (ro && (is_null(ro) || (ro->kind == DN_SEQ && ro->n == 0))) ro = NULL;
    if (boolean && vs) return FAIL_AT(c, vs, "a BOOLEAN_FLAG_TYPE flag has no variants");
    if (boolean && rs) return FAIL_AT(c, rs, "a BOOLEAN_FLAG_TYPE flag has no rules (use rollouts)");
    if (!boolean && ro) {
        if (gate(c, ro, 1, "rollouts")) return -1;
        return FAIL_AT(c, ro, "rollouts need type: BOOLEAN_FLAG_TYPE");
    }
    if (parse_list(c, vs, "variants", sizeof(ef_doc_variant), variant_item, (void **)&f->variants,
                   &f->nvariants) ||
        parse_list(c, rs, "rules", sizeof(ef_doc_rule), rule_item, (void **)&f->rules, &f->nrules) ||
        parse_list(c, ro, "rollouts", sizeof(ef_doc_rollout), rollout_item, (void **)&f->rollouts,
                   &f->nrollouts))
        return -1;
    return check_variants(c, f);
}

/* ---- namespaces ---- */

static int parse_version(rctx *c, const dnode *n, ef_bytes *out)
{
    c->minor = LATEST_MINOR; /* as Flipt: a document without a version is read as the newest */
    *out = (ef_bytes){"", 0};
    if (!n || is_null(n)) return 0;
    if (n->kind != DN_SCALAR || (scalar_kind(n) != SV_STRING && scalar_kind(n) != SV_FLOAT))
        return FAIL_AT(c, n, "version must be a string such as \"1.4\", found %s", kind_name(n));
    ef_bytes v = n->text;
    if (v.n != 3 || v.p[0] != '1' || v.p[1] != '.' || v.p[2] < '0' || v.p[2] > '0' + LATEST_MINOR)
        return FAIL_AT(c, n, "unsupported version \"%.*s\" (supported: 1.0 to 1.%d)", (int)v.n, v.p,
                       LATEST_MINOR);
    c->minor = (unsigned)(v.p[2] - '0');
    *out = dup_bytes(c, v);
    return c->failed ? -1 : 0;
}

static int parse_ns_field(rctx *c, const dnode *n, ef_doc_namespace *ns)
{
    if (!n || is_null(n)) {
        ns->key = EF_BYTES_LIT("default");
        return 0;
    }
    if (n->kind == DN_MAP) {
        static const char *const keys[] = {"key", "name", "description", NULL};
        if (gate(c, n, 4, "namespace as an object") || check_keys(c, n, "namespace", keys) ||
            get_key(c, n, "namespace", &ns->key))
            return -1;
        const dnode *x;
        if ((x = field(n, "name")) && get_str(c, x, "namespace name", &ns->name)) return -1;
        if ((x = field(n, "description")) && get_str(c, x, "namespace description", &ns->description))
            return -1;
        return 0;
    }
    if (get_str(c, n, "namespace", &ns->key)) return -1;
    if (!valid_key(ns->key))
        return FAIL_AT(c, n, "namespace key \"%.*s\" is invalid: must match ^[-_,A-Za-z0-9]+$",
                       (int)ns->key.n, ns->key.p);
    return 0;
}

static int check_refs(rctx *c, const ef_doc_namespace *ns, const ef_bytes *keys, size_t n,
                      ef_doc_pos at, const ef_doc_flag *f)
{
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < ns->nsegments && !found; j++)
            found = ef_bytes_eq(ns->segments[j].key, keys[i]);
        if (!found)
            return failf(c, at.line, at.column, "flag \"%.*s\": unknown segment \"%.*s\"",
                         (int)f->key.n, f->key.p, (int)keys[i].n, keys[i].p);
    }
    return 0;
}

/* Hash set of keys already seen, to find duplicates among thousands of flags in linear time. */
typedef struct keyset {
    ef_bytes *slots;
    size_t mask;
} keyset;

static int keyset_init(rctx *c, keyset *s, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2) cap *= 2;
    s->slots = ef_arena_calloc(&c->tmp, cap * sizeof(*s->slots));
    s->mask = cap - 1;
    return s->slots ? 0 : oom(c);
}

/* Returns false if key was already there. Keys are never empty (checked before). */
static bool keyset_add(keyset *s, ef_bytes key)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < key.n; i++) h = (h ^ (unsigned char)key.p[i]) * 16777619u;
    for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
        if (s->slots[i].n == 0) {
            s->slots[i] = key;
            return true;
        }
        if (ef_bytes_eq(s->slots[i], key)) return false;
    }
}

static int check_namespace(rctx *c, const ef_doc_namespace *ns)
{
    keyset ks;
    if (keyset_init(c, &ks, ns->nsegments)) return -1;
    for (size_t i = 0; i < ns->nsegments; i++) {
        const ef_doc_segment *s = &ns->segments[i];
        if (!keyset_add(&ks, s->key))
            return failf(c, s->pos.line, s->pos.column, "segment \"%.*s\" defined twice in namespace \"%.*s\"",
                         (int)s->key.n, s->key.p, (int)ns->key.n, ns->key.p);
    }
    if (keyset_init(c, &ks, ns->nflags)) return -1;
    for (size_t i = 0; i < ns->nflags; i++) {
        const ef_doc_flag *f = &ns->flags[i];
        if (!keyset_add(&ks, f->key))
            return failf(c, f->pos.line, f->pos.column, "flag \"%.*s\" defined twice in namespace \"%.*s\"",
                         (int)f->key.n, f->key.p, (int)ns->key.n, ns->key.p);
        for (size_t r = 0; r < f->nrules; r++)
            if (check_refs(c, ns, f->rules[r].segment_keys, f->rules[r].nsegments, f->rules[r].pos, f))
                return -1;
        for (size_t r = 0; r < f->nrollouts; r++)
            if (check_refs(c, ns, f->rollouts[r].segment_keys, f->rollouts[r].nsegments,
                           f->rollouts[r].pos, f))
                return -1;
    }
    return 0;
}

static int segment_item(rctx *c, const dnode *m, void *it, size_t i)
{
    return parse_segment(c, m, it);
}
static int flag_item(rctx *c, const dnode *m, void *it, size_t i)
{
    return parse_flag(c, m, it);
}

static int parse_namespace(rctx *c, const dnode *root, ef_doc_namespace *ns, ef_bytes *version)
{
    static const char *const keys[] = {"version", "namespace", "flags", "segments", NULL};
    if (want_map(c, root, "document") || check_keys(c, root, "document", keys) ||
        parse_version(c, field(root, "version"), version))
        return -1;
    ns->pos = pos_of(c, root);
    if (parse_ns_field(c, field(root, "namespace"), ns)) return -1;
    ns->protected_ = ef_bytes_eq(ns->key, EF_BYTES_LIT("default"));
    if (parse_list(c, field(root, "segments"), "segments", sizeof(ef_doc_segment), segment_item,
                   (void **)&ns->segments, &ns->nsegments) ||
        parse_list(c, field(root, "flags"), "flags", sizeof(ef_doc_flag), flag_item,
                   (void **)&ns->flags, &ns->nflags))
        return -1;
    return check_namespace(c, ns);
}

static bool looks_json(const char *name, const char *data, size_t len)
{
    size_t nl = name ? strlen(name) : 0;
    if (nl >= 5 && strcmp(name + nl - 5, ".json") == 0) return true;
    size_t i = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) i = 3;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r')) i++;
    return i < len && data[i] == '{';
}

static int parse_all(rctx *c, const char *data, size_t len, ef_doc *out)
{
    rootlist roots = {0};
    int rc = looks_json(c->file, data, len) ? load_json(c, data, len, &roots)
                                             : load_yaml(c, data, len, &roots);
    if (rc) return -1;
    size_t n = 0;
    for (size_t i = 0; i < roots.n; i++) n += !is_null(roots.v[i]); /* `---` with nothing after */
    out->namespaces = ef_arena_calloc(c->a, (n ? n : 1) * sizeof(*out->namespaces));
    if (!out->namespaces) return oom(c);
    for (size_t i = 0; i < roots.n; i++) {
        if (is_null(roots.v[i])) continue;
        ef_doc_namespace *ns = &out->namespaces[out->nnamespaces];
        ef_bytes version;
        if (parse_namespace(c, roots.v[i], ns, &version)) return -1;
        if (out->nnamespaces == 0) out->version = version;
        for (size_t j = 0; j < out->nnamespaces; j++)
            if (ef_bytes_eq(out->namespaces[j].key, ns->key))
                return FAIL_AT(c, roots.v[i], "namespace \"%.*s\" appears in two documents",
                               (int)ns->key.n, ns->key.p);
        out->nnamespaces++;
    }
    return 0;
}

int ef_decl_parse(const char *name, const char *data, size_t len, ef_arena *a, ef_doc *out,
                  ef_decl_error *err)
{
    memset(out, 0, sizeof(*out));
    out->version = (ef_bytes){"", 0};
    if (err) memset(err, 0, sizeof(*err));
    rctx c = {.a = a, .err = err, .file = "", .budget = 1000 + len * 4};
    ef_arena_init(&c.tmp, 65536);
    int rc = -1;
    const char *file = ef_arena_memdup(a, name ? name : "", name ? strlen(name) : 0);
    if (!file) {
        oom(&c);
    } else {
        c.file = file;
        rc = parse_all(&c, data, len, out);
    }
    ef_arena_free(&c.tmp);
    if (rc) memset(out, 0, sizeof(*out));
    return rc;
}

int ef_decl_parse_file(const char *path, ef_arena *a, ef_doc *out, ef_decl_error *err)
{
    char *data;
    size_t len;
    int rc = ef_file_read(path, EF_FILE_MAX_ANY, &data, &len);
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        if (err) {
            memset(err, 0, sizeof(*err));
            snprintf(err->file, sizeof(err->file), "%s", path);
            snprintf(err->message, sizeof(err->message), "cannot read: %s", ef_file_strerror(rc));
        }
        return -1;
    }
    rc = ef_decl_parse(path, data, len, a, out, err);
    free(data);
    return rc;
}

int ef_decl_merge(ef_doc *into, const ef_doc *more, ef_arena *a, ef_decl_error *err)
{
    for (size_t i = 0; i < more->nnamespaces; i++)
        for (size_t j = 0; j < into->nnamespaces; j++) {
            const ef_doc_namespace *ns = &more->namespaces[i];
            if (!ef_bytes_eq(ns->key, into->namespaces[j].key)) continue;
            if (err) {
                memset(err, 0, sizeof(*err));
                snprintf(err->file, sizeof(err->file), "%s", ns->pos.file ? ns->pos.file : "");
                err->line = ns->pos.line;
                err->column = ns->pos.column;
                const ef_doc_pos *p0 = &into->namespaces[j].pos;
                snprintf(err->message, sizeof(err->message),
                         "namespace \"%.*s\" is already defined in %s:%u:%u", (int)ns->key.n,
                         ns->key.p, p0->file ? p0->file : "?", p0->line, p0->column);
            }
            return -1;
        }
    size_t n = into->nnamespaces + more->nnamespaces;
    ef_doc_namespace *v = ef_arena_alloc(a, (n ? n : 1) * sizeof(*v));
    if (!v) {
        if (err) {
            memset(err, 0, sizeof(*err));
            snprintf(err->message, sizeof(err->message), "out of memory");
        }
        return -1;
    }
    if (into->nnamespaces) memcpy(v, into->namespaces, into->nnamespaces * sizeof(*v));
    if (more->nnamespaces) memcpy(v + into->nnamespaces, more->namespaces, more->nnamespaces * sizeof(*v));
    into->namespaces = v;
    into->nnamespaces = n;
    if (into->version.n == 0) into->version = more->version;
    return 0;
}
