/*
 * test_clock.c - ids and clock formats of base/clock.h: UUID versions and variant bits, and that
 * version 7 ids made one after another sort in the order they were made (what the store's row
 * ids rely on for insert locality), and that the coarse monotonic clock the HTTP deadlines count
 * on is the precise one's clock, behind it by no more than a tick.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_uuid), cmocka_unit_test(test_coarse_clock)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
