/*
 * test_decl.c - the declarative reader: every valid fixture (versions 1.0-1.4, streams, JSON) with
 * its fields checked, and every broken fixture failing at its expected line:column with its
 * expected message (tests/fixtures/decl/invalid/EXPECTED). Never writes outside the build tree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/doc.h"

static char fixture_path[1024];

static const char *fixture(const char *rel)
{
    const char *root = getenv("EF_SOURCE_DIR");
    snprintf(fixture_path, sizeof(fixture_path), "%s/tests/fixtures/decl/%s", root ? root : ".", rel);
    return fixture_path;
}

static void assert_bytes(ef_bytes got, const char *want)
{
    if (!ef_bytes_eq(got, ef_bytes_of(want)))
        fail_msg("got \"%.*s\", want \"%s\"", (int)got.n, got.p, want);
}

static ef_doc parse_ok(ef_arena *a, const char *rel)
{
    ef_doc doc;
    ef_decl_error err;
    if (ef_decl_parse_file(fixture(rel), a, &doc, &err) != 0)
        fail_msg("%s:%u:%u: %s", err.file, err.line, err.column, err.message);
    return doc;
}

static const char *parse_err(const char *text, ef_decl_error *err)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc;
    int rc = ef_decl_parse("t.yml", text, strlen(text), &a, &doc, err);
    ef_arena_free(&a);
    return rc == 0 ? NULL : err->message;
}

static void test_v14_full(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc = parse_ok(&a, "valid/v1_4_full.yml");
    assert_bytes(doc.version, "1.4");
    assert_int_equal(doc.nnamespaces, 1);
    const ef_doc_namespace *ns = &doc.namespaces[0];
    assert_bytes(ns->key, "production");
    assert_bytes(ns->name, "Production");
    assert_bytes(ns->description, "live traffic");
    assert_false(ns->protected_);
    assert_int_equal(ns->nflags, 2);
    assert_int_equal(ns->nsegments, 4);

    const ef_doc_flag *f = &ns->flags[0];
    assert_bytes(f->key, "checkout");
    assert_int_equal(f->type, EF_DOC_VARIANT_FLAG);
    assert_true(f->enabled);
    assert_bytes(f->description, "variant flag");
    assert_bytes(f->metadata, "{\"team\":\"payments\",\"priority\":1,\"beta\":true,\"ratio\":0.5}");
    assert_int_equal(f->pos.line, 9);
    assert_int_equal(f->pos.column, 5);
    assert_string_equal(f->pos.file, fixture("valid/v1_4_full.yml"));
    assert_int_equal(f->nvariants, 3);
    assert_true(f->variants[0].is_default);
    assert_bytes(f->variants[0].attachment, "{\"layout\":\"old\",\"sizes\":[1,2,3]}");
    assert_bytes(f->variants[1].attachment,
                 "{\"layout\":\"a\",\"nested\":{\"x\":null,\"on\":\"yes\"}}");
    assert_bytes(f->variants[1].description, "first variant");
    assert_bytes(f->variants[2].key, "on");
    assert_int_equal(f->variants[2].attachment.n, 0);
    assert_int_equal(f->nrules, 3);
    assert_int_equal(f->rules[0].nsegments, 2);
    assert_int_equal(f->rules[0].op, EF_DOC_OP_AND);
    assert_bytes(f->rules[0].segment_keys[1], "adults");
    assert_int_equal(f->rules[0].ndistributions, 2);
    assert_bytes(f->rules[0].distributions[0].variant_key, "new-a");
    assert_true(f->rules[0].distributions[0].rollout == 33.34f);
    assert_int_equal(f->rules[1].nsegments, 1);
    assert_bytes(f->rules[1].segment_keys[0], "early-signups");
    assert_bytes(f->rules[2].segment_keys[0], "adults"); /* the old {key: x} form */
    assert_int_equal(f->rules[2].ndistributions, 0);

    f = &ns->flags[1];
    assert_int_equal(f->type, EF_DOC_BOOLEAN_FLAG);
    assert_false(f->enabled);
    assert_int_equal(f->nrollouts, 3);
    assert_int_equal(f->rollouts[0].type, EF_DOC_ROLLOUT_SEGMENT);
    assert_bytes(f->rollouts[0].description, "staff first");
    assert_true(f->rollouts[0].value);
    assert_int_equal(f->rollouts[1].nsegments, 2);
    assert_int_equal(f->rollouts[1].op, EF_DOC_OP_AND);
    assert_int_equal(f->rollouts[2].type, EF_DOC_ROLLOUT_THRESHOLD);
    assert_true(f->rollouts[2].percentage == 25.0f);
    assert_true(f->rollouts[2].value);

    const ef_doc_segment *s = &ns->segments[1];
    assert_bytes(s->key, "adults");
    assert_int_equal(s->match_type, EF_DOC_MATCH_ANY);
    assert_int_equal(s->nconstraints, 3);
    assert_int_equal(s->constraints[0].type, EF_DOC_CT_NUMBER);
    assert_bytes(s->constraints[0].value, "18"); /* a bare YAML number is the constraint's text */
    assert_int_equal(s->constraints[1].type, EF_DOC_CT_BOOLEAN);
    assert_bytes(s->constraints[1].op, "true");
    assert_int_equal(s->constraints[1].value.n, 0);
    assert_bytes(ns->segments[0].constraints[1].description, "paying plans");
    assert_int_equal(ns->segments[2].constraints[2].type, EF_DOC_CT_ENTITY_ID);
    assert_int_equal(ns->segments[3].match_type, EF_DOC_MATCH_ALL); /* the default */
    ef_arena_free(&a);
}

static void test_versions(void **state)
{
    static const struct {
        const char *file, *version;
    } cases[] = {{"valid/v1_0.yml", "1.0"}, {"valid/v1_1.yml", "1.1"}, {"valid/v1_2.yml", "1.2"},
                 {"valid/v1_3.yml", "1.3"}, {"valid/v1_4_full.yml", "1.4"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ef_arena a;
        ef_arena_init(&a, 4096);
        ef_doc doc = parse_ok(&a, cases[i].file);
        assert_bytes(doc.version, cases[i].version);
        assert_int_equal(doc.nnamespaces, 1);
        ef_arena_free(&a);
    }
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc = parse_ok(&a, "valid/v1_0.yml");
    assert_true(doc.namespaces[0].protected_);
    assert_bytes(doc.namespaces[0].flags[0].variants[0].attachment, "{\"color\":\"red\"}");
    doc = parse_ok(&a, "valid/v1_2.yml");
    assert_bytes(doc.namespaces[0].key, "default"); /* no namespace field */
    assert_int_equal(doc.namespaces[0].flags[0].rollouts[0].nsegments, 2);
    doc = parse_ok(&a, "valid/v1_3.yml");
    assert_bytes(doc.namespaces[0].flags[0].metadata, "{\"owner\":\"team-a\"}");
    assert_true(doc.namespaces[0].flags[0].variants[0].is_default);
    ef_arena_free(&a);
}

static void test_stream(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc = parse_ok(&a, "valid/stream.yml");
    assert_int_equal(doc.nnamespaces, 3);
    assert_bytes(doc.namespaces[0].key, "default");
    assert_bytes(doc.namespaces[1].key, "staging");
    assert_bytes(doc.namespaces[1].flags[0].name, "Flag 1 in staging");
    assert_bytes(doc.namespaces[2].key, "production");
    assert_bytes(doc.namespaces[2].name, "Production");
    assert_int_equal(doc.namespaces[2].pos.line, 10);
    ef_arena_free(&a);
}

static void test_json(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc = parse_ok(&a, "valid/doc.json");
    assert_bytes(doc.version, "1.3");
    const ef_doc_flag *f = &doc.namespaces[0].flags[0];
    assert_bytes(f->variants[0].attachment, "{\"a\":[1,2.5,\"x\"],\"b\":null}");
    assert_int_equal(f->pos.line, 5);
    assert_int_equal(f->pos.column, 5);
    assert_int_equal(doc.namespaces[0].flags[1].type, EF_DOC_BOOLEAN_FLAG);
    /* Data starting with '{' is JSON whatever the name says. */
    const char *text = "{\"flags\":[{\"key\":\"a\",\"name\":\"A\",\"enabled\":\"no\"}]}";
    ef_decl_error err;
    ef_doc d2;
    assert_int_equal(ef_decl_parse("x.yml", text, strlen(text), &a, &d2, &err), -1);
    assert_non_null(strstr(err.message, "must be true or false, found a string"));
    ef_arena_free(&a);
}

/* Every broken fixture fails where EXPECTED says, with the message fragment it names. */
static void test_invalid_fixtures(void **state)
{
    FILE *f = fopen(fixture("invalid/EXPECTED"), "r");
    assert_non_null(f);
    char line[512];
    int checked = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = '\0';
        char *name = strtok(line, "|"), *pos = strtok(NULL, "|"), *frag = strtok(NULL, "");
        assert_non_null(frag);
        unsigned wl, wc;
        assert_int_equal(sscanf(pos, "%u:%u", &wl, &wc), 2);
        char rel[300];
        snprintf(rel, sizeof(rel), "invalid/%s", name);
        ef_arena a;
        ef_arena_init(&a, 4096);
        ef_doc doc;
        ef_decl_error err;
        if (ef_decl_parse_file(fixture(rel), &a, &doc, &err) == 0) fail_msg("%s parsed", name);
        if (err.line != wl || err.column != wc || !strstr(err.message, frag))
            fail_msg("%s: got %u:%u: %s; want %u:%u: %s", name, err.line, err.column, err.message,
                     wl, wc, frag);
        assert_non_null(strstr(err.file, name));
        assert_int_equal(doc.nnamespaces, 0);
        ef_arena_free(&a);
        checked++;
    }
    fclose(f);
    assert_true(checked >= 50);
}

static void test_scalar_resolution(void **state)
{
    ef_decl_error err;
    /* YAML 1.2 core: `on`/`yes` are strings; quoted numbers are strings; bare numbers are not. */
    assert_null(parse_err("flags: [{key: a, name: yes}, {key: b, name: \"12\"}, {key: c, name: on}]", &err));
    assert_non_null(parse_err("flags: [{key: a, name: 1.5}]", &err));
    assert_non_null(parse_err("flags: [{key: a, name: null}]", &err));
    assert_non_null(strstr(err.message, "name must not be empty"));
    assert_non_null(parse_err("flags: [{key: a, name: A, enabled: on}]", &err));
    assert_null(parse_err("flags: [{key: a, name: A, enabled: True}]", &err));
    assert_non_null(parse_err("flags: [{key: 12, name: A}]", &err));
    assert_non_null(strstr(err.message, "key must be a string, found a number"));
    /* A plain 1.2 version is read as the version it spells. */
    assert_null(parse_err("version: 1.2\nflags: [{key: a, name: A, type: BOOLEAN_FLAG_TYPE}]", &err));
    /* Keys allow commas, dashes and underscores. */
    assert_null(parse_err("flags: [{key: 'a,b-c_D9', name: A}]", &err));
    assert_non_null(parse_err("flags: [{key: 'a.b', name: A}]", &err));
    assert_non_null(parse_err("flags: [{key: '', name: A}]", &err));
}

static void test_constraint_rules(void **state)
{
    ef_decl_error err;
    const char *head = "segments:\n  - key: s\n    name: S\n    constraints:\n      - ";
    static const struct {
        const char *c;
        bool ok;
    } cases[] = {
        {"{type: STRING_COMPARISON_TYPE, property: p, operator: contains, value: x}", true},
        {"{type: ENTITY_ID_COMPARISON_TYPE, property: entityId, operator: notcontains, value: x}", true},
        {"{type: STRING_COMPARISON_TYPE, property: p, operator: EQ, value: x}", true},
        {"{type: STRING_COMPARISON_TYPE, property: p, operator: empty}", true},
        {"{type: STRING_COMPARISON_TYPE, property: p, operator: present}", false},
        {"{type: NUMBER_COMPARISON_TYPE, property: p, operator: lt, value: 3}", true},
        {"{type: NUMBER_COMPARISON_TYPE, property: p, operator: prefix, value: 3}", false},
        {"{type: NUMBER_COMPARISON_TYPE, property: p, operator: isoneof, value: '[1,2,3.5]'}", true},
        {"{type: NUMBER_COMPARISON_TYPE, property: p, operator: notpresent}", true},
        {"{type: BOOLEAN_COMPARISON_TYPE, property: p, operator: 'false'}", true},
        {"{type: BOOLEAN_COMPARISON_TYPE, property: p, operator: notpresent}", true},
        {"{type: DATETIME_COMPARISON_TYPE, property: p, operator: lte, value: '2024-02-29T23:59:59.123+02:00'}", true},
        {"{type: DATETIME_COMPARISON_TYPE, property: p, operator: lte, value: '2023-02-29'}", false},
        {"{type: DATETIME_COMPARISON_TYPE, property: p, operator: gt, value: '2024-01-01T25:00:00Z'}", false},
        {"{type: DATETIME_COMPARISON_TYPE, property: p, operator: present}", true},
        {"{type: DATETIME_COMPARISON_TYPE, property: p, operator: isoneof, value: '[\"2024-01-01\"]'}", false},
        {"{type: ENTITY_ID_COMPARISON_TYPE, property: entityId, operator: isoneof, value: '[\"a\"]'}", true},
        {"{type: ENTITY_ID_COMPARISON_TYPE, property: entityId, operator: gt, value: a}", false},
        {"{type: STRING_COMPARISON_TYPE, property: '', operator: eq, value: a}", false},
        {"{type: STRING_COMPARISON_TYPE, operator: eq, value: a}", false},
        {"{property: p, operator: eq, value: a}", false},
        {"{type: STRING_COMPARISON_TYPE, property: p, operator: eq, value: a, extra: 1}", false},
        {"{type: UNKNOWN_COMPARISON_TYPE, property: p, operator: eq, value: a}", false},
        {"{type: STRING_COMPARISON_TYPE, property: p, operator: isoneof, value: '[]'}", true},
        {"{type: STRING_COMPARISON_TYPE, property: p, operator: isoneof, value: '[\"a\",]'}", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), "%s%s\n", head, cases[i].c);
        const char *msg = parse_err(text, &err);
        if (cases[i].ok && msg) fail_msg("case %zu (%s): unexpected error %s", i, cases[i].c, msg);
        if (!cases[i].ok && !msg) fail_msg("case %zu (%s): accepted", i, cases[i].c);
        if (msg) {
            assert_int_equal(err.line, 5);
            assert_true(err.column >= 9);
        }
    }
}

static void test_merge(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc d1 = parse_ok(&a, "valid/v1_0.yml");
    ef_doc d2 = parse_ok(&a, "valid/v1_4_full.yml");
    ef_doc d3 = parse_ok(&a, "valid/v1_1.yml");
    ef_decl_error err;
    assert_int_equal(ef_decl_merge(&d1, &d2, &a, &err), 0);
    assert_int_equal(d1.nnamespaces, 2);
    assert_bytes(d1.namespaces[1].key, "production");
    assert_bytes(d1.version, "1.0");
    assert_int_equal(ef_decl_merge(&d1, &d3, &a, &err), -1);
    assert_non_null(strstr(err.message, "namespace \"default\" is already defined in"));
    assert_non_null(strstr(err.file, "v1_1.yml"));
    assert_int_equal(err.line, 1);
    assert_int_equal(d1.nnamespaces, 2);
    ef_doc empty = {0};
    assert_int_equal(ef_decl_merge(&empty, &d3, &a, &err), 0);
    assert_bytes(empty.version, "1.1");
    ef_arena_free(&a);
}

static void test_bad_input_bytes(void **state)
{
    ef_decl_error err;
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc;
    static const char nul[] = "flags:\n  - key: a\0b\n";
    assert_int_equal(ef_decl_parse("n.yml", nul, sizeof(nul) - 1, &a, &doc, &err), -1);
    assert_int_equal(err.line, 2);
    static const char bad_utf8[] = "flags: [{key: a, name: \"\xff\"}]";
    assert_int_equal(ef_decl_parse("u.yml", bad_utf8, sizeof(bad_utf8) - 1, &a, &doc, &err), -1);
    assert_int_equal(ef_decl_parse("e.yml", "", 0, &a, &doc, &err), 0);
    assert_int_equal(doc.nnamespaces, 0);
    /* A self-referencing alias must not recurse forever. */
    const char *cyc = "a: &x [*x]\n";
    assert_int_equal(ef_decl_parse("c.yml", cyc, strlen(cyc), &a, &doc, &err), -1);
    assert_int_equal(ef_decl_parse_file("/nonexistent/features.yml", &a, &doc, &err), -1);
    assert_non_null(strstr(err.message, "cannot read"));
    ef_arena_free(&a);
}

/* prefix + n opens + n closes + suffix, in a fresh buffer. */
static char *nest(const char *prefix, const char *open, const char *close, size_t n,
                  const char *suffix)
{
    size_t lp = strlen(prefix), lo = strlen(open), lc = strlen(close), ls = strlen(suffix);
    char *s = malloc(lp + n * (lo + lc) + ls + 1), *w = s;
    assert_non_null(s);
    memcpy(w, prefix, lp), w += lp;
    for (size_t i = 0; i < n; i++) memcpy(w, open, lo), w += lo;
    for (size_t i = 0; i < n; i++) memcpy(w, close, lc), w += lc;
    memcpy(w, suffix, ls + 1);
    return s;
}

static void expect_deep(const char *text, unsigned line, unsigned column)
{
    ef_decl_error err;
    const char *msg = parse_err(text, &err);
    if (!msg || !strstr(msg, "nesting deeper than 69 levels") || err.line != line || err.column != column)
        fail_msg("got %u:%u: %s; want %u:%u: nesting deeper than 69 levels", err.line, err.column,
                 msg ? msg : "(parsed)", line, column);
}

/* Deep nesting is refused where it passes 69 levels without the rest of the document being
 * parsed: libyaml's scanner is quadratic in flow nesting, and these 1 MB documents took minutes
 * to load whole. (test_yaml_load bounds the events and bytes read; this checks what the reader
 * reports.) A depth reached through an alias earlier in the document is still reported first. */
static void test_deep_nesting(void **state)
{
    const char *head = "version: \"1.4\"\nflags:\n- key: x\n  name: x\n  metadata: ";
    char *seqs = nest(head, "[", "]", 500000, "\n");
    expect_deep(seqs, 5, 13 + 67); /* metadata is depth 3: its 68th [ is depth 70 */
    free(seqs);
    char *maps = nest(head, "{a: ", "}", 250000, "\n");
    expect_deep(maps, 5, 13 + 4 * 66 + 1); /* the key of the depth-69 map */
    free(maps);
    char *top = nest("", "[", "]", 500000, "\n---\nflags: [\n"); /* cut before the bad YAML */
    expect_deep(top, 1, 71);
    free(top);
    char *x = nest("a: &x ", "[", "]", 65, "\nb: [[[[[*x]]]]]\nc: ");
    char *both = nest(x, "[", "]", 100000, "\n");
    expect_deep(both, 1, 6 + 65); /* through b's alias: x's 65th [ is depth 70 */
    free(both);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v14_full),       cmocka_unit_test(test_versions),
        cmocka_unit_test(test_stream),         cmocka_unit_test(test_json),
        cmocka_unit_test(test_invalid_fixtures), cmocka_unit_test(test_scalar_resolution),
        cmocka_unit_test(test_constraint_rules), cmocka_unit_test(test_merge),
        cmocka_unit_test(test_bad_input_bytes), cmocka_unit_test(test_deep_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
