/*
 * test_activity.c - evaluation activity counting (src/api/eval_activity.c): counts stay exact while
 * snapshots are republished under evaluating threads (the fast path's slot binding is per compiled
 * flag, so every publish brings unbound flags), minutes rotate at ticks, a full table counts
 * overflow, a tally bound to one table is counted correctly (slowly) by another; the store of other
 * nodes' counts (activity_peers.c) holds at most its bound and reuses stale series. It must never
 * sleep to make a race happen: the threads run a fixed number of evaluations each.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

#include "snap_helper.h"

#include "api/activity_peers.h"
#include "api/eval_activity.h"
#include "eval/registry.h"

/* Two shapes of the namespace: the publisher alternates them, so each publish recompiles the
 * flags (new tallies, a variant appearing and leaving, the flag disabled now and then). */
static const char *doc_a =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"color\",\"name\":\"c\",\"enabled\":true,\"type\":\"VARIANT_FLAG_TYPE\","
    " \"defaultVariant\":{\"id\":\"1\",\"key\":\"red\"},"
    " \"rules\":[{\"segments\":[{\"key\":\"all\",\"matchType\":\"ALL_MATCH_TYPE\",\"constraints\":[]}],"
    "  \"segmentOperator\":\"OR_SEGMENT_OPERATOR\",\"distributions\":["
    "  {\"variantKey\":\"red\",\"rollout\":50},{\"variantKey\":\"blue\",\"rollout\":40}]}]},"
    "{\"key\":\"beta\",\"name\":\"b\",\"enabled\":true,\"type\":\"BOOLEAN_FLAG_TYPE\","
    " \"rollouts\":[{\"threshold\":{\"percentage\":30,\"value\":true}}]}]}";
static const char *doc_b =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"color\",\"name\":\"c\",\"enabled\":true,\"type\":\"VARIANT_FLAG_TYPE\","
    " \"rules\":[{\"segments\":[{\"key\":\"all\",\"matchType\":\"ALL_MATCH_TYPE\",\"constraints\":[]}],"
    "  \"segmentOperator\":\"OR_SEGMENT_OPERATOR\",\"distributions\":["
    "  {\"variantKey\":\"green\",\"rollout\":30},{\"variantKey\":\"blue\",\"rollout\":30}]}]},"
    "{\"key\":\"beta\",\"name\":\"b\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\","
    " \"rollouts\":[{\"threshold\":{\"percentage\":70,\"value\":true}}]}]}";
static const char *doc_c = /* color disabled, no default: "disabled" */
    "{\"namespace\":{\"key\":\"default\"},\"flags\":["
    "{\"key\":\"color\",\"name\":\"c\",\"enabled\":false,\"type\":\"VARIANT_FLAG_TYPE\"},"
    "{\"key\":\"beta\",\"name\":\"b\",\"enabled\":true,\"type\":\"BOOLEAN_FLAG_TYPE\"}]}";

enum { O_RED, O_BLUE, O_GREEN, O_DISABLED, O_NOMATCH, O_ENABLED, O_BDISABLED, O_N };

#define THREADS 4
#define EVALS 40000
#define PUBLISHES 300

/* Workers and publisher go in lockstep (each may run ahead of the other by one step only), so
 * every shape of the namespace sees evaluations however the threads are scheduled. */
#define STEP ((uint64_t)THREADS * EVALS / PUBLISHES)
static uint64_t progress;  /* atomic: evaluations done by all workers */
static uint64_t published; /* atomic: snapshots the publisher has published */

typedef struct worker {
    ef_registry *reg;
    ef_activity *act;
    unsigned id;
    uint64_t counts[O_N];
} worker;

static void *evaluate_main(void *arg)
{
    worker *w = arg;
    ef_bytes ns = EF_BYTES_LIT("default");
    for (unsigned i = 0; i < EVALS; i++) {
        for (;;) {
            uint64_t done = __atomic_load_n(&published, __ATOMIC_ACQUIRE);
            if (done >= PUBLISHES || __atomic_load_n(&progress, __ATOMIC_RELAXED) < (done + 1) * STEP) break;
            sched_yield();
        }
        char id[32];
        int n = snprintf(id, sizeof(id), "e%u-%u", w->id, i);
        ef_eval_request req = {.entity_id = {id, (size_t)n}};
        ef_registry_read_lock(w->reg);
        const ef_snapshot *s = ef_registry_get(w->reg, ns);
        if (i % 2) {
            req.flag_key = EF_BYTES_LIT("color");
            ef_variant_result r;
            if (ef_eval_variant(s, &req, &r) == EF_EVAL_OK) {
                ef_activity_count_variant(w->act, ns, &r);
                int o = ef_bytes_eq(r.variant_key, EF_BYTES_LIT("red"))     ? O_RED
                        : ef_bytes_eq(r.variant_key, EF_BYTES_LIT("blue"))  ? O_BLUE
                        : ef_bytes_eq(r.variant_key, EF_BYTES_LIT("green")) ? O_GREEN
                        : r.reason == EF_REASON_FLAG_DISABLED               ? O_DISABLED
                                                                            : O_NOMATCH;
                w->counts[o]++;
            }
        } else {
            req.flag_key = EF_BYTES_LIT("beta");
            ef_boolean_result r;
            if (ef_eval_boolean(s, &req, &r) == EF_EVAL_OK) {
                ef_activity_count_boolean(w->act, ns, &r);
                w->counts[r.enabled ? O_ENABLED : O_BDISABLED]++;
            }
        }
        ef_registry_read_unlock(w->reg);
        __atomic_add_fetch(&progress, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

typedef struct publisher {
    ef_registry *reg;
    ef_snapshot *snaps[PUBLISHES];
} publisher;

static void *publish_main(void *arg)
{
    publisher *p = arg;
    for (unsigned i = 0; i < PUBLISHES; i++) {
        /* spread the publishes over the whole run, so each shape sees evaluations */
        while (__atomic_load_n(&progress, __ATOMIC_RELAXED) < (uint64_t)i * STEP) sched_yield();
        ef_snapshot *s = p->snaps[i];
        p->snaps[i] = NULL;
        if (ef_registry_publish(p->reg, s) != 0) return (void *)1;
        __atomic_add_fetch(&published, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

/* The total of outcome `name` of kind `kind` in flag's activity document (the last `minutes`). */
static uint64_t series_total(ef_activity *a, const char *flag, unsigned minutes, const char *kind, const char *name)
{
    ef_buf out;
    ef_buf_init(&out);
    ef_activity_flag_json(a, EF_BYTES_LIT("default"), ef_bytes_of(flag), minutes, &out);
    assert_true(ef_buf_ok(&out));
    ef_arena ar;
    ef_arena_init(&ar, 4096);
    ef_json_error jerr;
    ef_json *doc = ef_json_parse(out.data, out.len, &ar, NULL, &jerr);
    assert_non_null(doc);
    uint64_t total = 0;
    const ef_json *series = ef_json_get(doc, "series");
    assert_non_null(series);
    for (const ef_json *s = series->child; s; s = s->next) {
        const ef_json *o = ef_json_get(s, "outcome"), *k = ef_json_get(s, "kind");
        if (!ef_bytes_eq(o->str, ef_bytes_of(name)) || !ef_bytes_eq(k->str, ef_bytes_of(kind))) continue;
        uint64_t t;
        assert_true(ef_json_u64(ef_json_get(s, "total"), &t));
        total += t;
    }
    ef_arena_free(&ar);
    ef_buf_free(&out);
    return total;
}

static void test_exact_across_publishes(void **state)
{
    (void)state;
    ef_registry *reg = ef_registry_new();
    ef_activity *act = ef_activity_new(256);
    assert_non_null(reg);
    assert_non_null(act);
    assert_int_equal(ef_registry_publish(reg, snap_from_json(doc_a)), 0);
    static publisher p;
    p.reg = reg;
    for (unsigned i = 0; i < PUBLISHES; i++)
        p.snaps[i] = snap_from_json(i % 3 == 0 ? doc_b : i % 3 == 1 ? doc_c : doc_a);
    worker w[THREADS];
    pthread_t th[THREADS], pt;
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (worker){.reg = reg, .act = act, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, evaluate_main, &w[i]), 0);
    }
    assert_int_equal(pthread_create(&pt, NULL, publish_main, &p), 0);
    void *prc;
    pthread_join(pt, &prc);
    assert_null(prc);
    for (unsigned i = 0; i < THREADS; i++) pthread_join(th[i], NULL);

    uint64_t want[O_N] = {0}, all = 0;
    for (unsigned i = 0; i < THREADS; i++)
        for (unsigned o = 0; o < O_N; o++) want[o] += w[i].counts[o], all += w[i].counts[o];
    assert_int_equal(all, (uint64_t)THREADS * EVALS);
    /* every outcome happened, so the test covers each kind of slot */
    for (unsigned o = 0; o < O_N; o++)
        if (o != O_NOMATCH) assert_true(want[o] > 0);
    assert_int_equal(series_total(act, "color", 1, "variant", "red"), want[O_RED]);
    assert_int_equal(series_total(act, "color", 1, "variant", "blue"), want[O_BLUE]);
    assert_int_equal(series_total(act, "color", 1, "variant", "green"), want[O_GREEN]);
    assert_int_equal(series_total(act, "color", 1, "disabled", "disabled"), want[O_DISABLED]);
    assert_int_equal(series_total(act, "color", 1, "no match", "no match"), want[O_NOMATCH]);
    assert_int_equal(series_total(act, "beta", 1, "enabled", "enabled"), want[O_ENABLED]);
    assert_int_equal(series_total(act, "beta", 1, "disabled", "disabled"), want[O_BDISABLED]);
    ef_registry_free(reg);
    ef_activity_free(act);
}

/* Counts one variant evaluation of flag color of snapshot s, n times. */
static void count_color(ef_activity *a, const ef_snapshot *s, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        ef_eval_request req = {.flag_key = EF_BYTES_LIT("color"), .entity_id = EF_BYTES_LIT("same")};
        ef_variant_result r;
        assert_int_equal(ef_eval_variant(s, &req, &r), EF_EVAL_OK);
        ef_activity_count_variant(a, EF_BYTES_LIT("default"), &r);
    }
}

static void test_minutes_rotate(void **state)
{
    (void)state;
    ef_activity *a = ef_activity_new(64);
    ef_snapshot *s = snap_from_json(doc_c); /* color: disabled */
    uint32_t m0 = ef_activity_now(a);
    count_color(a, s, 3);
    ef_activity_tick(a, m0 + 1);
    count_color(a, s, 5);
    assert_int_equal(ef_activity_now(a), m0 + 1);
    assert_int_equal(series_total(a, "color", 1, "disabled", "disabled"), 5);
    assert_int_equal(series_total(a, "color", 2, "disabled", "disabled"), 8);
    ef_activity_tick(a, m0); /* never back */
    assert_int_equal(ef_activity_now(a), m0 + 1);
    ef_activity_tick(a, m0 + EF_ACT_MINUTES); /* minute m0 leaves the window, m0 + 1 is the oldest */
    assert_int_equal(series_total(a, "color", EF_ACT_MINUTES, "disabled", "disabled"), 5);
    count_color(a, s, 2);
    assert_int_equal(series_total(a, "color", 1, "disabled", "disabled"), 2);
    ef_activity_tick(a, m0 + 1000); /* a long jump empties everything... */
    assert_int_equal(series_total(a, "color", EF_ACT_MINUTES, "disabled", "disabled"), 0);
    ef_buf out;
    ef_buf_init(&out);
    ef_activity_metrics(a, "n1", &out); /* ...but the metric keeps the total since start */
    assert_non_null(strstr(out.data, "flag=\"color\",outcome=\"disabled\"} 10\n"));
    ef_buf_free(&out);
    ef_snapshot_free(s);
    ef_activity_free(a);
    /* the clock thread: it never moves a table back (the wall clock is at most at now), and
     * freeing the table stops it at once rather than at the next minute boundary */
    ef_activity *c = ef_activity_new(64);
    uint32_t before = ef_activity_now(c);
    assert_int_equal(ef_activity_start_clock(c), 0);
    assert_int_equal(ef_activity_start_clock(c), 0); /* a second start is a no-op */
    assert_true(ef_activity_now(c) >= before);
    ef_activity_free(c);
}

static void count_flag(ef_bytes ns, ef_bytes flag, const uint64_t *counts, void *ctx)
{
    (void)ns, (void)flag, (void)counts;
    (*(unsigned *)ctx)++;
}

static void test_table_full_and_two_tables(void **state)
{
    (void)state;
    ef_activity *a = ef_activity_new(64), *b = ef_activity_new(64);
    ef_snapshot *s = snap_from_json(doc_a);
    count_color(a, s, 4); /* binds color's tally to a */
    count_color(b, s, 6); /* b counts it on its slow path, not into a */
    assert_int_equal(series_total(a, "color", 1, "variant", "red") + series_total(a, "color", 1, "variant", "blue"), 4);
    assert_int_equal(series_total(b, "color", 1, "variant", "red") + series_total(b, "color", 1, "variant", "blue"), 6);
    /* 64 slots: the 65th distinct key cannot be counted per flag and goes to overflowed */
    for (unsigned i = 0; i < 200; i++) {
        char k[16];
        int n = snprintf(k, sizeof(k), "f%u", i);
        ef_activity_count(a, EF_BYTES_LIT("default"), (ef_bytes){k, (size_t)n}, EF_ACT_ERROR, EF_BYTES_LIT(""));
    }
    ef_buf out;
    ef_buf_init(&out);
    ef_activity_metrics(a, "n1", &out);
    const char *o = strstr(out.data, "edgeflag_flag_evaluations_overflowed_total{node=\"n1\"} ");
    assert_non_null(o);
    assert_true(strtoull(o + strlen("edgeflag_flag_evaluations_overflowed_total{node=\"n1\"} "), NULL, 10) >= 200 - 64);
    /* the readers walk the claimed slots only: with every slot taken, each one is seen once */
    unsigned lines = 0;
    for (const char *l = out.data; (l = strstr(l, "edgeflag_flag_evaluations_total{")); l++) lines++;
    assert_int_equal(lines, 64);
    unsigned flags = 0;
    assert_int_equal(ef_activity_each_flag(a, 1, count_flag, &flags), 0);
    assert_int_equal(flags, 64); /* color (one outcome: one entity) and 63 of the f keys */
    /* a key too long for a slot is counted as overflowed, not truncated */
    char longkey[300];
    memset(longkey, 'k', sizeof(longkey));
    ef_activity *c = ef_activity_new(64);
    ef_activity_count(c, EF_BYTES_LIT("default"), (ef_bytes){longkey, sizeof(longkey)}, EF_ACT_ERROR,
                      EF_BYTES_LIT(""));
    ef_buf_clear(&out);
    ef_activity_metrics(c, "n1", &out);
    assert_non_null(strstr(out.data, "edgeflag_flag_evaluations_overflowed_total{node=\"n1\"} 1\n"));
    ef_buf_free(&out);
    ef_snapshot_free(s);
    ef_activity_free(a);
    ef_activity_free(b);
    ef_activity_free(c);
}

/* Flag keys in families that differ only in their last characters ("checkout-v1", "-v2", ...) are
 * how people name flags. The table's hash once left the high bytes of the last 8 (where a little-
 * endian load puts the final characters) out of the slot index, so such keys piled into one run
 * and 39 of 256 overflowed in a table of 4,096. Each family here fills an eighth of the table. */
static void test_key_families_spread(void **state)
{
    (void)state;
    static const char *const formats[] = {"f%u", "flag-%04u", "checkout-v%u", "a-long-feature-flag-%05u",
                                          "%u-experiment", "ab%uz"};
    for (size_t f = 0; f < sizeof(formats) / sizeof(formats[0]); f++) {
        ef_activity *a = ef_activity_new(4096);
        for (unsigned i = 0; i < 512; i++) {
            char k[64], ns[16];
            int n = snprintf(k, sizeof(k), formats[f], i);
            int m = snprintf(ns, sizeof(ns), "ns-%u", i % 3 ? 0 : i); /* long and short namespaces */
            ef_activity_count(a, (ef_bytes){ns, (size_t)m}, (ef_bytes){k, (size_t)n}, EF_ACT_ERROR, EF_BYTES_LIT(""));
        }
        ef_buf out;
        ef_buf_init(&out);
        ef_activity_metrics(a, "n1", &out);
        if (!strstr(out.data, "edgeflag_flag_evaluations_overflowed_total{node=\"n1\"} 0\n"))
            fail_msg("%s: keys overflowed a table an eighth full", formats[f]);
        ef_buf_free(&out);
        ef_activity_free(a);
    }
}

/* A report of `rows` rows for node, flags f0.. (prefix), one count of 2 in minute m. */
static void report_rows(ef_apw_report *r, const char *node, const char *prefix, unsigned rows, uint32_t m)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "{\"activity\":[");
    for (unsigned i = 0; i < rows; i++)
        ef_buf_printf(&b, "%s{\"node\":\"%s\",\"ns\":\"default\",\"flag\":\"%s%u\",\"counts\":[[%u,2]]}",
                      i ? "," : "", node, prefix, i, m);
    ef_buf_puts(&b, "]}");
    char err[300];
    assert_int_equal(ef_apw_report_parse(r, b.data, b.len, err, sizeof(err)), 0);
    ef_buf_free(&b);
}

static void add_node(const char *node, const uint64_t *counts, void *ctx)
{
    (void)node;
    for (unsigned i = 0; i < 5; i++) *(uint64_t *)ctx += counts[i];
}

static void test_peers_bounded(void **state)
{
    (void)state;
    ef_activity_peers *p = ef_activity_peers_new();
    uint32_t now = 29000000;
    ef_apw_report r;
    report_rows(&r, "a", "f", EF_APW_MAX_ROWS, now);
    assert_int_equal(ef_activity_peers_apply(p, &r, "self", NULL, NULL, now), 0);
    ef_apw_report_free(&r);
    report_rows(&r, "b", "f", EF_APW_MAX_ROWS, now);
    assert_int_equal(ef_activity_peers_apply(p, &r, "self", NULL, NULL, now), 0);
    ef_apw_report_free(&r);
    /* 2,048 series held: a third node's row is dropped, an existing series still updates */
    report_rows(&r, "c", "f", 1, now);
    assert_int_equal(ef_activity_peers_apply(p, &r, "self", NULL, NULL, now), 1);
    ef_apw_report_free(&r);
    uint64_t sum = 0;
    ef_activity_peers_flag(p, EF_BYTES_LIT("default"), EF_BYTES_LIT("f0"), 5, now, add_node, &sum);
    assert_int_equal(sum, 4); /* a and b, 2 each; not c */
    /* a whole window later every series is stale and reused */
    report_rows(&r, "c", "f", 1, now + EF_ACT_MINUTES);
    assert_int_equal(ef_activity_peers_apply(p, &r, "self", NULL, NULL, now + EF_ACT_MINUTES), 0);
    ef_apw_report_free(&r);
    sum = 0;
    ef_activity_peers_flag(p, EF_BYTES_LIT("default"), EF_BYTES_LIT("f0"), 5, now + EF_ACT_MINUTES, add_node, &sum);
    assert_int_equal(sum, 2);
    /* more rows than a report may hold: refused whole */
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "{\"activity\":[");
    for (unsigned i = 0; i <= EF_APW_MAX_ROWS; i++) ef_buf_puts(&b, i ? ",{}" : "{}");
    ef_buf_puts(&b, "]}");
    char err[300];
    assert_int_equal(ef_apw_report_parse(&r, b.data, b.len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than 1024 rows"));
    ef_apw_report_free(&r);
    ef_buf_free(&b);
    ef_activity_peers_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_across_publishes),
        cmocka_unit_test(test_minutes_rotate),
        cmocka_unit_test(test_table_full_and_two_tables),
        cmocka_unit_test(test_key_families_spread),
        cmocka_unit_test(test_peers_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
