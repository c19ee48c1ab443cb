/*
 * snapdoc.c - writes one namespace of an ef_doc as Flipt's client snapshot document
 * (GET /internal/v1/evaluation/snapshot/namespace/{ns}), the JSON that Flipt SDKs fetch and that
 * ef_snapshot_compile turns into the evaluation engine's state.
 *
 * It must never emit something the engine would read differently from Flipt's server: enum
 * spellings are the snapshot's own (ALL_SEGMENT_MATCH_TYPE, *_CONSTRAINT_COMPARISON_TYPE...), each
 * rule appears once (Flipt v1 repeats multi-segment rules; the engine evaluates positionally, so a
 * repeat would only cost time), and the accept-version downgrades follow Flipt's data server.
 * It does no I/O and keeps no state.
 */
#include <errno.h>

#include "base/clock.h"
#include "store/doc.h"

#define VERSION_ENTITY_ID 13800u       /* 1.38.0 */
#define VERSION_DEFAULT_VARIANT 14700u /* 1.47.0 */

static bool accepts(const ef_snapdoc_opts *o, unsigned version)
{
    return !o || o->accept_version == 0 || o->accept_version >= version;
}

static void put_key(ef_buf *b, const char *key, bool first)
{
    if (!first) ef_buf_putc(b, ',');
    ef_buf_putc(b, '"');
    ef_buf_puts(b, key);
    ef_buf_puts(b, "\":");
}

static void put_str_field(ef_buf *b, const char *key, ef_bytes v, bool first)
{
    put_key(b, key, first);
    ef_json_put_str(b, v);
}

/* Flipt's protobuf JSON writes an unset timestamp as null. */
static void put_time_field(ef_buf *b, const char *key, int64_t ns)
{
    put_key(b, key, false);
    if (ns == 0) {
        ef_buf_puts(b, "null");
        return;
    }
    char t[EF_RFC3339_MAX];
    size_t n = ef_rfc3339_format(ns, t);
    ef_json_put_str(b, (ef_bytes){t, n});
}

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
 * lower-cases them, and a file may not, so both paths come out the same. */
static void put_operator(ef_buf *b, ef_bytes op)
{
    char small[32];
    if (op.n > sizeof(small)) {
        ef_json_put_str(b, op);
        return;
    }
    for (size_t i = 0; i < op.n; i++) {
        char ch = op.p[i];
        small[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    ef_json_put_str(b, (ef_bytes){small, op.n});
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

/* Segments referenced by a rule or rollout, inline. Fails on a key the namespace does not have:
 * the engine would otherwise silently evaluate a rule with fewer segments than it was given. */
static int put_segments(ef_buf *b, const ef_doc_namespace *ns, const ef_bytes *keys, size_t n,
                        const ef_snapdoc_opts *o)
{
    put_key(b, "segments", false);
    ef_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        const ef_doc_segment *s = find_segment(ns, keys[i]);
        if (!s) return -EINVAL;
        if (i) ef_buf_putc(b, ',');
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
