/*
 * test_client_server.c - libedgeflag against a real node (`edgeflag serve`, path in argv[1]):
 *   - bootstrap from the snapshot endpoint: variant answer with attachment and segment keys;
 *   - an update on the primary reaches a streaming client (and its change callback) quickly, and
 *     a polling-only client too (ETags: unchanged polls are 304s and publish nothing);
 *   - a write that leaves the document as it was still moves the version on: both clients reach it
 *     (ef_client_wait) without publishing anything;
 *   - tokens: a refused token shows as EF_EAUTH, the right one works;
 *   - several threads evaluate without pause while the flag is toggled many times: every answer
 *     is one of the two valid ones, and both are seen (run under TSan in the TSan build);
 *   - the node stops; a new client with the same cache file evaluates at once, offline.
 * Every expectation is a CHECK that exits non-zero; the test must never be skipped when the server
 * cannot start (that is a failure too).
 */
#include <pthread.h>

#include "edgeflag.h"
#include "helper.h"

#define NS "/api/v1/namespaces/default"

static const char *bin;
static char dir[64];

typedef struct changes {
    pthread_mutex_t mu;
    uint64_t last_version;
    unsigned count;
} changes;

static void on_change(ef_client *c, uint64_t version, void *ud)
{
    (void)c;
    changes *ch = ud;
    pthread_mutex_lock(&ch->mu);
    ch->last_version = version;
    ch->count++;
    pthread_mutex_unlock(&ch->mu);
}

static uint64_t current_version(ef_client *c)
{
    ef_status st;
    CHECK_EQ_INT(ef_client_status(c, &st), EF_OK);
    return st.version;
}

static bool boolean_of(ef_client *c, const char *flag)
{
    ef_result r;
    CHECK_EQ_INT(ef_client_boolean(c, flag, "u1", NULL, 0, &r), EF_OK);
    bool v = r.enabled;
    ef_result_release(&r);
    return v;
}

/* Toggles the boolean flag on the primary; returns when the write has committed. */
static void set_enabled(const char *url, bool on)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"name\":\"b\",\"type\":\"BOOLEAN_FLAG_TYPE\",\"enabled\":%s}",
             on ? "true" : "false");
    api(url, "PUT", NS "/flags/b", body, 200, NULL, NULL, 0);
}

/* Waits until the client evaluates the boolean flag as `want`, returns the time it took. */
static int64_t wait_boolean(ef_client *c, bool want, unsigned timeout_ms)
{
    int64_t t0 = ef_clock_mono_ns();
    while (boolean_of(c, "b") != want) {
        CHECK(ef_clock_mono_ns() - t0 < (int64_t)timeout_ms * 1000000);
        sleep_ms(1);
    }
    return ef_clock_mono_ns() - t0;
}

static void create_flags(const char *url)
{
    char variant_id[64], rule_id[64], body[256], path[256];
    api(url, "POST", NS "/flags",
        "{\"key\":\"color\",\"name\":\"color\",\"type\":\"VARIANT_FLAG_TYPE\",\"enabled\":true}", 200,
        NULL, NULL, 0);
    api(url, "POST", NS "/flags/color/variants",
        "{\"key\":\"red\",\"name\":\"red\",\"attachment\":\"{\\\"x\\\":1}\"}", 200, "id", variant_id,
        sizeof(variant_id));
    api(url, "POST", NS "/segments",
        "{\"key\":\"everyone\",\"name\":\"everyone\",\"matchType\":\"ALL_MATCH_TYPE\"}", 200, NULL,
        NULL, 0);
    api(url, "POST", NS "/flags/color/rules", "{\"segmentKey\":\"everyone\",\"rank\":1}", 200, "id",
        rule_id, sizeof(rule_id));
    snprintf(path, sizeof(path), NS "/flags/color/rules/%s/distributions", rule_id);
    snprintf(body, sizeof(body), "{\"variantId\":\"%s\",\"rollout\":100}", variant_id);
    api(url, "POST", path, body, 200, NULL, NULL, 0);
    api(url, "POST", NS "/flags",
        "{\"key\":\"b\",\"name\":\"b\",\"type\":\"BOOLEAN_FLAG_TYPE\",\"enabled\":false}", 200, NULL,
        NULL, 0);
}

static void check_color(ef_client *c)
{
    ef_pair ctx[] = {ef_pair_of("plan", "pro"), ef_pair_of("country", "NZ")};
    ef_result r;
    CHECK_EQ_INT(ef_client_variant(c, "color", "user-1", ctx, 2, &r), EF_OK);
    CHECK(r.match);
    CHECK_EQ_INT(r.reason, EF_RESULT_MATCH);
    CHECK_STRN(r.variant_key, r.variant_key_len, "red");
    CHECK_STRN(r.attachment, r.attachment_len, "{\"x\":1}");
    CHECK_EQ_INT(r.segment_count, 1);
    size_t n;
    const char *k = ef_result_segment(&r, 0, &n);
    CHECK_STRN(k, n, "everyone");
    ef_result_release(&r);
}

/* ---- threads evaluating through updates ----------------------------------------------------- */

typedef struct hammer {
    ef_client *c;
    int stop; /* atomic */
    long evaluations, seen_on, seen_off;
    int failures;
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    ef_pair ctx[] = {ef_pair_of("plan", "pro")};
    while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
        ef_result r;
        if (ef_client_boolean(h->c, "b", "u", ctx, 1, &r) != EF_OK) {
            h->failures++;
            continue;
        }
        if (r.reason != EF_RESULT_DEFAULT) h->failures++;
        if (r.enabled) h->seen_on++;
        else h->seen_off++;
        ef_result_release(&r);
        if (ef_client_variant(h->c, "color", "u", ctx, 1, &r) != EF_OK) {
            h->failures++;
            continue;
        }
        size_t n;
        const char *k = ef_result_segment(&r, 0, &n);
        if (!r.match || r.variant_key_len != 3 || memcmp(r.variant_key, "red", 3) != 0 || !k ||
            n != 8 || memcmp(k, "everyone", 8) != 0)
            h->failures++;
        ef_result_release(&r);
        h->evaluations += 2;
    }
    return NULL;
}

static void test_threads_through_updates(const char *url, ef_client *c)
{
    enum { THREADS = 4, TOGGLES = 20 };
    hammer hs[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        hs[i] = (hammer){.c = c};
        CHECK(pthread_create(&t[i], NULL, hammer_main, &hs[i]) == 0);
    }
    bool on = boolean_of(c, "b");
    for (int i = 0; i < TOGGLES; i++) {
        on = !on;
        set_enabled(url, on);
        wait_boolean(c, on, 10000);
    }
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        __atomic_store_n(&hs[i].stop, 1, __ATOMIC_RELEASE);
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(hs[i].failures, 0);
        total += hs[i].evaluations;
        CHECK(hs[i].evaluations > 0);
    }
    long on_seen = 0, off_seen = 0;
    for (int i = 0; i < THREADS; i++) on_seen += hs[i].seen_on, off_seen += hs[i].seen_off;
    CHECK(on_seen > 0 && off_seen > 0);
    printf("threads: %d x evaluating through %d updates: %ld evaluations, all valid\n", THREADS,
           TOGGLES, total);
}

/* ---- a version with the same document ---------------------------------------------------------- */

static size_t version_header(char *p, size_t size, size_t n, void *ud)
{
    size_t len = size * n;
    if (len > 19 && strncasecmp(p, "X-Edgeflag-Version:", 19) == 0)
        *(uint64_t *)ud = strtoull(p + 19, NULL, 10);
    return len;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

/* The version the node's snapshot endpoint answers now. */
static uint64_t node_version(const char *url)
{
    char u[256];
    snprintf(u, sizeof(u), "%s/internal/v1/evaluation/snapshot/namespace/default", url);
    uint64_t v = 0;
    CURL *e = curl_easy_init();
    CHECK(e != NULL);
    curl_easy_setopt(e, CURLOPT_URL, u);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, version_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &v);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    CHECK(curl_easy_perform(e) == CURLE_OK);
    curl_easy_cleanup(e);
    CHECK(v > 0);
    return v;
}

/* A write that leaves the namespace's snapshot document as it was (a segment no rule uses) still
 * moves its version on: the stream announces the new version with the same ETag and the snapshot
 * endpoint answers 304 with it. The client holds that version's state, so ef_client_wait for it
 * (read-your-writes after a write answered with that X-Edgeflag-Version) must return at once; the
 * old client ignored a 304's version and timed out with its state current. Nothing new is
 * published: the document did not change. */
static void test_version_without_document_change(const char *url, ef_client *c, ef_client *pc)
{
    ef_status before, pbefore, st;
    ef_client_status(c, &before);
    ef_client_status(pc, &pbefore);
    api(url, "POST", NS "/segments",
        "{\"key\":\"unused\",\"name\":\"unused\",\"matchType\":\"ALL_MATCH_TYPE\"}", 200, NULL,
        NULL, 0);
    uint64_t v = node_version(url);
    CHECK(v > before.version);
    printf("version without a document change: node at %llu, client at %llu\n",
           (unsigned long long)v, (unsigned long long)before.version);
    CHECK_EQ_INT(ef_client_wait(c, v, 5000), EF_OK);  /* streaming: the change event, then 304 */
    CHECK_EQ_INT(ef_client_wait(pc, v, 5000), EF_OK); /* polling: the next 304 */
    ef_client_status(c, &st);
    CHECK_EQ_INT(st.version, v);
    CHECK_EQ_INT(st.updates, before.updates);
    CHECK_EQ_INT(st.source, EF_SOURCE_NODE);
    ef_client_status(pc, &st);
    CHECK_EQ_INT(st.version, v);
    CHECK_EQ_INT(st.updates, pbefore.updates);
    check_color(c);
    check_color(pc);
}

/* ---- the scenarios ------------------------------------------------------------------------------ */

static void test_auth(void)
{
    char db[128];
    snprintf(db, sizeof(db), "%s/auth.db", dir);
    const char *args[] = {"--db", db, "--auth-token", "s3cret", NULL};
    test_server s;
    server_start(&s, bin, args);
    ef_client_options o = {.url = s.url, .token = "wrong", .timeout_ms = 2000};
    ef_client *c;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    CHECK_EQ_INT(ef_client_wait(c, 0, 500), EF_ETIMEDOUT);
    ef_status st;
    ef_client_status(c, &st);
    CHECK_EQ_INT(st.last_error, EF_EAUTH);
    CHECK(!st.connected);
    ef_client_close(c);
    o.token = "s3cret";
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    CHECK_EQ_INT(ef_client_wait(c, 0, 5000), EF_OK);
    ef_client_status(c, &st);
    CHECK_EQ_INT(st.source, EF_SOURCE_NODE);
    ef_client_close(c);
    server_stop(&s);
}

int main(int argc, char **argv)
{
    CHECK(argc == 2);
    bin = argv[1];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    temp_dir(dir, sizeof(dir));
    char db[128], cache[128], poll_cache[128];
    snprintf(db, sizeof(db), "%s/primary.db", dir);
    snprintf(cache, sizeof(cache), "%s/client.cache", dir);
    snprintf(poll_cache, sizeof(poll_cache), "%s/poll.cache", dir);
    const char *args[] = {"--db", db, NULL};
    test_server s;
    server_start(&s, bin, args);
    create_flags(s.url);

    /* a streaming client with a cache file and a change callback */
    changes ch = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ef_client_options o = {.url = s.url, .cache_path = cache, .on_change = on_change,
                           .userdata = &ch};
    ef_client *c;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    CHECK_EQ_INT(ef_client_wait(c, 0, 10000), EF_OK);
    check_color(c);
    CHECK(!boolean_of(c, "b"));
    ef_status st;
    int64_t until = ef_clock_mono_ns() + 10000 * (int64_t)1000000;
    do {
        ef_client_status(c, &st);
        if (st.streaming) break;
        sleep_ms(5);
    } while (ef_clock_mono_ns() < until);
    CHECK(st.streaming && st.connected);
    CHECK_EQ_INT(st.source, EF_SOURCE_NODE);
    CHECK_EQ_INT(st.flag_count, 2);
    CHECK(st.version > 0);
    CHECK(st.age_ms >= 0 && st.age_ms < 10000);

    /* a polling-only client next to it */
    ef_client_options po = {.url = s.url, .cache_path = poll_cache, .disable_stream = true,
                            .poll_interval_ms = 100};
    ef_client *pc;
    CHECK_EQ_INT(ef_client_open(&po, &pc), EF_OK);
    CHECK_EQ_INT(ef_client_wait(pc, 0, 10000), EF_OK);
    check_color(pc);
    sleep_ms(400); /* several polls of an unchanged namespace: 304s, nothing republished */
    ef_client_status(pc, &st);
    CHECK_EQ_INT(st.updates, 1);
    CHECK(!st.streaming && st.connected);

    /* an update on the primary reaches both */
    uint64_t v0 = current_version(c);
    pthread_mutex_lock(&ch.mu);
    unsigned changes_before = ch.count;
    pthread_mutex_unlock(&ch.mu);
    set_enabled(s.url, true);
    int64_t push_ns = wait_boolean(c, true, 5000);
    int64_t poll_ns = wait_boolean(pc, true, 5000);
    printf("update seen: push %.1f ms, polling %.1f ms\n", push_ns / 1e6, poll_ns / 1e6);
    CHECK(current_version(c) > v0);
    until = ef_clock_mono_ns() + 5000 * (int64_t)1000000;
    for (;;) { /* the callback runs just after the state became visible */
        pthread_mutex_lock(&ch.mu);
        bool called = ch.count > changes_before && ch.last_version == current_version(c);
        pthread_mutex_unlock(&ch.mu);
        if (called) break;
        CHECK(ef_clock_mono_ns() < until);
        sleep_ms(1);
    }
    CHECK_EQ_INT(ef_client_wait(c, current_version(c), 0), EF_OK);

    /* the polling client at the same version (its status, updates included, is set just after
     * its new state became visible to evaluation) */
    CHECK_EQ_INT(ef_client_wait(pc, current_version(c), 5000), EF_OK);
    test_version_without_document_change(s.url, c, pc);

    /* two clients in one process, independent; threads evaluate through a series of updates */
    test_threads_through_updates(s.url, c);
    wait_boolean(pc, boolean_of(c, "b"), 5000);
    bool last = boolean_of(c, "b");
    ef_client_close(pc);
    ef_client_close(c);

    test_auth();

    /* the node goes away; a process starting now evaluates from the cache file at once */
    server_stop(&s);
    ef_client_options off = {.url = s.url, .cache_path = cache, .timeout_ms = 500};
    CHECK_EQ_INT(ef_client_open(&off, &c), EF_OK);
    CHECK_EQ_INT(ef_client_wait(c, 0, 0), EF_OK);
    CHECK(boolean_of(c, "b") == last);
    check_color(c);
    ef_client_status(c, &st);
    CHECK_EQ_INT(st.source, EF_SOURCE_CACHE);
    CHECK_EQ_INT(st.cache_status, EF_OK);
    ef_client_close(c);

    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    curl_global_cleanup();
    printf("test_client_server: ok\n");
    return 0;
}
