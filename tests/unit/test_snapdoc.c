/*
 * test_snapdoc.c - the snapshot document writer: exact shape of a small document, the
 * accept-version downgrades, ids/ranks/timestamps, and that what it writes compiles with
 * ef_snapshot_compile and evaluates as the features file says.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/json.h"
#include "eval/eval.h"
#include "eval/model.h"
#include "flag_same.h"
#include "store/doc.h"

static ef_doc parse_text(ef_arena *a, const char *text)
{
    ef_doc doc;
    ef_decl_error err;
    if (ef_decl_parse("t.yml", text, strlen(text), a, &doc, &err) != 0)
        fail_msg("%u:%u: %s", err.line, err.column, err.message);
    return doc;
}

static ef_snapshot *compile(const ef_buf *b)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error jerr;
    ef_json *j = ef_json_parse(b->data, b->len, &a, NULL, &jerr);
    if (!j) fail_msg("snapshot is not JSON at %u:%u: %s\n%s", jerr.line, jerr.column, jerr.message, b->data);
    ef_compile_error cerr;
    ef_snapshot *s = ef_snapshot_compile(j, &cerr);
    if (!s) fail_msg("compile: %s\n%s", cerr.message, b->data);
    ef_arena_free(&a);
    return s;
}

static const char SMALL[] =
    "version: \"1.4\"\n"
    "flags:\n"
    "  - key: f\n"
    "    name: F\n"
    "    enabled: true\n"
    "    variants:\n"
    "      - {key: a, default: true, attachment: {x: 1}}\n"
    "      - {key: b}\n"
    "    rules:\n"
    "      - segment: {keys: [s1, s2], operator: AND_SEGMENT_OPERATOR}\n"
    "        distributions: [{variant: b, rollout: 50}]\n"
    "  - key: g\n"
    "    name: G\n"
    "    type: BOOLEAN_FLAG_TYPE\n"
    "    rollouts:\n"
    "      - segment: {key: s1, value: true}\n"
    "      - threshold: {percentage: 12.5, value: false}\n"
    "segments:\n"
    "  - key: s1\n"
    "    name: S1\n"
    "    constraints: [{type: ENTITY_ID_COMPARISON_TYPE, property: entityId, operator: EQ, value: u1}]\n"
    "  - {key: s2, name: S2, match_type: ANY_MATCH_TYPE}\n";

static void test_shape(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc = parse_text(&a, SMALL);
    ef_buf b;
    ef_buf_init(&b);
    assert_int_equal(ef_doc_write_snapshot(&doc.namespaces[0], NULL, &b), 0);
    const char *s1 =
        "{\"key\":\"s1\",\"name\":\"S1\",\"description\":\"\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\","
        "\"createdAt\":null,\"updatedAt\":null,\"constraints\":[{\"id\":\"\",\"type\":"
        "\"ENTITY_ID_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"entityId\",\"operator\":\"eq\",\"value\":\"u1\"}]}";
    const char *s2 =
        "{\"key\":\"s2\",\"name\":\"S2\",\"description\":\"\",\"matchType\":\"ANY_SEGMENT_MATCH_TYPE\","
        "\"createdAt\":null,\"updatedAt\":null,\"constraints\":[]}";
    char want[4096];
    snprintf(want, sizeof(want),
             "{\"namespace\":{\"key\":\"default\"},\"flags\":["
             "{\"key\":\"f\",\"name\":\"F\",\"description\":\"\",\"enabled\":true,\"type\":\"VARIANT_FLAG_TYPE\","
             "\"createdAt\":null,\"updatedAt\":null,"
             "\"defaultVariant\":{\"id\":\"\",\"key\":\"a\",\"attachment\":\"{\\\"x\\\":1}\"},"
             "\"rules\":[{\"id\":\"\",\"rank\":1,\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"segments\":[%s,%s],"
             "\"distributions\":[{\"id\":\"\",\"ruleId\":\"\",\"variantId\":\"\",\"variantKey\":\"b\","
             "\"variantAttachment\":\"\",\"rollout\":50}]}],\"rollouts\":[]},"
             "{\"key\":\"g\",\"name\":\"G\",\"description\":\"\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\","
             "\"createdAt\":null,\"updatedAt\":null,\"rules\":[],\"rollouts\":["
             "{\"type\":\"SEGMENT_ROLLOUT_TYPE\",\"rank\":1,\"segment\":{\"value\":true,"
             "\"segmentOperator\":\"OR_SEGMENT_OPERATOR\",\"segments\":[%s]}},"
             "{\"type\":\"THRESHOLD_ROLLOUT_TYPE\",\"rank\":2,\"threshold\":{\"percentage\":12.5,\"value\":false}}]}]}",
             s1, s2, s1);
    assert_string_equal(b.data, want);

    /* What it wrote evaluates: f's rule needs s1 (entity u1) and s2 (always). */
    ef_snapshot *snap = compile(&b);
    ef_eval_request req = {.flag_key = EF_BYTES_LIT("f"), .entity_id = EF_BYTES_LIT("u1")};
    ef_variant_result vr;
    assert_int_equal(ef_eval_variant(snap, &req, &vr), EF_EVAL_OK);
    assert_true(vr.match);
    assert_true(ef_bytes_eq(vr.variant_key, EF_BYTES_LIT("b"))); /* 50 % normalises to all */
    req.entity_id = EF_BYTES_LIT("u2");
    assert_int_equal(ef_eval_variant(snap, &req, &vr), EF_EVAL_OK);
    assert_false(vr.match);
    assert_int_equal(vr.reason, EF_REASON_DEFAULT);
    assert_true(ef_bytes_eq(vr.variant_key, EF_BYTES_LIT("a")));
    ef_boolean_result br;
    req.flag_key = EF_BYTES_LIT("g");
    req.entity_id = EF_BYTES_LIT("u1");
    assert_int_equal(ef_eval_boolean(snap, &req, &br), EF_EVAL_OK);
    assert_true(br.enabled);
    assert_int_equal(br.reason, EF_REASON_MATCH);
    ef_snapshot_free(snap);
    ef_buf_free(&b);
    ef_arena_free(&a);
}

static void test_accept_version(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc = parse_text(&a, SMALL);
    ef_buf b;
    ef_buf_init(&b);
    ef_snapdoc_opts old = {.accept_version = 13701}; /* 1.37.1, Flipt's default without the header */
    assert_int_equal(ef_doc_write_snapshot(&doc.namespaces[0], &old, &b), 0);
    assert_null(strstr(b.data, "ENTITY_ID"));
    assert_non_null(strstr(b.data, "\"UNKNOWN_CONSTRAINT_COMPARISON_TYPE\""));
    assert_null(strstr(b.data, "defaultVariant"));
    ef_snapshot_free(compile(&b));
    ef_buf_clear(&b);
    ef_snapdoc_opts mid = {.accept_version = 13800};
    assert_int_equal(ef_doc_write_snapshot(&doc.namespaces[0], &mid, &b), 0);
    assert_non_null(strstr(b.data, "ENTITY_ID_CONSTRAINT_COMPARISON_TYPE"));
    assert_null(strstr(b.data, "defaultVariant"));
    ef_buf_clear(&b);
    ef_snapdoc_opts cur = {.accept_version = 14700};
    assert_int_equal(ef_doc_write_snapshot(&doc.namespaces[0], &cur, &b), 0);
    assert_non_null(strstr(b.data, "defaultVariant"));
    ef_buf_free(&b);
    ef_arena_free(&a);
}

static void test_meta_and_errors(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc = parse_text(&a, SMALL);
    ef_doc_flag *f = &doc.namespaces[0].flags[0];
    f->meta.created_ns = 1726256238723909000LL;
    f->meta.updated_ns = 1726256238000000000LL;
    f->rules[0].meta.id = EF_BYTES_LIT("r-1");
    f->variants[1].meta.id = EF_BYTES_LIT("v-b");
    f->rules[0].distributions[0].meta.id = EF_BYTES_LIT("d-1");
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "prefix:");
    assert_int_equal(ef_doc_write_snapshot(&doc.namespaces[0], NULL, &b), 0);
    assert_non_null(strstr(b.data, "\"createdAt\":\"2024-09-13T19:37:18.723909Z\",\"updatedAt\":\"2024-09-13T19:37:18Z\""));
    assert_non_null(strstr(b.data, "{\"id\":\"d-1\",\"ruleId\":\"r-1\",\"variantId\":\"v-b\",\"variantKey\":\"b\""));
    assert_non_null(strstr(b.data, "{\"id\":\"r-1\",\"rank\":1,"));
    /* The store's variant_id wins over a lookup. */
    f->rules[0].distributions[0].variant_id = EF_BYTES_LIT("stored");
    ef_buf_clear(&b);
    assert_int_equal(ef_doc_write_snapshot(&doc.namespaces[0], NULL, &b), 0);
    assert_non_null(strstr(b.data, "\"variantId\":\"stored\""));

    /* A rule naming a segment the namespace lacks is refused, and nothing is left half written. */
    f->rules[0].segment_keys[1] = EF_BYTES_LIT("missing");
    ef_buf_clear(&b);
    ef_buf_puts(&b, "keep");
    assert_true(ef_doc_write_snapshot(&doc.namespaces[0], NULL, &b) < 0);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    ef_buf_free(&b);
    ef_arena_free(&a);
}

static const char *const VALID_FIXTURES[] = {"v1_0.yml",      "v1_1.yml",   "v1_2.yml", "v1_3.yml",
                                              "v1_4_full.yml", "stream.yml", "doc.json"};
#define NVALID (sizeof(VALID_FIXTURES) / sizeof(VALID_FIXTURES[0]))

/* tests/fixtures/decl/valid/<name>, parsed into a. */
static ef_doc valid_fixture(ef_arena *a, const char *name)
{
    const char *root = getenv("EF_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/decl/valid/%s", root ? root : ".", name);
    ef_doc doc;
    ef_decl_error err;
    if (ef_decl_parse_file(path, a, &doc, &err) != 0) fail_msg("%s: %s", path, err.message);
    return doc;
}

/* Every valid fixture's namespaces compile, and flag counts survive. */
static void test_fixtures_compile(void **state)
{
    for (size_t i = 0; i < NVALID; i++) {
        ef_arena a;
        ef_arena_init(&a, 4096);
        ef_doc doc = valid_fixture(&a, VALID_FIXTURES[i]);
        for (size_t n = 0; n < doc.nnamespaces; n++) {
            ef_buf b;
            ef_buf_init(&b);
            assert_int_equal(ef_doc_write_snapshot(&doc.namespaces[n], NULL, &b), 0);
            ef_snapshot *s = compile(&b);
            assert_int_equal(ef_snapshot_flag_count(s), doc.namespaces[n].nflags);
            assert_true(ef_bytes_eq(ef_snapshot_namespace(s), doc.namespaces[n].key));
            ef_snapshot_free(s);
            ef_buf_free(&b);
        }
        ef_arena_free(&a);
    }
}

/* ---- a flag compiled from its values equals the flag compiled from its piece ---- */

/* Compiles ns's flag f from its piece and from its values (opts as given) and compares; returns
 * the values' code (-EILSEQ: compiled from the piece only). */
static int compare_both_ways(const ef_doc_namespace *ns, const ef_doc_flag *f, const ef_snapdoc_opts *o)
{
    ef_buf piece;
    ef_buf_init(&piece);
    assert_int_equal(ef_doc_write_snapshot_flag(ns, f, o, &piece), 0);
    ef_arena scratch, vals;
    ef_arena_init(&scratch, 4096);
    ef_arena_init(&vals, 4096);
    ef_compile_error e1, e2;
    ef_flag_part *from_text = ef_flag_part_compile(piece.data, piece.len, &e1);
    if (!from_text) fail_msg("piece: %s", e1.message);
    ef_flag_src src;
    int rc = ef_doc_snapshot_flag_src(ns, f, o, &vals, &src);
    if (rc == 0) {
        ef_flag_part *from_values = ef_flag_part_compile_src(&src, piece.data, piece.len, &scratch, &e2);
        if (!from_values) fail_msg("values: %s", e2.message);
        const char *why = ef_test_part_differs(from_text, from_values);
        if (why) fail_msg("flag \"%.*s\": %s", (int)f->key.n, f->key.p, why);
        ef_flag_part_unref(from_values);
    }
    ef_flag_part_unref(from_text);
    ef_arena_free(&scratch);
    ef_arena_free(&vals);
    ef_buf_free(&piece);
    return rc;
}

static const char ODD[] =
    "version: \"1.4\"\n"
    "flags:\n"
    "  - key: odd\n"
    "    name: \"quote \\\" tab \\t snow \\u2603\"\n"
    "    enabled: true\n"
    "    variants:\n"
    "      - {key: a, default: true, attachment: {s: \"\\u00e9\\\"\", n: [1, 2.5]}}\n"
    "      - {key: b}\n"
    "      - {key: c}\n"
    "    rules:\n"
    "      - segment: {keys: [s1, s2, s1], operator: AND_SEGMENT_OPERATOR}\n"
    "        distributions: [{variant: a, rollout: 33.33}, {variant: b, rollout: 0.1},"
    " {variant: c, rollout: 66.57}]\n"
    "      - segment: s3\n"
    "        distributions: [{variant: a, rollout: 0}, {variant: b, rollout: 1e-7}]\n"
    "  - key: bool\n"
    "    name: B\n"
    "    type: BOOLEAN_FLAG_TYPE\n"
    "    rollouts:\n"
    "      - threshold: {percentage: 12.345678, value: true}\n"
    "      - segment: {keys: [s3, s1], operator: AND_SEGMENT_OPERATOR, value: true}\n"
    "      - threshold: {percentage: 100, value: false}\n"
    "segments:\n"
    "  - key: s1\n"
    "    name: S1\n"
    "    constraints:\n"
    "      - {type: ENTITY_ID_COMPARISON_TYPE, property: entityId, operator: isoneof, value: '[\"u1\",\"u2\"]'}\n"
    "      - {type: NUMBER_COMPARISON_TYPE, property: n, operator: gte, value: '7'}\n"
    "  - key: s2\n"
    "    name: S2\n"
    "    match_type: ANY_MATCH_TYPE\n"
    "    constraints:\n"
    "      - {type: DATETIME_COMPARISON_TYPE, property: d, operator: lt, value: '2025-01-01T00:00:00Z'}\n"
    "      - {type: BOOLEAN_COMPARISON_TYPE, property: b, operator: 'true', value: ''}\n"
    "      - {type: STRING_COMPARISON_TYPE, property: p, operator: prefix, value: x}\n"
    "  - key: s3\n"
    "    name: S3\n"
    "    constraints: [{type: NUMBER_COMPARISON_TYPE, property: n, operator: isoneof, value: '[1, 2]'}]\n";

/* A namespace's segments written once (ef_snapdoc_segs, a full load's path) give every flag the
 * same bytes as writing them inline, for the newest and an old accept version; the index finds
 * the first of a repeated key and nothing for an unknown one, and a flag naming an unknown
 * segment fails either way. */
static void test_segment_index_same_bytes(void **state)
{
    size_t compared = 0;
    for (size_t i = 0; i <= NVALID; i++) {
        ef_arena a;
        ef_arena_init(&a, 4096);
        ef_doc doc = i < NVALID ? valid_fixture(&a, VALID_FIXTURES[i]) : parse_text(&a, ODD);
        for (size_t n = 0; n < doc.nnamespaces; n++) {
            ef_doc_namespace *ns = &doc.namespaces[n];
            if (i == NVALID) { /* what only a database can hold: an operator in capitals */
                ns->segments[1].constraints[2].op = EF_BYTES_LIT("PREFIX");
                ns->segments[0].constraints[1].op = EF_BYTES_LIT("Gte");
            }
            for (unsigned v = 0; v < 2; v++) {
                ef_snapdoc_opts plain = {.accept_version = v ? 13700u : 0};
                ef_snapdoc_segs *g = ef_snapdoc_segs_new(ns, &plain);
                assert_non_null(g);
                ef_snapdoc_opts indexed = {.accept_version = plain.accept_version, .segs = g};
                for (size_t f = 0; f < ns->nflags; f++) {
                    ef_buf x, y;
                    ef_buf_init(&x);
                    ef_buf_init(&y);
                    assert_int_equal(ef_doc_write_snapshot_flag(ns, &ns->flags[f], &plain, &x), 0);
                    assert_int_equal(ef_doc_write_snapshot_flag(ns, &ns->flags[f], &indexed, &y), 0);
                    assert_int_equal(x.len, y.len);
                    assert_memory_equal(x.data, y.data, x.len);
                    /* and the part compiled from the values is the part compiled from the text */
                    assert_int_equal(compare_both_ways(ns, &ns->flags[f], &plain), 0);
                    assert_int_equal(compare_both_ways(ns, &ns->flags[f], &indexed), 0);
                    compared++;
                    ef_buf_free(&x);
                    ef_buf_free(&y);
                }
                for (size_t k = 0; k < ns->nsegments; k++) {
                    long at = ef_snapdoc_segs_find(g, ns->segments[k].key);
                    assert_true(at >= 0 && (size_t)at <= k);
                    assert_true(ef_bytes_eq(ns->segments[at].key, ns->segments[k].key));
                }
                assert_int_equal(ef_snapdoc_segs_find(g, EF_BYTES_LIT("no-such-segment")), -1);
                ef_snapdoc_segs_free(g);
            }
        }
        ef_arena_free(&a);
    }
    assert_true(compared > 10);
    /* a rule naming a segment the namespace lacks: refused with the index too */
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc = parse_text(&a, SMALL);
    ef_doc_namespace *ns = &doc.namespaces[0];
    ef_snapdoc_segs *g = ef_snapdoc_segs_new(ns, NULL);
    assert_non_null(g);
    ef_snapdoc_opts o = {.segs = g};
    ns->flags[0].rules[0].segment_keys[0] = EF_BYTES_LIT("gone");
    ef_buf b;
    ef_buf_init(&b);
    assert_int_equal(ef_doc_write_snapshot_flag(ns, &ns->flags[0], &o, &b), -EINVAL);
    assert_int_equal(ef_doc_write_snapshot_flag(ns, &ns->flags[0], NULL, &b), -EINVAL);
    ef_buf_free(&b);
    ef_snapdoc_segs_free(g);
    ef_arena_free(&a);
}

/* What the values cannot say: a string that is not valid UTF-8 (the text says U+FFFD, so the
 * values refuse and the piece decides), and a rule naming a segment the namespace lacks (refused
 * as the writer refuses it). Every valid document is compared both ways above. */
static void test_values_compile_as_the_piece(void **state)
{
    (void)state;
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc = parse_text(&a, ODD);
    ef_doc_namespace *ns = &doc.namespaces[0];
    ns->flags[0].name = EF_BYTES_LIT("bad \xff name");
    assert_int_equal(compare_both_ways(ns, &ns->flags[0], NULL), -EILSEQ);
    ns->flags[0].name = EF_BYTES_LIT("fine");
    assert_int_equal(compare_both_ways(ns, &ns->flags[0], NULL), 0);
    ns->segments[2].constraints[0].property = EF_BYTES_LIT("n\xc3");
    assert_int_equal(compare_both_ways(ns, &ns->flags[0], NULL), -EILSEQ);
    ef_snapdoc_segs *g = ef_snapdoc_segs_new(ns, NULL);
    ef_snapdoc_opts indexed = {.segs = g};
    assert_int_equal(compare_both_ways(ns, &ns->flags[1], &indexed), -EILSEQ);
    ef_snapdoc_segs_free(g);
    ns->flags[0].rules[1].segment_keys[0] = EF_BYTES_LIT("gone");
    ef_flag_src src;
    assert_int_equal(ef_doc_snapshot_flag_src(ns, &ns->flags[0], NULL, &a, &src), -EINVAL);
    ef_arena_free(&a);
}

/* ef_json_float_read is what a JSON reader gets back from ef_json_put_float's text. */
static void test_float_read(void **state)
{
    (void)state;
    const float vals[] = {0.0f, -0.0f, 50.0f, 33.33f, 0.1f, 1e-7f, 12.345678f, 99.99999f, 8388609.0f,
                          3.4e38f, 1.17549435e-38f, 1e-45f, -2.5f};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        ef_buf b;
        ef_buf_init(&b);
        ef_json_put_float(&b, vals[i]);
        ef_arena a;
        ef_arena_init(&a, 256);
        ef_json_error je;
        ef_json *j = ef_json_parse(b.data, b.len, &a, NULL, &je);
        assert_non_null(j);
        float want = (float)j->num, got = ef_json_float_read(vals[i]);
        assert_memory_equal(&want, &got, sizeof(float));
        ef_arena_free(&a);
        ef_buf_free(&b);
    }
}

/* The SDK fixture from flipt-client-sdks (flag1 -> variant1 for fizz=buzz; flag_boolean). */
static void test_sdk_fixture_evaluates(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    const char *root = getenv("EF_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/decl/valid/v1_0.yml", root ? root : ".");
    ef_doc doc;
    ef_decl_error err;
    assert_int_equal(ef_decl_parse_file(path, &a, &doc, &err), 0);
    ef_buf b;
    ef_buf_init(&b);
    assert_int_equal(ef_doc_write_snapshot(&doc.namespaces[0], NULL, &b), 0);
    ef_snapshot *s = compile(&b);
    ef_kv ctx[] = {{EF_BYTES_LIT("fizz"), EF_BYTES_LIT("buzz")}};
    ef_eval_request req;
    assert_int_equal(ef_request_build(&a, EF_BYTES_LIT("flag1"), EF_BYTES_LIT("someentity"), ctx, 1, &req), 0);
    ef_variant_result vr;
    assert_int_equal(ef_eval_variant(s, &req, &vr), EF_EVAL_OK);
    assert_true(vr.match);
    assert_int_equal(vr.reason, EF_REASON_MATCH);
    assert_true(ef_bytes_eq(vr.variant_key, EF_BYTES_LIT("variant1")));
    assert_true(ef_bytes_eq(vr.attachment, EF_BYTES_LIT("{\"color\":\"red\"}")));
    ef_snapshot_free(s);
    ef_buf_free(&b);
    ef_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),           cmocka_unit_test(test_accept_version),
        cmocka_unit_test(test_meta_and_errors), cmocka_unit_test(test_fixtures_compile),
        cmocka_unit_test(test_sdk_fixture_evaluates), cmocka_unit_test(test_segment_index_same_bytes),
        cmocka_unit_test(test_values_compile_as_the_piece), cmocka_unit_test(test_float_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
