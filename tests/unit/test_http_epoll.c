/*
 * test_http_epoll.c - 128 connections ready at once are answered at once (src/http/epoll_guard.c).
 *
 * libmicrohttpd's epoll loop, given a full array of 128 events, asks epoll_wait again with its
 * full timeout before it handles them, and with nothing else to report it sleeps: the 128 requests
 * wait for the idle timeout (30 s here). This makes that moment happen on purpose: 128
 * connections, each answered once and idle, each send a request while another request holds the
 * server's only thread (300 ms, from when its handler says it began), so that its next epoll_wait
 * finds exactly 128 ready; every one must be answered within 5 s.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/clock.h"
#include "http/epoll_guard.h"
#include "http/http.h"

#define READY 128 /* libmicrohttpd's MAX_EVENTS */

static int hold_entered; /* atomic: h_hold has begun, and holds the server's thread */

static void h_hold(ef_http_req *req, void *ctx)
{
    (void)ctx;
    __atomic_store_n(&hold_entered, 1, __ATOMIC_RELEASE);
    usleep(300000);
    ef_buf_puts(ef_http_out(req), "held");
    ef_http_reply(req, 200);
}

static void h_fast(ef_http_req *req, void *ctx)
{
    (void)ctx;
    ef_buf_puts(ef_http_out(req), "fast");
    ef_http_reply(req, 200);
}

static int dial(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_get(int fd, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
}

/* Whether fd's answer (status line to the end of "fast" or "held") came within the deadline. */
static bool answered_by(int fd, int64_t deadline_ns)
{
    char buf[2048];
    size_t got = 0;
    while (ef_clock_mono_ns() < deadline_ns) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left_ms = (int)((deadline_ns - ef_clock_mono_ns()) / 1000000) + 1;
        if (poll(&p, 1, left_ms) <= 0) continue;
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0) return false;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n") && (strstr(buf, "fast") || strstr(buf, "held")))
            return strncmp(buf, "HTTP/1.1 200", 12) == 0;
    }
    return false;
}

static void test_128_ready_at_once(void **state)
{
    (void)state;
    assert_true(ef_epoll_guard_active()); /* the executable exports its epoll_wait */
    ef_router *router = ef_router_new();
    assert_int_equal(ef_router_add_route(router, &(ef_route){.methods = EF_GET, .pattern = "/hold", .fn = h_hold}), 0);
    assert_int_equal(ef_router_add_route(router, &(ef_route){.methods = EF_GET, .pattern = "/fast", .fn = h_fast}), 0);
    ef_http_config cfg = {.host = "127.0.0.1", .threads = 1, .max_body = 1 << 16, .max_header = EF_HTTP_MAX_HEADER_DEFAULT,
                          .idle_timeout_s = 30, .max_json_depth = 32, .max_per_ip = 1024};
    char err[256] = "";
    ef_http_server *srv = ef_http_server_start(&cfg, router, err, sizeof(err));
    if (!srv) fail_msg("server: %s", err);
    unsigned port = ef_http_server_port(srv);

    /* every connection accepted, answered once and idle in the server's epoll set */
    int holder = dial(port), fds[READY];
    int64_t deadline = ef_clock_mono_ns() + 5000000000LL;
    for (int i = 0; i < READY; i++) {
        fds[i] = dial(port);
        send_get(fds[i], "/fast");
        assert_true(answered_by(fds[i], deadline));
    }
    send_get(holder, "/hold");
    while (!__atomic_load_n(&hold_entered, __ATOMIC_ACQUIRE)) usleep(1000); /* the thread is held */
    for (int i = 0; i < READY; i++) send_get(fds[i], "/fast");

    deadline = ef_clock_mono_ns() + 5000000000LL;
    assert_true(answered_by(holder, deadline));
    int late = 0;
    for (int i = 0; i < READY; i++) late += !answered_by(fds[i], deadline);
    assert_int_equal(late, 0);

    close(holder);
    for (int i = 0; i < READY; i++) close(fds[i]);
    ef_http_server_stop(srv, 1000);
    ef_router_free(router);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_128_ready_at_once)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
