/*
 * test_heartbeat.c - a follower reads its upstream's heartbeats through ef_heartbeat_parse
 * (src/sync/heartbeat.c) and believes what it reads: the head decides whether the replica says it
 * is in sync, the lag is shown in /ready and /metrics and passed on down a chain. Review of the
 * sync code, bug 2: a head of 1e30 came out as 0 (in sync), -1 wrapped, a negative lag was shown as
 * is, 1e308 printed 300 digits, and data that was not JSON still counted as a heartbeat. Here each
 * of those is refused (or, for the lag, brought into range), and a well-formed heartbeat is read
 * exactly.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "sync/sync_int.h"

static int parse(const char *text, ef_heartbeat *hb)
{
    char why[160] = "";
    int rc = ef_heartbeat_parse(text, strlen(text), hb, why, sizeof(why));
    if (rc != 0) assert_true(strncmp(why, "a heartbeat ", 12) == 0); /* says what it refused */
    return rc;
}

static void test_well_formed(void **state)
{
    (void)state;
    ef_heartbeat hb;
    assert_int_equal(parse("{\"seq\":7,\"head\":9007199254740993,\"time\":1,\"history\":\"0a1b\","
                           "\"lagSeconds\":0.25,\"node\":\"iad\"}", &hb), 0);
    assert_true(hb.head == 9007199254740993ULL); /* 2^53 + 1: exact, not through a double */
    assert_true(hb.lag_s == 0.25);
    assert_string_equal(hb.history, "0a1b");
    assert_string_equal(hb.node, "iad");
    /* what an older feed sends: no history, no name, no lag */
    assert_int_equal(parse("{\"seq\":0,\"head\":0}", &hb), 0);
    assert_true(hb.head == 0 && hb.lag_s == 0);
    assert_string_equal(hb.history, "");
    assert_string_equal(hb.node, "");
    /* a name that is not one is left out, the rest is used */
    assert_int_equal(parse("{\"head\":1,\"node\":\"a b\"}", &hb), 0);
    assert_string_equal(hb.node, "");
}

static void test_head_must_be_exact(void **state)
{
    (void)state;
    ef_heartbeat hb;
    static const char *bad[] = {
        "{\"head\":1e30}", "{\"head\":-1}", "{\"head\":1.5}", "{\"head\":3e0}",
        "{\"head\":18446744073709551616}", "{\"head\":9223372036854775808}", /* 2^64, 2^63 */
        "{\"head\":\"3\"}", "{\"head\":null}", "{\"seq\":3}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &hb) != -1) fail_msg("accepted %s", bad[i]);
    }
    assert_int_equal(parse("{\"head\":9223372036854775807}", &hb), 0);
}

static void test_not_a_heartbeat(void **state)
{
    (void)state;
    ef_heartbeat hb;
    static const char *bad[] = {
        "", "{\"head\":", "not json", "[1,2]", "3", "null",
        "{\"head\":1,\"lagSeconds\":\"0\"}",              /* a lag that is not a number */
        "{\"head\":1,\"history\":7}",                      /* a history that is not a string */
        "{\"head\":1,\"history\":\"ABC\"}",                /* nor hex as a store makes it */
        "{\"head\":1,\"history\":\"\"}",
        "{\"head\":1,\"history\":\"00000000000000000000000000000000000000000000000000000000000000000\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &hb) != -1) fail_msg("accepted %s", bad[i]);
    }
}

static void test_lag_clamped(void **state)
{
    (void)state;
    ef_heartbeat hb;
    assert_int_equal(parse("{\"head\":1,\"lagSeconds\":-5}", &hb), 0);
    assert_true(hb.lag_s == 0);
    assert_int_equal(parse("{\"head\":1,\"lagSeconds\":1e308}", &hb), 0);
    assert_true(hb.lag_s == EF_SYNC_LAG_MAX_S);
    assert_int_equal(parse("{\"head\":1,\"lagSeconds\":-0}", &hb), 0);
    assert_true(hb.lag_s == 0 && !signbit(hb.lag_s));
    /* out of a double's range: refused by the parser, or brought into range; never infinite */
    if (parse("{\"head\":1,\"lagSeconds\":1e999}", &hb) == 0) assert_true(hb.lag_s == EF_SYNC_LAG_MAX_S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed),
        cmocka_unit_test(test_head_must_be_exact),
        cmocka_unit_test(test_not_a_heartbeat),
        cmocka_unit_test(test_lag_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
