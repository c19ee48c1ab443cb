/*
 * test_clock.c - ids and clock formats of base/clock.h: UUID versions and variant bits, and that
 * version 7 ids made one after another sort in the order they were made (what the store's row
 * ids rely on for insert locality), and that the coarse monotonic clock the HTTP deadlines count
 * on is the precise one's clock, behind it by no more than a tick; and that RFC 3339 timestamps
 * (each thread keeps the last second's text) are gmtime's, whichever second came before.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "base/clock.h"

static void check_form(const char *id, char version)
{
    assert_int_equal(strlen(id), EF_UUID_LEN);
    for (int i = 0; i < EF_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(id[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", id[i]));
    }
    assert_int_equal(id[14], version);
    assert_non_null(strchr("89ab", id[19])); /* RFC 9562 variant */
}

static void test_uuid(void **state)
{
    (void)state;
    char a[EF_UUID_LEN + 1], b[EF_UUID_LEN + 1];
    ef_uuid_v4(a);
    check_form(a, '4');
    for (int i = 0; i < 1000; i++) { /* the version and variant bits on every one, not by luck */
        ef_uuid_v4(b);
        check_form(b, '4');
        assert_string_not_equal(a, b);
    }
    int64_t t = 1764300000123456789LL; /* 2025-11-28T03:20:00.123456789Z */
    ef_uuid_v7(a, t);
    check_form(a, '7');
    assert_memory_equal(a, "019ac879-8b7b", 13); /* the Unix milliseconds, big-endian */
    ef_uuid_v7(b, t);
    assert_string_not_equal(a, b); /* same instant: the random bits differ */
    for (int64_t step = 250; step <= 2000000000LL; step *= 3) { /* later ids sort after */
        ef_uuid_v7(b, t + step);
        check_form(b, '7');
        assert_true(strcmp(a, b) < 0);
        memcpy(a, b, sizeof(a));
        t += step;
    }
}

static void test_coarse_clock(void **state)
{
    (void)state;
    int64_t last = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t before = ef_clock_mono_ns(), coarse = ef_clock_mono_coarse_ns(),
                after = ef_clock_mono_ns();
        assert_true(coarse <= after); /* never ahead of the precise clock */
        /* behind by at most a tick: 4 ms at HZ=250, 10 ms at HZ=100; 50 ms leaves room for a
         * descheduled moment between the reads, and still fails for another clock (boot time,
         * realtime) */
        assert_true(coarse > before - 50000000);
        assert_true(coarse >= last); /* monotonic */
        last = coarse;
    }
}

/* The timestamp as the C library would write it, trailing zeros of the fraction cut in threes. */
static void rfc3339_reference(int64_t ns, char *out, size_t cap)
{
    int64_t secs = ns / 1000000000, nanos = ns % 1000000000;
    if (nanos < 0) {
        nanos += 1000000000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (nanos % 1000000 == 0 && nanos)
        n += (size_t)snprintf(out + n, cap - n, ".%03lld", (long long)(nanos / 1000000));
    else if (nanos % 1000 == 0 && nanos)
        n += (size_t)snprintf(out + n, cap - n, ".%06lld", (long long)(nanos / 1000));
    else if (nanos)
        n += (size_t)snprintf(out + n, cap - n, ".%09lld", (long long)nanos);
    snprintf(out + n, cap - n, "Z");
}

/* The wall clock taken from a monotonic reading agrees with a direct read, now and over 30 ms,
 * through the offset's 10 ms refresh. */
static void test_wall_at(void **state)
{
    (void)state;
    for (int i = 0; i < 30; i++) {
        int64_t before = ef_clock_wall_ns();
        int64_t at = ef_clock_wall_at(ef_clock_mono_ns());
        int64_t after = ef_clock_wall_ns();
        /* within the two direct reads, give or take what an NTP slew moves in 10 ms */
        assert_true(at >= before - 100000 && at <= after + 100000);
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

/* The HTTP date against strftime's, across leap days, centuries and the epoch's neighbours. */
static void test_http_date(void **state)
{
    (void)state;
    int64_t t = -86400 * 400;
    for (int i = 0; i < 20000; i++, t += 86400 * 37 + 3671) { /* days and times that wander */
        char want[64], got[EF_HTTP_DATE_LEN + 1];
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        assert_int_equal(ef_http_date(t, got), EF_HTTP_DATE_LEN);
        assert_string_equal(got, want);
    }
    char got[EF_HTTP_DATE_LEN + 1];
    ef_http_date(784111777, got); /* RFC 9110's example */
    assert_string_equal(got, "Sun, 06 Nov 1994 08:49:37 GMT");
}

static void test_rfc3339(void **state)
{
    (void)state;
    /* the same second again (the kept text), the next, one long before, a moment before 1970,
     * back to the first: every one must be written for its own second */
    const int64_t base = 1764300000123456789LL;
    const int64_t at[] = {base, base + 1, base + 999, base + 876543211LL, base + 876543211LL + 1,
                          0, 1, -1, -1000000000LL, -86400LL * 1000000000 - 5000000,
                          base - 3600LL * 1000000000, base, 951782399999999999LL, 951782400000000000LL,
                          4102444799000000000LL, base + 120000LL * 1000000000};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        char got[EF_RFC3339_MAX], want[64];
        size_t n = ef_rfc3339_format(at[i], got);
        rfc3339_reference(at[i], want, sizeof(want));
        assert_string_equal(got, want);
        assert_int_equal(n, strlen(want));
    }
}

/* Milliseconds as the exact decimal of ns / 10^6, without trailing zeros: against a reference
 * made with integer arithmetic and snprintf, for durations of every digit count and fraction. */
static void test_millis(void **state)
{
    (void)state;
    const int64_t at[] = {0, 1, 9, 10, 100, 999, 1000, 1001, 35788, 120000, 999999, 1000000, 1000001,
                          1500000, 1234567890, 10000000000LL, 9223372036854775807LL, -1, -250000, -1000000,
                          -9223372036854775807LL};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        char got[32], want[48];
        uint64_t mag = at[i] < 0 ? (uint64_t)0 - (uint64_t)at[i] : (uint64_t)at[i];
        int n = snprintf(want, sizeof(want), "%s%llu.%06llu", at[i] < 0 ? "-" : "",
                         (unsigned long long)(mag / 1000000), (unsigned long long)(mag % 1000000));
        while (want[n - 1] == '0') want[--n] = '\0';
        if (want[n - 1] == '.') want[--n] = '\0';
        size_t len = ef_millis_format(at[i], got);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_uuid), cmocka_unit_test(test_coarse_clock), cmocka_unit_test(test_wall_at), cmocka_unit_test(test_http_date),
                                       cmocka_unit_test(test_rfc3339), cmocka_unit_test(test_millis)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
