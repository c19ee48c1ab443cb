/*
 * test_sse.c - the bounded server-sent-events reader (src/base/sse.c) that the follower and
 * libedgeflag share: events split at every possible chunk boundary read the same, all line ends
 * (LF, CRLF, CR, CR and LF in separate chunks) work, and every kind of line or event past its
 * limit is refused with a reason instead of growing a buffer (issue 19, item 7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/sse.h"

typedef struct seen {
    char log[4096]; /* "name=data|" per event */
    size_t len;
    int stop_after; /* 0: never */
    int n;
} seen;

static int on_event(void *ud, const char *event, ef_sse *p)
{
    seen *s = ud;
    s->len += (size_t)snprintf(s->log + s->len, sizeof(s->log) - s->len, "%s=%.*s|", event,
                               (int)p->data->len, p->data->data);
    assert_int_equal(p->data->data[p->data->len], '\0');
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static int on_count(void *ud, const char *event, ef_sse *p)
{
    (void)event, (void)p;
    ((seen *)ud)->n++;
    return 0;
}

static const ef_sse_limit LIMITS[] = {{"big", 1000}, {"tiny", 3}};

static void setup(ef_sse *p, ef_buf *data, seen *s)
{
    memset(s, 0, sizeof(*s));
    ef_buf_init(data);
    ef_sse_config cfg = {.limits = LIMITS, .nlimits = 2, .default_max_data = 20, .max_line = 40,
                         .on_event = on_event, .ud = s};
    ef_sse_init(p, data, &cfg);
}

static const char STREAM[] =
    ": a comment\n"
    "id: 7\n"
    "event: big\n"
    "data: {\"seq\":1}\n"
    "\n"
    "event:tiny\r\n"
    "data:abc\r\n"
    "\r\n"
    "data: one\rdata: two\r\r"
    "data\n"
    "data:  x\n"
    "\n"
    "retry: 10\n"
    "event: unnamed-later\n"
    "\n";

static const char WANT[] = "big={\"seq\":1}|tiny=abc|=one\ntwo|=\n x|unnamed-later=|";

/* Every split of the stream into two and three chunks gives the same events. */
static void test_chunking(void **st)
{
    (void)st;
    size_t n = sizeof(STREAM) - 1;
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b += (a % 7) + 1) {
            ef_sse p;
            ef_buf data;
            seen s;
            setup(&p, &data, &s);
            assert_int_equal(ef_sse_feed(&p, STREAM, a), EF_SSE_OK);
            assert_int_equal(ef_sse_feed(&p, STREAM + a, b - a), EF_SSE_OK);
            assert_int_equal(ef_sse_feed(&p, STREAM + b, n - b), EF_SSE_OK);
            if (strcmp(s.log, WANT)) fail_msg("split %zu/%zu: got %s", a, b, s.log);
            ef_buf_free(&data);
        }
}

static void expect_too_long(const char *in, const char *why_part)
{
    ef_sse p;
    ef_buf data;
    seen s;
    setup(&p, &data, &s);
    /* byte by byte and in one piece */
    int rc = EF_SSE_OK;
    for (size_t i = 0; in[i] && rc == EF_SSE_OK; i++) rc = ef_sse_feed(&p, in + i, 1);
    if (rc != EF_SSE_TOO_LONG) fail_msg("byte by byte: %s", in);
    if (!strstr(p.why, why_part)) fail_msg("why \"%s\" lacks \"%s\"", p.why, why_part);
    assert_true(data.len <= 1000);
    ef_sse_reset(&p);
    if (ef_sse_feed(&p, in, strlen(in)) != EF_SSE_TOO_LONG) fail_msg("in one piece: %s", in);
    ef_buf_free(&data);
}

static void test_limits(void **st)
{
    (void)st;
    char big[8000];
    /* an endless data line of an unnamed event, of a limited one, of a large one */
    snprintf(big, sizeof(big), "data: %0*d", 25, 0);
    expect_too_long(big, "unnamed event longer than 20");
    expect_too_long("event: tiny\ndata: abcd", "tiny event longer than 3");
    snprintf(big, sizeof(big), "event: big\ndata: %0*d", 1001, 0);
    expect_too_long(big, "big event longer than 1000");
    /* an endless event: many short data lines */
    strcpy(big, "event: big\n");
    for (int i = 0; i < 400; i++) strcat(big, "data: 12\n");
    expect_too_long(big, "big event longer than 1000");
    /* data before the name is held to the default limit, and re-checked against the final name */
    expect_too_long("data: abcd\nevent: tiny\n\n", "tiny event longer than 3");
    /* endless comment, field name, id, event name */
    snprintf(big, sizeof(big), ":%0*d", 50, 0);
    expect_too_long(big, "a line longer than 40");
    snprintf(big, sizeof(big), "%0*d", 50, 0);
    expect_too_long(big, "a field name longer than 40");
    snprintf(big, sizeof(big), "id: %0*d\n", 50, 0);
    expect_too_long(big, "a line longer than 40");
    snprintf(big, sizeof(big), "event: %0*d\n", 50, 0);
    expect_too_long(big, "a line longer than 40");
}

/* A long event name is an unknown event: skipped, never confused with a known one. */
static void test_long_event_name(void **st)
{
    (void)st;
    ef_sse p;
    ef_buf data;
    seen s;
    setup(&p, &data, &s);
    const char in[] = "event: bigbigbigbigbigbigbigbigbigbigbig\ndata: x\n\nevent: big\ndata: y\n\n";
    assert_int_equal(ef_sse_feed(&p, in, sizeof(in) - 1), EF_SSE_OK);
    assert_string_equal(s.log, "big=y|");
    ef_buf_free(&data);
}

static void test_stop_and_reset(void **st)
{
    (void)st;
    ef_sse p;
    ef_buf data;
    seen s;
    setup(&p, &data, &s);
    s.stop_after = 1;
    const char in[] = "data: a\n\ndata: b\n\n";
    assert_int_equal(ef_sse_feed(&p, in, sizeof(in) - 1), EF_SSE_STOPPED);
    assert_string_equal(s.log, "=a|");
    /* a new connection forgets the partial event */
    s.stop_after = 0;
    assert_int_equal(ef_sse_feed(&p, "event: big\ndata: part", 21), EF_SSE_OK);
    ef_sse_reset(&p);
    assert_int_equal(ef_sse_feed(&p, "data: new\n\n", 11), EF_SSE_OK);
    assert_string_equal(s.log, "=a|=new|");
    assert_int_equal(p.events, 1);
    ef_buf_free(&data);
}

/* After a large event the reader gives its memory back. */
static void test_memory_returned(void **st)
{
    (void)st;
    ef_sse p;
    ef_buf data;
    seen s;
    setup(&p, &data, &s);
    static const ef_sse_limit huge[] = {{"dump", (size_t)8 << 20}};
    p.cfg.limits = huge;
    p.cfg.nlimits = 1;
    size_t n = (size_t)3 << 20;
    char *in = malloc(n + 32);
    assert_non_null(in);
    memcpy(in, "event: dump\ndata: ", 18);
    memset(in + 18, 'x', n);
    memcpy(in + 18 + n, "\n\n", 2);
    p.cfg.on_event = on_count; /* the log is too small for 3 MiB */
    assert_int_equal(ef_sse_feed(&p, in, 18 + n + 1), EF_SSE_OK);
    assert_true(data.len == n);
    assert_int_equal(ef_sse_feed(&p, "\n", 1), EF_SSE_OK);
    assert_int_equal(s.n, 1);
    assert_true(data.cap <= ((size_t)1 << 20));
    free(in);
    ef_buf_free(&data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunking),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_long_event_name),
        cmocka_unit_test(test_stop_and_reset),
        cmocka_unit_test(test_memory_returned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
