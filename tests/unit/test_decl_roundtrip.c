/*
 * test_decl_roundtrip.c - the YAML writer against the reader: parse(write(doc)) equals doc in every
 * field, and parse -> write -> parse -> write gives identical bytes, for every valid fixture and for
 * a generated document (two namespaces x 60 flags x 50 segments) full of strings that YAML readers
 * like to misread. Never writes files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/doc.h"

#define EQ_BYTES(a, b, what)                                                                  \
    do {                                                                                      \
        if (!ef_bytes_eq((a), (b)))                                                           \
            fail_msg("%s: \"%.*s\" != \"%.*s\"", what, (int)(a).n, (a).p, (int)(b).n, (b).p); \
    } while (0)

static void eq_keys(const ef_bytes *a, size_t na, const ef_bytes *b, size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) EQ_BYTES(a[i], b[i], "segment key");
}

static void eq_flag(const ef_doc_flag *a, const ef_doc_flag *b)
{
    EQ_BYTES(a->key, b->key, "flag key");
    EQ_BYTES(a->name, b->name, "flag name");
    EQ_BYTES(a->description, b->description, "flag description");
    EQ_BYTES(a->metadata, b->metadata, "flag metadata");
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->enabled, b->enabled);
    assert_int_equal(a->nvariants, b->nvariants);
    for (size_t i = 0; i < a->nvariants; i++) {
        const ef_doc_variant *x = &a->variants[i], *y = &b->variants[i];
        EQ_BYTES(x->key, y->key, "variant key");
        EQ_BYTES(x->name, y->name, "variant name");
        EQ_BYTES(x->description, y->description, "variant description");
        EQ_BYTES(x->attachment, y->attachment, "variant attachment");
        assert_int_equal(x->is_default, y->is_default);
    }
    assert_int_equal(a->nrules, b->nrules);
    for (size_t i = 0; i < a->nrules; i++) {
        const ef_doc_rule *x = &a->rules[i], *y = &b->rules[i];
        eq_keys(x->segment_keys, x->nsegments, y->segment_keys, y->nsegments);
        assert_int_equal(x->op, y->op);
        assert_int_equal(x->ndistributions, y->ndistributions);
        for (size_t k = 0; k < x->ndistributions; k++) {
            EQ_BYTES(x->distributions[k].variant_key, y->distributions[k].variant_key, "dist variant");
            assert_true(x->distributions[k].rollout == y->distributions[k].rollout);
        }
    }
    assert_int_equal(a->nrollouts, b->nrollouts);
    for (size_t i = 0; i < a->nrollouts; i++) {
        const ef_doc_rollout *x = &a->rollouts[i], *y = &b->rollouts[i];
        assert_int_equal(x->type, y->type);
        EQ_BYTES(x->description, y->description, "rollout description");
        assert_true(x->percentage == y->percentage);
        assert_int_equal(x->value, y->value);
        eq_keys(x->segment_keys, x->nsegments, y->segment_keys, y->nsegments);
        assert_int_equal(x->op, y->op);
    }
}

static void eq_segment(const ef_doc_segment *a, const ef_doc_segment *b)
{
    EQ_BYTES(a->key, b->key, "segment key");
    EQ_BYTES(a->name, b->name, "segment name");
    EQ_BYTES(a->description, b->description, "segment description");
    assert_int_equal(a->match_type, b->match_type);
    assert_int_equal(a->nconstraints, b->nconstraints);
    for (size_t i = 0; i < a->nconstraints; i++) {
        const ef_doc_constraint *x = &a->constraints[i], *y = &b->constraints[i];
        assert_int_equal(x->type, y->type);
        EQ_BYTES(x->property, y->property, "property");
        EQ_BYTES(x->op, y->op, "operator");
        EQ_BYTES(x->value, y->value, "value");
        EQ_BYTES(x->description, y->description, "constraint description");
    }
}

static void eq_doc(const ef_doc *a, const ef_doc *b)
{
    assert_int_equal(a->nnamespaces, b->nnamespaces);
    for (size_t i = 0; i < a->nnamespaces; i++) {
        const ef_doc_namespace *x = &a->namespaces[i], *y = &b->namespaces[i];
        EQ_BYTES(x->key, y->key, "namespace key");
        EQ_BYTES(x->name, y->name, "namespace name");
        EQ_BYTES(x->description, y->description, "namespace description");
        assert_int_equal(x->protected_, y->protected_);
        assert_int_equal(x->nflags, y->nflags);
        for (size_t k = 0; k < x->nflags; k++) eq_flag(&x->flags[k], &y->flags[k]);
        assert_int_equal(x->nsegments, y->nsegments);
        for (size_t k = 0; k < x->nsegments; k++) eq_segment(&x->segments[k], &y->segments[k]);
    }
}

/* write(doc) -> parse -> equal to doc -> write again -> same bytes. Returns the first YAML. */
static void roundtrip(const ef_doc *doc, ef_buf *first)
{
    ef_buf_init(first);
    assert_int_equal(ef_decl_write_yaml(doc, first), 0);
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    ef_doc again;
    ef_decl_error err;
    if (ef_decl_parse("written.yml", first->data, first->len, &a, &again, &err) != 0)
        fail_msg("written YAML does not parse: %u:%u: %s\n%s", err.line, err.column, err.message,
                 first->data);
    eq_doc(doc, &again);
    if (doc->version.n) EQ_BYTES(doc->version, again.version, "version");
    ef_buf second;
    ef_buf_init(&second);
    assert_int_equal(ef_decl_write_yaml(&again, &second), 0);
    assert_int_equal(first->len, second.len);
    assert_memory_equal(first->data, second.data, first->len);
    ef_buf_free(&second);
    ef_arena_free(&a);
}

static void test_fixtures_roundtrip(void **state)
{
    static const char *const files[] = {"v1_0.yml", "v1_1.yml", "v1_2.yml", "v1_3.yml",
                                        "v1_4_full.yml", "stream.yml", "doc.json"};
    const char *root = getenv("EF_SOURCE_DIR");
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/tests/fixtures/decl/valid/%s", root ? root : ".", files[i]);
        ef_arena a;
        ef_arena_init(&a, 4096);
        ef_doc doc;
        ef_decl_error err;
        if (ef_decl_parse_file(path, &a, &doc, &err) != 0) fail_msg("%s: %s", path, err.message);
        ef_buf out;
        roundtrip(&doc, &out);
        ef_buf_free(&out);
        ef_arena_free(&a);
    }
}

/* ---- a generated document ---- */

static const char *const NASTY[] = {
    "1.4", "on", "yes", "No", "null", "~", "true", "0x1F", "0o17", "1e3", "-1", "+5", ".5", ".inf",
    " leading space", "trailing space ", "a: b", "#comment", "- dash", "[x]", "{y}", "\"quoted\"",
    "it's", "back\\slash", "line\nbreak", "cr\ronly", "tab\there", "ünïcödé ✓", "=", "<<", "*a",
    "&b", "!tag", "%pct", "@at", "`tick", "|pipe", ">fold", "?q", "x,y", "multi\n\nline\n",
    "ctl\x01\x7f", "nel\xc2\x85", "ls\xe2\x80\xa8", "", "12:30", "2024-01-01", "0", "-", "---",
    "...", "a #b", "C:\\path"};
#define NNASTY (sizeof(NASTY) / sizeof(NASTY[0]))

typedef struct gen {
    ef_arena *a;
    uint64_t x;
} gen;

static unsigned rnd(gen *g, unsigned n)
{
    g->x ^= g->x << 13, g->x ^= g->x >> 7, g->x ^= g->x << 17;
    return (unsigned)(g->x % n);
}

static ef_bytes fmt(gen *g, const char *f, ...) __attribute__((format(printf, 2, 3)));
static ef_bytes fmt(gen *g, const char *f, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(tmp, sizeof(tmp), f, ap);
    va_end(ap);
    return (ef_bytes){ef_arena_memdup(g->a, tmp, (size_t)n), (size_t)n};
}

static ef_bytes nasty(gen *g)
{
    return ef_bytes_of(NASTY[rnd(g, NNASTY)]);
}

/* Compact JSON as the reader produces it (numbers already in their shortest form). */
static ef_bytes json_of(gen *g)
{
    static const char *const v[] = {
        "{\"color\":\"red\",\"n\":12,\"f\":1.5,\"l\":[true,null,\"yes\"]}",
        "{\"on\":\"1.4\",\"nested\":{\"deep\":[[],{}],\"e\":-3}}",
        "[1,2,\"x\\ny\"]",
        "\"just a string\"",
        "{\"big\":12345678901234,\"neg\":-0.25,\"exp\":1e+21}",
        "{\"a\\\"b\":\" lead\",\"\":\"empty key\"}"};
    return ef_bytes_of(v[rnd(g, 6)]);
}

static void gen_segment(gen *g, ef_doc_segment *s, unsigned i)
{
    static const ef_doc_ctype types[] = {EF_DOC_CT_STRING, EF_DOC_CT_NUMBER, EF_DOC_CT_BOOLEAN,
                                         EF_DOC_CT_DATETIME, EF_DOC_CT_ENTITY_ID};
    static const char *const ops[][3] = {{"eq", "isoneof", "notempty"},
                                         {"gte", "isnotoneof", "present"},
                                         {"true", "false", "notpresent"},
                                         {"lt", "eq", "present"},
                                         {"eq", "isoneof", "contains"}};
    static const char *const lists[] = {"[\"a\",\"b\"]", "[1,2.5]", "", "", "[\"vip\"]"};
    static const char *const vals[] = {"", "42", "", "2024-01-01T00:00:00Z", "user-1"};
    s->key = fmt(g, "segment_%03u", i);
    s->name = rnd(g, 3) ? fmt(g, "Segment %u", i) : nasty(g);
    if (s->name.n == 0) s->name = EF_BYTES_LIT("x");
    s->description = rnd(g, 2) ? nasty(g) : (ef_bytes){"", 0};
    s->match_type = rnd(g, 2) ? EF_DOC_MATCH_ANY : EF_DOC_MATCH_ALL;
    s->nconstraints = rnd(g, 4);
    s->constraints = ef_arena_calloc(g->a, (s->nconstraints + 1) * sizeof(*s->constraints));
    for (size_t k = 0; k < s->nconstraints; k++) {
        ef_doc_constraint *c = &s->constraints[k];
        unsigned t = rnd(g, 5), o = rnd(g, 3);
        c->type = types[t];
        c->op = ef_bytes_of(ops[t][o]);
        c->property = t == 4 ? EF_BYTES_LIT("entityId") : (rnd(g, 2) ? fmt(g, "prop%u", o) : nasty(g));
        if (c->property.n == 0) c->property = EF_BYTES_LIT("p");
        if (t == 0 && o == 0)
            c->value = nasty(g).n ? nasty(g) : EF_BYTES_LIT("v");
        else if (strstr(ops[t][o], "oneof"))
            c->value = ef_bytes_of(lists[t]);
        else if (t == 4 && o == 2)
            c->value = EF_BYTES_LIT("@");
        else if ((t == 1 && o == 0) || (t == 3 && o < 2) || (t == 4 && o == 0))
            c->value = ef_bytes_of(vals[t]);
        if (strcmp(ops[t][o], "notempty") == 0 || strstr(ops[t][o], "present") || t == 2)
            c->value = (ef_bytes){"", 0};
        c->description = rnd(g, 3) == 0 ? nasty(g) : (ef_bytes){"", 0};
    }
}

static ef_bytes *pick_segments(gen *g, unsigned nseg, size_t n)
{
    ef_bytes *v = ef_arena_calloc(g->a, n * sizeof(*v));
    unsigned start = rnd(g, nseg);
    for (size_t i = 0; i < n; i++) v[i] = fmt(g, "segment_%03u", (start + (unsigned)i * 7) % nseg);
    return v;
}

static void gen_flag(gen *g, ef_doc_flag *f, unsigned i, unsigned nseg)
{
    f->key = fmt(g, "flag-%03u_%s", i, rnd(g, 2) ? "a,b" : "c");
    f->name = rnd(g, 3) ? fmt(g, "Flag %u", i) : nasty(g);
    if (f->name.n == 0) f->name = EF_BYTES_LIT("y");
    f->description = rnd(g, 2) ? nasty(g) : (ef_bytes){"", 0};
    f->enabled = rnd(g, 2);
    f->metadata = rnd(g, 3) == 0 ? EF_BYTES_LIT("{\"team\":\"no\",\"n\":1,\"ok\":false}") : (ef_bytes){"", 0};
    f->type = rnd(g, 3) == 0 ? EF_DOC_BOOLEAN_FLAG : EF_DOC_VARIANT_FLAG;
    if (f->type == EF_DOC_BOOLEAN_FLAG) {
        f->nrollouts = rnd(g, 4);
        f->rollouts = ef_arena_calloc(g->a, (f->nrollouts + 1) * sizeof(*f->rollouts));
        for (size_t k = 0; k < f->nrollouts; k++) {
            ef_doc_rollout *r = &f->rollouts[k];
            r->value = rnd(g, 2);
            r->description = rnd(g, 2) ? nasty(g) : (ef_bytes){"", 0};
            if (rnd(g, 2)) {
                r->type = EF_DOC_ROLLOUT_THRESHOLD;
                r->percentage = (float)rnd(g, 10001) / 100.0f;
            } else {
                r->type = EF_DOC_ROLLOUT_SEGMENT;
                r->nsegments = 1 + rnd(g, 3);
                r->segment_keys = pick_segments(g, nseg, r->nsegments);
                r->op = r->nsegments > 1 && rnd(g, 2) ? EF_DOC_OP_AND : EF_DOC_OP_OR;
            }
        }
        return;
    }
    f->nvariants = rnd(g, 4);
    f->variants = ef_arena_calloc(g->a, (f->nvariants + 1) * sizeof(*f->variants));
    unsigned def = rnd(g, 5);
    for (size_t k = 0; k < f->nvariants; k++) {
        ef_doc_variant *v = &f->variants[k];
        v->key = k == 1 ? EF_BYTES_LIT("on") : fmt(g, "v%zu", k);
        v->name = rnd(g, 2) ? nasty(g) : (ef_bytes){"", 0};
        v->description = rnd(g, 3) == 0 ? nasty(g) : (ef_bytes){"", 0};
        v->attachment = rnd(g, 2) ? json_of(g) : (ef_bytes){"", 0};
        v->is_default = k == def;
    }
    f->nrules = rnd(g, 4);
    f->rules = ef_arena_calloc(g->a, (f->nrules + 1) * sizeof(*f->rules));
    for (size_t k = 0; k < f->nrules; k++) {
        ef_doc_rule *r = &f->rules[k];
        r->nsegments = 1 + rnd(g, 3);
        r->segment_keys = pick_segments(g, nseg, r->nsegments);
        r->op = r->nsegments > 1 && rnd(g, 2) ? EF_DOC_OP_AND : EF_DOC_OP_OR;
        r->ndistributions = f->nvariants ? rnd(g, (unsigned)f->nvariants + 1) : 0;
        r->distributions = ef_arena_calloc(g->a, (r->ndistributions + 1) * sizeof(*r->distributions));
        for (size_t d = 0; d < r->ndistributions; d++) {
            r->distributions[d].variant_key = f->variants[d].key;
            r->distributions[d].rollout = (float)rnd(g, 10001) / 100.0f;
        }
    }
}

static void gen_namespace(gen *g, ef_doc_namespace *ns, bool first)
{
    ns->key = first ? EF_BYTES_LIT("default") : EF_BYTES_LIT("production");
    ns->protected_ = first;
    if (!first) {
        ns->name = EF_BYTES_LIT("Production: live");
        ns->description = EF_BYTES_LIT("yes");
    }
    ns->nsegments = 50;
    ns->segments = ef_arena_calloc(g->a, ns->nsegments * sizeof(*ns->segments));
    for (unsigned i = 0; i < ns->nsegments; i++) gen_segment(g, &ns->segments[i], i);
    ns->nflags = 60;
    ns->flags = ef_arena_calloc(g->a, ns->nflags * sizeof(*ns->flags));
    for (unsigned i = 0; i < ns->nflags; i++) gen_flag(g, &ns->flags[i], i, 50);
}

static void test_generated_roundtrip(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    for (uint64_t seed = 1; seed <= 5; seed++) {
        gen g = {&a, 0x9E3779B97F4A7C15ull * seed};
        ef_doc doc = {.version = EF_BYTES_LIT("1.4"), .nnamespaces = 2};
        doc.namespaces = ef_arena_calloc(&a, 2 * sizeof(*doc.namespaces));
        gen_namespace(&g, &doc.namespaces[0], true);
        gen_namespace(&g, &doc.namespaces[1], false);
        ef_buf out;
        roundtrip(&doc, &out);
        assert_true(out.len > 10000);
        ef_buf_free(&out);
    }
    ef_arena_free(&a);
}

/* Strings YAML 1.1 would misread come out quoted; plain strings stay plain. */
static void test_quoting(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    const char *src = "version: \"1.2\"\nflags:\n  - key: a\n    name: \"yes\"\n    description: \"1.4\"\n"
                      "    variants:\n      - key: \"on\"\n        name: plain words\n"
                      "        attachment: {x: \"null\", y: 1.50}\n";
    ef_doc doc;
    ef_decl_error err;
    assert_int_equal(ef_decl_parse("q.yml", src, strlen(src), &a, &doc, &err), 0);
    ef_buf out;
    ef_buf_init(&out);
    assert_int_equal(ef_decl_write_yaml(&doc, &out), 0);
    assert_non_null(strstr(out.data, "version: \"1.2\"\n"));
    assert_non_null(strstr(out.data, "name: \"yes\"\n"));
    assert_non_null(strstr(out.data, "description: \"1.4\"\n"));
    assert_non_null(strstr(out.data, "- key: \"on\"\n"));
    assert_non_null(strstr(out.data, "name: plain words\n"));
    assert_non_null(strstr(out.data, "x: \"null\"\n"));
    assert_non_null(strstr(out.data, "\"y\": 1.5\n")); /* y is a YAML 1.1 boolean */
    assert_non_null(strstr(out.data, "type: VARIANT_FLAG_TYPE\n"));
    ef_buf_free(&out);

    /* A 1.0 document stays 1.0 (no type field) until it uses something newer. */
    src = "version: \"1.0\"\nflags:\n  - {key: a, name: A}\n";
    assert_int_equal(ef_decl_parse("q.yml", src, strlen(src), &a, &doc, &err), 0);
    ef_buf_init(&out);
    assert_int_equal(ef_decl_write_yaml(&doc, &out), 0);
    assert_string_equal(out.data, "version: \"1.0\"\nnamespace: default\nflags:\n- key: a\n  name: A\n  enabled: false\n");
    ef_buf_free(&out);
    doc.namespaces[0].flags[0].type = EF_DOC_BOOLEAN_FLAG;
    ef_buf_init(&out);
    assert_int_equal(ef_decl_write_yaml(&doc, &out), 0);
    assert_non_null(strstr(out.data, "version: \"1.1\"\n"));
    ef_buf_free(&out);

    ef_doc none = {0};
    ef_buf_init(&out);
    assert_int_equal(ef_decl_write_yaml(&none, &out), 0);
    ef_buf_free(&out);
    ef_arena_free(&a);
}

/* Attachments and metadata as the store may hold them: the API takes any valid JSON in an
 * attachment (as Flipt does), so a key twice and numbers past a double's range; the store keeps
 * JSON nested 64 deep. Export writes a repeated key once, with its last value (what Flipt's
 * exporter writes; YAML cannot repeat a key), numbers as import stores them (1.50 as 1.5) and
 * ones past a double as written; import reads that back, and writing it again gives the same
 * bytes. A YAML map that repeats a key is refused, as Flipt's reader refuses it. */
static void test_json_values_roundtrip(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    const char *src = "version: \"1.4\"\nflags:\n  - key: f\n    name: F\n    metadata: {m: 1}\n"
                      "    variants:\n      - key: a\n      - key: b\n      - key: c\n";
    ef_doc doc;
    ef_decl_error err;
    assert_int_equal(ef_decl_parse("j.yml", src, strlen(src), &a, &doc, &err), 0);
    ef_doc_flag *f = &doc.namespaces[0].flags[0];
    f->variants[0].attachment = ef_bytes_of("{\"x\":1e400,\"y\":[-1e999,1.50,1E2,-0.0,12345678901234567890,1e-400],"
                                            "\"z\":{\"q\":1,\"q\":{\"x\":3,\"x\":4}},\"x\":[5]}");
    char deep[200];
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    f->variants[1].attachment = (ef_bytes){deep, 128};
    f->variants[2].attachment = ef_bytes_of("{\"\":1,\"\":2}");
    f->metadata = ef_bytes_of("{\"a\":{\"b\":[1e400]},\"k\":1,\"k\":2}");
    ef_buf first;
    ef_buf_init(&first);
    assert_int_equal(ef_decl_write_yaml(&doc, &first), 0);
    assert_non_null(strstr(first.data, "    attachment:\n      \"y\":\n      - -1e999\n      - 1.5\n      - 100\n"
                                       "      - 0\n      - 12345678901234567000\n      - 0\n"
                                       "      z:\n        q:\n          x: 4\n      x:\n      - 5\n"));
    assert_null(strstr(first.data, "1e400\n      \"y\"")); /* the first x is overridden by the last */
    assert_non_null(strstr(first.data, "  metadata:\n    a:\n      b:\n      - 1e400\n    k: 2\n"));
    assert_non_null(strstr(first.data, "    attachment:\n      \"\": 2\n"));
    ef_arena b;
    ef_arena_init(&b, 4096);
    ef_doc again;
    if (ef_decl_parse("written.yml", first.data, first.len, &b, &again, &err) != 0)
        fail_msg("written YAML does not parse: %u:%u: %s\n%s", err.line, err.column, err.message, first.data);
    const ef_doc_flag *g = &again.namespaces[0].flags[0];
    EQ_BYTES(g->variants[0].attachment,
             ef_bytes_of("{\"y\":[-1e999,1.5,100,0,12345678901234567000,0],\"z\":{\"q\":{\"x\":4}},\"x\":[5]}"),
             "attachment");
    EQ_BYTES(g->variants[1].attachment, ((ef_bytes){deep, 128}), "deep attachment");
    EQ_BYTES(g->metadata, ef_bytes_of("{\"a\":{\"b\":[1e400]},\"k\":2}"), "metadata");
    ef_buf_free(&first);
    roundtrip(&again, &first); /* and from there on, byte for byte */
    ef_buf_free(&first);

    const char *dup = "flags:\n  - key: f\n    name: F\n    variants:\n      - key: v\n"
                      "        attachment: {a: 1, b: {c: 1, c: 2}}\n";
    assert_int_equal(ef_decl_parse("d.yml", dup, strlen(dup), &b, &again, &err), -1);
    assert_string_equal(err.message, "attachment: key \"c\" given twice");
    assert_int_equal(err.line, 6);
    assert_int_equal(err.column, 38);
    dup = "flags:\n  - key: f\n    name: F\n    metadata:\n      k: 1\n      k: 2\n";
    assert_int_equal(ef_decl_parse("d.yml", dup, strlen(dup), &b, &again, &err), -1);
    assert_string_equal(err.message, "metadata: key \"k\" given twice");
    assert_int_equal(err.line, 6);
    assert_int_equal(err.column, 7);
    ef_arena_free(&b);
    ef_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_roundtrip),
        cmocka_unit_test(test_generated_roundtrip),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_json_values_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
