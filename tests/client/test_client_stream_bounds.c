/*
 * test_client_stream_bounds.c - libedgeflag against a node whose change stream misbehaves
 * (issue 19, item 7). The node is a fake HTTP/1.1 server on threads of this test, serving a valid
 * snapshot and, on the stream route, one of:
 *   endless-line   a heartbeat comment, then a comment line that never ends;
 *   endless-event  a `change` event whose data lines never end;
 *   bad-doc        (stream: change events every 20 ms) a snapshot that does not compile;
 *   ends-at-once   a heartbeat and the change event for the state the client has, then the end
 *                  of the response, every time (a node or a proxy that closes streams at once);
 *   drip           the change event for the state the client has, then one byte every 100 ms
 *                  and never a line end, while the node's state changes (test_drip);
 *   odd-version    change events with the client's ETag and versions that are no u64 versions
 *                  (test_odd_version): each asks for a fetch. The old client compared the JSON
 *                  number as a double cast to 64 bits: 5.0000000000000001 read as 5 (no fetch),
 *                  and 1e300 was undefined behaviour.
 * The client must drop such a stream at its bound (EF_EPROTOCOL), keep evaluating the state it
 * has, and back off exponentially: a stream that delivered a heartbeat before breaking the
 * protocol does not count as working. The old client took any bytes as "working" and reconnected
 * every 50-100 ms, and held an endless event in memory without limit. Nor does a stream that ended
 * cleanly but at once count as working: the old client started its backoff over after any stream
 * that read a line, so ends-at-once had it reconnecting every 50-100 ms for ever (about 40 stream
 * requests in 3 s where the backoff allows 7).
 *
 * Every check needs the client to have evaluated the fake node's state first, so the test never
 * passes by doing nothing.
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
static const char DOC_OFF[] =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"b\",\"name\":\"b\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[]}]}";
static const char BAD_DOC[] = "{\"namespace\":{\"key\":\"default\"},\"flags\":[{\"key\":7}]}";

#define CONN_CAP ((size_t)64 << 20) /* the fake stops pouring into one connection past this */

typedef enum { ENDLESS_LINE, ENDLESS_EVENT, BAD_DOC_MODE, ENDS_AT_ONCE, DRIP, ODD_VERSION } mode;

typedef struct fake {
    int fd;
    uint16_t port;
    mode m;
    int stop;             /* atomic */
    int streams;          /* atomic: stream requests */
    int snapshots;        /* atomic: snapshot requests */
    size_t max_sent;      /* atomic: most bytes sent into one stream */
    int threads;          /* atomic: connection threads running */
    int changed;          /* atomic: drip: the node now serves the second state */
} fake;

typedef struct conn {
    fake *f;
    int fd;
} conn;

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void serve_stream(fake *f, int c)
{
    __atomic_fetch_add(&f->streams, 1, __ATOMIC_RELAXED);
    const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                        "Connection: close\r\n\r\n: heartbeat\n\n";
    if (!send_all(c, head, sizeof(head) - 1)) return;
    if (f->m == ENDS_AT_ONCE) {
        /* nothing changed: the version and ETag of the snapshot the client fetched */
        const char ev[] = "event: change\ndata: {\"version\":5,\"etag\":\"\\\"e5\\\"\"}\n\n";
        (void)!send_all(c, ev, sizeof(ev) - 1);
        return;
    }
    if (f->m == ODD_VERSION) {
        /* versions that are not versions, with the ETag the client has, then a heartbeat now
         * and then (a live stream) */
        static const char *const odd[] = {"5.0000000000000001", "5e0", "1e300", "-5", "18446744073709551621"};
        for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
            char ev[128];
            int n = snprintf(ev, sizeof(ev), "event: change\ndata: {\"version\":%s,\"etag\":\"\\\"e5\\\"\"}\n\n", odd[i]);
            if (!send_all(c, ev, (size_t)n)) return;
            sleep_ms(500);
        }
        while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE) && send_all(c, ": heartbeat\n\n", 13)) sleep_ms(300);
        return;
    }
    if (f->m == DRIP) {
        const char ev[] = "event: change\ndata: {\"version\":5,\"etag\":\"\\\"e5\\\"\"}\n\n";
        if (!send_all(c, ev, sizeof(ev) - 1)) return;
        /* ten bytes a second, well above the low-speed limit, and never a line: a heartbeat
         * comment that never ends */
        if (!send_all(c, ":", 1)) return;
        while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE) && send_all(c, "x", 1)) sleep_ms(100);
        return;
    }
    static char chunk[16384];
    size_t sent = 0;
    if (f->m == ENDLESS_LINE) {
        memset(chunk, 'x', sizeof(chunk));
        chunk[0] = ':';
        if (!send_all(c, chunk, sizeof(chunk))) return;
        chunk[0] = 'x';
    } else if (f->m == ENDLESS_EVENT) {
        if (!send_all(c, "event: change\n", 14)) return;
        for (size_t i = 0; i + 16 <= sizeof(chunk); i += 16) memcpy(chunk + i, "data: 123456789\n", 16);
    }
    for (int i = 0; !__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE) && sent < CONN_CAP; i++) {
        if (f->m == BAD_DOC_MODE) {
            char ev[96];
            int n = snprintf(ev, sizeof(ev), "event: change\ndata: {\"version\":%d,\"etag\":\"x%d\"}\n\n",
                             i + 10, i);
            if (!send_all(c, ev, (size_t)n)) break;
            sleep_ms(20);
            continue;
        }
        if (!send_all(c, chunk, sizeof(chunk))) break;
        sent += sizeof(chunk);
    }
    size_t cur = __atomic_load_n(&f->max_sent, __ATOMIC_RELAXED);
    while (sent > cur && !__atomic_compare_exchange_n(&f->max_sent, &cur, sent, false,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void *conn_main(void *arg)
{
    conn *k = arg;
    fake *f = k->f;
    int c = k->fd;
    free(k);
    struct timeval tv = {2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char req[4096];
    size_t n = 0;
    while (n < sizeof(req) - 1 && !memmem(req, n, "\r\n\r\n", 4)) {
        ssize_t r = recv(c, req + n, sizeof(req) - 1 - n, 0);
        if (r <= 0) break;
        n += (size_t)r;
    }
    req[n] = '\0';
    if (strstr(req, "GET /edgeflag/v1/namespaces/default/stream ") == req) {
        serve_stream(f, c);
    } else if (strstr(req, "GET /internal/v1/evaluation/snapshot/namespace/default ") == req) {
        int k2 = __atomic_fetch_add(&f->snapshots, 1, __ATOMIC_RELAXED);
        /* bad-doc: the first answer is good (the client gets a state), every later one is not */
        const char *doc = f->m == BAD_DOC_MODE && k2 > 0 ? BAD_DOC : DOC;
        if (f->m == DRIP && __atomic_load_n(&f->changed, __ATOMIC_ACQUIRE)) doc = DOC_OFF;
        char resp[1024];
        int len = snprintf(resp, sizeof(resp),
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"e%d\"\r\n"
                           "X-Edgeflag-Version: %d\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                           doc == DOC ? 5 : 6 + k2, doc == DOC ? 5 : 6 + k2, strlen(doc), doc);
        if (doc == DOC_OFF)
            len = snprintf(resp, sizeof(resp),
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"e6\"\r\n"
                           "X-Edgeflag-Version: 6\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                           strlen(doc), doc);
        (void)!send_all(c, resp, (size_t)len);
    }
    close(c);
    __atomic_fetch_sub(&f->threads, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *accept_main(void *arg)
{
    fake *f = arg;
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0) continue;
        conn *k = malloc(sizeof(*k));
        CHECK(k);
        k->f = f;
        k->fd = c;
        pthread_t t;
        __atomic_fetch_add(&f->threads, 1, __ATOMIC_ACQUIRE);
        CHECK(pthread_create(&t, NULL, conn_main, k) == 0);
        pthread_detach(t);
    }
    return NULL;
}

/* Starts the fake node in mode m and a client of it with this poll interval, which has the
 * node's first state (version 5) when this returns. */
static ef_client *fake_start(fake *f, mode m, pthread_t *t, int poll_ms)
{
    *f = (fake){.m = m};
    char url[64];
    f->fd = fake_listen(64, url, sizeof(url));
    CHECK(pthread_create(t, NULL, accept_main, f) == 0);
    ef_client_options o = {.url = url, .poll_interval_ms = poll_ms, .timeout_ms = 2000};
    ef_client *c;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    CHECK_EQ_INT(ef_client_wait(c, 5, 5000), EF_OK);
    return c;
}

/* Closes the client (its status is taken first into st) and stops the fake node. */
static void fake_stop(fake *f, pthread_t t, ef_client *c, ef_status *st)
{
    ef_client_status(c, st);
    ef_client_close(c);
    __atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    close(f->fd);
    while (__atomic_load_n(&f->threads, __ATOMIC_ACQUIRE) > 0) sleep_ms(10);
}

static void run(mode m, const char *name)
{
    fake f;
    pthread_t t;
    /* while the stream is down the client polls the snapshot: once a second here */
    ef_client *c = fake_start(&f, m, &t, 1000);
    int64_t start = ef_clock_mono_ns();
    /* about 3 s in which the client keeps evaluating its state */
    while (ef_clock_mono_ns() - start < 3000000000LL) {
        ef_result r;
        CHECK_EQ_INT(ef_client_boolean(c, "b", "u", NULL, 0, &r), EF_OK);
        CHECK(r.enabled);
        ef_result_release(&r);
        sleep_ms(50);
    }
    ef_status st;
    fake_stop(&f, t, c, &st);

    int streams = __atomic_load_n(&f.streams, __ATOMIC_RELAXED);
    int snaps = __atomic_load_n(&f.snapshots, __ATOMIC_RELAXED);
    size_t most = __atomic_load_n(&f.max_sent, __ATOMIC_RELAXED);
    printf("%s: %d stream requests, %d snapshot requests in 3 s, at most %zu KiB into one stream, "
           "last error %s\n", name, streams, snaps, most >> 10, ef_strerror(st.last_error));
    CHECK_EQ_INT(st.version, 5); /* the good state is kept */
    if (m == ENDS_AT_ONCE) {
        /* with the stream down the client polls (once a second here), and keeps its state */
        CHECK(streams >= 2 && streams <= 7);
        CHECK_EQ_INT(st.last_error, EF_ECONNECT);
    } else if (m == BAD_DOC_MODE) {
        /* 100 ms doubling up to 30 s: at most 7 tries in 3 s; every 20 ms change would be ~150 */
        CHECK(snaps >= 3 && snaps <= 8);
        CHECK_EQ_INT(st.last_error, EF_EDOCUMENT);
    } else {
        CHECK(streams >= 2 && streams <= 7);
        CHECK_EQ_INT(st.last_error, EF_EPROTOCOL);
        /* the client stopped reading at its bound: what was sent is that plus socket buffers */
        CHECK(most < ((size_t)16 << 20));
    }
}

/* A stream that delivered its first event, then drips bytes that never end a line: the node's
 * heartbeats (a line every 5 s) have stopped, so the client must give the stream up after its
 * heartbeat limit (15 s) as it would a silent one, and poll. The old client took every byte as a
 * sign of life: it kept "streaming", confirmed its state (age ~0) and stopped polling, so a change
 * on the node went unseen until the 4 KiB line bound, about 7 minutes at this rate. */
static void test_drip(void)
{
    fake f;
    pthread_t t;
    ef_client *c = fake_start(&f, DRIP, &t, 1000);
    sleep_ms(1000); /* the stream is dripping by now */
    __atomic_store_n(&f.changed, 1, __ATOMIC_RELEASE);
    int64_t t0 = ef_clock_mono_ns();
    int rc = ef_client_wait(c, 6, 25000);
    double took = (ef_clock_mono_ns() - t0) / 1e9;
    ef_status st;
    fake_stop(&f, t, c, &st);
    printf("drip: the change on the node seen after %.1f s (%s), last error %s\n", took,
           rc == EF_OK ? "ok" : "never", ef_strerror(st.last_error));
    CHECK_EQ_INT(rc, EF_OK);
    CHECK(took < 20);
}

/* Change events whose versions are no versions: each asks for a fetch (the node's snapshot then
 * says what it has: version 5 again), and the client keeps its state. */
static void test_odd_version(void)
{
    fake f;
    pthread_t t;
    ef_client *c = fake_start(&f, ODD_VERSION, &t, 60000);
    sleep_ms(3500); /* the five events, 500 ms apart */
    ef_status st;
    fake_stop(&f, t, c, &st);
    int snaps = __atomic_load_n(&f.snapshots, __ATOMIC_RELAXED);
    printf("odd versions: %d snapshot requests (the first, and one per odd event)\n", snaps);
    CHECK(snaps >= 6); /* the first fetch, and one for each of the five events */
    CHECK_EQ_INT(st.version, 5);
}

int main(void)
{
    run(ENDLESS_LINE, "endless line");
    run(ENDLESS_EVENT, "endless event");
    run(BAD_DOC_MODE, "bad document");
    run(ENDS_AT_ONCE, "ends at once");
    test_drip();
    test_odd_version();
    printf("test_client_stream_bounds: ok\n");
    return 0;
}
