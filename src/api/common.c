/*
 * common.c - what all handlers share: body parsing, store errors as Flipt answers them, metric
 * families, and registering every route family.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/eval_metrics.h"
#include "api/node.h"

struct ef_node_closer {
    void (*fn)(void *ctx);
    void *ctx;
    struct ef_node_closer *next;
};

int ef_node_on_close(ef_node *n, void (*fn)(void *ctx), void *ctx)
{
    struct ef_node_closer *c = malloc(sizeof(*c));
    if (!c) return -1;
    *c = (struct ef_node_closer){fn, ctx, n->closers};
    n->closers = c;
    return 0;
}

void ef_node_close(ef_node *n)
{
    while (n->closers) {
        struct ef_node_closer *c = n->closers;
        n->closers = c->next;
        c->fn(c->ctx);
        free(c);
    }
}

void ef_api_store_error(ef_http_req *req, const ef_store_err *err)
{
    switch (err->code) {
    case EF_STORE_INVALID:
    case EF_STORE_NOT_UNIQUE: ef_http_error(req, 400, 3, "%s", err->message); break;
    case EF_STORE_NOT_FOUND: ef_http_error(req, 404, 5, "%s", err->message); break;
    case EF_STORE_READ_ONLY: ef_http_error(req, 500, 13, "%s", err->message[0] ? err->message : "not implemented"); break;
    case EF_STORE_UNAVAILABLE: ef_http_error(req, 503, 14, "%s", err->message); break;
    case EF_STORE_TRIMMED: ef_http_error(req, 410, 9, "%s", err->message); break;
    case EF_STORE_OUT_OF_ORDER: ef_http_error(req, 409, 10, "%s", err->message); break;
    default: ef_http_error(req, 500, 13, "%s", err->message[0] ? err->message : "internal error"); break;
    }
}

const ef_json *ef_api_body_json(ef_http_req *req)
{
    ef_bytes body = ef_http_body(req);
    const char *p = body.p;
    size_t n = body.n;
    while (n && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++, n--;
    if (n == 0) p = "{}", n = 2;
    ef_json_error je;
    ef_json_opts o = {.max_depth = ef_http_max_json_depth(req)};
    const ef_json *v = ef_json_parse(p, n, ef_http_arena(req), &o, &je);
    if (!v) {
        ef_http_bad_request(req, "invalid JSON in request body at line %u, column %u: %s", je.line,
                            je.column, je.message);
        return NULL;
    }
    if (v->type != EF_JSON_OBJECT) {
        ef_http_bad_request(req, "request body must be a JSON object");
        return NULL;
    }
    return v;
}

int ef_node_metrics_init(ef_node *node)
{
    static const double latency[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                     0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    static const char *const eval_labels[] = {"namespace", "flag", "reason", "result"};
    static const char *const type_label[] = {"type"};
    static const char *const http_labels[] = {"route", "method", "status"};
    static const char *const route_label[] = {"route"};
    static const char *const write_labels[] = {"operation", "result"};
    ef_metrics *m = node->metrics;
    size_t nl = sizeof(latency) / sizeof(latency[0]);
    node->m.evaluations = ef_metrics_counter(m, "edgeflag_evaluations_total",
                                             "Flag evaluations by namespace, flag, reason and result.",
                                             4, eval_labels, 8192);
    node->m.evaluation_seconds = ef_metrics_histogram(
        m, "edgeflag_evaluation_duration_seconds", "Time spent evaluating, per request type.", 1,
        type_label, 8, latency, (unsigned)nl);
    node->m.http_responses = ef_metrics_counter(m, "edgeflag_http_responses_total",
                                                "HTTP responses by route, method and status.", 3,
                                                http_labels, 1024);
    node->m.http_seconds = ef_metrics_histogram(m, "edgeflag_http_request_duration_seconds",
                                                "HTTP request latency by route.", 1, route_label, 256,
                                                latency, (unsigned)nl);
    node->m.store_writes = ef_metrics_counter(m, "edgeflag_store_writes_total",
                                              "Store writes by operation and result.", 2,
                                              write_labels, 256);
    node->m.store_write_seconds = ef_metrics_histogram(m, "edgeflag_store_write_duration_seconds",
                                                       "Store write latency (commit included).", 0,
                                                       NULL, 1, latency, (unsigned)nl);
    /* Flipt's names (internal/server/metrics, exported through OpenTelemetry's Prometheus
     * exporter: _total counters, the latency histogram in milliseconds with OTel's default
     * bounds) */
    static const double ms[] = {0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000};
    static const char *const nf_labels[] = {"namespace", "flag"};
    static const char *const result_labels[] = {"namespace", "flag", "type", "reason", "value", "match", "segment"};
    node->m.flipt_requests = ef_metrics_counter(m, "flipt_evaluations_requests_total",
                                                "The total number of requested evaluations", 2, nf_labels, 8192);
    node->m.flipt_errors = ef_metrics_counter(m, "flipt_evaluations_errors_total",
                                              "The total number of requested evaluations", 2, nf_labels, 4096);
    node->m.flipt_results = ef_metrics_counter(
        m, "flipt_evaluations_results_total",
        "Count of results including match, flag, segment, reason and value attributes", 7, result_labels, 8192);
    node->m.flipt_latency_ms = ef_metrics_histogram(m, "flipt_evaluations_latency_milliseconds",
                                                    "The latency of inidividual evaluations in milliseconds", 2,
                                                    nf_labels, 4096, ms, sizeof(ms) / sizeof(ms[0]));
    ef_metrics_histogram_unit_ns(node->m.flipt_latency_ms, 1000000);
    node->m.evaluation_seconds_variant =
        ef_metric_series_of(node->m.evaluation_seconds, &EF_BYTES_LIT("variant"));
    node->m.evaluation_seconds_boolean =
        ef_metric_series_of(node->m.evaluation_seconds, &EF_BYTES_LIT("boolean"));
    node->m.flipt_server_errors = ef_metrics_counter(m, "flipt_server_errors_total", "The total number of server errors",
                                                     0, NULL, 1);
    node->m.unknown_flags = ef_metrics_counter(
        m, "edgeflag_unknown_flag_evaluations_total",
        "Evaluations of flags that do not exist, by the namespace and flag asked for (the first 256 "
        "such keys; later ones under _other).",
        2, nf_labels, EF_UNKNOWN_FLAG_KEYS);
    if (!node->m.unknown_flags || !node->m.flipt_server_errors || !node->m.flipt_requests || !node->m.flipt_errors || !node->m.flipt_results || !node->m.flipt_latency_ms)
        return -1;
    return node->m.evaluations && node->m.evaluation_seconds && node->m.http_responses &&
                   node->m.http_seconds && node->m.store_writes && node->m.store_write_seconds
               ? 0
               : -1;
}

/* The statuses the node answers with, each a slot per route and method; another status is
 * counted the slow way. */
static const int http_statuses[] = {200, 201, 204, 206, 301, 302, 304, 307, 400, 401, 403,
                                    404, 405, 406, 409, 410, 412, 413, 415, 422, 429, 431,
                                    500, 501, 502, 503, 504};
#define NSTATUS (sizeof(http_statuses) / sizeof(http_statuses[0]))
#define NMETHOD 7 /* ef_http_method's bits below EF_METHOD_OTHER */

static int status_slot(int status)
{
    for (unsigned i = 0; i < NSTATUS; i++)
        if (http_statuses[i] == status) return (int)i;
    return -1;
}

/* A known method's slot; -1 for any other, which is labelled "OTHER": a method is any token the
 * client sends, and a series per made-up name would let anyone fill the family (metrics.h) so
 * that real routes' new series land in "_other". */
static int method_slot(ef_http_method m)
{
    return m && m != EF_METHOD_OTHER ? __builtin_ctz((unsigned)m) : -1;
}

static void http_slots_free(void *ctx)
{
    ef_node *node = ctx;
    free(node->m.http_slots);
    free(node->m.http_route_slots);
    node->m.http_slots = node->m.http_route_slots = NULL;
}

int ef_node_http_metrics_init(ef_node *node, unsigned nroutes)
{
    size_t nr = (size_t)nroutes + 1;
    node->m.http_slots = calloc(nr * NMETHOD * NSTATUS, sizeof(*node->m.http_slots));
    node->m.http_route_slots = calloc(nr, sizeof(*node->m.http_route_slots));
    if (!node->m.http_slots || !node->m.http_route_slots || ef_node_on_close(node, http_slots_free, node)) {
        http_slots_free(node);
        return -1;
    }
    node->m.http_routes = nroutes;
    return 0;
}

/* The labels of a response's series (st: room for the status's three digits). */
static void response_labels(ef_bytes labels[3], char st[4], const ef_route *r, int ms,
                            const char *method_name, int status)
{
    memcpy(st, "000", 4);
    if (status >= 100 && status <= 999) {
        st[0] = (char)('0' + status / 100);
        st[1] = (char)('0' + status / 10 % 10);
        st[2] = (char)('0' + status % 10);
    }
    labels[0] = ef_bytes_of(r ? r->pattern : "unmatched");
    labels[1] = ef_bytes_of(ms >= 0 ? method_name : "OTHER");
    labels[2] = (ef_bytes){st, 3};
}

void ef_node_count_response(ef_node *node, const ef_route *r, ef_http_method method,
                            const char *method_name, int status, int64_t ns)
{
    int ss = status_slot(status), ms = method_slot(method);
    ef_node_metrics *m = &node->m;
    unsigned route = r ? r->id : m->http_routes;
    bool slots = m->http_slots && (!r || r->id < m->http_routes); /* a route added later: slow */
    ef_metric_series **resp_slot = slots && ss >= 0 && ms >= 0 && ms < NMETHOD
                                       ? &m->http_slots[((size_t)route * NMETHOD + (size_t)ms) * NSTATUS + (size_t)ss]
                                       : NULL;
    ef_metric_series **secs_slot = slots ? &m->http_route_slots[route] : NULL;
    ef_metric_series *resp = resp_slot ? __atomic_load_n(resp_slot, __ATOMIC_ACQUIRE) : NULL;
    ef_metric_series *secs = secs_slot ? __atomic_load_n(secs_slot, __ATOMIC_ACQUIRE) : NULL;
    if (!resp || !secs) { /* labels only when a series is still to be found (every request did) */
        char st[4];
        ef_bytes labels[3];
        response_labels(labels, st, r, ms, method_name, status);
        if (!resp)
            resp = resp_slot ? ef_metric_series_slot(m->http_responses, resp_slot, labels)
                             : ef_metric_series_of(m->http_responses, labels);
        if (!secs)
            secs = secs_slot ? ef_metric_series_slot(m->http_seconds, secs_slot, labels)
                             : ef_metric_series_of(m->http_seconds, labels);
    }
    if (resp) ef_series_add(resp, 1);
    if (secs) ef_series_observe_ns(m->http_seconds, secs, ns);
}

int ef_api_register(ef_router *r, ef_node *node)
{
    if (ef_api_register_meta(r, node) || ef_api_register_eval(r, node) ||
        ef_api_register_ofrep(r, node) || ef_api_register_snapshot(r, node) ||
        ef_api_register_auth(r, node) || ef_api_register_management(r, node))
        return -1;
    /* further route families (one line each) */
    if (ef_api_register_sync(r, node)) return -1;
    if (ef_api_register_ns_stream(r, node)) return -1;
    if (ef_api_register_history(r, node)) return -1;
    if (ef_api_register_activity(r, node)) return -1;
    if (ef_api_register_ui(r, node)) return -1;
    return 0;
}

void ef_node_raise_version(ef_node *n, uint64_t v)
{
    uint64_t cur = __atomic_load_n(&n->version, __ATOMIC_ACQUIRE);
    while (cur < v && !__atomic_compare_exchange_n(&n->version, &cur, v, false, __ATOMIC_ACQ_REL,
                                                   __ATOMIC_ACQUIRE)) {
    }
}

void ef_node_set_version(ef_node *n, uint64_t v)
{
    __atomic_store_n(&n->version, v, __ATOMIC_RELEASE);
}

static void on_publish(ef_bytes ns, void *ctx)
{
    ef_node *n = ctx;
    ef_registry_read_lock(n->registry);
    const ef_snapshot *s = ef_registry_get(n->registry, ns);
    if (s) ef_node_raise_version(n, ef_snapshot_version(s));
    ef_registry_read_unlock(n->registry);
}

int ef_node_track_versions(ef_node *n)
{
    return ef_registry_listen(n->registry, on_publish, n);
}
