/*
 * test_hrana.c - the Hrana-over-HTTP client against a real server (the libSQL test peer, or
 * `tursodb --sync-server` for the execute+batch subset when EF_TEST_HRANA_SUBSET=1): value
 * encoding both ways, types recovered from decltype, batch conditions and atomicity, the server's
 * error message and code, stream reopening after expiry, keep-alive, timeouts.
 * Run through tests/libsql/with-peer.sh (or with-tursodb.sh), which sets EF_TEST_LIBSQL_URL.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/hrana.h"

static const char *url(void)
{
    const char *u = getenv("EF_TEST_LIBSQL_URL");
    if (!u) fail_msg("EF_TEST_LIBSQL_URL is not set (run through tests/libsql/with-peer.sh)");
    return u;
}

static bool subset(void)
{
    return getenv("EF_TEST_HRANA_SUBSET") != NULL;
}

static const ef_json *run(ef_hrana *h, ef_hrana_req *r, ef_arena *a)
{
    const ef_json *res;
    ef_store_err err;
    if (ef_hrana_send(h, r, a, &res, &err)) fail_msg("send: %s", err.message);
    ef_hrana_req_free(r);
    ef_hrana_req_init(r);
    return res;
}

static void cell_json(const ef_json *result, size_t row, size_t col, ef_arena *a, const char *want)
{
    ef_buf b;
    ef_buf_init(&b);
    if (ef_hrana_cell_json(&b, ef_hrana_cell(result, row, col), ef_hrana_decltype(result, col), a))
        fail_msg("cell %zu,%zu is not its decltype", row, col);
    ef_buf_putc(&b, '\0');
    if (strcmp(b.data, want) != 0) fail_msg("cell %zu,%zu: got %s, want %s", row, col, b.data, want);
    ef_buf_free(&b);
}

static void assert_ok_result_(const ef_json *res, int i)
{
    const ef_json *out;
    ef_store_err err;
    if (ef_hrana_result(res, i, &out, &err)) fail_msg("request %d: %s", i, err.message);
}

static void test_values_and_decltypes(void **state)
{
    (void)state;
    ef_store_err err;
    ef_hrana *h = ef_hrana_open(url(), NULL, 5000, &err);
    assert_non_null(h);
    ef_arena a;
    ef_arena_init(&a, 65536);
    ef_hrana_req r;
    ef_hrana_req_init(&r);
    char tbl[64];
    snprintf(tbl, sizeof(tbl), "DROP TABLE IF EXISTS v");
    ef_hrana_execute(&r, tbl);
    ef_hrana_execute(&r, "CREATE TABLE v(i INTEGER, on_ BOOLEAN, at TIMESTAMP, f REAL, t TEXT,"
                         " b BLOB)");
    /* what other clients write: a boolean as a float 1.0, a time as RFC 3339 text */
    ef_hrana_execute(&r, "INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)");
    ef_hrana_arg_int(&r, 9007199254740993LL); /* not representable as a double */
    ef_hrana_arg_float(&r, 1.0);
    ef_hrana_arg_text(&r, EF_BYTES_LIT("2024-03-01T12:00:00.5Z"));
    ef_hrana_arg_float(&r, 0.25);
    ef_hrana_arg_text(&r, EF_BYTES_LIT("h\xc3\xa9\"llo"));
    ef_hrana_arg_blob(&r, EF_BYTES_LIT("\x00\x01\xff\xfe"));
    ef_hrana_execute(&r, "INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)");
    ef_hrana_arg_int(&r, -5);
    ef_hrana_arg_text(&r, EF_BYTES_LIT("false"));
    ef_hrana_arg_int(&r, 1700000000000000000LL);
    ef_hrana_arg_int(&r, 2);
    ef_hrana_arg_null(&r);
    ef_hrana_arg_blob(&r, EF_BYTES_LIT("ab"));
    int sel = ef_hrana_execute(&r, "SELECT i, on_, at, f, t, b FROM v ORDER BY rowid");
    const ef_json *res = run(h, &r, &a), *out;
    for (int i = 0; i < sel; i++) assert_ok_result_(res, i);
    if (ef_hrana_result(res, sel, &out, &err)) fail_msg("select: %s", err.message);
    assert_int_equal(ef_hrana_nrows(out), 2);
    ef_hrana_value v;
    assert_int_equal(ef_hrana_value_get(ef_hrana_cell(out, 0, 0), &a, &v), 0);
    assert_int_equal(v.type, EF_HRANA_INTEGER);
    assert_true(v.i == 9007199254740993LL);
    assert_int_equal(ef_hrana_value_get(ef_hrana_cell(out, 0, 5), &a, &v), 0);
    assert_int_equal(v.type, EF_HRANA_BLOB);
    assert_int_equal(v.s.n, 4);
    assert_memory_equal(v.s.p, "\x00\x01\xff\xfe", 4);
    cell_json(out, 0, 4, &a, "\"h\xc3\xa9\\\"llo\"");
    cell_json(out, 0, 3, &a, "0.25");
    if (!subset()) { /* tursodb sends no decltypes */
        assert_true(ef_bytes_eq(ef_hrana_decltype(out, 1), EF_BYTES_LIT("BOOLEAN")));
        cell_json(out, 0, 1, &a, "1");
        cell_json(out, 1, 1, &a, "0");
        cell_json(out, 0, 2, &a, "1709294400500000000");
        cell_json(out, 1, 2, &a, "1700000000000000000");
        cell_json(out, 1, 3, &a, "2");
    }
    cell_json(out, 1, 4, &a, "null");
    cell_json(out, 1, 5, &a, "\"YWI\""); /* unpadded base64 */
    ef_hrana_req_free(&r);
    ef_arena_free(&a);
    ef_hrana_close(h);
}

static void test_batch_atomic_and_errors(void **state)
{
    (void)state;
    ef_store_err err;
    ef_hrana *h = ef_hrana_open(url(), NULL, 5000, &err);
    assert_non_null(h);
    ef_arena a;
    ef_arena_init(&a, 65536);
    ef_hrana_req r;
    ef_hrana_req_init(&r);
    ef_hrana_execute(&r, "DROP TABLE IF EXISTS u");
    ef_hrana_execute(&r, "CREATE TABLE u(k TEXT PRIMARY KEY)");
    run(h, &r, &a);
    char c1[128], c2[160];
    /* BEGIN; insert a; insert a again (fails); COMMIT skipped; ROLLBACK runs */
    ef_hrana_batch(&r);
    int b = ef_hrana_step(&r, NULL, "BEGIN IMMEDIATE");
    int s1 = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), b), "INSERT INTO u VALUES (?)");
    ef_hrana_arg_text(&r, EF_BYTES_LIT("a"));
    int s2 = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), s1), "INSERT INTO u VALUES (?)");
    ef_hrana_arg_text(&r, EF_BYTES_LIT("a"));
    int cm = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), s2), "COMMIT");
    int rb = ef_hrana_step(&r, ef_hrana_cond_ok_not_ok(c2, sizeof(c2), b, cm), "ROLLBACK");
    const ef_json *res = run(h, &r, &a), *batch, *sr;
    if (ef_hrana_result(res, 0, &batch, &err)) fail_msg("batch: %s", err.message);
    assert_int_equal(ef_hrana_step_result(batch, s1, &sr, NULL, 0, &err), 0);
    char code[64];
    assert_int_equal(ef_hrana_step_result(batch, s2, &sr, code, sizeof(code), &err), -1);
    assert_non_null(strstr(err.message, "UNIQUE"));
    if (!subset()) {
        assert_true(strncmp(code, "SQLITE_CONSTRAINT", 17) == 0); /* maybe an extended code */
        assert_non_null(strstr(err.message, "(SQLITE_CONSTRAINT"));
    }
    assert_int_equal(ef_hrana_step_result(batch, cm, &sr, NULL, 0, &err), 1); /* skipped */
    assert_int_equal(ef_hrana_step_result(batch, rb, &sr, NULL, 0, &err), 0);
    ef_hrana_execute(&r, "SELECT count(*) FROM u");
    res = run(h, &r, &a);
    if (ef_hrana_result(res, 0, &sr, &err)) fail_msg("count: %s", err.message);
    ef_hrana_value v;
    assert_int_equal(ef_hrana_value_get(ef_hrana_cell(sr, 0, 0), &a, &v), 0);
    assert_int_equal(v.i, 0); /* the first insert was rolled back */
    /* a request-level error names the server's message */
    ef_hrana_execute(&r, "SELECT * FROM no_such_table");
    res = run(h, &r, &a);
    assert_int_equal(ef_hrana_result(res, 0, &sr, &err), -1);
    assert_non_null(strstr(err.message, "no such table"));
    ef_hrana_req_free(&r);
    ef_arena_free(&a);
    ef_hrana_close(h);
}

static void test_streams_and_keepalive(void **state)
{
    (void)state;
    if (subset()) skip(); /* tursodb keeps no streams */
    ef_store_err err;
    ef_hrana *h = ef_hrana_open(url(), NULL, 5000, &err);
    assert_non_null(h);
    assert_int_equal(ef_hrana_version(h), 3); /* the peer answers GET /v3 */
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_hrana_req r;
    ef_hrana_req_init(&r);
    uint64_t n0, n1, connects;
    ef_hrana_execute(&r, "SELECT 1");
    run(h, &r, &a);
    ef_hrana_execute(&r, "SELECT 2");
    run(h, &r, &a);
    ef_hrana_stats(h, &n0, &connects);
    assert_int_equal(connects, 0); /* the second request reused the connection */
    /* with-peer.sh runs the peer with a 1 s stream expiry: the baton goes stale, and the client
     * reopens the stream and sends again (two HTTP requests for one call) */
    usleep(1300 * 1000);
    ef_hrana_execute(&r, "SELECT 3");
    run(h, &r, &a);
    ef_hrana_stats(h, &n1, NULL);
    assert_int_equal(n1 - n0, 2);
    ef_hrana_req_free(&r);
    ef_arena_free(&a);
    ef_hrana_close(h);
}

static void test_unreachable_and_timeout(void **state)
{
    (void)state;
    /* a socket that accepts connections (backlog) but never answers */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    ef_store_err err;
    ef_hrana *h = ef_hrana_open(u, "t", 300, &err);
    assert_non_null(h);
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_hrana_req r;
    ef_hrana_req_init(&r);
    ef_hrana_execute(&r, "SELECT 1");
    const ef_json *res;
    assert_int_equal(ef_hrana_send(h, &r, &a, &res, &err), -1);
    assert_int_equal(err.code, EF_STORE_UNAVAILABLE);
    assert_non_null(strstr(err.message, "no answer within 300 ms"));
    ef_hrana_close(h);
    close(fd); /* now nothing listens there */
    h = ef_hrana_open(u, NULL, 300, &err);
    assert_int_equal(ef_hrana_send(h, &r, &a, &res, &err), -1);
    assert_int_equal(err.code, EF_STORE_UNAVAILABLE);
    assert_non_null(strstr(err.message, u));
    ef_hrana_req_free(&r);
    ef_arena_free(&a);
    ef_hrana_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_decltypes),
        cmocka_unit_test(test_batch_atomic_and_errors),
        cmocka_unit_test(test_streams_and_keepalive),
        cmocka_unit_test(test_unreachable_and_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
