/*
 * test_http.c - the router (literal segments beat parameters, trailing slashes, 405 vs 404) and
 * the metrics tables (label sets, overflow into "_other", histogram buckets, text format, and
 * counts from more threads than there are lanes, threads that exit and threads that follow them).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "http/metrics.h"
#include "http/router_internal.h"

static void h1(ef_http_req *req, void *ctx) { (void)req; (void)ctx; }
static void h2(ef_http_req *req, void *ctx) { (void)req; (void)ctx; }

static void test_router(void **state)
{
    ef_router *r = ef_router_new();
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_PUT, .pattern = "/api/v1/namespaces/{ns}/flags/{flagKey}/rules/{id}", .fn = h1, .cls = EF_ROUTE_MANAGEMENT}), 0);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_PUT, .pattern = "/api/v1/namespaces/{ns}/flags/{flagKey}/rules/order", .fn = h2, .cls = EF_ROUTE_MANAGEMENT}), 0);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET | EF_DELETE, .pattern = "/api/v1/namespaces/{ns}/flags/{flagKey}/rules/{id}", .fn = h2, .cls = EF_ROUTE_MANAGEMENT}), 0);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/health", .fn = h1, .cls = EF_ROUTE_OPEN}), 0);
    route_param p[8];
    unsigned np;
    router_match m = ef_router_match(r, EF_PUT, "/api/v1/namespaces/prod/flags/f1/rules/order", p, &np);
    assert_non_null(m.route);
    assert_ptr_equal(m.route->fn, h2);
    assert_int_equal(np, 2);
    assert_string_equal(p[0].name, "ns");
    assert_int_equal(p[0].value.n, 4);
    m = ef_router_match(r, EF_PUT, "/api/v1/namespaces/prod/flags/f1/rules/abc-123/", p, &np);
    assert_ptr_equal(m.route->fn, h1);
    assert_int_equal(np, 3);
    assert_memory_equal(p[2].value.p, "abc-123", 7);
    m = ef_router_match(r, EF_GET, "/api/v1/namespaces/prod/flags/f1/rules/x", p, &np);
    assert_ptr_equal(m.route->fn, h2);
    m = ef_router_match(r, EF_POST, "/health", p, &np);
    assert_null(m.route);
    assert_true(m.method_not_allowed);
    char allow[EF_ROUTER_ALLOW_MAX];
    ef_router_allow_text(m.allowed, allow);
    assert_string_equal(allow, "GET"); /* a 405's Allow: what the path takes, nothing else */
    /* two patterns match this path (a literal segment and a parameter): their methods together */
    m = ef_router_match(r, EF_POST, "/api/v1/namespaces/prod/flags/f1/rules/order", p, &np);
    assert_true(m.method_not_allowed);
    ef_router_allow_text(m.allowed, allow);
    assert_string_equal(allow, "GET, PUT, DELETE");
    ef_router_allow_text(EF_GET | EF_POST | EF_PUT | EF_DELETE | EF_PATCH | EF_HEAD | EF_OPTIONS, allow);
    assert_string_equal(allow, "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS");
    m = ef_router_match(r, EF_GET, "/healthz", p, &np);
    assert_null(m.route);
    assert_false(m.method_not_allowed);
    m = ef_router_match(r, EF_GET, "/api/v1/namespaces//flags/f1/rules/x", p, &np); /* empty param */
    assert_null(m.route);
    m = ef_router_match(r, EF_GET, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o", p, &np);
    assert_null(m.route);
    ef_router_free(r);
}

/* Routes without parameters are found by their path in a table: it must answer what the
 * comparison of segments answers, for paths written plainly and otherwise, and give way to a
 * route with parameters when the literal one does not take the method. */
static void test_router_literals(void **state)
{
    (void)state;
    ef_router *r = ef_router_new();
    char pat[64];
    for (int i = 0; i < 100; i++) { /* enough to grow the table several times */
        snprintf(pat, sizeof(pat), "/api/v1/thing%d/list", i);
        assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = pat, .fn = h1, .cls = EF_ROUTE_OPEN}), 0);
    }
    /* the same path twice, each with its own method; a parameter route beside it with a third */
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/evaluate/v1/variant", .fn = h1, .cls = EF_ROUTE_OPEN}), 0);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_POST, .pattern = "/evaluate/v1/variant/", .fn = h2, .cls = EF_ROUTE_OPEN}), 0);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_PUT | EF_POST, .pattern = "/evaluate/v1/{kind}", .fn = h1, .cls = EF_ROUTE_OPEN}), 0);
    route_param p[8];
    unsigned np;
    router_match m;
    for (int i = 0; i < 100; i++) {
        snprintf(pat, sizeof(pat), "/api/v1/thing%d/list", i);
        m = ef_router_match(r, EF_GET, pat, p, &np);
        assert_non_null(m.route);
        assert_int_equal(m.route->id, (unsigned)i);
        assert_int_equal(np, 0);
    }
    const struct {
        unsigned method;
        const char *path;
        void (*fn)(ef_http_req *, void *);
        unsigned params;
    } cases[] = {
        {EF_GET, "/evaluate/v1/variant", h1, 0},    {EF_POST, "/evaluate/v1/variant", h2, 0},
        {EF_PUT, "/evaluate/v1/variant", h1, 1},    /* the literal routes do not take PUT */
        {EF_POST, "//evaluate/v1/variant", h2, 0},  {EF_POST, "/evaluate/v1/variant/", h2, 0},
        {EF_POST, "/evaluate//v1/variant", NULL, 0}, {EF_POST, "/evaluate/v1/boolean", h1, 1},
        {EF_GET, "/evaluate/v1/boolean", NULL, 0},  {EF_GET, "/api/v1/thing7/list/", h1, 0},
        {EF_GET, "/api/v1/thing7/lis", NULL, 0},    {EF_GET, "/", NULL, 0},
        {EF_GET, "/api/v1/thing100/list", NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        m = ef_router_match(r, cases[i].method, cases[i].path, p, &np);
        if (!cases[i].fn) {
            assert_null(m.route);
            continue;
        }
        assert_non_null(m.route);
        assert_ptr_equal(m.route->fn, cases[i].fn);
        assert_int_equal(np, cases[i].params);
    }
    m = ef_router_match(r, EF_DELETE, "/evaluate/v1/variant", p, &np);
    assert_null(m.route);
    assert_true(m.method_not_allowed);
    ef_router_free(r);
}

/* EF_RF_NS_EMPTY: the namespace parameter (only it) may be an empty segment, as Flipt's Go SDK
 * sends /api/v1/namespaces//flags for an empty namespace. */
static void test_router_empty_namespace(void **state)
{
    ef_router *r = ef_router_new();
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_POST, .pattern = "/api/v1/namespaces/{namespaceKey}/flags/{flagKey}/variants",
                                                        .fn = h1, .cls = EF_ROUTE_MANAGEMENT, .ns = EF_NS_PATH,
                                                        .ns_param = "namespaceKey", .flags = EF_RF_WRITE | EF_RF_NS_EMPTY}), 0);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/api/v1/namespaces/{key}",
                                                        .fn = h2, .cls = EF_ROUTE_MANAGEMENT, .ns = EF_NS_PATH,
                                                        .ns_param = "key", .flags = EF_RF_STATE}), 0);
    /* only a path-declared namespace can be empty-allowed */
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_POST, .pattern = "/api/v1/flags", .fn = h1,
                                                        .cls = EF_ROUTE_MANAGEMENT, .ns = EF_NS_BODY,
                                                        .flags = EF_RF_WRITE | EF_RF_NS_EMPTY}), -1);
    route_param p[8];
    unsigned np;
    router_match m = ef_router_match(r, EF_POST, "/api/v1/namespaces//flags/f/variants", p, &np);
    assert_ptr_equal(m.route->fn, h1);
    assert_int_equal(np, 2);
    assert_string_equal(p[0].name, "namespaceKey");
    assert_int_equal(p[0].value.n, 0);
    assert_int_equal(p[1].value.n, 1);
    m = ef_router_match(r, EF_POST, "/api/v1/namespaces/prod/flags//variants", p, &np); /* not the flag */
    assert_null(m.route);
    m = ef_router_match(r, EF_GET, "/api/v1/namespaces//", p, &np); /* not a route that did not ask */
    assert_null(m.route);
    ef_router_free(r);
}

/* A route's declared facts must agree with each other: the router refuses the ones that cannot be
 * enforced (the namespace scope of a path parameter that is not in the pattern, a write a GET can
 * reach, ...) instead of guessing. */
static void test_router_declarations(void **state)
{
    ef_router *r = ef_router_new();
    /* the declared namespace parameter must be in the pattern (regression: /namespaces/{key} and
     * /namespaces/{ns}/stream were not scoped because only "namespaceKey" was looked at) */
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/api/v1/namespaces/{key}",
                                                        .fn = h1, .cls = EF_ROUTE_MANAGEMENT, .ns = EF_NS_PATH,
                                                        .ns_param = "namespaceKey"}), -1);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/api/v1/namespaces/{key}",
                                                        .fn = h1, .cls = EF_ROUTE_MANAGEMENT, .ns = EF_NS_PATH}), -1);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/x", .fn = h1,
                                                        .cls = EF_ROUTE_MANAGEMENT, .ns = EF_NS_BODY,
                                                        .ns_param = "key"}), -1);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/x", .fn = h1,
                                                        .cls = EF_ROUTE_OPEN, .ns = EF_NS_HEADER}), -1);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET | EF_POST, .pattern = "/x", .fn = h1,
                                                        .cls = EF_ROUTE_MANAGEMENT, .flags = EF_RF_WRITE}), -1);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_POST, .pattern = "/x", .fn = h1,
                                                        .cls = EF_ROUTE_MANAGEMENT,
                                                        .flags = EF_RF_WRITE | EF_RF_STREAM}), -1);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = 0, .pattern = "/x", .fn = h1}), -1);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "x", .fn = h1}), -1);
    assert_int_equal(ef_router_count(r), 0);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/api/v1/namespaces/{key}",
                                                        .fn = h1, .cls = EF_ROUTE_MANAGEMENT, .ns = EF_NS_PATH,
                                                        .ns_param = "key", .flags = EF_RF_STATE}), 0);
    assert_int_equal(ef_router_add_route(r, &(ef_route){.methods = EF_DELETE, .pattern = "/api/v1/flags/{key}",
                                                        .fn = h1, .cls = EF_ROUTE_MANAGEMENT, .ns = EF_NS_BODY,
                                                        .flags = EF_RF_WRITE}), 0);
    ef_buf out;
    ef_buf_init(&out);
    ef_router_write_json(r, &out);
    ef_buf_putc(&out, '\0');
    assert_string_equal(out.data,
                        "[\n{\"pattern\":\"/api/v1/namespaces/{key}\",\"methods\":[\"GET\"],\"class\":\"management\","
                        "\"ns\":\"path\",\"nsParam\":\"key\",\"write\":false,\"state\":true,\"stream\":false,\"nsEmpty\":false},\n"
                        "{\"pattern\":\"/api/v1/flags/{key}\",\"methods\":[\"DELETE\"],\"class\":\"management\","
                        "\"ns\":\"body\",\"nsParam\":null,\"write\":true,\"state\":false,\"stream\":false,\"nsEmpty\":false}\n]\n");
    ef_buf_free(&out);
    ef_router_free(r);
}

static void test_metrics(void **state)
{
    ef_metrics *m = ef_metrics_new();
    static const char *const labels[] = {"flag", "reason"};
    ef_metric_family *c = ef_metrics_counter(m, "t_total", "test counter", 2, labels, 4);
    static const double bounds[] = {0.001, 0.01};
    ef_metric_family *h = ef_metrics_histogram(m, "t_seconds", "test histogram", 0, NULL, 1, bounds, 2);
    ef_bytes a[2] = {EF_BYTES_LIT("a\"b"), EF_BYTES_LIT("MATCH")};
    ef_counter_add(c, a, 2);
    /* a slot keeps the series found first; _is compares labels, and never takes "_other" */
    ef_metric_series *slot = NULL;
    ef_metric_series *s = ef_metric_series_slot(c, &slot, a);
    assert_non_null(s);
    assert_ptr_equal(slot, s);
    assert_ptr_equal(ef_metric_series_slot(c, &slot, a), s);
    assert_ptr_equal(ef_metric_series_of(c, a), s);
    assert_true(ef_metric_series_is(c, s, a));
    ef_bytes a2[2] = {EF_BYTES_LIT("a\"b"), EF_BYTES_LIT("MATC")}, a3[2] = {EF_BYTES_LIT("a\"bM"), EF_BYTES_LIT("ATCH")};
    assert_false(ef_metric_series_is(c, s, a2));
    assert_false(ef_metric_series_is(c, s, a3));
    assert_false(ef_metric_series_is(c, NULL, a));
    ef_series_add(s, 3);
    for (int i = 0; i < 100; i++) { /* far more label sets than the capacity of 4 */
        char k[16];
        snprintf(k, sizeof(k), "f%d", i);
        ef_bytes b[2] = {ef_bytes_of(k), EF_BYTES_LIT("DEFAULT")};
        ef_counter_add(c, b, 1);
    }
    ef_bytes full[2] = {EF_BYTES_LIT("late"), EF_BYTES_LIT("DEFAULT")};
    ef_metric_series *other = ef_metric_series_of(c, full); /* the table is full: "_other" */
    ef_bytes others[2] = {EF_BYTES_LIT("_other"), EF_BYTES_LIT("_other")};
    assert_false(ef_metric_series_is(c, other, full));
    assert_false(ef_metric_series_is(c, other, others));
    ef_histogram_observe(h, NULL, 0.0005);
    ef_histogram_observe(h, NULL, 0.005);
    ef_histogram_observe(h, NULL, 5);
    ef_buf out;
    ef_buf_init(&out);
    ef_metrics_write(m, &out);
    assert_non_null(strstr(out.data, "# TYPE t_total counter\n"));
    assert_non_null(strstr(out.data, "t_total{flag=\"a\\\"b\",reason=\"MATCH\"} 5\n"));
    assert_non_null(strstr(out.data, "t_total{flag=\"_other\",reason=\"_other\"}"));
    assert_non_null(strstr(out.data, "t_seconds_bucket{le=\"0.001\"} 1\n"));
    assert_non_null(strstr(out.data, "t_seconds_bucket{le=\"0.01\"} 2\n"));
    assert_non_null(strstr(out.data, "t_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(out.data, "t_seconds_count 3\n"));
    /* every series of the counter adds up to what was counted */
    unsigned long total = 0;
    for (const char *p = out.data; (p = strstr(p, "t_total{")); p++) total += strtoul(strchr(p, '}') + 2, NULL, 10);
    assert_int_equal(total, 105);
    ef_buf_free(&out);
    ef_metrics_free(m);
}

/* ---- many threads: lanes (metrics.c) ---- */

enum { ADDS = 20000, WAVE = 24 }; /* a wave of threads: more than the 16 lanes */

typedef struct counting {
    ef_metric_family *c, *h;
    ef_metric_series *cs, *hs;
} counting;

static void *count_thread(void *p)
{
    counting *k = p;
    ef_bytes label = EF_BYTES_LIT("x");
    for (int i = 0; i < ADDS; i++) {
        ef_series_add(k->cs, 1);
        ef_counter_add(k->c, &label, 2);
        /* 0.0005 s into the first bucket, 0.5 s into +Inf, alternately */
        ef_series_observe(k->h, k->hs, (i & 1) ? 0.5 : 0.0005);
    }
    return NULL;
}

typedef struct scraping {
    ef_metrics *m;
    int stop;
    unsigned long last, went_back;
} scraping;

static unsigned long scraped(const char *text, const char *series)
{
    const char *p = strstr(text, series);
    return p ? strtoul(p + strlen(series), NULL, 10) : 0;
}

/* Scrapes while the counting runs: a series never reads lower than it did. */
static void *scrape_thread(void *p)
{
    scraping *sc = p;
    ef_buf out;
    ef_buf_init(&out);
    while (!__atomic_load_n(&sc->stop, __ATOMIC_ACQUIRE)) {
        ef_buf_clear(&out);
        ef_metrics_write(sc->m, &out);
        unsigned long v = scraped(out.data, "t_total{k=\"y\"} ");
        if (v < sc->last) sc->went_back++;
        sc->last = v;
    }
    ef_buf_free(&out);
    return NULL;
}

static void run_wave(counting *k)
{
    pthread_t th[WAVE];
    for (int i = 0; i < WAVE; i++) assert_int_equal(pthread_create(&th[i], NULL, count_thread, k), 0);
    for (int i = 0; i < WAVE; i++) pthread_join(th[i], NULL);
}

static void test_metrics_threads(void **state)
{
    ef_metrics *m = ef_metrics_new();
    static const char *const labels[] = {"k"};
    static const double bounds[] = {0.001};
    counting k = {ef_metrics_counter(m, "t_total", "test counter", 1, labels, 4),
                  ef_metrics_histogram(m, "t_seconds", "test histogram", 0, NULL, 1, bounds, 1), NULL, NULL};
    k.cs = ef_metric_series_of(k.c, &EF_BYTES_LIT("y"));
    k.hs = ef_metric_series_of(k.h, NULL);
    assert_non_null(k.cs);
    assert_non_null(k.hs);
    scraping sc = {m, 0, 0, 0};
    pthread_t scraper;
    assert_int_equal(pthread_create(&scraper, NULL, scrape_thread, &sc), 0);
    /* two waves: the second's threads take up the lanes the first's let go of, with their counts */
    run_wave(&k);
    run_wave(&k);
    __atomic_store_n(&sc.stop, 1, __ATOMIC_RELEASE);
    pthread_join(scraper, NULL);
    assert_int_equal(sc.went_back, 0);
    ef_series_add(k.cs, 1); /* and the test's own thread */

    ef_buf out;
    ef_buf_init(&out);
    ef_metrics_write(m, &out);
    unsigned long n = 2UL * WAVE * ADDS;
    assert_int_equal(scraped(out.data, "t_total{k=\"y\"} "), n + 1);
    assert_int_equal(scraped(out.data, "t_total{k=\"x\"} "), 2 * n);
    assert_int_equal(scraped(out.data, "t_seconds_bucket{le=\"0.001\"} "), n / 2);
    assert_int_equal(scraped(out.data, "t_seconds_bucket{le=\"+Inf\"} "), n);
    assert_int_equal(scraped(out.data, "t_seconds_count "), n);
    /* the sum: n/2 of 0.5 s and n/2 of 0.5 ms, in nanoseconds, printed in seconds */
    const char *sum = strstr(out.data, "t_seconds_sum ");
    assert_non_null(sum);
    double want = (double)(n / 2) * 0.5005;
    assert_true(fabs(strtod(sum + 14, NULL) - want) < 1e-6 * want);
    ef_buf_free(&out);
    ef_metrics_free(m);
}

/* Durations in nanoseconds: the same buckets and sums as the seconds they make, in a family of
 * seconds and in one of milliseconds (Flipt's latency histogram); a negative bound is refused. */
static void test_metrics_observe_ns(void **state)
{
    (void)state;
    ef_metrics *m = ef_metrics_new();
    static const double secs[] = {0.0025, 0.005, 1};
    static const double ms[] = {0, 5, 10};
    static const double bad[] = {-1, 5};
    ef_metric_family *hs = ef_metrics_histogram(m, "t_seconds", "s", 0, NULL, 1, secs, 3);
    ef_metric_family *hm = ef_metrics_histogram(m, "t_ms", "ms", 0, NULL, 1, ms, 3);
    assert_null(ef_metrics_histogram(m, "t_bad", "bad", 0, NULL, 1, bad, 2));
    ef_metrics_histogram_unit_ns(hm, 1000000);
    ef_metric_series *s = ef_metric_series_of(hs, NULL), *t = ef_metric_series_of(hm, NULL);
    /* on a bound counts in its bucket (le), a nanosecond above in the next */
    const int64_t d[] = {-7, 0, 2500000, 2500001, 5000000, 999999999, 1000000000, 1000000001, 10000000, 10000001};
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        ef_series_observe_ns(hs, s, d[i]);
        ef_series_observe_ns(hm, t, d[i]);
    }
    ef_buf out;
    ef_buf_init(&out);
    ef_metrics_write(m, &out);
    /* seconds, cumulative: -7 (as 0), 0 and 2,500,000 ns are within 0.0025 s; 2,500,001 and
     * 5,000,000 within 0.005; four more within 1 s; 1,000,000,001 only within +Inf */
    assert_int_equal(scraped(out.data, "t_seconds_bucket{le=\"0.0025\"} "), 3);
    assert_int_equal(scraped(out.data, "t_seconds_bucket{le=\"0.005\"} "), 5);
    assert_int_equal(scraped(out.data, "t_seconds_bucket{le=\"1\"} "), 9);
    assert_int_equal(scraped(out.data, "t_seconds_bucket{le=\"+Inf\"} "), 10);
    /* milliseconds: -7 and 0 within 0 ms; three more within 5 ms; 10,000,000 ns within 10 ms */
    assert_int_equal(scraped(out.data, "t_ms_bucket{le=\"0\"} "), 2);
    assert_int_equal(scraped(out.data, "t_ms_bucket{le=\"5\"} "), 5);
    assert_int_equal(scraped(out.data, "t_ms_bucket{le=\"10\"} "), 6);
    assert_int_equal(scraped(out.data, "t_ms_count "), 10);
    /* the sums: every duration (the negative one as 0), in seconds and in milliseconds */
    double total = 0;
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) total += d[i] > 0 ? (double)d[i] : 0;
    const char *ss = strstr(out.data, "t_seconds_sum "), *sm = strstr(out.data, "t_ms_sum ");
    assert_non_null(ss);
    assert_non_null(sm);
    assert_true(fabs(strtod(ss + 14, NULL) - total / 1e9) < 1e-9);
    assert_true(fabs(strtod(sm + 9, NULL) - total / 1e6) < 1e-6);
    ef_buf_free(&out);
    ef_metrics_free(m);
}

/* A series compared from its third label on: the first two are not looked at. */
static void test_metrics_is_from(void **state)
{
    (void)state;
    ef_metrics *m = ef_metrics_new();
    static const char *const labels[] = {"ns", "flag", "value"};
    ef_metric_family *c = ef_metrics_counter(m, "t_total", "t", 3, labels, 8);
    ef_bytes a[3] = {EF_BYTES_LIT("default"), EF_BYTES_LIT("f1"), EF_BYTES_LIT("on")};
    ef_metric_series *s = ef_metric_series_of(c, a);
    ef_bytes other_ns[3] = {EF_BYTES_LIT("prod-longer"), EF_BYTES_LIT("f"), EF_BYTES_LIT("on")};
    ef_bytes other_value[3] = {EF_BYTES_LIT("default"), EF_BYTES_LIT("f1"), EF_BYTES_LIT("off")};
    ef_bytes longer_value[3] = {EF_BYTES_LIT("default"), EF_BYTES_LIT("f1"), EF_BYTES_LIT("on!")};
    assert_true(ef_metric_series_is_from(c, s, a, 2));
    assert_true(ef_metric_series_is_from(c, s, other_ns, 2));
    assert_false(ef_metric_series_is(c, s, other_ns));
    assert_false(ef_metric_series_is_from(c, s, other_value, 2));
    assert_false(ef_metric_series_is_from(c, s, longer_value, 2));
    assert_false(ef_metric_series_is_from(c, NULL, a, 2));
    ef_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router), cmocka_unit_test(test_router_literals),
        cmocka_unit_test(test_router_empty_namespace),
        cmocka_unit_test(test_router_declarations),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_metrics_threads),
        cmocka_unit_test(test_metrics_observe_ns),
        cmocka_unit_test(test_metrics_is_from),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
