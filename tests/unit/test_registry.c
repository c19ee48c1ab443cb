/*
 * test_registry.c - publishing snapshots while other threads evaluate. Readers hammer the
 * registry while a writer publishes a new generation of two namespaces over and over; every answer
 * must be internally consistent with exactly one generation (the variant key, attachment and
 * snapshot version agree), generations seen by a reader never go backwards, and no snapshot is
 * freed under a reader (ASan and TSan builds run this same test). Nor is a table freed under a
 * handle lookup made outside a read section (test_handle_outside_read_section).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>
#include <urcu-bp.h>

#include "eval/registry.h"
#include "snap_helper.h"

#define READERS 3
#define GENERATIONS 400

typedef struct shared {
    ef_registry *reg;
    atomic_bool stop;
    atomic_long evaluations;
    atomic_int failures;
    atomic_int started; /* readers past their first round: publishing waits for all, or on a
                         * loaded machine it could finish before any reader ran */
} shared;

static ef_snapshot *make_generation(const char *ns, unsigned gen)
{
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "{\"namespace\":{\"key\":\"%s\"},\"flags\":[{\"key\":\"f\",\"name\":\"f\",\"enabled\":true,"
             "\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"distributions\":["
             "{\"variantKey\":\"v%u\",\"rollout\":50,\"variantAttachment\":\"%u\"},"
             "{\"variantKey\":\"v%u\",\"rollout\":50,\"variantAttachment\":\"%u\"}]}]}]}",
             ns, gen, gen, gen, gen);
    ef_snapshot *s = snap_from_json(doc);
    ef_snapshot_set_version(s, gen);
    return s;
}

static void *reader(void *arg)
{
    shared *sh = arg;
    static const char *const nss[] = {"a", "b"};
    unsigned long last[2] = {0, 0};
    char entity[32];
    long n = 0;
    while (!atomic_load(&sh->stop) || n == 0) {
        for (int k = 0; k < 2; k++) {
            snprintf(entity, sizeof(entity), "e%ld", n);
            ef_eval_request q = {.flag_key = EF_BYTES_LIT("f"), .entity_id = ef_bytes_of(entity)};
            ef_registry_read_lock(sh->reg);
            const ef_snapshot *s = ef_registry_get(sh->reg, ef_bytes_of(nss[k]));
            if (s) {
                ef_variant_result r;
                unsigned long ver = (unsigned long)ef_snapshot_version(s);
                char want[32];
                int wn = snprintf(want, sizeof(want), "v%lu", ver);
                int an = snprintf(want + 16, 16, "%lu", ver);
                if (ef_eval_variant(s, &q, &r) != EF_EVAL_OK || !r.match ||
                    !ef_bytes_eq(r.variant_key, (ef_bytes){want, (size_t)wn}) ||
                    !ef_bytes_eq(r.attachment, (ef_bytes){want + 16, (size_t)an}) || ver < last[k])
                    atomic_fetch_add(&sh->failures, 1);
                last[k] = ver;
            }
            ef_registry_read_unlock(sh->reg);
            n++;
        }
        if (n == 2) atomic_fetch_add(&sh->started, 1);
    }
    atomic_fetch_add(&sh->evaluations, n);
    return NULL;
}

static void test_publish_while_reading(void **state)
{
    shared sh = {.reg = ef_registry_new()};
    assert_non_null(sh.reg);
    pthread_t th[READERS];
    for (int i = 0; i < READERS; i++) pthread_create(&th[i], NULL, reader, &sh);
    while (atomic_load(&sh.started) < READERS) sched_yield();
    for (unsigned g = 1; g <= GENERATIONS; g++) {
        assert_int_equal(ef_registry_publish(sh.reg, make_generation("a", g)), 0);
        assert_int_equal(ef_registry_publish(sh.reg, make_generation("b", g)), 0);
        if (g % 100 == 50) { /* drop and re-add a namespace now and then */
            assert_int_equal(ef_registry_remove(sh.reg, EF_BYTES_LIT("b")), 0);
            assert_int_equal(ef_registry_remove(sh.reg, EF_BYTES_LIT("b")), -1);
        }
    }
    atomic_store(&sh.stop, true);
    for (int i = 0; i < READERS; i++) pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&sh.failures), 0);
    assert_true(atomic_load(&sh.evaluations) > 0);
    assert_int_equal(ef_registry_count(sh.reg), 2);
    ef_registry_free(sh.reg);
}

static void test_lookup(void **state)
{
    ef_registry *r = ef_registry_new();
    ef_registry_read_lock(r);
    assert_null(ef_registry_get(r, EF_BYTES_LIT("a")));
    ef_registry_read_unlock(r);
    for (unsigned i = 0; i < 40; i++) {
        char ns[16];
        snprintf(ns, sizeof(ns), "ns%u", i);
        ef_registry_publish(r, make_generation(ns, i + 1));
    }
    assert_int_equal(ef_registry_count(r), 40);
    ef_registry_read_lock(r);
    const ef_snapshot *s = ef_registry_get(r, EF_BYTES_LIT("ns17"));
    assert_non_null(s);
    assert_int_equal(ef_snapshot_version(s), 18);
    assert_null(ef_registry_get(r, EF_BYTES_LIT("ns40")));
    ef_registry_read_unlock(r);
    ef_registry_free(r);
}

/* ---- ef_registry_handle outside a read section -------------------------------------------------- */

/* registry.h lets ef_registry_handle be called outside a read section, and libedgeflag's
 * evaluation does so (src/client/client.c) until its namespace has a handle: an application's
 * threads evaluating while the client's first state arrives. The first publish of a namespace
 * replaces the registry's table and frees the old one after a grace period; a lookup that had
 * loaded the old table without being in a read section was not waited for, and read the freed
 * table. The window is the lookup's hash of the key, so the key here is 256 MiB of never-written
 * anonymous memory (the zero page: no memory used) to hold the lookup open for a long while. */
#define LONG_KEY ((size_t)256 << 20)

typedef struct long_lookup {
    ef_registry *reg;
    const char *key;
    atomic_int started;
    int64_t done_ns; /* read after the join */
} long_lookup;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *long_lookup_main(void *arg)
{
    long_lookup *l = arg;
    atomic_store(&l->started, 1);
    const ef_ns_handle *h = ef_registry_handle(l->reg, (ef_bytes){l->key, LONG_KEY});
    l->done_ns = mono_ns();
    assert_null(h); /* no such namespace, before or after */
    return NULL;
}

static void test_handle_outside_read_section(void **state)
{
    (void)state;
    char *key = mmap(NULL, LONG_KEY, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(key != MAP_FAILED);
    long_lookup l = {.reg = ef_registry_new(), .key = key};
    int64_t t0 = mono_ns();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, long_lookup_main, &l), 0);
    while (!atomic_load(&l.started)) sched_yield();
    struct timespec pause = {0, 5000000};
    nanosleep(&pause, NULL); /* the lookup has loaded the table and is hashing the key */
    /* a first namespace: a new table; the old one is freed once no reader can see it */
    ef_registry_publish(l.reg, make_generation("a", 1));
    rcu_barrier();
    int64_t freed_ns = mono_ns();
    pthread_join(t, NULL);
    /* The old table may be freed only after the lookup that read it has returned, so rcu_barrier
     * (every pending free done) returns after the lookup, give or take the moment between its
     * read section's end and its return. The old code's barrier returned while the lookup still
     * had most of its hash to go (and ASan reported the freed table read). */
    int64_t lookup_ns = l.done_ns - t0, late_ns = l.done_ns - freed_ns;
    printf("lookup %.0f ms; its old table freed %.1f ms after it returned\n", lookup_ns / 1e6,
           -late_ns / 1e6);
    assert_true(late_ns < lookup_ns / 4);
    ef_registry_free(l.reg);
    munmap(key, LONG_KEY);
}

static void count_change(ef_bytes ns, void *ctx)
{
    int *n = ctx;
    if (ef_bytes_eq(ns, EF_BYTES_LIT("a"))) (*n)++;
}

static void test_listeners(void **state)
{
    ef_registry *r = ef_registry_new();
    int n = 0;
    assert_int_equal(ef_registry_listen(r, count_change, &n), 0);
    ef_registry_publish(r, make_generation("a", 1));
    ef_registry_publish(r, make_generation("b", 1));
    ef_registry_remove(r, EF_BYTES_LIT("a"));
    assert_int_equal(n, 2);
    ef_registry_unlisten(r, count_change, &n);
    ef_registry_publish(r, make_generation("a", 2));
    assert_int_equal(n, 2);
    ef_registry_free(r);
}

/* What a listener saw when told: the namespace, and whether all of "a", "b" and "c" had their
 * generation-2 snapshot by then. */
typedef struct seen {
    ef_registry *r;
    char ns[8][8];
    bool all_there[8];
    int n;
} seen;

static void record_change(ef_bytes ns, void *ctx)
{
    seen *k = ctx;
    if (k->n == 8) return;
    snprintf(k->ns[k->n], sizeof(k->ns[0]), "%.*s", (int)ns.n, ns.p);
    bool all = true;
    ef_registry_read_lock(k->r);
    for (const char *const *x = (const char *const[]){"a", "b", "c", NULL}; *x; x++) {
        const ef_snapshot *s = ef_registry_get(k->r, ef_bytes_of(*x));
        all = all && s && ef_snapshot_version(s) == 2;
    }
    ef_registry_read_unlock(k->r);
    k->all_there[k->n++] = all;
}

/* Held, a transaction's publishes are visible at once but announced at the (outermost) release,
 * in order, when every namespace is there: the listener that raises a node's version must not
 * hear of a dump's first namespace while the others are missing. */
static void test_hold_announces_together(void **state)
{
    (void)state;
    ef_registry *r = ef_registry_new();
    seen k = {.r = r};
    assert_int_equal(ef_registry_listen(r, record_change, &k), 0);
    ef_registry_hold(r);
    ef_registry_hold(r); /* nested */
    ef_registry_publish(r, make_generation("a", 2));
    ef_registry_read_lock(r);
    assert_non_null(ef_registry_get(r, EF_BYTES_LIT("a"))); /* visible before the release */
    ef_registry_read_unlock(r);
    ef_registry_publish(r, make_generation("b", 2));
    ef_registry_publish(r, make_generation("x", 2));
    ef_registry_remove(r, EF_BYTES_LIT("x"));
    ef_registry_release(r);
    ef_registry_publish(r, make_generation("c", 2));
    assert_int_equal(k.n, 0);
    ef_registry_release(r);
    assert_int_equal(k.n, 5);
    const char *order[] = {"a", "b", "x", "x", "c"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(k.ns[i], order[i]);
        assert_true(k.all_there[i]);
    }
    ef_registry_release(r); /* an extra release is harmless */
    ef_registry_publish(r, make_generation("d", 2));
    assert_int_equal(k.n, 6); /* not held: at once */
    ef_registry_unlisten(r, record_change, &k);
    ef_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_listeners),
        cmocka_unit_test(test_hold_announces_together),
        cmocka_unit_test(test_publish_while_reading),
        cmocka_unit_test(test_handle_outside_read_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
