/*
 * test_eval.c - the evaluation engine: every constraint type and operator, segment match types,
 * AND/OR rules, default variants, disabled flags, bucketing vectors, and odd inputs (NUL bytes,
 * non-ASCII, empty strings, i32 bounds, dates with offsets and fractions).
 */
#include <zlib.h>

#include "snap_helper.h"
#include "base/clock.h"
#include "eval/model.h"

/* Does a single constraint match? Built as a boolean flag whose one segment rollout holds it.
 * json_value is the constraint's value as JSON string content (already escaped). ctx may be NULL
 * (property absent). */
static bool probe_entity(const char *type, const char *op, const char *json_value, ef_bytes ctx,
                         bool have_ctx, ef_bytes entity)
{
    char doc[2048];
    snprintf(doc, sizeof(doc),
             "{\"namespace\":{\"key\":\"default\"},\"flags\":[{\"key\":\"f\",\"name\":\"f\",\"enabled\":false,"
             "\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"segment\":{\"value\":true,\"segments\":[{\"key\":\"s\","
             "\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":[{\"type\":\"%s_CONSTRAINT_COMPARISON_TYPE\","
             "\"property\":\"p\",\"operator\":\"%s\",\"value\":\"%s\"}]}]}}]}]}",
             type, op, json_value);
    ef_snapshot *s = snap_from_json(doc);
    ef_kv kv = {EF_BYTES_LIT("p"), ctx};
    ef_eval_request r = req_of_bytes(EF_BYTES_LIT("f"), entity, &kv, have_ctx ? 1 : 0);
    ef_boolean_result res;
    assert_int_equal(ef_eval_boolean(s, &r, &res), EF_EVAL_OK);
    bool m = res.reason == EF_REASON_MATCH;
    if (m) assert_true(res.enabled);
    ef_snapshot_free(s);
    return m;
}

static bool probe(const char *type, const char *op, const char *json_value, const char *ctx)
{
    return probe_entity(type, op, json_value, ctx ? ef_bytes_of(ctx) : EF_BYTES_LIT(""), ctx != NULL,
                        EF_BYTES_LIT("entity"));
}

typedef struct {
    const char *op, *value, *ctx; /* ctx NULL = property missing */
    bool want;
} row;

static void run_rows(const char *type, const row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool got = probe(type, rows[i].op, rows[i].value, rows[i].ctx);
        if (got != rows[i].want)
            fail_msg("%s %s \"%s\" against %s%s%s: got %d want %d", type, rows[i].op, rows[i].value,
                     rows[i].ctx ? "\"" : "", rows[i].ctx ? rows[i].ctx : "(missing)",
                     rows[i].ctx ? "\"" : "", got, rows[i].want);
    }
}

static void test_string_operators(void **state)
{
    static const row rows[] = {
        {"eq", "us", "us", true},          {"eq", "us", "US", false},
        {"eq", "us", " us", false},        {"neq", "us", "uk", true},
        {"neq", "us", "us", false},        {"neq", "us", NULL, false}, /* missing: false */
        {"neq", "us", "", false},          {"empty", "", "", true},
        {"empty", "", NULL, true},         {"empty", "", " ", false},  /* untrimmed */
        {"notempty", "", " ", true},       {"notempty", "", "", false},
        {"prefix", "pro", "pro-plus", true}, {"prefix", "pro", " pro", false},
        {"prefix", "", "x", true},         {"prefix", "", "", false},
        {"suffix", "@example.com", "a@example.com", true}, {"suffix", "com", "co", false},
        {"contains", "amp", "example", true}, {"contains", "z", "example", false},
        {"contains", "", "a", true},       {"notcontains", "z", "example", true},
        {"notcontains", "amp", "example", false}, {"notcontains", "x", "", false},
        {"isoneof", "[\\\"de\\\",\\\"fr\\\"]", "fr", true}, {"isoneof", "[\\\"de\\\",\\\"fr\\\"]", "it", false},
        {"isnotoneof", "[\\\"de\\\",\\\"fr\\\"]", "it", true}, {"isnotoneof", "[\\\"de\\\",\\\"fr\\\"]", "de", false},
        {"isnotoneof", "[\\\"de\\\"]", NULL, false},
        /* any escape in the list makes it invalid: isoneof false, isnotoneof true */
        {"isoneof", "[\\\"a\\\\\\\"b\\\"]", "a\"b", false}, {"isnotoneof", "[\\\"a\\\\\\\"b\\\"]", "a\"b", true},
        {"isoneof", "de,fr", "de", false}, {"isnotoneof", "de,fr", "de", true},
        {"isoneof", "[\\\"de\\\",]", "de", false}, {"isoneof", " [ \\\"de\\\" ] ", "de", true},
        {"isoneof", "[]", "de", false},    {"isnotoneof", "[]", "de", true},
        {"isoneof", "[\\\"ünï\\\"]", "ünï", true},
        {"EQ", "us", "us", false},         {"lt", "b", "a", false}, /* unsupported: false */
    };
    run_rows("STRING", rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_number_operators(void **state)
{
    static const row rows[] = {
        {"eq", "18", "18", true},      {"eq", "18", "+18", true},    {"eq", "18", "018", true},
        {"eq", "0", "-0", true},       {"eq", "18", "18.0", false},  {"eq", "100", "1e2", false},
        {"eq", "5", " 5", false},      {"eq", "5", "5 ", false},     {"eq", "5", "abc", false},
        {"neq", "5", "6", true},       {"neq", "5", "abc", false},   {"neq", "5", NULL, false},
        {"lt", "10", "9", true},       {"lt", "10", "10", false},    {"lte", "10", "10", true},
        {"gt", "10", "11", true},      {"gt", "10", "10", false},    {"gte", "10", "10", true},
        {"present", "", "abc", true},  {"present", "", "", false},   {"notpresent", "", NULL, true},
        {"notpresent", "", "1", false},
        /* 32-bit bounds */
        {"eq", "2147483647", "2147483647", true}, {"gt", "2147483646", "2147483648", false},
        {"eq", "-2147483648", "-2147483648", true}, {"lt", "0", "-2147483649", false},
        {"eq", "2147483648", "2147483648", false}, /* value does not parse */
        {"isoneof", "[1, 2, 3]", "2", true}, {"isoneof", "[1,2]", "3", false},
        {"isnotoneof", "[1,2]", "3", true}, {"isnotoneof", "[1,2]", "2", false},
        {"isoneof", "[1.5]", "1", false},   {"isnotoneof", "[1.5]", "1", false},
        {"isoneof", "[\\\"5\\\"]", "5", false}, {"isnotoneof", "[\\\"5\\\"]", "5", false},
        {"isoneof", "[2147483648]", "1", false}, {"isoneof", "[-0]", "0", false},
        {"isoneof", "[01]", "1", false},   {"isoneof", "[-2147483648]", "-2147483648", true},
        {"prefix", "1", "12", false},
    };
    run_rows("NUMBER", rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_boolean_operators(void **state)
{
    static const row rows[] = {
        {"true", "", "true", true},    {"true", "", "false", false}, {"false", "", "false", true},
        {"false", "", "true", false},  {"true", "", "TRUE", false},  {"false", "", "FALSE", false},
        {"true", "", "1", false},      {"true", "", "", false},      {"present", "", "x", true},
        {"notpresent", "", "", true},  {"notpresent", "", NULL, true}, {"eq", "true", "true", false},
    };
    run_rows("BOOLEAN", rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_datetime_operators(void **state)
{
    static const row rows[] = {
        {"eq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", true},
        {"eq", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", true}, /* offsets honoured */
        {"eq", "2024-01-01T00:00:00Z", "2023-12-31T19:00:00-05:00", true},
        {"eq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.900Z", true}, /* fraction dropped */
        {"eq", "2024-01-01T00:00:00Z", "2024-01-01t00:00:00z", true},
        {"eq", "2024-01-01T00:00:00Z", "2024-01-01 00:00:00Z", true},
        {"eq", "2024-01-01T00:00:00Z", "2024-01-01", false},             /* date only */
        {"eq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00", false},    /* no offset */
        {"eq", "2024-01-01", "2024-01-01T00:00:00Z", false},             /* value date only */
        {"neq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", true},
        {"neq", "2024-01-01T00:00:00Z", "garbage", false},
        {"lt", "2024-01-01T00:00:00Z", "2023-12-31T23:59:59Z", true},
        {"lt", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.999Z", false},
        {"lte", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", true},
        {"gt", "2024-01-01T00:00:00Z", "2024-06-15T12:30:00-07:00", true},
        {"gte", "2024-01-01T00:00:00Z", "2023-01-01T00:00:00Z", false},
        {"eq", "2024-01-01T00:00:00Z", "2024-13-01T00:00:00Z", false},
        {"eq", "2024-01-01T00:00:00Z", "2023-02-29T00:00:00Z", false},
        {"eq", "2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z", true},
        {"eq", "2024-01-01T23:59:59Z", "2024-01-01T23:59:60Z", true}, /* leap second reads as :59 */
        {"eq", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+0100", false},
        {"present", "", "x", true}, {"notpresent", "", "", true},
        {"isoneof", "[]", "2024-01-01T00:00:00Z", false},
    };
    run_rows("DATETIME", rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_entity_id_constraints(void **state)
{
    ef_bytes none = EF_BYTES_LIT("");
    assert_true(probe_entity("ENTITY_ID", "eq", "user-1", none, false, EF_BYTES_LIT("user-1")));
    assert_false(probe_entity("ENTITY_ID", "eq", "user-1", EF_BYTES_LIT("user-1"), true,
                              EF_BYTES_LIT("user-2"))); /* the property is ignored */
    assert_true(probe_entity("ENTITY_ID", "prefix", "svc:", none, false, EF_BYTES_LIT("svc:batch")));
    assert_true(probe_entity("ENTITY_ID", "isoneof", "[\\\"a\\\",\\\"b\\\"]", none, false, EF_BYTES_LIT("b")));
    /* NUL bytes in the entity id are compared by length */
    assert_true(probe_entity("ENTITY_ID", "eq", "u\\u0000v", none, false, (ef_bytes){"u\0v", 3}));
    assert_false(probe_entity("ENTITY_ID", "eq", "u\\u0000v", none, false, (ef_bytes){"u\0w", 3}));
    assert_false(probe_entity("ENTITY_ID", "eq", "u", none, false, (ef_bytes){"u\0", 2}));
}

static void test_odd_bytes(void **state)
{
    assert_true(probe_entity("STRING", "eq", "a\\u0000b", (ef_bytes){"a\0b", 3}, true, EF_BYTES_LIT("e")));
    assert_false(probe_entity("STRING", "eq", "a\\u0000b", (ef_bytes){"a\0c", 3}, true, EF_BYTES_LIT("e")));
    assert_false(probe_entity("STRING", "eq", "a", (ef_bytes){"a\0", 2}, true, EF_BYTES_LIT("e")));
    assert_true(probe_entity("STRING", "suffix", "ü", EF_BYTES_LIT("grüü"), true, EF_BYTES_LIT("e")));
    assert_true(probe_entity("STRING", "contains", "\\u0000", (ef_bytes){"x\0y", 3}, true, EF_BYTES_LIT("e")));
    assert_true(probe("STRING", "eq", "значение", "значение"));
    assert_true(probe("STRING", "empty", "", ""));
}

/* contains scans inline up to 64 bytes of value and calls memmem past that: both sides of the
 * line, the needle at either end, the needle as long as the value, and a first byte that repeats. */
static void test_contains_bounds(void **state)
{
    (void)state;
    char v[66];
    for (size_t n = 63; n <= 65; n++) {
        memset(v, 'a', n);
        v[n] = 0;
        v[n - 1] = 'z';
        ef_bytes value = {v, n};
        assert_true(probe_entity("STRING", "contains", "az", value, true, EF_BYTES_LIT("e")));
        assert_false(probe_entity("STRING", "contains", "za", value, true, EF_BYTES_LIT("e")));
        assert_true(probe_entity("STRING", "notcontains", "zz", value, true, EF_BYTES_LIT("e")));
        v[0] = 'y';
        assert_true(probe_entity("STRING", "contains", "ya", value, true, EF_BYTES_LIT("e")));
        assert_false(probe_entity("STRING", "contains", "ay", value, true, EF_BYTES_LIT("e")));
    }
    assert_true(probe_entity("STRING", "contains", "abc", EF_BYTES_LIT("abc"), true, EF_BYTES_LIT("e")));
    assert_false(probe_entity("STRING", "contains", "abcd", EF_BYTES_LIT("abc"), true, EF_BYTES_LIT("e")));
    assert_true(probe_entity("STRING", "contains", "aab", EF_BYTES_LIT("aaab"), true, EF_BYTES_LIT("e")));
    assert_true(probe_entity("ENTITY_ID", "contains", "r-4", EF_BYTES_LIT(""), false, EF_BYTES_LIT("user-42")));
}

static const char *const segments_doc =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"v\",\"name\":\"v\",\"enabled\":true,\"type\":\"VARIANT_FLAG_TYPE\",\"rules\":["
    " {\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"segments\":["
    "   {\"key\":\"de\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":["
    "     {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"country\",\"operator\":\"eq\",\"value\":\"de\"},"
    "     {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"plan\",\"operator\":\"eq\",\"value\":\"pro\"}]},"
    "   {\"key\":\"adult\",\"matchType\":\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":["
    "     {\"type\":\"NUMBER_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"age\",\"operator\":\"gte\",\"value\":\"18\"},"
    "     {\"type\":\"BOOLEAN_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"verified\",\"operator\":\"true\",\"value\":\"\"}]}],"
    "  \"distributions\":[{\"variantKey\":\"and\",\"rollout\":100,\"variantAttachment\":\"{\\\"a\\\":1}\"}]},"
    " {\"segmentOperator\":\"OR_SEGMENT_OPERATOR\",\"segments\":["
    "   {\"key\":\"de\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":["
    "     {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"country\",\"operator\":\"eq\",\"value\":\"de\"}]},"
    "   {\"key\":\"fr\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":["
    "     {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"country\",\"operator\":\"eq\",\"value\":\"fr\"}]}],"
    "  \"distributions\":[{\"variantKey\":\"or\",\"rollout\":100}]},"
    " {\"segmentOperator\":\"OR_SEGMENT_OPERATOR\",\"segments\":[],\"distributions\":[{\"variantKey\":\"never\",\"rollout\":100}]}"
    "],\"defaultVariant\":{\"id\":\"1\",\"key\":\"fallback\",\"attachment\":\"{}\"}},"
    "{\"key\":\"off\",\"name\":\"off\",\"enabled\":false,\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\","
    " \"distributions\":[{\"variantKey\":\"x\",\"rollout\":100}]}],\"defaultVariant\":{\"id\":\"2\",\"key\":\"dv\"}},"
    "{\"key\":\"plain\",\"name\":\"plain\",\"enabled\":true,\"rules\":[]},"
    "{\"key\":\"b\",\"name\":\"b\",\"enabled\":true,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[]}"
    "]}";

static void test_rules_and_or_default(void **state)
{
    ef_snapshot *s = snap_from_json(segments_doc);
    ef_variant_result r;
    ef_kv all[] = {KV("country", "de"), KV("plan", "pro"), KV("age", "20")};
    ef_eval_request q = req_of("v", "e", all, 3);
    assert_int_equal(ef_eval_variant(s, &q, &r), EF_EVAL_OK);
    assert_true(r.match);
    assert_int_equal(r.reason, EF_REASON_MATCH);
    assert_bytes(r.variant_key, "and");
    assert_bytes(r.attachment, "{\"a\":1}");
    assert_int_equal(ef_matched_count(&r.segments), 2);

    /* AND fails (not adult), OR passes with just "de" */
    ef_kv de[] = {KV("country", "de"), KV("plan", "pro"), KV("age", "10")};
    q = req_of("v", "e", de, 3);
    ef_eval_variant(s, &q, &r);
    assert_bytes(r.variant_key, "or");
    assert_int_equal(ef_matched_count(&r.segments), 1);
    assert_bytes(ef_matched_key(&r.segments, ef_matched_next(&r.segments, 0)), "de");
    assert_false(r.has_attachment);

    /* nothing matches: default variant, reason DEFAULT, no match */
    ef_kv it[] = {KV("country", "it")};
    q = req_of("v", "e", it, 1);
    ef_eval_variant(s, &q, &r);
    assert_false(r.match);
    assert_int_equal(r.reason, EF_REASON_DEFAULT);
    assert_bytes(r.variant_key, "fallback");
    assert_bytes(r.attachment, "{}");
    assert_int_equal(ef_matched_count(&r.segments), 0);

    /* disabled flag keeps the default variant, reason FLAG_DISABLED */
    q = req_of("off", "e", NULL, 0);
    ef_eval_variant(s, &q, &r);
    assert_false(r.match);
    assert_int_equal(r.reason, EF_REASON_FLAG_DISABLED);
    assert_bytes(r.variant_key, "dv");

    /* no rules, no default: UNKNOWN */
    q = req_of("plain", "e", NULL, 0);
    ef_eval_variant(s, &q, &r);
    assert_int_equal(r.reason, EF_REASON_UNKNOWN);
    assert_bytes(r.variant_key, "");

    /* errors */
    q = req_of("b", "e", NULL, 0);
    assert_int_equal(ef_eval_variant(s, &q, &r), EF_EVAL_WRONG_TYPE);
    ef_boolean_result br;
    q = req_of("v", "e", NULL, 0);
    assert_int_equal(ef_eval_boolean(s, &q, &br), EF_EVAL_WRONG_TYPE);
    q = req_of("missing", "e", NULL, 0);
    assert_int_equal(ef_eval_variant(s, &q, &r), EF_EVAL_NOT_FOUND);
    q = req_of("V", "e", NULL, 0); /* keys are case-sensitive */
    assert_int_equal(ef_eval_variant(s, &q, &r), EF_EVAL_NOT_FOUND);
    ef_snapshot_free(s);
}

static void test_segment_match_types(void **state)
{
    /* ANY with an unknown constraint type after a match short-circuits; ALL hits it and fails;
     * zero constraints always match; an unknown match type reads as ANY. */
    const char *doc =
        "{\"namespace\":{\"key\":\"default\"},\"flags\":["
        "{\"key\":\"any\",\"name\":\"x\",\"enabled\":true,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"segment\":{\"value\":true,\"segments\":["
        " {\"key\":\"s\",\"matchType\":\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":["
        "  {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"},"
        "  {\"type\":\"WEIRD\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"}]}]}}]},"
        "{\"key\":\"all\",\"name\":\"x\",\"enabled\":true,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"segment\":{\"value\":false,\"segments\":["
        " {\"key\":\"s\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":["
        "  {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"},"
        "  {\"type\":\"WEIRD\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"}]}]}}]},"
        "{\"key\":\"empty\",\"name\":\"x\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"segment\":{\"value\":true,\"segments\":["
        " {\"key\":\"s\",\"matchType\":\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":[]}]}}]},"
        "{\"key\":\"weird\",\"name\":\"x\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"segment\":{\"value\":true,\"segments\":["
        " {\"key\":\"s\",\"matchType\":\"NOPE\",\"constraints\":["
        "  {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"xx\"},"
        "  {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"}]}]}}]},"
        /* an unknown type first: reached before the match, so the segment fails */
        "{\"key\":\"unknownfirst\",\"name\":\"x\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"segment\":{\"value\":true,\"segments\":["
        " {\"key\":\"s\",\"matchType\":\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":["
        "  {\"type\":\"WEIRD\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"},"
        "  {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"}]}]}}]},"
        /* constraints tested cheapest first (compile.c): the answers are the written order's */
        "{\"key\":\"mixed\",\"name\":\"x\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"segment\":{\"value\":true,\"segments\":["
        " {\"key\":\"s\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":["
        "  {\"type\":\"DATETIME_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"t\",\"operator\":\"gt\",\"value\":\"2020-01-01T00:00:00Z\"},"
        "  {\"type\":\"NUMBER_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"n\",\"operator\":\"gt\",\"value\":\"5\"},"
        "  {\"type\":\"ENTITY_ID_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"\",\"operator\":\"prefix\",\"value\":\"u\"},"
        "  {\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"}]}]}}]}"
        "]}";
    ef_snapshot *s = snap_from_json(doc);
    ef_kv de[] = {KV("c", "de")};
    ef_boolean_result r;
    ef_eval_request q = req_of("any", "e", de, 1);
    ef_eval_boolean(s, &q, &r);
    assert_int_equal(r.reason, EF_REASON_MATCH);
    q = req_of("all", "e", de, 1);
    ef_eval_boolean(s, &q, &r);
    assert_int_equal(r.reason, EF_REASON_DEFAULT);
    assert_true(r.enabled); /* the flag's own enabled value */
    q = req_of("empty", "e", NULL, 0);
    ef_eval_boolean(s, &q, &r);
    assert_int_equal(r.reason, EF_REASON_MATCH);
    assert_true(r.enabled); /* rollouts run even on a disabled boolean flag */
    q = req_of("weird", "e", de, 1);
    ef_eval_boolean(s, &q, &r);
    assert_int_equal(r.reason, EF_REASON_MATCH);
    q = req_of("unknownfirst", "e", de, 1);
    ef_eval_boolean(s, &q, &r);
    assert_int_equal(r.reason, EF_REASON_DEFAULT);
    ef_kv all[] = {KV("t", "2024-05-01T00:00:00Z"), KV("n", "7"), KV("c", "de")};
    static const struct {
        const char *entity;
        int drop; /* the context key left out (-1: none) or made not to match */
        bool match;
    } mixed[] = {{"u1", -1, true}, {"x1", -1, false}, {"u1", 0, false}, {"u1", 1, false}, {"u1", 2, false}};
    for (size_t i = 0; i < sizeof(mixed) / sizeof(mixed[0]); i++) {
        ef_kv ctx[3];
        memcpy(ctx, all, sizeof(all));
        if (mixed[i].drop == 0) ctx[0] = KV("t", "2019-05-01T00:00:00Z");
        if (mixed[i].drop == 1) ctx[1] = KV("n", "5");
        if (mixed[i].drop == 2) ctx[2] = KV("c", "en");
        q = req_of("mixed", mixed[i].entity, ctx, 3);
        ef_eval_boolean(s, &q, &r);
        assert_int_equal(r.reason, mixed[i].match ? EF_REASON_MATCH : EF_REASON_DEFAULT);
    }
    ef_snapshot_free(s);
}

/* Constraints that can never match (an operator the type lacks, a number that does not parse) are
 * decided at compile time (compile.c's segment_finish: an ALL segment holding one tests nothing, an
 * ANY segment skips them; set_finish: an AND set with such a segment fails, an OR set drops it):
 * the answers and reported segments stay those of testing each in the written order. */
static void test_never_constraints(void **state)
{
#define NEVER_NUM "{\"type\":\"NUMBER_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"n\",\"operator\":\"eq\",\"value\":\"abc\"}"
#define NEVER_OP "{\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"c\",\"operator\":\"lt\",\"value\":\"de\"}"
#define C_DE "{\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"}"
#define WEIRD "{\"type\":\"WEIRD\",\"property\":\"c\",\"operator\":\"eq\",\"value\":\"de\"}"
#define ONE(key, match, cons) \
    "{\"key\":\"" key "\",\"name\":\"x\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"segment\":{\"value\":true,\"segments\":[" \
    " {\"key\":\"s\",\"matchType\":\"" match "_SEGMENT_MATCH_TYPE\",\"constraints\":[" cons "]}]}}]}"
    const char *doc = "{\"namespace\":{\"key\":\"default\"},\"flags\":["
        ONE("all_never_first", "ALL", NEVER_NUM "," C_DE) ","
        ONE("all_never_last", "ALL", C_DE "," NEVER_OP) ","
        ONE("all_live", "ALL", C_DE) ","
        ONE("any_never_only", "ANY", NEVER_NUM "," NEVER_OP) ","
        ONE("any_never_first", "ANY", NEVER_NUM "," C_DE) ","
        ONE("any_never_weird", "ANY", NEVER_NUM "," WEIRD "," C_DE) ","
        ONE("any_de_weird_never", "ANY", C_DE "," WEIRD "," NEVER_NUM) ","
        "{\"key\":\"v\",\"name\":\"x\",\"enabled\":true,\"rules\":[{\"segmentOperator\":\"OR_SEGMENT_OPERATOR\",\"segments\":["
        " {\"key\":\"a\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":[" NEVER_OP "]},"
        " {\"key\":\"b\",\"matchType\":\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":[" NEVER_OP "," C_DE "]},"
        " {\"key\":\"c\",\"matchType\":\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":[" NEVER_NUM "]}],"
        " \"distributions\":[]}]},"
        /* an AND rule with a segment that never matches never matches: the next rule answers */
        "{\"key\":\"w\",\"name\":\"x\",\"enabled\":true,\"rules\":["
        " {\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"segments\":["
        "  {\"key\":\"b\",\"matchType\":\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":[" C_DE "]},"
        "  {\"key\":\"a\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":[" C_DE "," NEVER_NUM "]}],"
        "  \"distributions\":[{\"variantKey\":\"first\",\"rollout\":100}]},"
        " {\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"segments\":["
        "  {\"key\":\"b\",\"matchType\":\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":[" C_DE "]}],"
        "  \"distributions\":[{\"variantKey\":\"second\",\"rollout\":100}]}]}"
        "]}";
#undef ONE
    ef_snapshot *s = snap_from_json(doc);
    static const struct {
        const char *flag;
        bool de, en; /* matches with c=de, with c=en */
    } want[] = {
        {"all_never_first", false, false}, {"all_never_last", false, false}, {"all_live", true, false},
        {"any_never_only", false, false},  {"any_never_first", true, false},
        {"any_never_weird", false, false}, /* the unknown type is reached before the match */
        {"any_de_weird_never", true, false},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        for (int en = 0; en < 2; en++) {
            ef_kv ctx[] = {en ? KV("c", "en") : KV("c", "de"), KV("n", "1")};
            ef_eval_request q = req_of(want[i].flag, "e", ctx, 2);
            ef_boolean_result r;
            assert_int_equal(ef_eval_boolean(s, &q, &r), EF_EVAL_OK);
            if (r.reason != ((en ? want[i].en : want[i].de) ? EF_REASON_MATCH : EF_REASON_DEFAULT))
                fail_msg("%s with c=%s: reason %d", want[i].flag, en ? "en" : "de", (int)r.reason);
        }
    }
    /* an OR rule reports the segments that matched: only b, whose never-matching constraint was skipped */
    ef_kv de[] = {KV("c", "de")};
    ef_eval_request q = req_of("v", "e", de, 1);
    ef_variant_result vr;
    assert_int_equal(ef_eval_variant(s, &q, &vr), EF_EVAL_OK);
    assert_true(vr.match);
    int m = ef_matched_next(&vr.segments, 0);
    assert_true(m >= 0);
    assert_true(ef_bytes_eq(ef_matched_key(&vr.segments, m), EF_BYTES_LIT("b")));
    assert_int_equal(ef_matched_next(&vr.segments, m + 1), -1);
    ef_kv en[] = {KV("c", "en")};
    q = req_of("v", "e", en, 1);
    assert_int_equal(ef_eval_variant(s, &q, &vr), EF_EVAL_OK);
    assert_false(vr.match);
    q = req_of("w", "e", de, 1);
    assert_int_equal(ef_eval_variant(s, &q, &vr), EF_EVAL_OK);
    assert_true(vr.match);
    assert_bytes(vr.variant_key, "second");
    m = ef_matched_next(&vr.segments, 0);
    assert_true(m >= 0 && ef_bytes_eq(ef_matched_key(&vr.segments, m), EF_BYTES_LIT("b")));
    assert_int_equal(ef_matched_next(&vr.segments, m + 1), -1);
    ef_snapshot_free(s);
#undef NEVER_NUM
#undef NEVER_OP
#undef C_DE
#undef WEIRD
}

/* flipt-v1.md 3.6, recomputed for the engine's normalised boundaries (a 50/50 split gives the
 * same 500/1000 boundaries either way). */
static void test_bucketing_vectors(void **state)
{
    const char *doc =
        "{\"namespace\":{\"key\":\"default\"},\"flags\":["
        "{\"key\":\"foo\",\"name\":\"x\",\"enabled\":true,\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"distributions\":["
        " {\"variantKey\":\"boz\",\"rollout\":50},{\"variantKey\":\"booz\",\"rollout\":50}]}]},"
        "{\"key\":\"half\",\"name\":\"x\",\"enabled\":true,\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"distributions\":["
        " {\"variantKey\":\"a\",\"rollout\":25},{\"variantKey\":\"b\",\"rollout\":25}]}]},"
        "{\"key\":\"test-flag\",\"name\":\"x\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"threshold\":{\"percentage\":70,\"value\":true}}]},"
        "{\"key\":\"test-flag5\",\"name\":\"x\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"threshold\":{\"percentage\":5,\"value\":true}}]},"
        "{\"key\":\"flag_boolean\",\"name\":\"x\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[{\"threshold\":{\"percentage\":50,\"value\":true}}]}"
        "]}";
    ef_snapshot *s = snap_from_json(doc);
    ef_variant_result v;
    ef_eval_request q = req_of("foo", "1", NULL, 0); /* crc32("foo1") % 1000 = 244 */
    ef_eval_variant(s, &q, &v);
    assert_bytes(v.variant_key, "boz");
    q = req_of("foo", "2", NULL, 0); /* 934 */
    ef_eval_variant(s, &q, &v);
    assert_bytes(v.variant_key, "booz");
    /* rollouts summing to 50 are normalised: still always a variant (Flipt's Go server differs) */
    q = req_of("half", "2", NULL, 0);
    ef_eval_variant(s, &q, &v);
    assert_true(v.match);

    ef_boolean_result b;
    ef_eval_request bq = {.flag_key = EF_BYTES_LIT("test-flag"), .entity_id = EF_BYTES_LIT("test-entity")};
    ef_eval_boolean(s, &bq, &b); /* crc32("test-entitytest-flag") % 100 = 65 < 70 */
    assert_int_equal(b.reason, EF_REASON_MATCH);
    bq.flag_key = EF_BYTES_LIT("test-flag5");
    ef_eval_boolean(s, &bq, &b); /* 65 >= 5: falls through to the flag's value */
    assert_int_equal(b.reason, EF_REASON_DEFAULT);
    assert_false(b.enabled);
    bq = (ef_eval_request){.flag_key = EF_BYTES_LIT("flag_boolean"), .entity_id = EF_BYTES_LIT("fixed")};
    ef_eval_boolean(s, &bq, &b); /* crc32("fixedflag_boolean") % 100 = 9 < 50 */
    assert_true(b.enabled);
    bq.entity_id = EF_BYTES_LIT("hello"); /* 96 */
    ef_eval_boolean(s, &bq, &b);
    assert_false(b.enabled);
    assert_int_equal(b.reason, EF_REASON_DEFAULT);
    ef_snapshot_free(s);
}

/* Buckets across many distributions: a rule of five (counted) and one of ten (halved, evaluate.c's
 * bucket_index) against crc32(flagKey || entityId) % 1000 + 1 worked out here with zlib: equal
 * shares put boundaries at every 1000 / n, an exact hit takes the variant below it. */
static void test_bucketing_many(void **state)
{
#define D(k, r) "{\"variantKey\":\"" k "\",\"rollout\":" r "}"
    const char *doc =
        "{\"namespace\":{\"key\":\"default\"},\"flags\":["
        "{\"key\":\"five\",\"name\":\"x\",\"enabled\":true,\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"distributions\":["
        D("v0", "20") "," D("v1", "20") "," D("v2", "20") "," D("v3", "20") "," D("v4", "20") "]}]},"
        "{\"key\":\"ten\",\"name\":\"x\",\"enabled\":true,\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"distributions\":["
        D("v0", "10") "," D("v1", "10") "," D("v2", "10") "," D("v3", "10") "," D("v4", "10") ","
        D("v5", "10") "," D("v6", "10") "," D("v7", "10") "," D("v8", "10") "," D("v9", "10") "]}]}"
        "]}";
#undef D
    ef_snapshot *s = snap_from_json(doc);
    static const struct {
        const char *flag;
        unsigned n;
    } rules[] = {{"five", 5}, {"ten", 10}};
    unsigned hits = 0;
    for (size_t r = 0; r < 2; r++) {
        for (int e = 0; e < 3000; e++) {
            char id[16], key[32];
            snprintf(id, sizeof(id), "e%d", e);
            int kn = snprintf(key, sizeof(key), "%s%s", rules[r].flag, id);
            unsigned target = (unsigned)(crc32(0, (const Bytef *)key, (uInt)kn) % 1000) + 1;
            unsigned width = 1000 / rules[r].n;
            char want[8];
            snprintf(want, sizeof(want), "v%u", (target - 1) / width);
            hits += target % width == 0;
            ef_eval_request q = req_of(rules[r].flag, id, NULL, 0);
            ef_variant_result v;
            assert_int_equal(ef_eval_variant(s, &q, &v), EF_EVAL_OK);
            assert_true(v.match);
            if (!ef_bytes_eq(v.variant_key, ef_bytes_of(want)))
                fail_msg("%s/%s: target %u, got %.*s, want %s", rules[r].flag, id, target,
                         (int)v.variant_key.n, v.variant_key.p, want);
        }
    }
    assert_true(hits > 0); /* some targets fell on a boundary: the exact-hit case was taken */
    ef_snapshot_free(s);
}

static void test_duplicate_keys(void **state)
{
    /* a later flag with the same key replaces the earlier one; a segment repeated in one rule
     * counts once and takes its last definition */
    const char *doc =
        "{\"namespace\":{\"key\":\"default\"},\"flags\":["
        "{\"key\":\"f\",\"name\":\"1\",\"enabled\":true,\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"distributions\":[{\"variantKey\":\"first\",\"rollout\":100}]}]},"
        "{\"key\":\"f\",\"name\":\"2\",\"enabled\":true,\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"segments\":["
        " {\"key\":\"d\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":[{\"type\":\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"x\",\"operator\":\"eq\",\"value\":\"no\"}]},"
        " {\"key\":\"d\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":[]}],"
        " \"distributions\":[{\"variantKey\":\"second\",\"rollout\":100}]}]},"
        /* a flag after the duplicate must not overwrite it (regression: it did, and the
         * duplicate's key was then not found) */
        "{\"key\":\"g\",\"name\":\"3\",\"enabled\":true,\"rules\":[]}]}";
    ef_snapshot *s = snap_from_json(doc);
    assert_int_equal(ef_snapshot_flag_count(s), 2);
    ef_variant_result v;
    ef_eval_request q = req_of("f", "e", NULL, 0);
    assert_int_equal(ef_eval_variant(s, &q, &v), EF_EVAL_OK);
    assert_bytes(v.variant_key, "second");
    assert_int_equal(ef_matched_count(&v.segments), 1);
    q = req_of("g", "e", NULL, 0);
    assert_int_equal(ef_eval_variant(s, &q, &v), EF_EVAL_OK);
    ef_snapshot_free(s);

    /* repeats interleaved: each key at its first position with its last definition, in the
     * snapshot's flat view (compile.c moves definitions down into place) and by lookup */
#define F(k, v) "{\"key\":\"" k "\",\"name\":\"x\",\"enabled\":true,\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\"," \
                "\"distributions\":[{\"variantKey\":\"" v "\",\"rollout\":100}]}]}"
    s = snap_from_json("{\"namespace\":{\"key\":\"default\"},\"flags\":[" F("a", "a1") "," F("b", "b1") "," F("a", "a2") ","
                       F("c", "c1") "," F("b", "b2") "," F("d", "d1") "," F("a", "a3") "]}");
#undef F
    static const char *const keys[] = {"a", "b", "c", "d"}, *const want[] = {"a3", "b2", "c1", "d1"};
    assert_int_equal(ef_snapshot_flag_count(s), 4);
    for (int i = 0; i < 4; i++) {
        const ef_flag *f = ef_snapshot_flag_at(s, (size_t)i);
        assert_bytes(ef_flag_key(f), keys[i]);
        assert_ptr_equal(ef_snapshot_find_flag(s, ef_bytes_of(keys[i])), f);
        q = req_of(keys[i], "e", NULL, 0);
        assert_int_equal(ef_eval_variant(s, &q, &v), EF_EVAL_OK);
        assert_bytes(v.variant_key, want[i]);
    }
    ef_snapshot_free(s);
}

/* The key table's slots carry a tag of the key's hash (model.h): every flag of a table with many
 * collisions is found by its own key, a key that is not there is not found (also a key of the
 * same length as every flag's, whose probes meet tags and keys alike), and a table too large for
 * a tag keeps every bit for the index. */
static void test_key_table_tags(void **state)
{
    (void)state;
    enum { N = 3000 };
    ef_buf doc;
    ef_buf_init(&doc);
    ef_buf_puts(&doc, "{\"namespace\":{\"key\":\"default\"},\"flags\":[");
    for (int i = 0; i < N; i++)
        ef_buf_printf(&doc, "%s{\"key\":\"flag-%05d\",\"name\":\"n\",\"enabled\":true}", i ? "," : "", i);
    ef_buf_puts(&doc, "]}");
    ef_buf_putc(&doc, '\0');
    assert_true(ef_buf_ok(&doc));
    ef_snapshot *s = snap_from_json(doc.data);
    assert_int_equal(ef_snapshot_flag_count(s), N);
    char key[32];
    for (int i = 0; i < 2 * N; i++) {
        snprintf(key, sizeof(key), "flag-%05d", i);
        const ef_flag *f = ef_snapshot_find_flag(s, ef_bytes_of(key));
        if (i < N) {
            assert_non_null(f);
            assert_bytes(ef_flag_key(f), key);
        } else {
            assert_null(f);
        }
    }
    ef_snapshot_free(s);
    ef_buf_free(&doc);
    /* a table of 2^24 slots holds at most 2^23 flags: index + 1 fits under the tag's byte */
    assert_int_equal(ef_slot_tag_mask((1u << 24) - 1), 0xFF000000u);
    assert_int_equal(ef_slot_tag_mask((1u << 25) - 1), 0);
    assert_int_equal(ef_slot_tag(0xABCDEF0123456789ull, 0xFF000000u), 0xAB000000u);
    assert_int_equal(ef_slot_tag(0xABCDEF0123456789ull, 0), 0);
}

static void test_compile_errors(void **state)
{
    ef_compile_error e;
    assert_null(snap_compile_error("{\"namespace\":{\"key\":\"d\"},\"flags\":[]}", &e));
    assert_non_null(snap_compile_error("[]", &e));
    assert_non_null(strstr(snap_compile_error("{\"flags\":[]}", &e), "namespace"));
    const char *m = snap_compile_error(
        "{\"namespace\":{\"key\":\"d\"},\"flags\":[{\"key\":\"f\",\"enabled\":true}]}", &e);
    assert_non_null(m);
    assert_non_null(strstr(m, "flags[0]"));
    assert_non_null(strstr(m, "name"));
    m = snap_compile_error("{\"namespace\":{\"key\":\"d\"},\"flags\":[{\"key\":\"f\",\"name\":\"f\","
                           "\"enabled\":\"yes\"}]}", &e);
    assert_non_null(strstr(m, "expected a boolean"));
    assert_int_equal(e.offset, strstr(
        "{\"namespace\":{\"key\":\"d\"},\"flags\":[{\"key\":\"f\",\"name\":\"f\",\"enabled\":\"yes\"}]}",
        "\"yes\"") - "{\"namespace\":{\"key\":\"d\"},\"flags\":[{\"key\":\"f\",\"name\":\"f\",\"enabled\":\"yes\"}]}");
    m = snap_compile_error("{\"namespace\":{\"key\":\"d\"},\"flags\":[{\"key\":\"f\",\"name\":\"f\","
                           "\"enabled\":true,\"rules\":[{\"segmentOperator\":\"OR_SEGMENT_OPERATOR\","
                           "\"distributions\":[{\"variantKey\":\"v\",\"rollout\":\"50\"}]}]}]}", &e);
    assert_non_null(strstr(m, "flags[0].rules[0].distributions[0].rollout: expected a number"));
}

/* The word-at-a-time RFC 3339 reader must agree with the byte-by-byte one on everything: every
 * byte of several timestamps (valid, leap, offset, fraction, invalid day) replaced by each of the
 * 256 values, random strings of timestamp characters, and timestamps the formatter wrote. */
static void rfc3339_agree(ef_bytes s)
{
    int64_t a = 0, b = 0;
    bool fa = ef_rfc3339_parse(s, &a), fb = ef_rfc3339_parse_scalar(s, &b);
    if (fa != fb || (fa && a != b))
        fail_msg("\"%.*s\": words %d (%lld), bytes %d (%lld)", (int)s.n, s.p, fa, (long long)a, fb,
                 (long long)b);
}

static void test_rfc3339_words_match_bytes(void **state)
{
    (void)state;
    static const char *base[] = {
        "2006-01-02T15:04:05Z", "2024-02-29t23:59:60+05:30", "1970-01-01 00:00:00.123456789-12:00",
        "9999-12-31T23:59:59z", "0000-01-01T00:00:00Z",      "2023-02-29T00:00:00Z"};
    char buf[64];
    for (size_t k = 0; k < sizeof(base) / sizeof(base[0]); k++) {
        size_t n = strlen(base[k]);
        int64_t v;
        if (k < 5) assert_true(ef_rfc3339_parse(ef_bytes_of(base[k]), &v));
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 256; c++) {
                memcpy(buf, base[k], n);
                buf[i] = (char)c;
                rfc3339_agree((ef_bytes){buf, n});
            }
    }
    static const char alpha[] = "0123456789-:T tZz+.\xca\xff\x1d";
    srand(11);
    for (int r = 0; r < 200000; r++) {
        size_t n = 19 + (size_t)(rand() % 20);
        memcpy(buf, base[0], 19); /* mostly the right shape, some bytes off */
        for (size_t i = 0; i < n; i++)
            if (i >= 19 || rand() % 8 == 0) buf[i] = alpha[rand() % (int)(sizeof(alpha) - 1)];
        rfc3339_agree((ef_bytes){buf, n});
    }
    for (int r = 0; r < 20000; r++) {
        int64_t ns = (int64_t)rand() << 31 | rand(); /* 1970 to 2116, any nanosecond */
        size_t n = ef_rfc3339_format(ns, buf);
        int64_t v;
        assert_true(ef_rfc3339_parse((ef_bytes){buf, n}, &v));
        assert_int_equal(v, ns / 1000000000);
        rfc3339_agree((ef_bytes){buf, n});
        int64_t secs;
        int32_t nanos = -1;
        assert_true(ef_rfc3339_parse_ns((ef_bytes){buf, n}, &secs, &nanos));
        assert_int_equal(secs * 1000000000 + nanos, ns);
    }
}

/* The fraction a token's expiry keeps (regression: expiresAt was cut to the second, so a token
 * asked to expire in under a second could be refused as already expired): the first nine digits,
 * however many are written. */
static void test_rfc3339_fraction(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t secs;
        int32_t nanos;
    } cases[] = {
        {"2026-11-29T12:17:26Z", 1795954646, 0},
        {"2026-11-29T12:17:26.9Z", 1795954646, 900000000},
        {"2026-11-29T12:17:26.999Z", 1795954646, 999000000},
        {"2026-11-29T12:17:26.000000001+00:00", 1795954646, 1},
        {"2026-11-29T14:17:26.1234567891234+02:00", 1795954646, 123456789},
        {"2026-11-29T12:17:60.5Z", 1795954679, 500000000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t secs = 0, plain = 0;
        int32_t nanos = -1;
        assert_true(ef_rfc3339_parse_ns(ef_bytes_of(cases[i].s), &secs, &nanos));
        assert_int_equal(secs, cases[i].secs);
        assert_int_equal(nanos, cases[i].nanos);
        assert_true(ef_rfc3339_parse(ef_bytes_of(cases[i].s), &plain));
        assert_int_equal(plain, secs);
    }
    int64_t secs;
    int32_t nanos;
    assert_false(ef_rfc3339_parse_ns(ef_bytes_of("2026-11-29T12:17:26.Z"), &secs, &nanos));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_operators),
        cmocka_unit_test(test_number_operators),
        cmocka_unit_test(test_boolean_operators),
        cmocka_unit_test(test_datetime_operators),
        cmocka_unit_test(test_rfc3339_words_match_bytes),
        cmocka_unit_test(test_rfc3339_fraction),
        cmocka_unit_test(test_entity_id_constraints),
        cmocka_unit_test(test_odd_bytes),
        cmocka_unit_test(test_contains_bounds),
        cmocka_unit_test(test_rules_and_or_default),
        cmocka_unit_test(test_segment_match_types),
        cmocka_unit_test(test_never_constraints),
        cmocka_unit_test(test_bucketing_vectors),
        cmocka_unit_test(test_bucketing_many),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_key_table_tags),
        cmocka_unit_test(test_compile_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
