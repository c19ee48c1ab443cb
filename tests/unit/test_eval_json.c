/*
 * test_eval_json.c - evaluation requests and response bodies in Flipt's JSON: camelCase and
 * snake_case input, type errors, and the exact bodies (field order, enum names, every field).
 */
#include "api/eval_json.h"
#include "snap_helper.h"

static int decode(ef_arena *a, const char *text, ef_eval_input *in, char *err)
{
    ef_json_error e;
    ef_json *v = ef_json_parse(text, strlen(text), a, NULL, &e);
    assert_non_null(v);
    return ef_eval_input_decode(v, a, in, err, 200);
}

static void test_decode(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_eval_input in;
    char err[200];
    assert_int_equal(decode(&a, "{\"flag_key\":\"f\",\"entityId\":\"e\",\"namespace_key\":\"ns\","
                                "\"requestId\":\"r\",\"context\":{\"a\":\"1\",\"b\":null},\"extra\":[1]}",
                            &in, err), 0);
    assert_bytes(in.req.flag_key, "f");
    assert_bytes(in.req.entity_id, "e");
    assert_bytes(in.namespace_key, "ns");
    assert_bytes(in.request_id, "r");
    assert_int_equal(ef_context_count(in.req.context), 1);
    assert_int_equal(decode(&a, "{\"flagKey\":null,\"context\":null}", &in, err), 0);
    assert_int_equal(in.req.flag_key.n, 0);
    assert_int_equal(decode(&a, "{\"flagKey\":1}", &in, err), -1);
    assert_non_null(strstr(err, "flagKey"));
    assert_int_equal(decode(&a, "{\"flagKey\":\"f\",\"context\":{\"n\":5}}", &in, err), -1);
    assert_non_null(strstr(err, "context"));
    assert_int_equal(decode(&a, "{\"context\":[]}", &in, err), -1);
    assert_int_equal(decode(&a, "[]", &in, err), -1);
    ef_arena_free(&a);
}

/* The one-pass decoder against the tree and ef_eval_input_decode: when it takes a body, both must
 * give the same input, field for field and context entry for entry; it must take the common
 * shapes and decline what it does not know (the slow path then answers, errors included). */
static void same_input(const ef_eval_input *x, const ef_eval_input *y)
{
    assert_true(ef_bytes_eq(x->request_id, y->request_id));
    assert_true(ef_bytes_eq(x->namespace_key, y->namespace_key));
    assert_true(ef_bytes_eq(x->reference, y->reference));
    assert_true(ef_bytes_eq(x->req.flag_key, y->req.flag_key));
    assert_true(ef_bytes_eq(x->req.entity_id, y->req.entity_id));
    assert_true(x->req.flag_hash == y->req.flag_hash);
    size_t n = ef_context_count(x->req.context);
    assert_int_equal(n, ef_context_count(y->req.context));
    for (size_t i = 0; i < n; i++) {
        assert_true(ef_bytes_eq(ef_context_key(x->req.context, i), ef_context_key(y->req.context, i)));
        assert_true(ef_bytes_eq(ef_context_value(x->req.context, i), ef_context_value(y->req.context, i)));
    }
}

static int fast_vs_slow(const char *text)
{
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_eval_input fast, slow;
    char err[200];
    int took = ef_eval_input_fast((ef_bytes){text, strlen(text)}, &a, &fast);
    if (took) {
        assert_int_equal(decode(&a, text, &slow, err), 0);
        same_input(&fast, &slow);
    }
    ef_arena_free(&a);
    return took;
}

static void test_fast_decode(void **state)
{
    (void)state;
    static const char *taken[] = {
        "{\"namespaceKey\":\"default\",\"flagKey\":\"f\",\"entityId\":\"u-1\",\"context\":{\"a\":\"1\",\"b\":\"2\"}}",
        " {\n\t\"flag_key\" : \"f\" ,\"entity_id\":\"e\", \"request_id\":\"r\",\"reference\":\"main\"} \r\n",
        "{\"flagKey\":\"f\",\"context\":{}}",
        "{\"flagKey\":\"f\",\"context\":{\"k\":\"1\",\"k\":\"2\"}}", /* the later wins, as in the tree */
        "{\"entityId\":\"\"}",
        "{\"flagKey\":\"f\\n\",\"context\":{\"e\\u00e9\":\"a\\\"b\",\"x\":\"\xc3\xa9\"}}", /* escapes, UTF-8 */
        "{\"flag\\u004bey\":\"f\"}", /* an escaped name is the name */
    };
    for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) assert_int_equal(fast_vs_slow(taken[i]), 1);
    static const char *declined[] = {
        "", "{}", "[]", "{\"flagKey\":\"\xc3\"}", "{\"flagKey\":\"\\ud800\"}", "{\"flagKey\":null}",
        "{\"flagKey\":1}", "{\"flagKey\":\"f\",\"flag_key\":\"g\"}", "{\"flagKey\":\"f\",\"flagKey\":\"g\"}",
        "{\"other\":\"x\"}", "{\"context\":{\"a\":null}}", "{\"context\":{\"a\":1}}", "{\"context\":[]}",
        "{\"flagKey\":\"f\"} x", "{\"flagKey\":\"f\",}", "{\"flagKey\":\"f\"", "{\"flagKey\" \"f\"}",
        "{\"context\":{\"a\":\"1\",}}", "{\"context\":{\"a\":\"1\"}", "{\"flagKey\":\"f\x01\"}",
    };
    for (size_t i = 0; i < sizeof(declined) / sizeof(declined[0]); i++)
        assert_int_equal(fast_vs_slow(declined[i]), 0);
    /* every prefix and every one-byte change of a full body: whatever is taken matches the slow way */
    const char *base = taken[0];
    char buf[256];
    size_t len = strlen(base);
    for (size_t cut = 0; cut <= len; cut++) {
        memcpy(buf, base, cut);
        buf[cut] = '\0';
        fast_vs_slow(buf);
    }
    static const char swaps[] = "\"{}[]:, \\\n0a\x7f";
    for (size_t i = 0; i < len; i++)
        for (const char *c = swaps; *c; c++) {
            memcpy(buf, base, len + 1);
            buf[i] = *c;
            ef_json_error e;
            ef_arena a;
            ef_arena_init(&a, 1024);
            bool valid = ef_json_parse(buf, len, &a, NULL, &e) != NULL;
            ef_arena_free(&a);
            if (!valid) { /* an invalid body is never taken */
                ef_arena_init(&a, 1024);
                ef_eval_input in;
                assert_int_equal(ef_eval_input_fast((ef_bytes){buf, len}, &a, &in), 0);
                ef_arena_free(&a);
            } else {
                fast_vs_slow(buf);
            }
        }
}

static void test_bodies(void **state)
{
    ef_snapshot *s = snap_from_json(
        "{\"namespace\":{\"key\":\"default\"},\"flags\":["
        "{\"key\":\"v\",\"name\":\"v\",\"enabled\":true,\"rules\":[{\"segmentOperator\":\"OR_SEGMENT_OPERATOR\","
        "\"segments\":[{\"key\":\"all\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":[]}],"
        "\"distributions\":[{\"variantKey\":\"on\",\"rollout\":100,\"variantAttachment\":\"{\\\"x\\\":1}\"}]}]},"
        "{\"key\":\"b\",\"name\":\"b\",\"enabled\":true,\"type\":\"BOOLEAN_FLAG_TYPE\"}]}");
    ef_eval_timing t = {.duration_ns = 250000, .timestamp_ns = 1700000000123456000LL};
    ef_buf b;
    ef_buf_init(&b);
    ef_eval_request q = req_of("v", "e", NULL, 0);
    ef_variant_result vr;
    assert_int_equal(ef_eval_variant(s, &q, &vr), EF_EVAL_OK);
    ef_write_variant_response(&b, &vr, EF_BYTES_LIT("rid"), &t);
    assert_string_equal(b.data,
                        "{\"match\":true,\"segmentKeys\":[\"all\"],\"reason\":\"MATCH_EVALUATION_REASON\","
                        "\"variantKey\":\"on\",\"variantAttachment\":\"{\\\"x\\\":1}\",\"requestId\":\"rid\","
                        "\"requestDurationMillis\":0.25,\"timestamp\":\"2023-11-14T22:13:20.123456Z\","
                        "\"flagKey\":\"v\"}");
    ef_buf_clear(&b);
    ef_boolean_result br;
    q = req_of("b", "e", NULL, 0);
    assert_int_equal(ef_eval_boolean(s, &q, &br), EF_EVAL_OK);
    ef_write_batch_boolean(&b, &br, EF_BYTES_LIT(""), &t);
    assert_string_equal(b.data,
                        "{\"type\":\"BOOLEAN_EVALUATION_RESPONSE_TYPE\",\"booleanResponse\":{\"enabled\":true,"
                        "\"reason\":\"DEFAULT_EVALUATION_REASON\",\"requestId\":\"\",\"requestDurationMillis\":0.25,"
                        "\"timestamp\":\"2023-11-14T22:13:20.123456Z\",\"flagKey\":\"b\",\"segmentKeys\":[]}}");
    ef_buf_clear(&b);
    ef_write_eval_error(&b, EF_EVAL_NOT_FOUND, EF_BYTES_LIT("default"), EF_BYTES_LIT("x\"y"), s);
    assert_string_equal(b.data, "{\"code\":5,\"message\":\"flag \\\"default/x\\\"y\\\" not found\",\"details\":[]}");
    ef_buf_clear(&b);
    ef_write_eval_error(&b, EF_EVAL_WRONG_TYPE, EF_BYTES_LIT("default"), EF_BYTES_LIT("b"), s);
    assert_string_equal(b.data, "{\"code\":3,\"message\":\"flag type BOOLEAN_FLAG_TYPE invalid\",\"details\":[]}");
    ef_buf_clear(&b);
    ef_write_batch_not_found(&b, EF_BYTES_LIT("x"), EF_BYTES_LIT("ns"));
    assert_string_equal(b.data, "{\"type\":\"ERROR_EVALUATION_RESPONSE_TYPE\",\"errorResponse\":{\"flagKey\":\"x\","
                                "\"namespaceKey\":\"ns\",\"reason\":\"NOT_FOUND_ERROR_EVALUATION_REASON\"}}");
    ef_buf_free(&b);
    ef_snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_fast_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
