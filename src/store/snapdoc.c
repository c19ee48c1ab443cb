/*
 * snapdoc.c - writes one namespace of an ef_doc as Flipt's client snapshot document
 * (GET /internal/v1/evaluation/snapshot/namespace/{ns}), the JSON that Flipt SDKs fetch and that
 * ef_snapshot_compile turns into the evaluation engine's state.
 *
 * It must never emit something the engine would read differently from Flipt's server: enum
 * spellings are the snapshot's own (ALL_SEGMENT_MATCH_TYPE, *_CONSTRAINT_COMPARISON_TYPE...), each
 * rule appears once (Flipt v1 repeats multi-segment rules; the engine evaluates positionally, so a
 * repeat would only cost time), and the accept-version downgrades follow Flipt's data server.
 * It does no I/O and keeps no state (ef_snapdoc_segs is the caller's, immutable once built).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/hash.h"
#include "base/json.h"
#include "store/doc.h"

#define VERSION_ENTITY_ID 13800u       /* 1.38.0 */
#define VERSION_DEFAULT_VARIANT 14700u /* 1.47.0 */

static bool accepts(const ef_snapdoc_opts *o, unsigned version)
{
    return !o || o->accept_version == 0 || o->accept_version >= version;
}

/* ,"key": (or "key": for the first member) in one append: every call site names its member with
 * a string literal, so the text and its length are constants (a document of 10,000 flags writes
 * some 200,000 of them). */
#define put_key(b, key, first) put_key_lit((b), ",\"" key "\":", sizeof(",\"" key "\":") - 1, (first))
static void put_key_lit(ef_buf *b, const char *lit, size_t n, bool first)
{
    ef_buf_append(b, lit + first, n - first);
}

#define put_str_field(b, key, v, first) (put_key(b, key, first), ef_json_put_str((b), (v)))

/* Flipt's protobuf JSON writes an unset timestamp as null. */
static void put_time(ef_buf *b, int64_t ns)
{
    if (ns == 0) {
        ef_buf_append(b, "null", 4);
        return;
    }
    char t[EF_RFC3339_MAX + 2];
    t[0] = '"'; /* no escaping: the formatter writes digits, '-', ':', '.', 'T' and 'Z' */
    size_t n = ef_rfc3339_format(ns, t + 1);
    t[n + 1] = '"';
    ef_buf_append(b, t, n + 2);
}

#define put_time_field(b, key, ns) (put_key(b, key, false), put_time((b), (ns)))

static const char *ctype_name(ef_doc_ctype t, const ef_snapdoc_opts *o)
{
    switch (t) {
    case EF_DOC_CT_STRING: return "STRING_CONSTRAINT_COMPARISON_TYPE";
    case EF_DOC_CT_NUMBER: return "NUMBER_CONSTRAINT_COMPARISON_TYPE";
    case EF_DOC_CT_BOOLEAN: return "BOOLEAN_CONSTRAINT_COMPARISON_TYPE";
    case EF_DOC_CT_DATETIME: return "DATETIME_CONSTRAINT_COMPARISON_TYPE";
    case EF_DOC_CT_ENTITY_ID:
        /* Older SDKs fail a whole document on an enum name they do not know. */
        if (accepts(o, VERSION_ENTITY_ID)) return "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE";
        return "UNKNOWN_CONSTRAINT_COMPARISON_TYPE";
    default: return "UNKNOWN_CONSTRAINT_COMPARISON_TYPE";
    }
}

static const char *seg_op_name(ef_doc_seg_op op)
{
    return op == EF_DOC_OP_AND ? "AND_SEGMENT_OPERATOR" : "OR_SEGMENT_OPERATOR";
}

/* The engine compares operators case-sensitively against lower-case names; the SQL store already
 * lower-cases them, and a file may not, so both paths come out the same. op itself when it has
 * no upper-case letter or is longer than small (no operator is: it stays unknown either way). */
#define OP_SMALL 32
static ef_bytes lower_op(ef_bytes op, char *small)
{
    if (op.n > OP_SMALL) return op;
    bool upper = false;
    for (size_t i = 0; i < op.n; i++) {
        char ch = op.p[i];
        upper |= ch >= 'A' && ch <= 'Z';
        small[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    return upper ? (ef_bytes){small, op.n} : op;
}

static void put_operator(ef_buf *b, ef_bytes op)
{
    char small[OP_SMALL];
    ef_json_put_str(b, lower_op(op, small));
}

static void put_constraint(ef_buf *b, const ef_doc_constraint *c, const ef_snapdoc_opts *o)
{
    ef_buf_putc(b, '{');
    put_str_field(b, "id", c->meta.id, true);
    put_key(b, "type", false);
    ef_json_put_cstr(b, ctype_name(c->type, o));
    put_str_field(b, "property", c->property, false);
    put_key(b, "operator", false);
    put_operator(b, c->op);
    put_str_field(b, "value", c->value, false);
    ef_buf_putc(b, '}');
}

static void put_segment(ef_buf *b, const ef_doc_segment *s, const ef_snapdoc_opts *o)
{
    ef_buf_putc(b, '{');
    put_str_field(b, "key", s->key, true);
    put_str_field(b, "name", s->name, false);
    put_str_field(b, "description", s->description, false);
    put_key(b, "matchType", false);
    ef_json_put_cstr(b, s->match_type == EF_DOC_MATCH_ANY ? "ANY_SEGMENT_MATCH_TYPE"
                                                          : "ALL_SEGMENT_MATCH_TYPE");
    put_time_field(b, "createdAt", s->meta.created_ns);
    put_time_field(b, "updatedAt", s->meta.updated_ns);
    put_key(b, "constraints", false);
    ef_buf_putc(b, '[');
    for (size_t i = 0; i < s->nconstraints; i++) {
        if (i) ef_buf_putc(b, ',');
        put_constraint(b, &s->constraints[i], o);
    }
    ef_buf_puts(b, "]}");
}

static const ef_doc_segment *find_segment(const ef_doc_namespace *ns, ef_bytes key)
{
    for (size_t i = 0; i < ns->nsegments; i++)
        if (ef_bytes_eq(ns->segments[i].key, key)) return &ns->segments[i];
    return NULL;
}

static const ef_doc_variant *find_variant(const ef_doc_flag *f, ef_bytes key)
{
    for (size_t i = 0; i < f->nvariants; i++)
        if (ef_bytes_eq(f->variants[i].key, key)) return &f->variants[i];
    return NULL;
}

/* ---- the same values for the engine (ef_flag_src), without the text ----
 * Each function mirrors the writer above it field for field; the text's own transformations are
 * applied to the values too (operators lowered, floats as read back, U+FFFD: see valid()). */

/* What the writer copies unchanged: valid UTF-8 by the writer's own rule (ef_utf8_seq); the rest
 * becomes U+FFFD in the text. */
static bool valid(ef_bytes s)
{
    return ef_utf8_valid(s.p, s.n);
}

/* *out NULL (and 0) when a string of s is not valid UTF-8. */
static int segment_src(const ef_doc_segment *s, const ef_snapdoc_opts *o, ef_arena *a,
                       const ef_src_segment **out)
{
    *out = NULL;
    ef_src_segment *g = ef_arena_calloc(a, sizeof(*g));
    ef_src_constraint *cons = ef_arena_calloc(a, (s->nconstraints + 1) * sizeof(*cons));
    if (!g || !cons) return -ENOMEM;
    if (!valid(s->key)) return 0;
    g->key = s->key;
    g->match_type = s->match_type == EF_DOC_MATCH_ANY ? EF_BYTES_LIT("ANY_SEGMENT_MATCH_TYPE")
                                                      : EF_BYTES_LIT("ALL_SEGMENT_MATCH_TYPE");
    for (size_t i = 0; i < s->nconstraints; i++) {
        const ef_doc_constraint *c = &s->constraints[i];
        char small[OP_SMALL];
        ef_bytes op = lower_op(c->op, small);
        if (op.p == small && !(op.p = ef_arena_memdup(a, small, op.n))) return -ENOMEM;
        if (!valid(c->property) || !valid(op) || !valid(c->value)) return 0;
        cons[i] = (ef_src_constraint){ef_bytes_of(ctype_name(c->type, o)), c->property, op, c->value};
    }
    g->cons = cons;
    g->ncons = s->nconstraints;
    *out = g;
    return 0;
}

struct ef_snapdoc_segs {
    const ef_doc_namespace *ns;
    uint32_t mask;
    uint32_t *slots; /* index in ns->segments + 1, 0 = empty */
    size_t *off;     /* segment i's text: text.data[off[i] .. off[i + 1]) */
    ef_buf text;
    const ef_src_segment **src; /* segment i as the engine reads it; NULL: not valid UTF-8 */
    ef_arena arena;             /* the src segments' arrays and lowered operators */
};

ef_snapdoc_segs *ef_snapdoc_segs_new(const ef_doc_namespace *ns, const ef_snapdoc_opts *opts)
{
    ef_snapdoc_segs *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->ns = ns;
    ef_buf_init(&g->text);
    ef_arena_init(&g->arena, 4096);
    uint32_t cap = 16;
    while (cap < ns->nsegments * 2 + 2) cap *= 2;
    g->mask = cap - 1;
    g->slots = calloc(cap, sizeof(*g->slots));
    g->off = malloc((ns->nsegments + 1) * sizeof(*g->off));
    g->src = calloc(ns->nsegments + 1, sizeof(*g->src));
    if (!g->slots || !g->off || !g->src) {
        ef_snapdoc_segs_free(g);
        return NULL;
    }
    ef_snapdoc_opts o = opts ? *opts : (ef_snapdoc_opts){0};
    o.segs = NULL;
    for (size_t i = 0; i < ns->nsegments; i++) {
        g->off[i] = g->text.len;
        put_segment(&g->text, &ns->segments[i], &o);
        int rc = segment_src(&ns->segments[i], &o, &g->arena, &g->src[i]);
        if (rc == -ENOMEM) {
            ef_snapdoc_segs_free(g);
            return NULL;
        }
        for (uint32_t j = (uint32_t)ef_hash_bytes(ns->segments[i].key.p, ns->segments[i].key.n) & g->mask;; j = (j + 1) & g->mask) {
            if (!g->slots[j]) {
                g->slots[j] = (uint32_t)i + 1;
                break;
            }
            if (ef_bytes_eq(ns->segments[g->slots[j] - 1].key, ns->segments[i].key)) break;
        }
    }
    g->off[ns->nsegments] = g->text.len;
    if (!ef_buf_ok(&g->text)) {
        ef_snapdoc_segs_free(g);
        return NULL;
    }
    return g;
}

long ef_snapdoc_segs_find(const ef_snapdoc_segs *g, ef_bytes key)
{
    for (uint32_t j = (uint32_t)ef_hash_bytes(key.p, key.n) & g->mask; g->slots[j]; j = (j + 1) & g->mask)
        if (ef_bytes_eq(g->ns->segments[g->slots[j] - 1].key, key)) return (long)g->slots[j] - 1;
    return -1;
}

void ef_snapdoc_segs_free(ef_snapdoc_segs *g)
{
    if (!g) return;
    free(g->slots);
    free(g->off);
    free(g->src);
    ef_arena_free(&g->arena);
    ef_buf_free(&g->text);
    free(g);
}

/* Segments referenced by a rule or rollout, inline. Fails on a key the namespace does not have:
 * the engine would otherwise silently evaluate a rule with fewer segments than it was given. */
static int put_segments(ef_buf *b, const ef_doc_namespace *ns, const ef_bytes *keys, size_t n,
                        const ef_snapdoc_opts *o)
{
    const ef_snapdoc_segs *g = o && o->segs && o->segs->ns == ns ? o->segs : NULL;
    put_key(b, "segments", false);
    ef_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) ef_buf_putc(b, ',');
        if (g) { /* written once for the whole namespace */
            long at = ef_snapdoc_segs_find(g, keys[i]);
            if (at < 0) return -EINVAL;
            ef_buf_append(b, g->text.data + g->off[at], g->off[at + 1] - g->off[at]);
            continue;
        }
        const ef_doc_segment *s = find_segment(ns, keys[i]);
        if (!s) return -EINVAL;
        put_segment(b, s, o);
    }
    ef_buf_putc(b, ']');
    return 0;
}

static int put_rule(ef_buf *b, const ef_doc_namespace *ns, const ef_doc_flag *f,
                    const ef_doc_rule *r, size_t rank, const ef_snapdoc_opts *o)
{
    ef_buf_putc(b, '{');
    put_str_field(b, "id", r->meta.id, true);
    put_key(b, "rank", false);
    ef_json_put_uint(b, rank);
    put_key(b, "segmentOperator", false);
    ef_json_put_cstr(b, seg_op_name(r->op));
    int rc = put_segments(b, ns, r->segment_keys, r->nsegments, o);
    if (rc) return rc;
    put_key(b, "distributions", false);
    ef_buf_putc(b, '[');
    for (size_t i = 0; i < r->ndistributions; i++) {
        const ef_doc_distribution *d = &r->distributions[i];
        const ef_doc_variant *v = find_variant(f, d->variant_key);
        if (!v) return -EINVAL;
        if (i) ef_buf_putc(b, ',');
        ef_buf_putc(b, '{');
        put_str_field(b, "id", d->meta.id, true);
        put_str_field(b, "ruleId", r->meta.id, false);
        put_str_field(b, "variantId", d->variant_id.n ? d->variant_id : v->meta.id, false);
        put_str_field(b, "variantKey", v->key, false);
        put_str_field(b, "variantAttachment", v->attachment, false);
        put_key(b, "rollout", false);
        ef_json_put_float(b, d->rollout);
        ef_buf_putc(b, '}');
    }
    ef_buf_puts(b, "]}");
    return 0;
}

static int put_rollout(ef_buf *b, const ef_doc_namespace *ns, const ef_doc_rollout *r, size_t rank,
                       const ef_snapdoc_opts *o)
{
    ef_buf_putc(b, '{');
    put_key(b, "type", true);
    if (r->type == EF_DOC_ROLLOUT_THRESHOLD) {
        ef_json_put_cstr(b, "THRESHOLD_ROLLOUT_TYPE");
        put_key(b, "rank", false);
        ef_json_put_uint(b, rank);
        put_key(b, "threshold", false);
        ef_buf_putc(b, '{');
        put_key(b, "percentage", true);
        ef_json_put_float(b, r->percentage);
        put_key(b, "value", false);
        ef_json_put_bool(b, r->value);
        ef_buf_puts(b, "}}");
        return 0;
    }
    if (r->type != EF_DOC_ROLLOUT_SEGMENT) return -EINVAL;
    ef_json_put_cstr(b, "SEGMENT_ROLLOUT_TYPE");
    put_key(b, "rank", false);
    ef_json_put_uint(b, rank);
    put_key(b, "segment", false);
    ef_buf_putc(b, '{');
    put_key(b, "value", true);
    ef_json_put_bool(b, r->value);
    put_key(b, "segmentOperator", false);
    ef_json_put_cstr(b, seg_op_name(r->op));
    int rc = put_segments(b, ns, r->segment_keys, r->nsegments, o);
    if (rc) return rc;
    ef_buf_puts(b, "}}");
    return 0;
}

static void put_default_variant(ef_buf *b, const ef_doc_flag *f, const ef_snapdoc_opts *o)
{
    if (f->type != EF_DOC_VARIANT_FLAG || !accepts(o, VERSION_DEFAULT_VARIANT)) return;
    for (size_t i = 0; i < f->nvariants; i++) {
        const ef_doc_variant *v = &f->variants[i];
        if (!v->is_default) continue;
        put_key(b, "defaultVariant", false);
        ef_buf_putc(b, '{');
        put_str_field(b, "id", v->meta.id, true);
        put_str_field(b, "key", v->key, false);
        put_str_field(b, "attachment", v->attachment, false);
        ef_buf_putc(b, '}');
        return;
    }
}

static int put_flag(ef_buf *b, const ef_doc_namespace *ns, const ef_doc_flag *f,
                    const ef_snapdoc_opts *o)
{
    ef_buf_putc(b, '{');
    put_str_field(b, "key", f->key, true);
    put_str_field(b, "name", f->name, false);
    put_str_field(b, "description", f->description, false);
    put_key(b, "enabled", false);
    ef_json_put_bool(b, f->enabled);
    put_key(b, "type", false);
    ef_json_put_cstr(b, f->type == EF_DOC_BOOLEAN_FLAG ? "BOOLEAN_FLAG_TYPE" : "VARIANT_FLAG_TYPE");
    put_time_field(b, "createdAt", f->meta.created_ns);
    put_time_field(b, "updatedAt", f->meta.updated_ns);
    put_default_variant(b, f, o);
    put_key(b, "rules", false);
    ef_buf_putc(b, '[');
    for (size_t i = 0; i < f->nrules; i++) {
        if (i) ef_buf_putc(b, ',');
        int rc = put_rule(b, ns, f, &f->rules[i], i + 1, o);
        if (rc) return rc;
    }
    ef_buf_puts(b, "],\"rollouts\":[");
    for (size_t i = 0; i < f->nrollouts; i++) {
        if (i) ef_buf_putc(b, ',');
        int rc = put_rollout(b, ns, &f->rollouts[i], i + 1, o);
        if (rc) return rc;
    }
    ef_buf_puts(b, "]}");
    return 0;
}

int ef_doc_write_snapshot_flag(const ef_doc_namespace *ns, const ef_doc_flag *f,
                               const ef_snapdoc_opts *opts, ef_buf *out)
{
    size_t start = out->len;
    int rc = put_flag(out, ns, f, opts);
    if (rc) {
        out->len = start;
        if (out->data) out->data[start] = '\0';
        return rc;
    }
    return ef_buf_ok(out) ? 0 : -ENOMEM;
}

/* A rule's or rollout's segments, as put_segments finds them. */
static int segments_src(const ef_doc_namespace *ns, const ef_bytes *keys, size_t n, ef_doc_seg_op op,
                        const ef_snapdoc_opts *o, ef_arena *a, ef_src_segments *out)
{
    const ef_snapdoc_segs *g = o && o->segs && o->segs->ns == ns ? o->segs : NULL;
    const ef_src_segment **segs = ef_arena_calloc(a, (n + 1) * sizeof(*segs));
    if (!segs) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (g) {
            long at = ef_snapdoc_segs_find(g, keys[i]);
            if (at < 0) return -EINVAL;
            segs[i] = g->src[at];
        } else {
            const ef_doc_segment *s = find_segment(ns, keys[i]);
            if (!s) return -EINVAL;
            if (segment_src(s, o, a, &segs[i])) return -ENOMEM;
        }
        if (!segs[i]) return -EILSEQ;
    }
    *out = (ef_src_segments){ef_bytes_of(seg_op_name(op)), segs, n};
    return 0;
}

int ef_doc_snapshot_flag_src(const ef_doc_namespace *ns, const ef_doc_flag *f,
                             const ef_snapdoc_opts *o, ef_arena *a, ef_flag_src *out)
{
    memset(out, 0, sizeof(*out));
    if (!valid(f->key) || !valid(f->name)) return -EILSEQ;
    out->key = f->key;
    out->name = f->name;
    out->enabled = f->enabled;
    out->type = f->type == EF_DOC_BOOLEAN_FLAG ? EF_BYTES_LIT("BOOLEAN_FLAG_TYPE")
                                               : EF_BYTES_LIT("VARIANT_FLAG_TYPE");
    for (size_t i = 0; f->type == EF_DOC_VARIANT_FLAG && accepts(o, VERSION_DEFAULT_VARIANT) &&
                       i < f->nvariants; i++) { /* as put_default_variant */
        const ef_doc_variant *v = &f->variants[i];
        if (!v->is_default) continue;
        if (!valid(v->key) || !valid(v->attachment)) return -EILSEQ;
        out->has_default = true;
        out->default_key = v->key;
        out->default_attachment = v->attachment;
        break;
    }
    ef_src_rule *rules = ef_arena_calloc(a, (f->nrules + 1) * sizeof(*rules));
    ef_src_rollout *rollouts = ef_arena_calloc(a, (f->nrollouts + 1) * sizeof(*rollouts));
    if (!rules || !rollouts) return -ENOMEM;
    for (size_t i = 0; i < f->nrules; i++) { /* as put_rule */
        const ef_doc_rule *r = &f->rules[i];
        int rc = segments_src(ns, r->segment_keys, r->nsegments, r->op, o, a, &rules[i].segs);
        if (rc) return rc;
        ef_src_distribution *d = ef_arena_calloc(a, (r->ndistributions + 1) * sizeof(*d));
        if (!d) return -ENOMEM;
        for (size_t j = 0; j < r->ndistributions; j++) {
            const ef_doc_variant *v = find_variant(f, r->distributions[j].variant_key);
            if (!v) return -EINVAL;
            if (!valid(v->key) || !valid(v->attachment)) return -EILSEQ;
            d[j] = (ef_src_distribution){v->key, v->attachment,
                                         ef_json_float_read(r->distributions[j].rollout)};
        }
        rules[i].dist = d;
        rules[i].ndist = r->ndistributions;
    }
    for (size_t i = 0; i < f->nrollouts; i++) { /* as put_rollout */
        const ef_doc_rollout *r = &f->rollouts[i];
        ef_src_rollout *x = &rollouts[i];
        x->value = r->value;
        if (r->type == EF_DOC_ROLLOUT_THRESHOLD) {
            x->threshold = true;
            x->percentage = ef_json_float_read(r->percentage);
            continue;
        }
        if (r->type != EF_DOC_ROLLOUT_SEGMENT) return -EINVAL;
        int rc = segments_src(ns, r->segment_keys, r->nsegments, r->op, o, a, &x->segs);
        if (rc) return rc;
    }
    out->rules = rules;
    out->nrules = f->nrules;
    out->rollouts = rollouts;
    out->nrollouts = f->nrollouts;
    return 0;
}

int ef_doc_write_snapshot(const ef_doc_namespace *ns, const ef_snapdoc_opts *opts, ef_buf *out)
{
    size_t start = out->len;
    ef_buf_puts(out, "{\"namespace\":{");
    put_str_field(out, "key", ns->key, true);
    ef_buf_puts(out, "},\"flags\":[");
    for (size_t i = 0; i < ns->nflags; i++) {
        if (i) ef_buf_putc(out, ',');
        int rc = put_flag(out, ns, &ns->flags[i], opts);
        if (rc) {
            out->len = start; /* no half document for a caller that ignores rc */
            if (out->data) out->data[start] = '\0';
            return rc;
        }
    }
    ef_buf_puts(out, "]}");
    return ef_buf_ok(out) ? 0 : -ENOMEM;
}
