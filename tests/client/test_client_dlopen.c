/*
 * test_client_dlopen.c - libedgeflag.so loaded with dlopen(), as plugins and language bindings
 * load it, then evaluating on several threads against a real `edgeflag serve --snapshot`.
 *
 * Why: the read section is inlined from liburcu-bp and touches its thread-local reader; a library
 * built with the initial-exec TLS model could fail to load this way. Also covers the request block
 * in the library: a context over the 4 KiB stack buffer (the heap path), a repeated key (the later
 * wins), a key absent from the context. Every answer is checked; nothing passes by doing nothing.
 *
 * usage: test_client_dlopen EDGEFLAG_BIN LIBEDGEFLAG_SO
 */
#include <dlfcn.h>
#include <pthread.h>

#include "edgeflag.h"
#include "helper.h"

typedef int (*open_fn)(const ef_client_options *, ef_client **);
typedef int (*wait_fn)(ef_client *, uint64_t, int);
typedef int (*eval_fn)(ef_client *, const char *, const char *, const ef_pair *, size_t, ef_result *);
typedef void (*release_fn)(ef_result *);
typedef void (*close_fn)(ef_client *);

static struct {
    open_fn open;
    wait_fn wait;
    eval_fn variant;
    release_fn release;
    close_fn close;
} lib;

/* A variant flag "v": "gold" when context plan == "pro", else the default "plain". */
static const char snapshot_doc[] =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":[{\"key\":\"v\",\"name\":\"v\",\"enabled\":true,"
    "\"type\":\"VARIANT_FLAG_TYPE\",\"rules\":[{\"rank\":1,\"segmentOperator\":\"OR_SEGMENT_OPERATOR\","
    "\"segments\":[{\"key\":\"pro\",\"matchType\":\"ALL_SEGMENT_MATCH_TYPE\",\"constraints\":[{\"type\":"
    "\"STRING_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"plan\",\"operator\":\"eq\",\"value\":\"pro\"}]}],"
    "\"distributions\":[{\"variantKey\":\"gold\",\"rollout\":100}]}],\"variants\":[{\"id\":\"1\",\"key\":\"gold\"},"
    "{\"id\":\"2\",\"key\":\"plain\"}],\"defaultVariant\":{\"id\":\"2\",\"key\":\"plain\"}}]}";

/* Evaluates "v" and returns whether it answered "gold" (anything else than gold/plain fails). */
static bool is_gold(ef_client *c, const ef_pair *ctx, size_t n)
{
    ef_result r;
    CHECK_EQ_INT(lib.variant(c, "v", "user-1", ctx, n, &r), EF_OK);
    bool gold = r.variant_key_len == 4 && !memcmp(r.variant_key, "gold", 4);
    CHECK(gold || (r.variant_key_len == 5 && !memcmp(r.variant_key, "plain", 5)));
    lib.release(&r);
    return gold;
}

typedef struct worker {
    ef_client *c;
    int failures;
} worker;

static void *worker_main(void *p)
{
    worker *w = p;
    enum { BIG = 300 }; /* 300 entries of ~20 bytes: well over the 4 KiB stack buffer */
    static char keys[BIG][16];
    static ef_pair big[BIG + 1];
    for (int i = 0; i < BIG; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%03d", i);
        big[i] = ef_pair_of(keys[i], "0123456789abcdef");
    }
    for (int round = 0; round < 500; round++) {
        ef_pair pro[] = {ef_pair_of("country", "de"), ef_pair_of("plan", "pro")};
        ef_pair dup[] = {ef_pair_of("plan", "pro"), ef_pair_of("plan", "free")};
        ef_pair dup2[] = {ef_pair_of("plan", "free"), ef_pair_of("plan", "pro")};
        if (!is_gold(w->c, pro, 2)) w->failures++;
        if (is_gold(w->c, dup, 2)) w->failures++;   /* the later "free" wins */
        if (!is_gold(w->c, dup2, 2)) w->failures++; /* the later "pro" wins */
        if (is_gold(w->c, NULL, 0)) w->failures++;
        big[BIG - 1] = ef_pair_of(keys[BIG - 1], "0123456789abcdef");
        if (is_gold(w->c, big, BIG)) w->failures++;
        big[BIG - 1] = ef_pair_of("plan", "pro");
        if (!is_gold(w->c, big, BIG)) w->failures++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    CHECK(argc == 3);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char dir[64], snap[128];
    temp_dir(dir, sizeof(dir));
    snprintf(snap, sizeof(snap), "%s/snapshot.json", dir);
    FILE *f = fopen(snap, "w");
    CHECK(f && fputs(snapshot_doc, f) >= 0 && fclose(f) == 0);
    const char *args[] = {"--snapshot", snap, NULL};
    test_server s;
    server_start(&s, argv[1], args);

    void *h = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
    if (!h) fprintf(stderr, "dlopen: %s\n", dlerror());
    CHECK(h != NULL);
    CHECK((lib.open = (open_fn)dlsym(h, "ef_client_open")) != NULL);
    CHECK((lib.wait = (wait_fn)dlsym(h, "ef_client_wait")) != NULL);
    CHECK((lib.variant = (eval_fn)dlsym(h, "ef_client_variant")) != NULL);
    CHECK((lib.release = (release_fn)dlsym(h, "ef_result_release")) != NULL);
    CHECK((lib.close = (close_fn)dlsym(h, "ef_client_close")) != NULL);

    ef_client_options o = {.url = s.url, .timeout_ms = 5000};
    ef_client *c;
    CHECK_EQ_INT(lib.open(&o, &c), EF_OK);
    CHECK_EQ_INT(lib.wait(c, 0, 10000), EF_OK);
    enum { THREADS = 4 };
    worker ws[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ws[i] = (worker){.c = c};
        CHECK(pthread_create(&t[i], NULL, worker_main, &ws[i]) == 0);
        pthread_join(t[i], NULL); /* one at a time: the workers share their big context */
        CHECK_EQ_INT(ws[i].failures, 0);
    }
    lib.close(c);
    CHECK(dlclose(h) == 0);
    /* linked -z nodelete: still mapped after dlclose, so liburcu's reclaim thread, which outlives
     * every client, never runs unmapped code (it did: a SIGSEGV, or TSan refusing the unload) */
    void *still = dlopen(argv[2], RTLD_NOW | RTLD_NOLOAD);
    CHECK(still != NULL);
    if (still) dlclose(still);
    server_stop(&s);
    printf("dlopen: libedgeflag.so loaded with dlopen, %d threads x 3000 evaluations, all correct\n", THREADS);
    return 0;
}
