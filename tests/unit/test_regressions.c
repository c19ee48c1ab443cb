/*
 * test_regressions.c - one test per bug found outside the module's own tests (fuzzing, reviews),
 * so it stays fixed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "base/json.h"
#include "eval/eval.h"
#include "store/doc.h"

/* fuzz_decl: a NULL buffer of length 0 reached libyaml, which asserts on NULL input. */
static void test_decl_parse_null_empty_input(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_doc doc;
    ef_decl_error err;
    int rc = ef_decl_parse("empty.yml", NULL, 0, &a, &doc, &err);
    assert_true(rc == 0 || rc == -1); /* either answer, as long as it returns */
    rc = ef_decl_parse("empty.yml", "", 0, &a, &doc, &err);
    assert_true(rc == 0 || rc == -1);
    ef_arena_free(&a);
}

/* fuzz_snapshot: a rollout past f32 (1e39) made the total inf and the share inf/inf = NaN,
 * converted to a boundary by a C cast (undefined). The boundary is 0 now, as Rust's saturating
 * `as i32` makes it in Flipt's engine, so every entity gets the last variant. */
static void test_rollout_past_float(void **state)
{
    static const char doc[] =
        "{\"namespace\":{\"key\":\"default\"},\"flags\":[{\"key\":\"f\",\"name\":\"f\",\"enabled\":true,"
        "\"type\":\"VARIANT_FLAG_TYPE\",\"rules\":[{\"segmentOperator\":\"OR_SEGMENT_OPERATOR\",\"segments\":"
        "[{\"key\":\"s\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":[]}],\"distributions\":"
        "[{\"variantKey\":\"a\",\"rollout\":1e39},{\"variantKey\":\"b\",\"rollout\":50}]}]}]}";
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error je;
    ef_json *v = ef_json_parse(doc, sizeof(doc) - 1, &a, NULL, &je);
    assert_non_null(v);
    ef_compile_error ce;
    ef_snapshot *s = ef_snapshot_compile(v, &ce);
    assert_non_null(s);
    static const char *const ids[] = {"u1", "u2", "u3", "anyone"};
    for (size_t i = 0; i < 4; i++) {
        ef_eval_request q = {.flag_key = EF_BYTES_LIT("f"), .entity_id = ef_bytes_of(ids[i])};
        ef_variant_result r;
        assert_int_equal(ef_eval_variant(s, &q, &r), EF_EVAL_OK);
        assert_true(r.match);
        assert_true(ef_bytes_eq(r.variant_key, EF_BYTES_LIT("b")));
    }
    ef_snapshot_free(s);
    ef_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decl_parse_null_empty_input),
        cmocka_unit_test(test_rollout_past_float),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
