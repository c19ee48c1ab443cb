/*
 * test_client_hostile.c - libedgeflag against input it must not trust: a cache file that was
 * tampered with (its checksum made right again, which anyone can do: SHA-256 is not a signature)
 * and a node that sends header values no HTTP header may carry on to the next request. The node is
 * a fake HTTP/1.1 responder on a thread of this test that keeps every request it receives, so the
 * test can check exactly what the client sent.
 *
 *   cache_etag_injection  a cache file whose ETag holds CR LF and a header of the attacker's: the
 *                         old reader accepted it (the checksum held) and the client sent it as
 *                         If-None-Match, so the attacker's header, or a whole second request,
 *                         reached the node on the client's connection. It must be rejected as
 *                         EF_ECACHE_CORRUPT and never sent.
 *   node_etag_bare_cr     a node whose ETag holds a bare CR (libcurl splits header lines at LF
 *                         only): the client must not echo it into If-None-Match.
 *   node_bad_version      an X-Edgeflag-Version that is not a u64 ("9, 9", 2^64 + 9) is no
 *                         version, not 99 or a wrapped 9.
 *   node_goes_back        a node that answers version 9, then an older state (5) every time
 *                         (a replica behind a load balancer, catching up): the client keeps 9
 *                         and says EF_EBEHIND; only when the node still answers 5 three poll
 *                         intervals later (restored from a backup) does it follow. It used to
 *                         apply 5 at once, taking the application's flags back.
 *
 * Every scenario needs the client to have evaluated the fake node's state first, so the test never
 * passes by doing nothing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "base/sha256.h"
#include "edgeflag.h"
#include "helper.h"

static const char DOC[] =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"b\",\"name\":\"b\",\"enabled\":true,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[]}]}";
static const char CACHED_DOC[] =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"b\",\"name\":\"b\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[]}]}";

typedef enum { PLAIN, BARE_CR_ETAG, BAD_VERSION, GOES_BACK } mode;

typedef struct fake {
    int fd;
    mode m;
    int stop;          /* atomic */
    pthread_mutex_t mu;
    ef_buf seen;       /* every request head received, in order (under mu) */
    int snapshots;     /* under mu */
} fake;

static void *fake_main(void *arg)
{
    fake *f = arg;
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0) continue;
        struct timeval tv = {2, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char req[8192];
        size_t n = 0;
        /* read until the client has nothing more to say for 50 ms after a blank line: a request
         * smuggled behind the first one must be seen too */
        for (;;) {
            if (n >= sizeof(req) - 1) break;
            if (memmem(req, n, "\r\n\r\n", 4)) {
                struct timeval quick = {0, 50000};
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &quick, sizeof(quick));
            }
            ssize_t r = recv(c, req + n, sizeof(req) - 1 - n, 0);
            if (r <= 0) break;
            n += (size_t)r;
        }
        req[n] = '\0';
        if (n == 0) {
            close(c);
            continue;
        }
        pthread_mutex_lock(&f->mu);
        ef_buf_append(&f->seen, req, n);
        pthread_mutex_unlock(&f->mu);
        char resp[2048];
        int len;
        if (strstr(req, "GET /internal/v1/evaluation/snapshot/namespace/default ") == req) {
            pthread_mutex_lock(&f->mu);
            f->snapshots++;
            pthread_mutex_unlock(&f->mu);
            const char *etag = f->m == BARE_CR_ETAG ? "\"n1\"\rX-Injected: yes" : "\"n1\"";
            /* BAD_VERSION: two copies of the header joined by a proxy, then a number past 2^64 */
            const char *version = f->m == BAD_VERSION ? (f->snapshots == 1 ? "9, 9" : "18446744073709551625")
                                                      : "9";
            const char *doc = DOC;
            if (f->m == GOES_BACK && f->snapshots > 1) { /* an older state: version 5, another document */
                version = "5";
                etag = "\"n5\"";
                doc = CACHED_DOC;
            }
            len = snprintf(resp, sizeof(resp),
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: %s\r\n"
                           "X-Edgeflag-Version: %s\r\nContent-Length: %zu\r\nConnection: close"
                           "\r\n\r\n%s",
                           f->m == BAD_VERSION ? "" : etag, version, strlen(doc), doc);
        } else {
            len = snprintf(resp, sizeof(resp), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                               "Connection: close\r\n\r\n");
        }
        (void)!send(c, resp, (size_t)len, MSG_NOSIGNAL);
        close(c);
    }
    return NULL;
}

static void fake_start(fake *f, mode m, pthread_t *t, char *url, size_t url_n)
{
    memset(f, 0, sizeof(*f));
    f->m = m;
    pthread_mutex_init(&f->mu, NULL);
    ef_buf_init(&f->seen);
    f->fd = fake_listen(16, url, url_n);
    CHECK(pthread_create(t, NULL, fake_main, f) == 0);
}

static void fake_stop(fake *f, pthread_t t)
{
    __atomic_store_n(&f->stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    close(f->fd);
    ef_buf_free(&f->seen);
    pthread_mutex_destroy(&f->mu);
}

/* Waits until the fake node has answered at least n snapshot requests. */
static void wait_snapshots(fake *f, int n)
{
    int64_t until = ef_clock_mono_ns() + 5000 * (int64_t)1000000;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        int got = f->snapshots;
        pthread_mutex_unlock(&f->mu);
        if (got >= n) return;
        CHECK(ef_clock_mono_ns() < until);
        sleep_ms(10);
    }
}

/* Neither the attacker's header nor a bare CR (one not followed by LF) ever reached the node. */
static void check_nothing_injected(fake *f)
{
    pthread_mutex_lock(&f->mu);
    const char *p = f->seen.data;
    size_t n = f->seen.len;
    CHECK(n > 0);
    if (memmem(p, n, "X-Injected", 10) || memmem(p, n, "/smuggled", 9)) {
        fprintf(stderr, "the node received an injected header:\n%.*s\n", (int)n, p);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) CHECK(p[i] != '\r' || (i + 1 < n && p[i + 1] == '\n'));
    pthread_mutex_unlock(&f->mu);
}

static bool boolean_of(ef_client *c)
{
    ef_result r;
    CHECK_EQ_INT(ef_client_boolean(c, "b", "u", NULL, 0, &r), EF_OK);
    bool v = r.enabled;
    ef_result_release(&r);
    return v;
}

/* A cache file laid out as cache.h says, with a valid checksum, around any ETag bytes. */
static void write_cache(const char *path, const char *etag, const char *doc)
{
    size_t el = strlen(etag), dl = strlen(doc), total = 40 + el + dl + 32;
    unsigned char *b = calloc(1, total);
    CHECK(b);
    memcpy(b, "EFCACHE", 8);
    b[8] = 1;                                 /* format */
    for (int i = 0; i < 4; i++) b[12 + i] = (unsigned char)(el >> (8 * i));
    b[16] = 3;                                /* state version 3 */
    for (int i = 0; i < 8; i++) b[24 + i] = (unsigned char)((uint64_t)dl >> (8 * i));
    memcpy(b + 40, etag, el);
    memcpy(b + 40 + el, doc, dl);
    ef_sha256(b, total - 32, b + total - 32);
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(b, 1, total, fp) == total);
    fclose(fp);
    free(b);
}

static void test_cache_etag_injection(const char *dir)
{
    fake f;
    pthread_t t;
    char url[64], cache[128];
    fake_start(&f, PLAIN, &t, url, sizeof(url));
    snprintf(cache, sizeof(cache), "%s/tampered.cache", dir);
    write_cache(cache, "\"e\"\r\nX-Injected: yes\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x", CACHED_DOC);
    ef_client_options o = {.url = url, .cache_path = cache, .disable_stream = true,
                           .timeout_ms = 2000};
    ef_client *c;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    ef_status st;
    ef_client_status(c, &st);
    printf("cache_etag_injection: cache status %s\n", ef_strerror(st.cache_status));
    CHECK_EQ_INT(st.cache_status, EF_ECACHE_CORRUPT); /* the ETag cannot have come from a node */
    CHECK_EQ_INT(ef_client_wait(c, 9, 5000), EF_OK);  /* the node's state instead */
    CHECK(boolean_of(c));
    ef_client_close(c);
    check_nothing_injected(&f);
    fake_stop(&f, t);
}

/* A fake node of mode m, and a client polling it every poll_ms (no stream). */
static ef_client *polling_client(fake *f, mode m, pthread_t *t, unsigned poll_ms)
{
    char url[64];
    fake_start(f, m, t, url, sizeof(url));
    ef_client_options o = {.url = url, .disable_stream = true, .poll_interval_ms = poll_ms,
                           .timeout_ms = 2000};
    ef_client *c;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    return c;
}

static void test_node_etag_bare_cr(void)
{
    fake f;
    pthread_t t;
    ef_client *c = polling_client(&f, BARE_CR_ETAG, &t, 100);
    CHECK_EQ_INT(ef_client_wait(c, 9, 5000), EF_OK);
    CHECK(boolean_of(c));
    wait_snapshots(&f, 3); /* polls after the first answer: each would carry the ETag back */
    ef_client_close(c);
    check_nothing_injected(&f);
    fake_stop(&f, t);
}

/* X-Edgeflag-Version values that are not a u64: "9, 9" (a proxy joining two copies of the header,
 * as HTTP allows for lists) and 2^64 + 9. The old parser took every digit it saw and let the
 * number wrap: versions 99 and 9, each a state the node never had (ef_client_wait(c, 99) would
 * have returned with the state at 9). Such a value must count as no version (0). */
static void test_node_bad_version(void)
{
    fake f;
    pthread_t t;
    ef_client *c = polling_client(&f, BAD_VERSION, &t, 100);
    CHECK_EQ_INT(ef_client_wait(c, 0, 5000), EF_OK);
    CHECK(boolean_of(c));
    ef_status st;
    ef_client_status(c, &st);
    printf("bad_version: \"9, 9\" read as %llu\n", (unsigned long long)st.version);
    CHECK_EQ_INT(st.version, 0);
    wait_snapshots(&f, 3); /* no ETag: every poll is a 200, the later ones with 2^64 + 9 */
    sleep_ms(50);
    ef_client_status(c, &st);
    printf("bad_version: 2^64 + 9 read as %llu\n", (unsigned long long)st.version);
    CHECK_EQ_INT(st.version, 0);
    ef_client_close(c);
    fake_stop(&f, t);
}

static void test_node_goes_back(void)
{
    fake f;
    pthread_t t;
    /* three poll intervals of 1 s: the retries of a held-back answer come within a second */
    ef_client *c = polling_client(&f, GOES_BACK, &t, 1000);
    CHECK_EQ_INT(ef_client_wait(c, 9, 5000), EF_OK);
    CHECK(boolean_of(c));
    /* the third request follows the second answer (version 5), so that one has been handled */
    wait_snapshots(&f, 3);
    ef_status st;
    ef_client_status(c, &st);
    char text[512];
    ef_client_error_text(c, text, sizeof(text));
    printf("goes_back: after an older answer, version %llu, last error %d (%s)\n",
           (unsigned long long)st.version, st.last_error, text);
    CHECK_EQ_INT(st.version, 9);
    CHECK_EQ_INT(st.last_error, EF_EBEHIND);
    CHECK(st.connected);
    CHECK(boolean_of(c)); /* still version 9's document */
    /* the node keeps answering 5: three intervals after its first such answer, it is followed */
    int64_t until = ef_clock_mono_ns() + 10000 * (int64_t)1000000;
    do {
        sleep_ms(50);
        ef_client_status(c, &st);
    } while (st.version != 5 && ef_clock_mono_ns() < until);
    printf("goes_back: the node still older, version %llu\n", (unsigned long long)st.version);
    CHECK_EQ_INT(st.version, 5);
    CHECK(!boolean_of(c));
    ef_client_close(c);
    fake_stop(&f, t);
}

int main(void)
{
    char dir[64];
    temp_dir(dir, sizeof(dir));
    test_cache_etag_injection(dir);
    test_node_etag_bare_cr();
    test_node_bad_version();
    test_node_goes_back();
    printf("test_client_hostile: ok\n");
    return 0;
}
