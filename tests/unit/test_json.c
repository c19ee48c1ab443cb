/*
 * test_json.c - the strict JSON reader and the JSON writer: RFC 8259 edge cases, NUL bytes,
 * UTF-8 validation, depth limits, error positions, and round trips through the writer; and the
 * arena they allocate from, trimmed (what a compiled flag part is kept in).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/json.h"

static ef_json *parse(ef_arena *a, const char *s, ef_json_error *e)
{
    return ef_json_parse(s, strlen(s), a, NULL, e);
}

static void test_accepts(void **state)
{
    static const char *ok[] = {
        "{}", "[]", " [1, -0, 0.5, 1e3, 1E-2, -12.5e+2] ", "\"x\"", "true", "false", "null",
        "{\"a\":{\"b\":[null,{}]}}", "\"\\u00fc\\ud83d\\ude00\\n\\t\\\"\\\\\\/\"", "\"ünï 🎉\"",
    };
    ef_arena a;
    ef_arena_init(&a, 1024);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ef_json_error e;
        if (!parse(&a, ok[i], &e)) fail_msg("rejected %s: %s", ok[i], e.message);
    }
    ef_arena_free(&a);
}

static void test_rejects(void **state)
{
    static const char *bad[] = {
        "", " ", "{", "[1,]", "{\"a\":1,}", "[01]", "[1.]", "[.5]", "[+1]", "[1e]", "NaN", "[Infinity]",
        "'x'", "\"a", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"", "\"a\tb\"", "{a:1}",
        "[1] 2", "tru", "nul", "{\"a\" 1}", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "// c\n1",
    };
    ef_arena a;
    ef_arena_init(&a, 1024);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ef_json_error e;
        if (parse(&a, bad[i], &e)) fail_msg("accepted %s", bad[i]);
        assert_true(e.message[0] != '\0');
    }
    ef_arena_free(&a);
}

static void test_nul_and_lengths(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_json_error e;
    ef_json *v = parse(&a, "{\"k\\u0000x\":\"a\\u0000b\",\"k\":1,\"k\":2}", &e);
    assert_non_null(v);
    const ef_json *c = v->child;
    assert_int_equal(c->key.n, 3);
    assert_memory_equal(c->key.p, "k\0x", 3);
    assert_int_equal(c->str.n, 3);
    assert_memory_equal(c->str.p, "a\0b", 3);
    /* the last duplicate wins */
    assert_true(ef_json_get(v, "k")->num == 2.0);
    /* raw NUL inside a string is a control character */
    const char raw[] = "\"a\0b\"";
    assert_null(ef_json_parse(raw, sizeof(raw) - 1, &a, NULL, &e));
    ef_arena_free(&a);
}

static void test_depth_and_position(void **state)
{
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_json_error e;
    char deep[300];
    memset(deep, '[', 200);
    deep[200] = '\0';
    ef_json_opts o = {.max_depth = 64};
    assert_null(ef_json_parse(deep, 200, &a, &o, &e));
    assert_non_null(strstr(e.message, "deep"));
    assert_null(parse(&a, "{\n  \"a\": [1,\n  2,,]}", &e));
    assert_int_equal(e.line, 3);
    assert_int_equal(e.column, 5);
    ef_arena_free(&a);
}

/* The writer's and reader's number fast paths against the slow forms they replace: the writer must
 * give the digits of the shortest precision that reads back (tried from 1 to 17 through printf),
 * the reader exactly what strtod reads. Random bit patterns, short decimals, nanosecond clock
 * readings in milliseconds, integers around 2^52 and 2^53, values near 10^±22. */
static void write_double(char *out, size_t n, double v)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_json_put_double(&b, v);
    assert_false(b.failed);
    snprintf(out, n, "%s", b.data);
    ef_buf_free(&b);
}

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void check_number(double v)
{
    char fast[64], ref[64];
    write_double(fast, sizeof(fast), v);
    /* the reference: the shortest precision that reads back, found the slow way (every precision) */
    char tmp[40];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v); /* 17 when no shorter one reads back */
    /* digits of the shortest form, without sign, point or exponent */
    char want[24], got[24];
    size_t nw = 0, ng = 0;
    for (const char *p = tmp; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') want[nw++] = *p;
    while (nw > 1 && want[nw - 1] == '0') nw--;
    const char *p = fast;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && (ng || *p != '0')) got[ng++] = *p;
    while (ng > 1 && got[ng - 1] == '0' && strchr(fast, '.')) ng--;
    while (ng > nw && got[ng - 1] == '0') ng--; /* an integer's zeros before the point */
    want[nw] = got[ng] = '\0';
    snprintf(ref, sizeof(ref), "%s", want);
    if (strcmp(got, ref) != 0) fail_msg("%.17g: wrote %s, shortest digits %s", v, fast, ref);
    /* and the reader reads the text as strtod does */
    ef_arena a;
    ef_arena_init(&a, 256);
    ef_json_error e;
    ef_json *j = ef_json_parse(fast, strlen(fast), &a, NULL, &e);
    assert_non_null(j);
    if (!(j->num == v)) fail_msg("read %s as %.17g", fast, j->num);
    ef_arena_free(&a);
}

static void check_read(const char *text)
{
    ef_arena a;
    ef_arena_init(&a, 256);
    ef_json_error e;
    ef_json *j = ef_json_parse(text, strlen(text), &a, NULL, &e);
    assert_non_null(j);
    double want = strtod(text, NULL);
    if (memcmp(&j->num, &want, sizeof(want)) != 0) fail_msg("read %s as %.17g, strtod %.17g", text, j->num, want);
    ef_arena_free(&a);
}

static void test_number_fast_paths(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 40000; i++) {
        uint64_t r = rng_next(&x);
        double v;
        switch (i % 5) {
        case 0: memcpy(&v, &r, sizeof(v)); break;                  /* any double */
        case 1: v = (double)(r % 100000000000ull) / 1e6; break;    /* ms from a ns clock */
        case 2: v = (double)(r % 1000000) / (double)(1u << (r >> 60)); break;
        case 3: v = (double)((r % 2000) + 4503599627369000ull) + ((r >> 40) & 1 ? 0.5 : 0); break;
        default: v = (double)(int64_t)(r % 2000000000) * 1e-9 * ((r >> 62) ? 1e3 : 1); break;
        }
        if (!isfinite(v) || v == 0) continue;
        check_number(v);
        check_number(-v);
    }
    char dec[21];
    assert_int_equal(ef_u64_dec(0, dec), 1);
    assert_string_equal(dec, "0");
    assert_int_equal(ef_u64_dec(UINT64_MAX, dec), 20);
    assert_string_equal(dec, "18446744073709551615");
    ef_u64_dec(1000000, dec);
    assert_string_equal(dec, "1000000");
    for (uint64_t v = 1, k = 0; k < 64; k++, v = v * 3 + k) { /* every length, both parities */
        char want[24];
        snprintf(want, sizeof(want), "%llu", (unsigned long long)v);
        assert_int_equal(ef_u64_dec(v, dec), strlen(want));
        assert_string_equal(dec, want);
        snprintf(want, sizeof(want), "%llu", (unsigned long long)(v - 1));
        assert_int_equal(ef_u64_dec(v - 1, dec), strlen(want));
        assert_string_equal(dec, want);
    }
    char sdec[22];
    assert_int_equal(ef_i64_dec(INT64_MIN, sdec), 20);
    assert_string_equal(sdec, "-9223372036854775808");
    assert_int_equal(ef_i64_dec(-7, sdec), 2);
    assert_string_equal(sdec, "-7");
    assert_int_equal(ef_u64_dec_pad(42, 6, dec), 6);
    assert_string_equal(dec, "000042");
    assert_int_equal(ef_u64_dec_pad(123456, 3, dec), 6); /* never cut: at least width digits */
    assert_string_equal(dec, "123456");
    assert_int_equal(ef_u64_dec_pad(0, 0, dec), 1);
    assert_string_equal(dec, "0");
    assert_int_equal(ef_u64_dec_pad(7, 99, dec), 20); /* never past the 21 bytes */
    assert_string_equal(dec, "00000000000000000007");
    static const char *texts[] = {"0", "-0", "1", "123456789012345", "1234567890123456", "0.1",
                                  "-0.000001", "1e22", "1e23", "1.5e-22", "1e-23", "9007199254740993",
                                  "0.30000000000000004", "123.456e-7", "1E+5", "4.9e-324", "1e308",
                                  "0.000000000000000000000000000001", "100000000000000000000000"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) check_read(texts[i]);
    for (int i = 0; i < 20000; i++) { /* short decimals with exponents, read as strtod reads them */
        uint64_t r = rng_next(&x);
        char t[64];
        if (i & 1) /* 12 digits at most: the fast path's */
            snprintf(t, sizeof(t), "%s%llu.%llue%d", (r & 1) ? "-" : "", (unsigned long long)(r >> 44),
                     (unsigned long long)((r >> 8) % 100000), (int)((r >> 30) % 61) - 30);
        else /* 16 digits past 2^53, where the digits are no longer an exact double */
            snprintf(t, sizeof(t), "%llue-%d", 9007199254740993ull + 2 * (r % 400000000000000ull),
                     (int)((r >> 59) % 23));
        check_read(t);
        snprintf(t, sizeof(t), "%llu", (unsigned long long)(r % 100000000000000000ull));
        check_read(t);
    }
}

static void test_writer(void **state)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_json_put_str(&b, (ef_bytes){"a\"\\\n\x01\0ü\xff", 9});
    assert_string_equal(b.data, "\"a\\\"\\\\\\n\\u0001\\u0000ü\xEF\xBF\xBD\"");
    ef_buf_clear(&b);
    ef_json_put_double(&b, 0.1);
    ef_buf_putc(&b, ' ');
    ef_json_put_float(&b, 33.33f);
    ef_buf_putc(&b, ' ');
    ef_json_put_double(&b, 100);
    assert_string_equal(b.data, "0.1 33.33 100");
    /* what the writer writes, the reader reads back byte for byte */
    ef_buf_clear(&b);
    ef_json_put_str(&b, (ef_bytes){"x\0\x7f\x1fé", 6});
    ef_arena a;
    ef_arena_init(&a, 256);
    ef_json_error e;
    ef_json *v = ef_json_parse(b.data, b.len, &a, NULL, &e);
    assert_non_null(v);
    assert_int_equal(v->str.n, 6);
    assert_memory_equal(v->str.p, "x\0\x7f\x1fé", 6);
    ef_arena_free(&a);
    ef_buf_free(&b);
}

/* ef_buf_take: an empty destination trades memory with the source (a subscriber's 8 MiB queue
 * once was copied under the lock the primary's writer waits for); a non-empty one appends; a
 * failed source fails the destination. */
static void test_buf_take(void **state)
{
    (void)state;
    ef_buf q, out;
    ef_buf_init(&q);
    ef_buf_init(&out);
    for (int i = 0; i < 100000; i++) ef_buf_puts(&q, "event ");
    const char *queued = q.data;
    size_t len = q.len;
    ef_buf_take(&out, &q);
    assert_ptr_equal(out.data, queued); /* moved, not copied */
    assert_int_equal(out.len, len);
    assert_int_equal(q.len, 0);
    assert_true(ef_buf_ok(&out) && ef_buf_ok(&q));
    ef_buf_puts(&q, "next");
    ef_buf_take(&out, &q); /* out holds bytes: appended after them */
    assert_int_equal(out.len, len + 4);
    assert_memory_equal(out.data + len, "next", 4);
    assert_int_equal(q.len, 0);
    ef_buf_clear(&out);
    ef_buf_take(&out, &q); /* nothing to take */
    assert_int_equal(out.len, 0);
    q.failed = true; /* an append that ran out of memory: the queue has a hole */
    ef_buf_take(&out, &q);
    assert_false(ef_buf_ok(&out));
    assert_true(ef_buf_ok(&q));
    ef_buf_free(&q);
    ef_buf_free(&out);
}

/* fuzz_mgmt found it: POST /auth/v1/method/token without a description wrote the token's empty
 * (NULL, 0) field with ef_json_put_str, whose NULL + 0 is undefined behaviour (UBSan aborts). */
static void test_writer_null_empty(void **state)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_json_put_str(&b, (ef_bytes){NULL, 0});
    assert_string_equal(b.data, "\"\"");
    ef_buf_free(&b);
}

/* Positions, versions and times read from the network are exact integers or refused (a cast of
 * an out-of-range double would be undefined behaviour). */
static void test_exact_integers(void **state)
{
    (void)state;
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_json_error e;
    static const struct {
        const char *text;
        bool i64_ok;
        int64_t i64;
        bool u64_ok;
        uint64_t u64;
    } t[] = {
        {"0", true, 0, true, 0},
        {"-0", true, 0, false, 0},
        {"9223372036854775807", true, INT64_MAX, true, 9223372036854775807ULL},
        {"9223372036854775808", false, 0, true, 9223372036854775808ULL},
        {"-9223372036854775808", true, INT64_MIN, false, 0},
        {"-9223372036854775809", false, 0, false, 0},
        {"18446744073709551615", false, 0, true, UINT64_MAX},
        {"18446744073709551616", false, 0, false, 0},
        {"1e3", false, 0, false, 0},
        {"1.0", false, 0, false, 0},
        {"1e999", false, 0, false, 0},
        {"\"5\"", false, 0, false, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        ef_json *v = parse(&a, t[i].text, &e);
        assert_non_null(v);
        int64_t x = 42;
        uint64_t y = 42;
        if (ef_json_i64(v, &x) != t[i].i64_ok) fail_msg("i64 %s", t[i].text);
        if (t[i].i64_ok) assert_int_equal(x, t[i].i64);
        if (ef_json_u64(v, &y) != t[i].u64_ok) fail_msg("u64 %s", t[i].text);
        if (t[i].u64_ok) assert_true(y == t[i].u64);
    }
    ef_arena_free(&a);
}

/* The eight-bytes-at-a-time scan agrees with the byte-by-byte definition for every byte value at
 * every position of a word, after runs of every length, and writes floats as before. */
static void test_plain_run_and_floats(void **state)
{
    (void)state;
    char buf[40];
    for (int c = 0; c < 256; c++)
        for (size_t at = 0; at < 24; at++) {
            memset(buf, 'a', sizeof(buf));
            buf[at] = (char)c;
            bool plain = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
            size_t want = plain ? 30 : at;
            assert_int_equal(ef_json_plain_run(buf, buf + 30), want);
            if (!plain) /* a later bad byte never hides this one */
                buf[at + 1] = 0x01, assert_int_equal(ef_json_plain_run(buf, buf + 30), at);
        }
    assert_int_equal(ef_json_plain_run(buf, buf), 0);
    static const struct { float v; const char *want; } fl[] = {
        {50, "50"}, {100, "100"}, {-3, "-3"}, {8388607, "8388607"}, {8388608, "8388608"},
        {33.33f, "33.33"}, {0.5f, "0.5"}, {1e10f, "10000000000"}, {0, "0"}, {-0.25f, "-0.25"},
    };
    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
        ef_buf b;
        ef_buf_init(&b);
        ef_json_put_float(&b, fl[i].v);
        assert_int_equal(b.len, strlen(fl[i].want));
        assert_memory_equal(b.data, fl[i].want, b.len);
        ef_buf_free(&b);
    }
}

/* ef_arena_trim: a one-chunk arena shrinks to what it handed out, in place or (when realloc moves
 * the chunk, as ASan's does) says so; an arena of several chunks is left alone. */
static void test_arena_trim(void **state)
{
    (void)state;
    ef_arena a;
    ef_arena_init(&a, 4096);
    assert_true(ef_arena_trim(&a)); /* nothing allocated yet */
    char *p = ef_arena_alloc(&a, 100);
    memset(p, 'x', 100);
    size_t before = a.total;
    if (ef_arena_trim(&a)) {
        assert_true(a.total < before && a.total <= 100 + 64);
        for (int i = 0; i < 100; i++) assert_int_equal(p[i], 'x');
        assert_true(ef_arena_trim(&a)); /* full now: nothing to do */
    } else {
        assert_true(a.total < before); /* moved: smaller all the same, p is stale */
    }
    ef_arena_free(&a);
    ef_arena_init(&a, 64);
    assert_non_null(ef_arena_alloc(&a, 40));
    assert_non_null(ef_arena_alloc(&a, 4000)); /* a second chunk */
    before = a.total;
    assert_false(ef_arena_trim(&a));
    assert_int_equal(a.total, before);
    ef_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_nul_and_lengths), cmocka_unit_test(test_depth_and_position),
        cmocka_unit_test(test_writer),          cmocka_unit_test(test_buf_take),
        cmocka_unit_test(test_writer_null_empty),
        cmocka_unit_test(test_exact_integers), cmocka_unit_test(test_number_fast_paths), cmocka_unit_test(test_plain_run_and_floats),
        cmocka_unit_test(test_arena_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
