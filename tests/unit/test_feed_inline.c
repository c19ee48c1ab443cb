/*
 * test_feed_inline.c - a primary's writes reach its replication stream from the writer's thread
 * (src/sync/feed.c, ef_feed_committed): every entry arrives, in order, and the feed thread is not
 * woken once per write. Issue 11: on two cores shared by ten replicas, that wake-up cost each write
 * 0.3 ms on average (up to 2 ms) before any replica could have it.
 *
 * The wake-ups are counted as the feed thread's voluntary context switches (/proc/self/task). The
 * feed still wakes for its timed round (EF_FEED_ROUND_MS), which heartbeats ride on; those are
 * allowed for twice over, for however long the writes took (a sanitizer build under load takes
 * seconds), and past them fewer than a quarter of the writes may wake it. One wake per write (the
 * code before) fails that until the writes take over half a minute.
 *
 * Past INLINE_SUBS_MAX (16) subscribers the writer leaves the queueing to the feed thread: with
 * twenty, every one of them still gets every entry.
 *
 * A follower must take a dump at a minimum rate after a grace (ef_sync_config.dump_min_rate,
 * ef_http_stream_pace): two trickling their dumps would otherwise hold both dumps the feed keeps
 * in memory at once, and every bootstrap would wait behind them for as long as they liked.
 *
 * The node is the fuzz targets' in-process node (tests/fuzz/fuzz_server.h): composed as `serve`
 * composes it, on loopback, with a real SQLite store in /dev/shm.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../fuzz/fuzz_server.h"
#include "sync/sync_int.h"

enum { WRITES = 200, MANY = 20, MANY_WRITES = 20 };
/* The feed's dump reuse window in this node (ef_sync_config.dump_reuse_ms), and a wait past it. */
enum { REUSE_MS = 1000, REUSE_PAST_US = (REUSE_MS + 200) * 1000 };
/* Flags of 900 KB each the dump tests write: dumps of 3.6 MB, more than the socket buffers hold. */
enum { BIG_FLAGS = 4 };

static fz_server *node;

/* The voluntary context switches of this process's thread named name (-1: no such thread). */
static long thread_switches(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    long found = -1;
    for (struct dirent *e; found < 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[64] = "", line[256];
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(comm, sizeof(comm), f)) comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        if (strcmp(comm, name) != 0) continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
        if (!(f = fopen(path, "r"))) continue;
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &found) == 1) break;
        fclose(f);
    }
    closedir(d);
    return found;
}

/* Opens a replication stream from position since and sends its request; rcvbuf > 0 fixes the
 * socket's receive buffer at that size (the kernel's autotuning would take 30 MB on loopback). */
static int stream_open_buf(fz_server *z, uint64_t since, int rcvbuf);
static int stream_open(fz_server *z, uint64_t since)
{
    return stream_open_buf(z, since, 0);
}

static int stream_open_buf(fz_server *z, uint64_t since, int rcvbuf)
{
    char req[256];
    int nreq = snprintf(req, sizeof(req),
                        "GET /edgeflag/v1/replication/stream?since=%" PRIu64 " HTTP/1.1\r\nHost: x\r\n"
                        "Authorization: Bearer " FZ_BOOTSTRAP "\r\n\r\n",
                        since);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0) assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(z->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, req, (size_t)nreq, MSG_NOSIGNAL), nreq);
    return fd;
}

/* A stream's body as the client sees it: the raw bytes read (HTTP/1.1, chunked) and the body
 * decoded from them so far. A dump spans chunks, so the raw bytes hold chunk sizes in it. */
typedef struct body_reader {
    int fd;
    char raw[1 << 18];
    size_t rawlen, pos; /* pos: where the next chunk starts in raw (0: headers not seen yet) */
    char body[1 << 18];
    size_t bodylen;
} body_reader;

/* Decodes every complete chunk read so far into r->body. */
static void dechunk(body_reader *r)
{
    if (r->pos == 0) {
        char *h = memmem(r->raw, r->rawlen, "\r\n\r\n", 4);
        if (!h) return;
        r->pos = (size_t)(h - r->raw) + 4;
    }
    for (;;) {
        char *crlf = memmem(r->raw + r->pos, r->rawlen - r->pos, "\r\n", 2);
        if (!crlf) return;
        size_t size = strtoul(r->raw + r->pos, NULL, 16), at = (size_t)(crlf - r->raw) + 2;
        if (at + size + 2 > r->rawlen) return; /* not all here yet */
        assert_true(r->bodylen + size < sizeof(r->body));
        memcpy(r->body + r->bodylen, r->raw + at, size);
        r->bodylen += size;
        r->body[r->bodylen] = '\0';
        r->pos = at + size + 2;
    }
}

/* Reads until the decoded body holds needle (5 s at most, then the test fails). */
static void body_until(body_reader *r, const char *needle)
{
    for (dechunk(r); !strstr(r->body, needle); dechunk(r)) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1);
        assert_true(r->rawlen + 1 < sizeof(r->raw));
        ssize_t n = recv(r->fd, r->raw + r->rawlen, sizeof(r->raw) - 1 - r->rawlen, 0);
        assert_true(n > 0);
        r->rawlen += (size_t)n;
    }
}

/* A replication stream from the node's current position, past its handshake (the first
 * heartbeat comes from the feed thread's first full round). */
static void subscribe(fz_server *z, body_reader *r)
{
    *r = (body_reader){.fd = stream_open(z, fz_seq(z))};
    body_until(r, "event: heartbeat");
}

static void write_flag(fz_server *z, const char *key)
{
    char ans[8192], json[160];
    const char *body;
    snprintf(json, sizeof(json), "{\"key\":\"%s\",\"name\":\"n\",\"type\":\"BOOLEAN_FLAG_TYPE\",\"enabled\":true}", key);
    assert_int_equal(fz_setup_call(z, "POST", "/api/v1/namespaces/default/flags", json, ans, sizeof(ans), &body), 200);
}

static void test_writes_reach_the_stream_without_waking_the_feed(void **state)
{
    (void)state;
    fz_server *z = node;
    static body_reader rd;
    subscribe(z, &rd);
    size_t from = 0; /* where the last entry read starts in rd.body: the next one comes after */

    long before = thread_switches("ef-feed");
    assert_true(before >= 0);
    int64_t t0 = ef_clock_mono_ns();
    char want[64], key[32];
    for (int i = 0; i < WRITES; i++) {
        snprintf(key, sizeof(key), "inline%d", i);
        write_flag(z, key);
        /* the entry of this write, under its own id: nothing skipped, nothing out of order */
        snprintf(want, sizeof(want), "id: %" PRIu64 "\nevent: txn\n", fz_seq(z));
        body_until(&rd, want);
        snprintf(key, sizeof(key), "\"inline%d\"", i);
        body_until(&rd, key);
        char *at = strstr(rd.body + from, want);
        assert_non_null(at); /* after the previous entry */
        assert_non_null(strstr(at, key)); /* its data follows its id */
        from = (size_t)(at - rd.body);
    }
    long wakes = thread_switches("ef-feed") - before;
    long timed = 2 * (long)((ef_clock_mono_ns() - t0) / (EF_FEED_ROUND_MS * 1000000LL) + 1);
    print_message("feed thread woke %ld times for %d writes (timed rounds allowed: %ld)\n", wakes,
                  WRITES, timed);
    assert_true(wakes - timed < WRITES / 4);

    /* Twenty subscribers: the feed thread queues, and every stream gets every entry in order. */
    static body_reader many[MANY];
    for (int k = 0; k < MANY; k++) subscribe(z, &many[k]);
    uint64_t first = fz_seq(z) + 1;
    for (int i = 0; i < MANY_WRITES; i++) {
        snprintf(key, sizeof(key), "many%d", i);
        write_flag(z, key);
    }
    for (int k = 0; k < MANY; k++) {
        char *at = many[k].body;
        for (int i = 0; i < MANY_WRITES; i++) {
            snprintf(want, sizeof(want), "id: %" PRIu64 "\nevent: txn\n", first + (uint64_t)i);
            snprintf(key, sizeof(key), "\"many%d\"", i);
            body_until(&many[k], key);
            at = strstr(at, want);
            assert_non_null(at); /* after the previous entry: in order */
            assert_non_null(strstr(at, key));
        }
        close(many[k].fd);
    }
    close(rd.fd);
}

/* Followers starting empty (since=0) get the full dump as one reset event. The feed writes the
 * dump straight into that event, which becomes a shared block every follower needing a dump
 * then reads (src/base/shared.h); a follower of a later round gets the same block while it is
 * fresh (the feed's dump_reuse_ms, 1 s here; BATCH_MAX entries), and the entries after it. Every one must read the
 * same complete dump, then the entries after it. In each of ROUNDS bursts, the first follower
 * connects, and the others right after: they share its round's dump, or get it again in a later
 * round. The write before each burst reaches every follower, in the dump or as an entry after it. */
static void test_bootstrapping_followers_get_the_same_dump(void **state)
{
    (void)state;
    fz_server *z = node;
    char key[32], want[40];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "bulk%d", i);
        write_flag(z, key);
    }
    enum { N = 4, ROUNDS = 3 };
    static body_reader rd[N];
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(key, sizeof(key), "before_dump%d", round);
        write_flag(z, key);
        snprintf(want, sizeof(want), "\"%s\"", key);
        rd[0] = (body_reader){.fd = stream_open(z, 0)};
        body_until(&rd[0], ": connected");
        for (int k = 1; k < N; k++) rd[k] = (body_reader){.fd = stream_open(z, 0)};
        const char *dumps[N];
        size_t dlen[N];
        for (int k = 0; k < N; k++) {
            body_until(&rd[k], "event: heartbeat");
            char *d = strstr(rd[k].body, "event: reset\ndata: {\"seq\":");
            assert_non_null(d);
            char *end = strstr(d, "\n\n");
            assert_non_null(end);
            dumps[k] = d;
            dlen[k] = (size_t)(end - d);
            const size_t head = strlen("event: reset\ndata: ");
            assert_null(memchr(d + head, '\n', dlen[k] - head)); /* one data line, then its end */
            body_until(&rd[k], want); /* in the dump, or an entry after a dump given again */
            if (k) {
                assert_int_equal(dlen[k], dlen[0]);
                assert_memory_equal(dumps[k], dumps[0], dlen[0]);
            }
        }
        /* and each stream goes on past the dump */
        snprintf(key, sizeof(key), "after_dump%d", round);
        write_flag(z, key);
        snprintf(want, sizeof(want), "\"%s\"", key);
        for (int k = 0; k < N; k++) {
            body_until(&rd[k], want);
            close(rd[k].fd);
        }
    }
}

/* A number from the node's /metrics: the value on the line that starts with name and a space. */
static double metric(fz_server *z, const char *name)
{
    static char ans[1 << 17];
    const char *body;
    assert_int_equal(fz_setup_call(z, "GET", "/metrics", "", ans, sizeof(ans), &body), 200);
    char pat[128];
    snprintf(pat, sizeof(pat), "\n%s ", name);
    const char *at = strstr(body, pat);
    assert_non_null(at);
    return strtod(at + strlen(pat), NULL);
}

/* One dump for followers that come one after another: the second and third, connecting within
 * the reuse window (1 s here) with no write in between, read the first one's block (the same bytes, no dump
 * built), and one connecting after that gets a new one. Once every stream has sent it and the
 * feed's own reference has aged out, no dump is held in memory. */
static void test_a_dump_is_built_once_and_shared(void **state)
{
    (void)state;
    fz_server *z = node;
    usleep(REUSE_PAST_US); /* the last test's dump ages out */
    write_flag(z, "shared_dump");
    double built = metric(z, "edgeflag_replication_dumps_built_total");
    double reused = metric(z, "edgeflag_replication_dumps_reused_total");
    static body_reader rd[4];
    const char *dump[4];
    size_t dlen[4];
    for (int k = 0; k < 4; k++) {
        if (k == 3) usleep(REUSE_PAST_US); /* past the reuse window */
        rd[k] = (body_reader){.fd = stream_open(z, 0)};
        body_until(&rd[k], "event: heartbeat");
        dump[k] = strstr(rd[k].body, "event: reset\ndata: {\"seq\":");
        assert_non_null(dump[k]);
        const char *end = strstr(dump[k], "\n\n");
        assert_non_null(end);
        dlen[k] = (size_t)(end - dump[k]);
        assert_non_null(memmem(dump[k], dlen[k], "\"shared_dump\"", 13));
        if (k) {
            assert_int_equal(dlen[k], dlen[0]);
            assert_memory_equal(dump[k], dump[0], dlen[0]);
        }
        if (k == 2) { /* three followers, one dump built */
            assert_true(metric(z, "edgeflag_replication_dumps_built_total") == built + 1);
            assert_true(metric(z, "edgeflag_replication_dumps_reused_total") >= reused + 1);
        }
    }
    assert_true(metric(z, "edgeflag_replication_dumps_built_total") == built + 2);
    for (int k = 0; k < 4; k++) close(rd[k].fd);
    /* the feed drops its reference in a timed round once the dump is past the window */
    int64_t until = ef_clock_mono_ns() + 10 * 1000000000LL;
    while (metric(z, "edgeflag_replication_dumps_live") != 0 && ef_clock_mono_ns() < until) usleep(100 * 1000);
    assert_true(metric(z, "edgeflag_replication_dumps_live") == 0);
}

/* A flag whose description is n bytes: what makes a dump larger than a socket takes. */
static void write_big_flag(fz_server *z, const char *key, size_t n)
{
    size_t cap = n + 1024;
    char *req = malloc(cap), ans[4096];
    assert_non_null(req);
    char head[512];
    int bl = snprintf(head, sizeof(head), "{\"key\":\"%s\",\"name\":\"n\",\"type\":\"BOOLEAN_FLAG_TYPE\",\"description\":\"", key);
    size_t body_len = (size_t)bl + n + 2;
    int hl = snprintf(req, cap,
                      "POST /api/v1/namespaces/default/flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " FZ_BOOTSTRAP
                      "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      body_len, head);
    memset(req + hl, 'd', n);
    memcpy(req + hl + n, "\"}", 2);
    size_t got = fz_exchange(z->port, req, (size_t)hl + n + 2, ans, sizeof(ans), 5000, 200);
    assert_int_equal(fz_status(ans, got), 200);
    free(req);
}

/* Followers that stop reading keep the dump they were sent alive (for as long as the server
 * keeps their connection: its idle timeout, 30 s here), and each one coming more than
 * the reuse window after the last dump was built would pin a new one: past DUMPS_LIVE_MAX (2) alive,
 * a follower that needs a dump waits for one to be sent (heartbeats meanwhile), and gets its dump
 * as soon as a stream lets one go. The dumps here (11 MB) are larger than the server's socket
 * buffer (4 MB at most) and the readers' (fixed at 64 KiB) hold. */
static void test_dumps_in_memory_are_bounded(void **state)
{
    (void)state;
    fz_server *z = node;
    char key[32];
    for (int i = 0; i < BIG_FLAGS; i++) {
        snprintf(key, sizeof(key), "big%d", i);
        write_big_flag(z, key, 900 * 1000);
    }
    usleep(REUSE_PAST_US); /* the last test's dump ages out */
    double built = metric(z, "edgeflag_replication_dumps_built_total");
    int fd[2];
    for (int k = 0; k < 2; k++) { /* two followers that read nothing: two dumps alive */
        fd[k] = stream_open_buf(z, 0, 64 << 10);
        int64_t until = ef_clock_mono_ns() + 10 * 1000000000LL;
        while (metric(z, "edgeflag_replication_dumps_built_total") < built + k + 1 && ef_clock_mono_ns() < until)
            usleep(50 * 1000);
        assert_true(metric(z, "edgeflag_replication_dumps_built_total") == built + k + 1);
        usleep(REUSE_PAST_US); /* no reuse for the next one */
    }
    assert_true(metric(z, "edgeflag_replication_dumps_live") == 2);
    static body_reader c;
    c = (body_reader){.fd = stream_open(z, 0)};
    body_until(&c, "event: heartbeat"); /* a dump sent now would overflow the reader's 256 KiB */
    usleep(600 * 1000); /* two timed rounds (EF_FEED_ROUND_MS): none builds a third */
    assert_true(metric(z, "edgeflag_replication_dumps_built_total") == built + 2);
    assert_true(metric(z, "edgeflag_replication_dumps_live") == 2);
    dechunk(&c);
    assert_null(strstr(c.body, "event: reset"));
    close(fd[0]); /* its stream ends and lets its dump go */
    body_until(&c, "event: reset\ndata: {\"seq\":");
    assert_true(metric(z, "edgeflag_replication_dumps_built_total") == built + 3);
    close(fd[1]);
    close(c.fd);
}

/* test_a_trickled_dump_is_cut reads the node's warnings from a file standing in for stderr; this
 * puts stderr back (and the log level), also from the test's teardown when an assertion ended it
 * early, so a failure is reported where it can be read. 0, or -1 if dup2 failed. */
static int saved_stderr = -1;
static int stderr_restore(void)
{
    if (saved_stderr < 0) return 0;
    ef_log_set_level(EF_LOG_ERROR);
    fflush(stderr);
    int rc = dup2(saved_stderr, 2) == 2 ? 0 : -1;
    close(saved_stderr);
    saved_stderr = -1;
    return rc;
}

static int restore_stderr(void **state)
{
    (void)state;
    return stderr_restore();
}

/* Reads what is there on each of fds, at most 1 KiB each: a trickle. */
static void trickle(const int *fds, int n)
{
    char buf[1024];
    for (int k = 0; k < n; k++) (void)!recv(fds[k], buf, sizeof(buf), MSG_DONTWAIT);
}

/* Trickles on fds for ms milliseconds, 20 KiB/s each. */
static void trickle_for(const int *fds, int n, int64_t ms)
{
    for (int64_t t = ef_clock_mono_ns() + ms * 1000000; ef_clock_mono_ns() < t;) {
        trickle(fds, n);
        usleep(50 * 1000);
    }
}

/* Followers that take their dump a trickle at a time (20 KiB/s, so the server's idle timeout
 * never sees them silent) are cut once the dump's allowance is spent: the grace plus its length at
 * the minimum rate (ef_http_stream_pace; 3 s and 16 MiB/s here, the defaults are 30 s and 1 MiB/s),
 * and not before the grace. Their dumps are then let go. The cut is seen on the node (its
 * downstream streams and dumps in memory): the kernel still holds bytes the node had sent, which
 * a trickle takes minutes to read before it sees the end. A follower reading at loopback speed
 * gets its dump and keeps its stream past the allowance. */
static void test_a_trickled_dump_is_cut(void **state)
{
    (void)state;
    fz_server *z = node;
    ef_sync_config *cfg = &z->node.sync->cfg;
    enum { GRACE_S = 3 }; /* past the second dump's build, however slow the machine */
    __atomic_store_n(&cfg->dump_min_rate, (uint64_t)16 << 20, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->dump_grace_s, (unsigned)GRACE_S, __ATOMIC_RELAXED);
    char key[32];
    for (int i = 0; i < BIG_FLAGS; i++) { /* the dumps outgrow every socket buffer on the way */
        snprintf(key, sizeof(key), "trickled%d", i);
        write_big_flag(z, key, 900 * 1000);
    }
    usleep(REUSE_PAST_US); /* the last test's dump ages out */
    double built = metric(z, "edgeflag_replication_dumps_built_total");
    double streams = metric(z, "edgeflag_replication_downstream_streams");
    /* the node's warnings, into a file for the while: each cut says why */
    char logpath[] = "/tmp/test_feed_inline.log.XXXXXX";
    int logfd = mkstemp(logpath);
    assert_true(logfd >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0 && dup2(logfd, 2) == 2);
    ef_log_set_level(EF_LOG_WARN);
    int fd[2];
    int64_t opened = ef_clock_mono_ns();
    for (int k = 0; k < 2; k++) {
        fd[k] = stream_open_buf(z, 0, 64 << 10);
        int64_t until = ef_clock_mono_ns() + 10 * 1000000000LL;
        while (metric(z, "edgeflag_replication_dumps_built_total") < built + k + 1 && ef_clock_mono_ns() < until)
            trickle_for(fd, k + 1, 50);
        assert_true(metric(z, "edgeflag_replication_dumps_built_total") == built + k + 1);
        if (!k) trickle_for(fd, 1, REUSE_PAST_US / 1000); /* past the reuse window: a dump of its own */
    }
    assert_true(metric(z, "edgeflag_replication_dumps_live") == 2);
    assert_true(metric(z, "edgeflag_replication_downstream_streams") == streams + 2); /* not before the grace */
    int64_t until = ef_clock_mono_ns() + 20 * 1000000000LL;
    while (metric(z, "edgeflag_replication_downstream_streams") > streams && ef_clock_mono_ns() < until)
        trickle_for(fd, 2, 100);
    assert_true(metric(z, "edgeflag_replication_downstream_streams") == streams); /* cut, where the idle timeout (30 s) would not */
    assert_true(ef_clock_mono_ns() - opened >= (int64_t)GRACE_S * 1000000000LL);
    assert_int_equal(stderr_restore(), 0);
    static char logs[1 << 16];
    ssize_t nlog = pread(logfd, logs, sizeof(logs) - 1, 0);
    assert_true(nlog > 0);
    logs[nlog] = '\0';
    close(logfd);
    unlink(logpath);
    int said = 0;
    for (const char *l = logs; (l = strstr(l, "did not take its dump at sync-dump-min-rate")); l++) said++;
    assert_int_equal(said, 2);
    until = ef_clock_mono_ns() + 10 * 1000000000LL; /* the feed lets its own reference go too */
    while (metric(z, "edgeflag_replication_dumps_live") != 0 && ef_clock_mono_ns() < until) usleep(100 * 1000);
    assert_true(metric(z, "edgeflag_replication_dumps_live") == 0);
    for (int k = 0; k < 2; k++) close(fd[k]);
    /* a reader at full speed: its dump, and its stream still open well past the allowance */
    int c = stream_open(z, 0);
    int64_t end = ef_clock_mono_ns() + (GRACE_S + 2) * 1000000000LL;
    size_t total = 0;
    static char buf[1 << 16];
    while (ef_clock_mono_ns() < end) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 200) != 1) continue;
        ssize_t got = recv(c, buf, sizeof(buf), 0);
        assert_true(got > 0);
        total += (size_t)got;
    }
    assert_true(total > (size_t)BIG_FLAGS * 900 * 1000); /* the dump came whole */
    assert_true(metric(z, "edgeflag_replication_downstream_streams") == streams + 1);
    close(c);
    __atomic_store_n(&cfg->dump_min_rate, (uint64_t)0, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->dump_grace_s, 0u, __ATOMIC_RELAXED);
}

static int node_start(void **state)
{
    (void)state;
    fz_idle_timeout_s = 30; /* test_dumps_in_memory_are_bounded: followers that read nothing stay */
    fz_dump_reuse_ms = REUSE_MS; /* the tests wait past it: 1 s, not the default 2 s */
    node = fz_start(); /* one per process (the fuzz targets' node): shared by the tests */
    return 0;
}

int main(void)
{
    (void)fz_send_checked; /* the fuzz targets' input path, not used here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_reach_the_stream_without_waking_the_feed),
        cmocka_unit_test(test_bootstrapping_followers_get_the_same_dump),
        cmocka_unit_test(test_a_dump_is_built_once_and_shared),
        cmocka_unit_test(test_dumps_in_memory_are_bounded),
        cmocka_unit_test_teardown(test_a_trickled_dump_is_cut, restore_stderr),
    };
    return cmocka_run_group_tests(tests, node_start, NULL);
}
