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

/* Every key of the body's context, looked up in the request's block, answers the last string
 * value of that key in the JSON object: the block's index and the hash a lookup uses agree. */
static void lookups_match(const char *text, size_t len, const ef_eval_request *req)
{
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_json_error e;
    const ef_json *ctx = ef_json_get(ef_json_parse(text, len, &a, NULL, &e), "context");
    for (const ef_json *c = ctx && ctx->type == EF_JSON_OBJECT ? ctx->child : NULL; c; c = c->next) {
        ef_bytes want = {"", 0};
        for (const ef_json *d = ctx->child; d; d = d->next)
            if (d->type == EF_JSON_STRING && ef_bytes_eq(d->key, c->key)) want = d->str;
        ef_bytes got = ef_context_find(req->context, c->key, ef_context_hash(c->key.p, c->key.n));
        if (!ef_bytes_eq(got, want))
            fail_msg("key \"%.*s\": got \"%.*s\", want \"%.*s\" in %.*s", (int)c->key.n, c->key.p,
                     (int)got.n, got.p, (int)want.n, want.p, (int)len, text);
    }
    assert_false(ef_context_find(req->context, EF_BYTES_LIT("no such key"),
                                 ef_context_hash("no such key", 11)).n);
    ef_arena_free(&a);
}

/* fast_vs_slow on len bytes (a body need not end in a NUL: the copy in the heap has nothing after
 * it, so that ASan sees any read past its end). */
static int fast_vs_slow_n(const char *text, size_t len)
{
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_eval_input fast, slow;
    char err[200];
    char *body = malloc(len ? len : 1);
    assert_non_null(body);
    memcpy(body, text, len);
    int took = ef_eval_input_fast((ef_bytes){body, len}, &a, &fast);
    if (took) {
        ef_json_error e;
        ef_json *v = ef_json_parse(body, len, &a, NULL, &e);
        assert_non_null(v);
        assert_int_equal(ef_eval_input_decode(v, &a, &slow, err, sizeof(err)), 0);
        same_input(&fast, &slow);
        lookups_match(body, len, &fast.req);
    }
    free(body);
    ef_arena_free(&a);
    return took;
}

static int fast_vs_slow(const char *text)
{
    return fast_vs_slow_n(text, strlen(text));
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
    /* every spelling of every field (the fast path finds a name by its length first) */
    static const char *names[] = {"requestId", "request_id", "namespaceKey", "namespace_key", "flagKey",
                                  "flag_key", "entityId", "entity_id", "reference"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char body[64];
        snprintf(body, sizeof(body), "{\"%s\":\"x\",\"context\":{\"k\":\"v\"}}", names[i]);
        assert_int_equal(fast_vs_slow(body), 1);
        snprintf(body, sizeof(body), "{\"%s\":\"x\"}", names[i]);
        assert_int_equal(fast_vs_slow(body), 1);
    }
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

/* Each shape, a body format with two %s, filled with a and b, must be taken by the fast decoder
 * and decoded as the tree decoder decodes it. */
static void expect_taken(const char *const *shapes, size_t n, const char *a, const char *b)
{
    char body[512];
    for (size_t sh = 0; sh < n; sh++) {
        int len = snprintf(body, sizeof(body), shapes[sh], a, b);
        if (fast_vs_slow_n(body, (size_t)len) != 1) fail_msg("not taken: %s", body);
    }
}

/* The one-pass decoder reads strings 16 bytes at a time, members whose key and value end within
 * 32 bytes without a loop, and the body's last bytes from a copy: keys and values of every length
 * around those sizes, at every distance from the body's end, plain and with an escape at every
 * place, are all taken, and decode as the tree does. A body cut anywhere is never taken. */
static void test_fast_decode_lengths(void **state)
{
    (void)state;
    char key[64], value[64], body[512];
    for (size_t kn = 0; kn <= 40; kn++)
        for (size_t vn = 0; vn <= 40; vn++) {
            for (size_t i = 0; i < kn; i++) key[i] = (char)('a' + (i * 7 + kn) % 26);
            for (size_t i = 0; i < vn; i++) value[i] = (char)('A' + (i * 5 + vn) % 26);
            key[kn] = value[vn] = '\0';
            /* the member first, in the middle (long bodies), last (read near the end), alone */
            const char *shapes[] = {
                "{\"context\":{\"%s\":\"%s\",\"k\":\"v\"},\"flagKey\":\"flag\"}",
                "{\"flagKey\":\"a-flag-key-of-some-length\",\"context\":{\"country\":\"de\",\"%s\":\"%s\","
                "\"plan\":\"gold\"},\"entityId\":\"user-1\"}",
                "{\"entityId\":\"e\",\"context\":{\"%s\":\"%s\"}}",
                "{\"context\":{\"%s\":\"%s\"}}",
            };
            expect_taken(shapes, sizeof(shapes) / sizeof(shapes[0]), key, value);
            /* a top-level value of that length, and a name of that length (not a field: declined) */
            int len = snprintf(body, sizeof(body), "{\"flagKey\":\"%s\",\"entityId\":\"%s\"}", value, key);
            if (fast_vs_slow_n(body, (size_t)len) != 1) fail_msg("not taken: %s", body);
            len = snprintf(body, sizeof(body), "{\"%s\":\"%s\"}", key, value);
            assert_int_equal(fast_vs_slow_n(body, (size_t)len), 0);
        }
    /* every prefix of bodies whose strings end around a block's end: never taken */
    const char *whole[] = {
        "{\"context\":{\"0123456789abcde\":\"0123456789abcdef\",\"0123456789abcdef\":\"0123456789abcdefg\"}}",
        "{\"flagKey\":\"0123456789abcdefghijklmnopqrstu\",\"context\":{\"k\":\"a\\\"b\\\\c\"}}",
    };
    for (size_t w = 0; w < sizeof(whole) / sizeof(whole[0]); w++) {
        size_t n = strlen(whole[w]);
        assert_int_equal(fast_vs_slow_n(whole[w], n), 1);
        for (size_t cut = 0; cut < n; cut++) assert_int_equal(fast_vs_slow_n(whole[w], cut), 0);
    }
}

/* Escapes decoded in the one pass (\" \\ \/ \b \f \n \r \t) and those left to the JSON reader (\u,
 * and UTF-8 bytes), at every place in strings of 1 to 40 bytes: in a key, in a value and in a
 * top-level value; so an escape falls on every byte of a block, and on a block's last byte with
 * its letter in the next one. */
static void test_fast_decode_escapes(void **state)
{
    (void)state;
    static const char *escapes[] = {"\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u00e9",
                                    "\\ud83d\\ude00", "\\u0000", "\xc3\xa9", "\xf0\x9f\x98\x80"};
    char s[80];
    for (size_t e = 0; e < sizeof(escapes) / sizeof(escapes[0]); e++)
        for (size_t n = 1; n <= 40; n++)
            for (size_t at = 0; at <= n; at++) {
                size_t el = strlen(escapes[e]);
                for (size_t i = 0; i < at; i++) s[i] = (char)('a' + i % 26);
                memcpy(s + at, escapes[e], el);
                for (size_t i = at; i < n; i++) s[el + i] = (char)('A' + i % 26);
                s[n + el] = '\0';
                const char *shapes[] = {
                    "{\"context\":{\"%s\":\"v\",\"x\":\"%s\"},\"flagKey\":\"f\"}",
                    "{\"flagKey\":\"%s\",\"context\":{\"plan\":\"%s\"}}",
                    "{\"context\":{\"k\":\"%s\",\"%s\":\"y\"}}",
                };
                expect_taken(shapes, sizeof(shapes) / sizeof(shapes[0]), s, s);
            }
    /* what no JSON string holds: an unknown escape, a control byte, a lone surrogate, bad UTF-8,
     * a backslash as the body's last byte */
    static const char *bad[] = {"{\"flagKey\":\"a\\x\"}", "{\"flagKey\":\"a\tb\"}", "{\"context\":{\"k\":\"\\udc00\"}}",
                                "{\"context\":{\"k\":\"\xc3(\"}}", "{\"context\":{\"0123456789abcdef\":\"\\"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) assert_int_equal(fast_vs_slow(bad[i]), 0);
}

/* A context of more keys than the block indexes as it reads (ef_request_put), with repeats: the
 * index is built again at the end, and lookups find the last value of each key. */
static void test_fast_decode_many(void **state)
{
    (void)state;
    char body[8192];
    for (int keys = 0; keys <= 70; keys++) {
        int len = snprintf(body, sizeof(body), "{\"flagKey\":\"f\",\"context\":{");
        for (int i = 0; i < keys; i++)
            len += snprintf(body + len, sizeof(body) - (size_t)len, "%s\"key%d\":\"value%d\"", i ? "," : "",
                            i % 23, i);
        len += snprintf(body + len, sizeof(body) - (size_t)len, "}}");
        if (fast_vs_slow_n(body, (size_t)len) != 1) fail_msg("not taken: %s", body);
    }
    /* the shortest pairs ("":"", 6 bytes with a ','): the block, sized by the body's length, has
     * room for all of them up to the most a block indexes; one more is the slow path's */
    for (int pairs = 1; pairs <= EF_CONTEXT_INDEXED + 1; pairs++) {
        int len = snprintf(body, sizeof(body), "{\"context\":{");
        for (int i = 0; i < pairs; i++) len += snprintf(body + len, sizeof(body) - (size_t)len, "%s\"\":\"\"", i ? "," : "");
        len += snprintf(body + len, sizeof(body) - (size_t)len, "}}");
        assert_int_equal(fast_vs_slow_n(body, (size_t)len), pairs <= EF_CONTEXT_INDEXED);
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
        cmocka_unit_test(test_fast_decode_lengths),
        cmocka_unit_test(test_fast_decode_escapes),
        cmocka_unit_test(test_fast_decode_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
