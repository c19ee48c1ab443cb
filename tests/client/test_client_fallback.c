/*
 * test_client_fallback.c - a node without the push stream (an older edgeflag or a Flipt server):
 * the client gets 404 for the stream, falls back to polling with ETags, and does not hammer the
 * stream route. The node here is a minimal HTTP/1.1 responder on a thread of this test that
 * counts requests, so the test can check exactly what the client asked for. It must never pass
 * without the client having evaluated the fake node's state (the first CHECKs require it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "edgeflag.h"
#include "helper.h"

static const char DOC[] =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"b\",\"name\":\"b\",\"enabled\":true,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[]}]}";

typedef struct fake {
    int fd;
    uint16_t port;
    int stop;           /* atomic */
    int stream_reqs;    /* atomic counters */
    int snapshot_200;
    int snapshot_304;
    int bad_requests;
} fake;

static void *fake_main(void *arg)
{
    fake *f = arg;
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0) continue;
        struct timeval tv = {2, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char req[4096];
        size_t n = 0;
        while (n < sizeof(req) - 1 && !memmem(req, n, "\r\n\r\n", 4)) {
            ssize_t r = recv(c, req + n, sizeof(req) - 1 - n, 0);
            if (r <= 0) break;
            n += (size_t)r;
        }
        req[n] = '\0';
        if (n == 0 || !memmem(req, n, "\r\n\r\n", 4)) {
            /* the client went away mid-request (it is closed while a poll is in flight): not a
             * request at all, so nothing to judge */
            close(c);
            continue;
        }
        char resp[2048];
        int len;
        if (strstr(req, "GET /edgeflag/v1/namespaces/default/stream ") == req) {
            __atomic_fetch_add(&f->stream_reqs, 1, __ATOMIC_RELAXED);
            len = snprintf(resp, sizeof(resp), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                               "Connection: close\r\n\r\n");
        } else if (strstr(req, "GET /internal/v1/evaluation/snapshot/namespace/default ") == req &&
                   strstr(req, "X-Flipt-Accept-Server-Version: 1.47.0")) {
            if (strstr(req, "If-None-Match: \"e1\"")) {
                __atomic_fetch_add(&f->snapshot_304, 1, __ATOMIC_RELAXED);
                len = snprintf(resp, sizeof(resp), "HTTP/1.1 304 Not Modified\r\nETag: \"e1\"\r\n"
                                                   "Connection: close\r\n\r\n");
            } else {
                __atomic_fetch_add(&f->snapshot_200, 1, __ATOMIC_RELAXED);
                len = snprintf(resp, sizeof(resp),
                               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"e1\"\r\n"
                               "X-Edgeflag-Version: 5\r\nContent-Length: %zu\r\nConnection: close"
                               "\r\n\r\n%s",
                               sizeof(DOC) - 1, DOC);
            }
        } else {
            __atomic_fetch_add(&f->bad_requests, 1, __ATOMIC_RELAXED);
            len = snprintf(resp, sizeof(resp), "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                               "Connection: close\r\n\r\n");
        }
        /* a failed send means the client closed first (ef_client_close during a poll); fine */
        (void)!send(c, resp, (size_t)len, MSG_NOSIGNAL);
        close(c);
    }
    return NULL;
}

int main(void)
{
    fake f = {0};
    char url[64];
    f.fd = fake_listen(16, url, sizeof(url));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fake_main, &f) == 0);

    ef_client_options o = {.url = url, .poll_interval_ms = 100, .timeout_ms = 2000};
    ef_client *c;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    CHECK_EQ_INT(ef_client_wait(c, 5, 5000), EF_OK);
    ef_result r;
    CHECK_EQ_INT(ef_client_boolean(c, "b", "u", NULL, 0, &r), EF_OK);
    CHECK(r.enabled);
    ef_result_release(&r);
    sleep_ms(700); /* about six polls */
    ef_status st;
    ef_client_status(c, &st);
    ef_client_close(c);
    __atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    close(f.fd);

    int streams = __atomic_load_n(&f.stream_reqs, __ATOMIC_RELAXED);
    int full = __atomic_load_n(&f.snapshot_200, __ATOMIC_RELAXED);
    int not_modified = __atomic_load_n(&f.snapshot_304, __ATOMIC_RELAXED);
    printf("fallback: %d stream requests, %d snapshot 200s, %d snapshot 304s\n", streams, full,
           not_modified);
    CHECK_EQ_INT(__atomic_load_n(&f.bad_requests, __ATOMIC_RELAXED), 0);
    CHECK_EQ_INT(streams, 1);         /* asked once; a 404 is not retried for a minute */
    CHECK_EQ_INT(full, 1);            /* the document is fetched once ... */
    CHECK(not_modified >= 3);         /* ... then polls carry the ETag and get 304s */
    CHECK(!st.streaming);
    CHECK(st.connected);
    CHECK_EQ_INT(st.updates, 1);
    CHECK_EQ_INT(st.version, 5);
    CHECK_EQ_INT(st.source, EF_SOURCE_NODE);
    CHECK(st.age_ms >= 0 && st.age_ms < 300); /* each 304 confirms the state */
    printf("test_client_fallback: ok\n");
    return 0;
}
