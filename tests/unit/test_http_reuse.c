/*
 * test_http_reuse.c - a connection's answers when the server reuses its response object.
 *
 * The server keeps a connection's last two plain responses (body not copied, headers attached)
 * and queues one again when the next answer has its body buffer, length and headers
 * (src/http/server.c, reuse). These tests run a real server on loopback and send requests on
 * one kept-alive connection, one at a time, so that each answer is made while the previous one
 * is kept: an answer of the same length with other bytes, other headers, fewer or more headers,
 * a static body in between, a status change and a gzip'd answer must each go out as its own.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http.h"

/* GET /same?v=X[&h=Y][&s=N][&t=T]: body X from the response buffer, header X-Extra: Y when given,
 * status N (default 200), Content-Type T when given. */
static void h_same(ef_http_req *req, void *ctx)
{
    (void)ctx;
    const char *v = ef_http_query(req, "v"), *h = ef_http_query(req, "h"), *st = ef_http_query(req, "s"),
               *t = ef_http_query(req, "t");
    if (h) ef_http_add_header(req, "X-Extra", h);
    if (t) ef_http_add_header(req, "Content-Type", t);
    ef_buf_puts(ef_http_out(req), v ? v : "");
    ef_http_reply(req, st ? atoi(st) : 200);
}

static const char static_body[] = "static-body";

/* GET /slow: answers after 300 ms (an in-flight request for the stop test), having said it began */
static int slow_entered; /* atomic */

static void h_slow(ef_http_req *req, void *ctx)
{
    (void)ctx;
    __atomic_store_n(&slow_entered, 1, __ATOMIC_RELEASE);
    usleep(300000);
    ef_buf_puts(ef_http_out(req), "slow");
    ef_http_reply(req, 200);
}

static void h_static(ef_http_req *req, void *ctx)
{
    (void)ctx;
    ef_http_reply_static(req, 200, "text/plain", static_body, sizeof(static_body) - 1);
}

typedef struct fixture {
    ef_router *router;
    ef_http_server *srv;
    int fd;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->router = ef_router_new();
    assert_int_equal(ef_router_add_route(f->router, &(ef_route){.methods = EF_GET, .pattern = "/same", .fn = h_same}), 0);
    assert_int_equal(ef_router_add_route(f->router, &(ef_route){.methods = EF_GET, .pattern = "/static", .fn = h_static}), 0);
    assert_int_equal(ef_router_add_route(f->router, &(ef_route){.methods = EF_GET, .pattern = "/slow", .fn = h_slow}), 0);
    ef_http_config cfg = {.host = "127.0.0.1", .threads = 1, .max_body = 1 << 16, .max_header = EF_HTTP_MAX_HEADER_DEFAULT,
                          .idle_timeout_s = 30, .max_json_depth = 32, .gzip_min_bytes = 64};
    char err[256] = "";
    f->srv = ef_http_server_start(&cfg, f->router, err, sizeof(err));
    if (!f->srv) fail_msg("server: %s", err);
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ef_http_server_port(f->srv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(f->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close(f->fd);
    if (f->srv) ef_http_server_stop(f->srv, 1000);
    ef_router_free(f->router);
    free(f);
    return 0;
}

typedef struct answer {
    int status;
    char head[2048];
    char body[4096];
    size_t body_len;
} answer;

/* Sends one request on the connection and reads its whole answer (by its Content-Length). */
static void ask(fixture *f, answer *out, const char *fmt, ...)
{
    char target[512], req[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(target, sizeof(target), fmt, ap);
    va_end(ap);
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", target,
                     strstr(target, "gz=1") ? "Accept-Encoding: gzip\r\n" : "");
    assert_int_equal(write(f->fd, req, (size_t)n), n);
    char buf[8192];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(f->fd, buf + got, sizeof(buf) - 1 - got);
        assert_true(r > 0);
        got += (size_t)r;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        const char *cl = strcasestr(buf, "\r\nContent-Length: ");
        assert_non_null(cl);
        size_t len = strtoul(cl + 18, NULL, 10), head = (size_t)(end + 4 - buf);
        if (got < head + len) continue;
        assert_int_equal(got, head + len); /* nothing more: one request, one answer */
        memset(out, 0, sizeof(*out));
        out->status = atoi(buf + 9);
        memcpy(out->head, buf, head < sizeof(out->head) - 1 ? head : sizeof(out->head) - 1);
        memcpy(out->body, end + 4, len);
        out->body_len = len;
        /* one Date header (the server's own, not libmicrohttpd's as well), in HTTP's form */
        const char *date = strcasestr(out->head, "\r\nDate: ");
        assert_non_null(date);
        assert_null(strcasestr(date + 2, "\r\nDate:"));
        assert_int_equal(strcspn(date + 8, "\r"), 29);
        assert_memory_equal(date + 8 + 25, " GMT", 4);
        return;
    }
}

static bool has_header(const answer *a, const char *line)
{
    char want[256];
    snprintf(want, sizeof(want), "\r\n%s\r\n", line);
    return strcasestr(a->head, want) != NULL;
}

static void test_same_length_other_bytes(void **state)
{
    fixture *f = *state;
    answer a;
    const char *vals[] = {"aaaa", "bbbb", "cccc", "aaaa", "dddd"};
    for (size_t i = 0; i < 5; i++) {
        ask(f, &a, "/same?v=%s", vals[i]);
        assert_int_equal(a.status, 200);
        assert_int_equal(a.body_len, 4);
        assert_memory_equal(a.body, vals[i], 4);
    }
    /* three lengths in turn, more than are kept, then two in turn */
    const char *mix[] = {"aaaa", "bbbbb", "cccccc", "dddd", "eeeee", "ffffff", "gggg", "hhhhh", "iiii", "jjjjj", "kkkk"};
    for (size_t i = 0; i < sizeof(mix) / sizeof(mix[0]); i++) {
        ask(f, &a, "/same?v=%s", mix[i]);
        assert_int_equal(a.body_len, strlen(mix[i]));
        assert_memory_equal(a.body, mix[i], a.body_len);
    }
}

static void test_headers_change(void **state)
{
    fixture *f = *state;
    answer a;
    ask(f, &a, "/same?v=aaaa&h=one");
    assert_true(has_header(&a, "X-Extra: one"));
    ask(f, &a, "/same?v=bbbb&h=two"); /* same length, same names: the value differs */
    assert_true(has_header(&a, "X-Extra: two"));
    assert_false(has_header(&a, "X-Extra: one"));
    assert_memory_equal(a.body, "bbbb", 4);
    ask(f, &a, "/same?v=cccc"); /* one header fewer */
    assert_null(strcasestr(a.head, "X-Extra"));
    assert_memory_equal(a.body, "cccc", 4);
    ask(f, &a, "/same?v=dddd&h=tw"); /* and back, with a value that is a prefix */
    assert_true(has_header(&a, "X-Extra: tw"));
    ask(f, &a, "/same?v=eeee&h=two");
    assert_true(has_header(&a, "X-Extra: two"));
    ask(f, &a, "/same?v=ffff&h=two&t=text/plain"); /* the handler's Content-Type */
    assert_true(has_header(&a, "Content-Type: text/plain"));
    assert_false(has_header(&a, "Content-Type: application/json"));
    ask(f, &a, "/same?v=gggg&h=two");
    assert_true(has_header(&a, "Content-Type: application/json"));
    assert_memory_equal(a.body, "gggg", 4);
}

static void test_status_static_and_gzip(void **state)
{
    fixture *f = *state;
    answer a;
    ask(f, &a, "/same?v=aaaa");
    ask(f, &a, "/same?v=bbbb&s=404"); /* the status is the request's, not the kept response's */
    assert_int_equal(a.status, 404);
    assert_memory_equal(a.body, "bbbb", 4);
    ask(f, &a, "/same?v=cccc");
    assert_int_equal(a.status, 200);
    ask(f, &a, "/static");
    assert_int_equal(a.body_len, sizeof(static_body) - 1);
    assert_memory_equal(a.body, static_body, a.body_len);
    assert_true(has_header(&a, "Content-Type: text/plain"));
    ask(f, &a, "/static");
    assert_memory_equal(a.body, static_body, a.body_len);
    /* as long as the static body, with the same headers, from another buffer */
    ask(f, &a, "/same?v=static-bodx&t=text/plain");
    assert_int_equal(a.body_len, 11);
    assert_memory_equal(a.body, "static-bodx", 11);
    char big[200];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ask(f, &a, "/same?v=%s&gz=1", big); /* past gzip_min_bytes, accepted: compressed, not kept */
    assert_true(has_header(&a, "Content-Encoding: gzip"));
    assert_true(a.body_len < 100);
    ask(f, &a, "/same?v=%s", big); /* the same bytes, not accepted compressed */
    assert_false(has_header(&a, "Content-Encoding: gzip"));
    assert_int_equal(a.body_len, sizeof(big) - 1);
    assert_memory_equal(a.body, big, sizeof(big) - 1);
    ask(f, &a, "/same?v=%s&gz=1", big);
    assert_true(has_header(&a, "Content-Encoding: gzip"));
}

/* Headers longer than the record keeps: answered right, each time (used once, not kept). */
static void test_headers_past_the_record(void **state)
{
    fixture *f = *state;
    answer a;
    char v[700];
    for (int round = 0; round < 3; round++) {
        memset(v, 'a' + round, sizeof(v) - 1);
        v[sizeof(v) - 1] = '\0';
        ask(f, &a, "/same?v=xxxx&h=%s", v);
        char line[800];
        snprintf(line, sizeof(line), "X-Extra: %s", v);
        assert_true(has_header(&a, line));
        assert_memory_equal(a.body, "xxxx", 4);
    }
}

static void *stop_server(void *arg)
{
    fixture *f = arg;
    ef_http_server_stop(f->srv, 5000);
    f->srv = NULL;
    return NULL;
}

/* A stop waits for a request in flight (the connections' own flags, not a shared counter) and
 * lets its answer out whole. */
static void test_stop_waits_for_inflight(void **state)
{
    fixture *f = *state;
    answer a;
    ask(f, &a, "/same?v=warm"); /* a kept-alive connection with an answer behind it */
    const char *req = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    __atomic_store_n(&slow_entered, 0, __ATOMIC_RELEASE);
    assert_int_equal(write(f->fd, req, strlen(req)), (ssize_t)strlen(req));
    /* the handler is running (a sleep here would pass as "in flight" on a slow machine too soon) */
    for (int i = 0; i < 500 && !__atomic_load_n(&slow_entered, __ATOMIC_ACQUIRE); i++) usleep(10000);
    assert_true(__atomic_load_n(&slow_entered, __ATOMIC_ACQUIRE));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_server, f), 0);
    char buf[4096];
    size_t got = 0;
    ssize_t r;
    while ((r = read(f->fd, buf + got, sizeof(buf) - 1 - got)) > 0) got += (size_t)r;
    buf[got] = '\0';
    pthread_join(t, NULL);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "\r\n\r\nslow"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_same_length_other_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_static_and_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_past_the_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_waits_for_inflight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
