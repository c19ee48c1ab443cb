/*
 * common.c - what all handlers share: body parsing, store errors as Flipt answers them, metric
 * families, and registering every route family.
 */
#include <stdio.h>
#include <stdlib.h>

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
    node->m.evaluation_seconds_variant =
        ef_metric_series_of(node->m.evaluation_seconds, &EF_BYTES_LIT("variant"));
    node->m.evaluation_seconds_boolean =
        ef_metric_series_of(node->m.evaluation_seconds, &EF_BYTES_LIT("boolean"));
    node->m.flipt_server_errors = ef_metrics_counter(m, "flipt_server_errors_total", "The total number of server errors",
                                                     0, NULL, 1);
    if (!node->m.flipt_server_errors || !node->m.flipt_requests || !node->m.flipt_errors || !node->m.flipt_results || !node->m.flipt_latency_ms)
        return -1;
    return node->m.evaluations && node->m.evaluation_seconds && node->m.http_responses &&
                   node->m.http_seconds && node->m.store_writes && node->m.store_write_seconds
               ? 0
               : -1;
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
