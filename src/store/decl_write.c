/*
 * decl_write.c - writes an ef_doc as Flipt's declarative YAML (features.yml), for `export` and for
 * anyone who wants a reviewable, diffable copy of flag state.
 *
 * The output must read back as exactly the same document (ef_decl_parse), under YAML 1.1 readers as
 * well as 1.2 ones: every string a resolver could take for something else ("1.4", on, yes, null,
 * 0x1F, a leading sign or digit) is quoted. It must be byte-for-byte deterministic for one document,
 * so exports can be diffed and committed. libyaml's emitter does the escaping and layout; this file
 * only decides structure, order and quoting. It never reads files and never changes the document.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <yaml.h>

#include "base/json.h"
#include "store/doc.h"

typedef struct wctx {
    yaml_emitter_t em;
    ef_arena tmp; /* parsed attachments and metadata */
    unsigned minor;
    bool failed;
} wctx;

static void emit(wctx *w, yaml_event_t *ev, int init_ok)
{
    if (w->failed) {
        if (init_ok) yaml_event_delete(ev);
        return;
    }
    if (!init_ok || !yaml_emitter_emit(&w->em, ev)) w->failed = true;
}

/* Spellings YAML 1.1 resolves to booleans or null; YAML 1.2 readers see plain strings. */
static bool yaml11_special(ef_bytes s)
{
    static const char *const words[] = {"y",   "Y",   "yes", "Yes", "YES", "n",    "N",    "no",
                                        "No",  "NO",  "on",  "On",  "ON",  "off",  "Off",  "OFF",
                                        "true", "True", "TRUE", "false", "False", "FALSE", "null",
                                        "Null", "NULL", "~",   "=",   "<<",  NULL};
    for (const char *const *w = words; *w; w++)
        if (ef_bytes_eq(s, ef_bytes_of(*w))) return true;
    return false;
}

/* Conservative: anything that starts like a number (or .inf/.nan) is quoted, whatever follows. */
static bool needs_quotes(ef_bytes s)
{
    if (s.n == 0 || yaml11_special(s)) return true;
    char c0 = s.p[0];
    if (c0 >= '0' && c0 <= '9') return true;
    if ((c0 == '-' || c0 == '+' || c0 == '.') && s.n > 1) {
        char c1 = s.p[1];
        if ((c1 >= '0' && c1 <= '9') || c1 == '.' || c1 == 'i' || c1 == 'I' || c1 == 'n' ||
            c1 == 'N')
            return true;
    }
    return false;
}

static void scalar_styled(wctx *w, ef_bytes s, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)(s.n ? s.p : ""),
                                          (int)s.n, 1, 1, style);
    emit(w, &ev, ok);
}

/* Line breaks and control characters survive only as escapes: in plain or single-quoted style a
 * reader folds or normalises them (a lone CR comes back as LF), so such strings are double-quoted. */
static bool needs_escapes(ef_bytes s)
{
    for (size_t i = 0; i < s.n; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch < 0x20 || ch == 0x7F) return true;
        if (ch == 0xC2 && i + 1 < s.n && (unsigned char)s.p[i + 1] == 0x85) return true; /* NEL */
        if (ch == 0xE2 && i + 2 < s.n && (unsigned char)s.p[i + 1] == 0x80 &&
            ((unsigned char)s.p[i + 2] == 0xA8 || (unsigned char)s.p[i + 2] == 0xA9))
            return true; /* LS, PS */
        if (ch == 0xEF && i + 2 < s.n && (unsigned char)s.p[i + 1] == 0xBB &&
            (unsigned char)s.p[i + 2] == 0xBF)
            return true; /* BOM */
    }
    return s.n && (s.p[0] == ' ' || s.p[s.n - 1] == ' ');
}

/* A string value: plain when it reads back as the same string, double-quoted otherwise. */
static void str(wctx *w, ef_bytes s)
{
    bool dq = needs_quotes(s) || needs_escapes(s);
    scalar_styled(w, s, dq ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
}

static void cstr(wctx *w, const char *s)
{
    str(w, ef_bytes_of(s));
}

/* A literal that must stay plain to keep its type (true, 50, null). */
static void plain(wctx *w, const char *s)
{
    scalar_styled(w, ef_bytes_of(s), YAML_PLAIN_SCALAR_STYLE);
}

static void boolean(wctx *w, bool v)
{
    plain(w, v ? "true" : "false");
}

static void number_f32(wctx *w, float v)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_json_put_float(&b, v);
    if (!ef_buf_ok(&b))
        w->failed = true;
    else
        scalar_styled(w, (ef_bytes){b.data, b.len}, YAML_PLAIN_SCALAR_STYLE);
    ef_buf_free(&b);
}

static void map_start(wctx *w)
{
    yaml_event_t ev;
    int ok = yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    emit(w, &ev, ok);
}

static void map_end(wctx *w)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_mapping_end_event_initialize(&ev));
}

static void seq_start(wctx *w, bool flow)
{
    yaml_event_t ev;
    int ok = yaml_sequence_start_event_initialize(
        &ev, NULL, NULL, 1, flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
    emit(w, &ev, ok);
}

static void seq_end(wctx *w)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void kv_str(wctx *w, const char *k, ef_bytes v)
{
    plain(w, k);
    str(w, v);
}

static void kv_str_nonempty(wctx *w, const char *k, ef_bytes v)
{
    if (v.n) kv_str(w, k, v);
}

/* ---- JSON text (attachments, metadata) as YAML structure ---- */

static void json_value(wctx *w, const ef_json *j)
{
    switch (j->type) {
    case EF_JSON_NULL: plain(w, "null"); return;
    case EF_JSON_TRUE: plain(w, "true"); return;
    case EF_JSON_FALSE: plain(w, "false"); return;
    case EF_JSON_NUMBER: { /* as the reader will store it: 1.50 is written 1.5 (doc.h) */
        ef_buf num;
        ef_buf_init(&num);
        ef_decl_put_json_number(&num, j->str);
        if (ef_buf_ok(&num))
            scalar_styled(w, (ef_bytes){num.data, num.len}, YAML_PLAIN_SCALAR_STYLE);
        else
            w->failed = true;
        ef_buf_free(&num);
        return;
    }
    case EF_JSON_STRING: str(w, j->str); return;
    case EF_JSON_ARRAY:
        seq_start(w, false);
        for (const ef_json *k = j->child; k; k = k->next) json_value(w, k);
        seq_end(w);
        return;
    case EF_JSON_OBJECT: {
        /* A YAML map cannot repeat a key (the reader refuses it, as Flipt's does), so a repeated
         * one is written once, with its last value: what Flipt's exporter writes, and what every
         * client that parses the attachment sees. */
        bool *shadowed;
        if (ef_json_shadowed(j, &w->tmp, &shadowed) < 0) {
            w->failed = true;
            return;
        }
        map_start(w);
        size_t i = 0;
        for (const ef_json *k = j->child; k; k = k->next, i++) {
            if (shadowed && shadowed[i]) continue;
            str(w, k->key);
            json_value(w, k);
        }
        map_end(w);
        return;
    }
    }
}

static void kv_json(wctx *w, const char *k, ef_bytes text)
{
    if (text.n == 0) return;
    ef_json_error jerr;
    const ef_json *j = ef_json_parse(text.p, text.n, &w->tmp, NULL, &jerr);
    if (!j) {
        w->failed = true; /* the store validates JSON on the way in; this is a broken document */
        return;
    }
    plain(w, k);
    json_value(w, j);
}

/* ---- entities ---- */

static void write_seg_keys(wctx *w, const ef_bytes *keys, size_t n)
{
    plain(w, "keys");
    seq_start(w, false);
    for (size_t i = 0; i < n; i++) str(w, keys[i]);
    seq_end(w);
}

static const char *seg_op_name(ef_doc_seg_op op)
{
    return op == EF_DOC_OP_AND ? "AND_SEGMENT_OPERATOR" : "OR_SEGMENT_OPERATOR";
}

static void write_rule(wctx *w, const ef_doc_rule *r)
{
    map_start(w);
    plain(w, "segment");
    if (r->nsegments == 1) {
        str(w, r->segment_keys[0]);
    } else {
        map_start(w);
        write_seg_keys(w, r->segment_keys, r->nsegments);
        plain(w, "operator");
        cstr(w, seg_op_name(r->op));
        map_end(w);
    }
    if (r->ndistributions) {
        plain(w, "distributions");
        seq_start(w, false);
        for (size_t i = 0; i < r->ndistributions; i++) {
            map_start(w);
            kv_str(w, "variant", r->distributions[i].variant_key);
            plain(w, "rollout");
            number_f32(w, r->distributions[i].rollout);
            map_end(w);
        }
        seq_end(w);
    }
    map_end(w);
}

static void write_rollout(wctx *w, const ef_doc_rollout *r)
{
    map_start(w);
    kv_str_nonempty(w, "description", r->description);
    if (r->type == EF_DOC_ROLLOUT_THRESHOLD) {
        plain(w, "threshold");
        map_start(w);
        plain(w, "percentage");
        number_f32(w, r->percentage);
        plain(w, "value");
        boolean(w, r->value);
        map_end(w);
    } else {
        plain(w, "segment");
        map_start(w);
        if (r->nsegments == 1) {
            kv_str(w, "key", r->segment_keys[0]);
        } else {
            write_seg_keys(w, r->segment_keys, r->nsegments);
            plain(w, "operator");
            cstr(w, seg_op_name(r->op));
        }
        plain(w, "value");
        boolean(w, r->value);
        map_end(w);
    }
    map_end(w);
}

static void write_variant(wctx *w, const ef_doc_variant *v)
{
    map_start(w);
    kv_str(w, "key", v->key);
    kv_str_nonempty(w, "name", v->name);
    kv_str_nonempty(w, "description", v->description);
    if (v->is_default) {
        plain(w, "default");
        boolean(w, true);
    }
    kv_json(w, "attachment", v->attachment);
    map_end(w);
}

static void write_flag(wctx *w, const ef_doc_flag *f)
{
    map_start(w);
    kv_str(w, "key", f->key);
    kv_str(w, "name", f->name);
    if (w->minor >= 1) {
        plain(w, "type");
        cstr(w, f->type == EF_DOC_BOOLEAN_FLAG ? "BOOLEAN_FLAG_TYPE" : "VARIANT_FLAG_TYPE");
    }
    kv_str_nonempty(w, "description", f->description);
    plain(w, "enabled");
    boolean(w, f->enabled);
    kv_json(w, "metadata", f->metadata);
    if (f->nvariants) {
        plain(w, "variants");
        seq_start(w, false);
        for (size_t i = 0; i < f->nvariants; i++) write_variant(w, &f->variants[i]);
        seq_end(w);
    }
    if (f->nrules) {
        plain(w, "rules");
        seq_start(w, false);
        for (size_t i = 0; i < f->nrules; i++) write_rule(w, &f->rules[i]);
        seq_end(w);
    }
    if (f->nrollouts) {
        plain(w, "rollouts");
        seq_start(w, false);
        for (size_t i = 0; i < f->nrollouts; i++) write_rollout(w, &f->rollouts[i]);
        seq_end(w);
    }
    map_end(w);
}

static void write_constraint(wctx *w, const ef_doc_constraint *c)
{
    static const char *const types[] = {"UNKNOWN_COMPARISON_TYPE", "STRING_COMPARISON_TYPE",
                                        "NUMBER_COMPARISON_TYPE", "BOOLEAN_COMPARISON_TYPE",
                                        "DATETIME_COMPARISON_TYPE", "ENTITY_ID_COMPARISON_TYPE"};
    map_start(w);
    plain(w, "type");
    cstr(w, (unsigned)c->type < 6 ? types[c->type] : types[0]);
    kv_str(w, "property", c->property);
    kv_str(w, "operator", c->op);
    kv_str_nonempty(w, "value", c->value);
    kv_str_nonempty(w, "description", c->description);
    map_end(w);
}

static void write_segment(wctx *w, const ef_doc_segment *s)
{
    map_start(w);
    kv_str(w, "key", s->key);
    kv_str(w, "name", s->name);
    kv_str_nonempty(w, "description", s->description);
    plain(w, "match_type");
    cstr(w, s->match_type == EF_DOC_MATCH_ANY ? "ANY_MATCH_TYPE" : "ALL_MATCH_TYPE");
    if (s->nconstraints) {
        plain(w, "constraints");
        seq_start(w, false);
        for (size_t i = 0; i < s->nconstraints; i++) write_constraint(w, &s->constraints[i]);
        seq_end(w);
    }
    map_end(w);
}

static bool ns_has_object_form(const ef_doc_namespace *ns)
{
    return ns->description.n || (ns->name.n && !ef_bytes_eq(ns->name, ns->key));
}

static void write_namespace(wctx *w, const ef_doc_namespace *ns, bool first, const char *version)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, first));
    map_start(w);
    if (first) {
        plain(w, "version");
        cstr(w, version);
    }
    plain(w, "namespace");
    if (w->minor >= 4 && ns_has_object_form(ns)) {
        map_start(w);
        kv_str(w, "key", ns->key);
        kv_str_nonempty(w, "name", ns->name);
        kv_str_nonempty(w, "description", ns->description);
        map_end(w);
    } else {
        str(w, ns->key);
    }
    if (ns->nflags) {
        plain(w, "flags");
        seq_start(w, false);
        for (size_t i = 0; i < ns->nflags; i++) write_flag(w, &ns->flags[i]);
        seq_end(w);
    }
    if (ns->nsegments) {
        plain(w, "segments");
        seq_start(w, false);
        for (size_t i = 0; i < ns->nsegments; i++) write_segment(w, &ns->segments[i]);
        seq_end(w);
    }
    map_end(w);
    emit(w, &ev, yaml_document_end_event_initialize(&ev, 1));
}

/* The oldest format version that can express what the document uses. Namespace names are left
 * out below 1.4 rather than forcing it, as Flipt's own 1.3 exporter does. */
static unsigned needed_minor(const ef_doc *doc)
{
    unsigned m = 0;
    for (size_t i = 0; i < doc->nnamespaces; i++) {
        const ef_doc_namespace *ns = &doc->namespaces[i];
        for (size_t j = 0; j < ns->nflags; j++) {
            const ef_doc_flag *f = &ns->flags[j];
            if ((f->type == EF_DOC_BOOLEAN_FLAG || f->nrollouts) && m < 1) m = 1;
            for (size_t k = 0; k < f->nrollouts; k++)
                if (f->rollouts[k].nsegments > 1 && m < 2) m = 2;
            if (f->metadata.n && m < 3) m = 3;
            for (size_t k = 0; k < f->nvariants; k++)
                if (f->variants[k].is_default && m < 3) m = 3;
        }
    }
    return m;
}

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    ef_buf *out = data;
    ef_buf_append(out, buffer, size);
    return ef_buf_ok(out);
}

int ef_decl_write_yaml(const ef_doc *doc, ef_buf *out)
{
    unsigned minor = 4;
    const ef_bytes v = doc->version;
    if (v.n == 3 && v.p[0] == '1' && v.p[1] == '.' && v.p[2] >= '0' && v.p[2] <= '4')
        minor = (unsigned)(v.p[2] - '0');
    unsigned need = needed_minor(doc);
    if (minor < need) minor = need;
    char version[4] = {'1', '.', (char)('0' + minor), '\0'};

    wctx w = {.minor = minor};
    ef_arena_init(&w.tmp, 4096);
    if (!yaml_emitter_initialize(&w.em)) {
        ef_arena_free(&w.tmp);
        return -ENOMEM;
    }
    size_t start = out->len;
    yaml_emitter_set_output(&w.em, write_handler, out);
    yaml_emitter_set_unicode(&w.em, 1);
    yaml_emitter_set_width(&w.em, INT_MAX / 4);
    yaml_emitter_set_indent(&w.em, 2);
    yaml_event_t ev;
    emit(&w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    for (size_t i = 0; i < doc->nnamespaces; i++)
        write_namespace(&w, &doc->namespaces[i], i == 0, version);
    emit(&w, &ev, yaml_stream_end_event_initialize(&ev));
    if (!w.failed && !yaml_emitter_flush(&w.em)) w.failed = true;
    yaml_emitter_delete(&w.em);
    ef_arena_free(&w.tmp);
    if (w.failed || !ef_buf_ok(out)) {
        int rc = ef_buf_ok(out) ? -EINVAL : -ENOMEM;
        if (ef_buf_ok(out)) {
            out->len = start;
            if (out->data) out->data[start] = '\0';
        }
        return rc;
    }
    return 0;
}
