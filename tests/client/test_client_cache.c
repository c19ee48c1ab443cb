/*
 * test_client_cache.c - the cache file and offline start, without a node: a valid file makes a
 * client ready at once (the node's URL refuses connections); a truncated, bit-flipped, foreign or
 * unknown-format file is rejected with its own status and never evaluated, and so, at once and
 * without reading it, is a FIFO or an oversized file at the cache path. Also: the cache file's
 * round trip, atomic replacement (no temp file left), argument errors, prompt close.
 */
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "client/cache.h"
#include "edgeflag.h"
#include "helper.h"

/* Nothing listens on port 1 of the loopback: connections are refused at once. */
#define DEAD_URL "http://127.0.0.1:1"

static const char DOC[] =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"b\",\"name\":\"b\",\"enabled\":true,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":[]},"
    "{\"key\":\"v\",\"name\":\"v\",\"enabled\":true,\"type\":\"VARIANT_FLAG_TYPE\",\"rules\":["
    "{\"segmentOperator\":\"OR_SEGMENT_OPERATOR\",\"segments\":[{\"key\":\"all\","
    "\"matchType\":\"ALL_MATCH_TYPE\",\"constraints\":[]}],"
    "\"distributions\":[{\"variantKey\":\"red\",\"rollout\":100,\"variantAttachment\":\"{\\\"x\\\":1}\"}]}]}]}";

static char dir[64];

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void write_raw(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(data, 1, len, f) == len);
    fclose(f);
}

static char *read_raw(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    CHECK(p && fread(p, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void test_round_trip(void)
{
    char p[128];
    path_of(p, sizeof(p), "rt.cache");
    CHECK_EQ_INT(ef_cache_write(p, 7, "abc", DOC, sizeof(DOC) - 1, 1234), EF_OK);
    ef_cache_entry e;
    CHECK_EQ_INT(ef_cache_read(p, &e), EF_OK);
    CHECK_EQ_INT(e.version, 7);
    CHECK_EQ_INT(e.saved_ns, 1234);
    CHECK(strcmp(e.etag, "abc") == 0);
    CHECK_STRN(e.doc, e.doc_len, DOC);
    ef_cache_entry_free(&e);
    /* replaced atomically: a second write leaves one file, no temp files behind */
    CHECK_EQ_INT(ef_cache_write(p, 8, "", DOC, sizeof(DOC) - 1, 5), EF_OK);
    CHECK_EQ_INT(ef_cache_read(p, &e), EF_OK);
    CHECK_EQ_INT(e.version, 8);
    CHECK(e.etag[0] == '\0');
    ef_cache_entry_free(&e);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    int tmp_files = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (strstr(de->d_name, "rt.cache.")) tmp_files++;
    closedir(d);
    CHECK_EQ_INT(tmp_files, 0);
    path_of(p, sizeof(p), "missing.cache");
    CHECK_EQ_INT(ef_cache_read(p, &e), EF_ECACHE_MISSING);
}

/* Every shorter prefix and every single flipped byte is rejected. */
static void test_reader_rejects_damage(void)
{
    char good[128], bad[128];
    path_of(good, sizeof(good), "good.cache");
    path_of(bad, sizeof(bad), "bad.cache");
    CHECK_EQ_INT(ef_cache_write(good, 3, "etag-1", DOC, sizeof(DOC) - 1, 1), EF_OK);
    size_t len;
    char *raw = read_raw(good, &len);
    ef_cache_entry e;
    for (size_t cut = 0; cut < len; cut++) {
        write_raw(bad, raw, cut);
        CHECK_EQ_INT(ef_cache_read(bad, &e), EF_ECACHE_CORRUPT);
    }
    for (size_t i = 0; i < len; i++) {
        raw[i] ^= 0x20;
        write_raw(bad, raw, len);
        int rc = ef_cache_read(bad, &e);
        /* the format field has its own code; every other byte is covered by length or checksum */
        CHECK(rc == ((i >= 8 && i < 12) ? EF_ECACHE_VERSION : EF_ECACHE_CORRUPT));
        raw[i] ^= 0x20;
    }
    /* trailing garbage is damage too */
    char *longer = malloc(len + 1);
    memcpy(longer, raw, len);
    longer[len] = '\n';
    write_raw(bad, longer, len + 1);
    CHECK_EQ_INT(ef_cache_read(bad, &e), EF_ECACHE_CORRUPT);
    free(longer);
    free(raw);
}

static ef_client *open_with_cache(const char *cache, const char *ns)
{
    ef_client_options o = {.url = DEAD_URL, .namespace_key = ns, .cache_path = cache,
                           .timeout_ms = 500};
    ef_client *c = NULL;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    CHECK(c != NULL);
    return c;
}

static void test_offline_start(void)
{
    char p[128];
    path_of(p, sizeof(p), "offline.cache");
    int64_t saved = ef_clock_wall_ns() - 2000 * (int64_t)1000000;
    CHECK_EQ_INT(ef_cache_write(p, 42, "e42", DOC, sizeof(DOC) - 1, saved), EF_OK);
    ef_client *c = open_with_cache(p, NULL);
    /* ready at once: no waiting for the (dead) node */
    ef_result r;
    CHECK_EQ_INT(ef_client_boolean(c, "b", "u1", NULL, 0, &r), EF_OK);
    CHECK(r.enabled);
    CHECK_EQ_INT(r.reason, EF_RESULT_DEFAULT);
    ef_result_release(&r);
    ef_result_release(&r); /* idempotent */
    ef_pair ctx[] = {ef_pair_of("k", "v")};
    CHECK_EQ_INT(ef_client_variant(c, "v", "u1", ctx, 1, &r), EF_OK);
    CHECK(r.match);
    CHECK_EQ_INT(r.reason, EF_RESULT_MATCH);
    CHECK_STRN(r.variant_key, r.variant_key_len, "red");
    CHECK_STRN(r.attachment, r.attachment_len, "{\"x\":1}");
    CHECK_EQ_INT(r.segment_count, 1);
    size_t n;
    const char *seg = ef_result_segment(&r, 0, &n);
    CHECK_STRN(seg, n, "all");
    CHECK(ef_result_segment(&r, 1, &n) == NULL);
    ef_result_release(&r);
    CHECK_EQ_INT(ef_client_variant(c, "b", "u1", NULL, 0, &r), EF_EWRONGTYPE);
    CHECK_EQ_INT(ef_client_boolean(c, "nope", "u1", NULL, 0, &r), EF_ENOTFOUND);
    CHECK_EQ_INT(ef_client_variant(c, NULL, "u1", NULL, 0, &r), EF_EINVAL);
    CHECK_EQ_INT(ef_client_wait(c, 0, 0), EF_OK);
    CHECK_EQ_INT(ef_client_wait(c, 43, 50), EF_ETIMEDOUT);
    ef_status st;
    CHECK_EQ_INT(ef_client_status(c, &st), EF_OK);
    CHECK_EQ_INT(st.source, EF_SOURCE_CACHE);
    CHECK_EQ_INT(st.version, 42);
    CHECK_EQ_INT(st.cache_status, EF_OK);
    CHECK_EQ_INT(st.flag_count, 2);
    CHECK(st.age_ms >= 2000 && st.age_ms < 60000);
    /* the node is unreachable: after the first attempt the status says so */
    int64_t until = ef_clock_mono_ns() + 5000 * (int64_t)1000000;
    do {
        sleep_ms(20);
        ef_client_status(c, &st);
    } while (st.last_error == EF_OK && ef_clock_mono_ns() < until);
    CHECK_EQ_INT(st.last_error, EF_ECONNECT);
    CHECK(!st.connected);
    CHECK_EQ_INT(st.source, EF_SOURCE_CACHE); /* still evaluating the cached state */
    int64_t t0 = ef_clock_mono_ns();
    ef_client_close(c);
    CHECK(ef_clock_mono_ns() - t0 < 1000 * (int64_t)1000000); /* close does not wait out backoff */
}

static void expect_rejected(const char *name, const void *data, size_t len, const char *ns,
                            int want)
{
    char p[128];
    path_of(p, sizeof(p), name);
    write_raw(p, data, len);
    ef_client *c = open_with_cache(p, ns);
    ef_result r;
    CHECK_EQ_INT(ef_client_boolean(c, "b", "u1", NULL, 0, &r), EF_ENOSTATE);
    ef_status st;
    ef_client_status(c, &st);
    CHECK_EQ_INT(st.cache_status, want);
    CHECK_EQ_INT(st.source, EF_SOURCE_NONE);
    CHECK_EQ_INT(st.age_ms, -1);
    CHECK(strstr(ef_strerror(st.cache_status), "ignored") != NULL);
    ef_client_close(c);
}

static void test_bad_cache_files_are_never_trusted(void)
{
    char good[128];
    path_of(good, sizeof(good), "src.cache");
    CHECK_EQ_INT(ef_cache_write(good, 9, "e9", DOC, sizeof(DOC) - 1, 1), EF_OK);
    size_t len;
    char *raw = read_raw(good, &len);
    expect_rejected("truncated.cache", raw, len - 40, NULL, EF_ECACHE_CORRUPT);
    expect_rejected("header-only.cache", raw, 20, NULL, EF_ECACHE_CORRUPT);
    expect_rejected("empty.cache", raw, 0, NULL, EF_ECACHE_CORRUPT);
    raw[100] ^= 1; /* a bit flip inside the document */
    expect_rejected("flipped.cache", raw, len, NULL, EF_ECACHE_CORRUPT);
    raw[100] ^= 1;
    raw[8] = 9; /* a format this reader does not know */
    expect_rejected("future.cache", raw, len, NULL, EF_ECACHE_VERSION);
    raw[8] = 1;
    /* a sound file for namespace "default", opened for "team-a" */
    expect_rejected("foreign.cache", raw, len, "team-a", EF_ECACHE_MISMATCH);
    /* a sound file whose document is not a snapshot */
    char p[128];
    path_of(p, sizeof(p), "notsnap.cache");
    CHECK_EQ_INT(ef_cache_write(p, 1, "", "[1,2]", 5, 1), EF_OK);
    size_t l2;
    char *raw2 = read_raw(p, &l2);
    expect_rejected("notsnap2.cache", raw2, l2, NULL, EF_ECACHE_MISMATCH);
    free(raw2);
    free(raw);

    /* no file at all: not an error for evaluation's sake, but said in the status */
    path_of(p, sizeof(p), "absent.cache");
    ef_client *c = open_with_cache(p, NULL);
    ef_status st;
    ef_client_status(c, &st);
    CHECK_EQ_INT(st.cache_status, EF_ECACHE_MISSING);
    ef_client_close(c);
}

/* Runs fn(path) in a child process that gets 5 s (SIGALRM ends it) and returns its exit status
 * and its peak resident memory in KiB. In a child so that a reader that never returns, or that
 * takes a file's every byte, fails this test instead of hanging or swelling it. */
static int in_child(void (*fn)(const char *), const char *path, long *maxrss_kib)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(5);
        fn(path);
        _exit(0);
    }
    int st;
    struct rusage ru;
    CHECK(wait4(pid, &st, 0, &ru) == pid);
    *maxrss_kib = ru.ru_maxrss;
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "reading %s: the child died of signal %d (%s)\n", path, WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? "did not return in 5 s" : "crashed");
        return -1;
    }
    return WEXITSTATUS(st);
}

static void open_expect_corrupt(const char *path)
{
    ef_client_options o = {.url = DEAD_URL, .cache_path = path, .timeout_ms = 200};
    ef_client *c;
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    ef_status st;
    ef_client_status(c, &st);
    CHECK_EQ_INT(st.cache_status, EF_ECACHE_CORRUPT);
    CHECK_EQ_INT(st.source, EF_SOURCE_NONE);
    ef_client_close(c);
}

/* A cache path that was replaced by something other than a file the client could have written:
 *   a FIFO: the old reader's fopen blocked until a writer came, so ef_client_open never returned
 *           (a character device such as /dev/zero was read without end, into memory);
 *   a file longer than any cache file can be (a document over the 256 MiB a node may send), here
 *           a sparse one: the old reader read every byte into memory before looking at the header
 *           (peak memory of the child ~ 2x the file).
 * Each must be EF_ECACHE_CORRUPT at once, with nothing read. */
static void test_not_a_cache_file(void)
{
    char fifo[128], big[128];
    path_of(fifo, sizeof(fifo), "fifo.cache");
    CHECK(mkfifo(fifo, 0600) == 0);
    long rss;
    CHECK_EQ_INT(in_child(open_expect_corrupt, fifo, &rss), 0);
    path_of(big, sizeof(big), "big.cache");
    FILE *f = fopen(big, "wb");
    CHECK(f != NULL);
    CHECK(ftruncate(fileno(f), (off_t)((size_t)256 << 20) + 40 + 128 + 32 + 1) == 0);
    fclose(f);
    CHECK_EQ_INT(in_child(open_expect_corrupt, big, &rss), 0);
    printf("oversized cache file: peak memory of the reading process %ld MiB\n", rss >> 10);
    CHECK(rss < (64L << 10)); /* the file is 256 MiB: none of it was read */
}

static void test_arguments(void)
{
    ef_client *c = NULL;
    ef_client_options o = {0};
    CHECK_EQ_INT(ef_client_open(NULL, &c), EF_EINVAL);
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_EINVAL);
    o.url = DEAD_URL;
    CHECK_EQ_INT(ef_client_open(&o, NULL), EF_EINVAL);
    CHECK_EQ_INT(ef_client_open(&o, &c), EF_OK);
    ef_result r;
    CHECK_EQ_INT(ef_client_variant(c, "v", "u", NULL, 0, &r), EF_ENOSTATE);
    CHECK_EQ_INT(ef_client_variant(c, "v", "u", NULL, 3, &r), EF_EINVAL);
    CHECK_EQ_INT(ef_client_wait(c, 0, 30), EF_ETIMEDOUT);
    ef_client_close(c);
    ef_client_close(NULL);
    for (int e = 0; e >= -20; e--) CHECK(ef_strerror(e) != NULL && ef_strerror(e)[0]);
    CHECK(strcmp(ef_result_reason_name(EF_RESULT_MATCH), "MATCH_EVALUATION_REASON") == 0);
}

int main(void)
{
    temp_dir(dir, sizeof(dir));
    test_not_a_cache_file(); /* first: it forks, best before any client's threads ran */
    test_round_trip();
    test_reader_rejects_damage();
    test_offline_start();
    test_bad_cache_files_are_never_trusted();
    test_arguments();
    printf("test_client_cache: ok\n");
    return 0;
}
