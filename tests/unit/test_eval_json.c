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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
