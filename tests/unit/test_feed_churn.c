/*
 * test_feed_churn.c - replication-stream subscribers that come and go while the node writes
 * (the feed of src/sync/feed.c). Regression for a use-after-free fuzz_http found: a subscriber's
 * done callback (on a server thread) logged its peer after marking it closed, while the feed
 * thread, woken by a write, could already have freed it. Under ASan that read is a report; under
 * TSan the free is a race with it. Both builds run this test in `make test`.
 *
 * The node is the fuzz targets' in-process node (tests/fuzz/fuzz_server.h): composed as `serve`
 * composes it, on loopback, with a real SQLite store in /dev/shm.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <cmocka.h>

#include "../fuzz/fuzz_server.h"

enum { CYCLES = 600 };

static volatile int stop_writer;

/* Writes as fast as the node takes them: each commit queues its entry to the subscribers on the
 * writer's thread (or wakes the feed thread for it), racing with subscribers closing; the feed
 * thread reaps closed ones on its next round. */
static void *writer(void *arg)
{
    fz_server *z = arg;
    char ans[8192], json[128];
    const char *body;
    for (int i = 0; !__atomic_load_n(&stop_writer, __ATOMIC_ACQUIRE); i++) {
        snprintf(json, sizeof(json), "{\"key\":\"b1\",\"name\":\"b1-%d\",\"type\":\"BOOLEAN_FLAG_TYPE\",\"enabled\":true}", i);
        if (fz_setup_call(z, "PUT", "/api/v1/namespaces/default/flags/b1", json, ans, sizeof(ans), &body) != 200)
            fz_die("writer", ans);
    }
    return NULL;
}

/* Opens the replication stream, reads its first bytes (the handshake is done: a subscriber
 * exists), and hangs up. */
static void subscribe_and_leave(uint16_t port)
{
    static const char req[] = "GET /edgeflag/v1/replication/stream HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer " FZ_BOOTSTRAP "\r\n\r\n";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(req) - 1));
    char buf[512];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 12);
    buf[n] = '\0';
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
    close(fd);
}

static void test_subscribers_leave_while_writing(void **state)
{
    (void)state;
    fz_server *z = fz_start();
    pthread_t w;
    assert_int_equal(pthread_create(&w, NULL, writer, z), 0);
    for (int i = 0; i < CYCLES; i++) subscribe_and_leave(z->port);
    __atomic_store_n(&stop_writer, 1, __ATOMIC_RELEASE);
    pthread_join(w, NULL);
    /* every subscriber is gone and reaped: the node still answers */
    char ans[8192];
    const char *body;
    assert_int_equal(fz_setup_call(z, "GET", "/api/v1/namespaces/default/flags/b1", "", ans, sizeof(ans), &body), 200);
}

int main(void)
{
    (void)fz_send_checked; /* the fuzz targets' input path, not used here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subscribers_leave_while_writing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
