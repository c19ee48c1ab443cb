/*
 * node.h - what every HTTP handler can reach: the published snapshots, the store (or the read-only
 * directory), metrics and authentication. One ef_node per running server; handlers get it as their
 * route context. The node owns nothing it is given: cmd_serve creates the parts and frees them.
 */
#ifndef EF_API_NODE_H
#define EF_API_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "eval/registry.h"
#include "http/http.h"
#include "http/metrics.h"
#include "store/store.h"

typedef struct ef_dir ef_dir;
typedef struct ef_auth ef_auth;

typedef struct ef_node_metrics {
    ef_metric_family *evaluations;        /* namespace, flag, reason, result */
    ef_metric_family *evaluation_seconds; /* type */
    ef_metric_series *evaluation_seconds_variant, *evaluation_seconds_boolean; /* its two series */
    ef_metric_family *http_responses;     /* route, method, status */
    ef_metric_family *http_seconds;       /* route */
    ef_metric_family *store_writes;       /* operation, result */
    ef_metric_family *store_write_seconds;
    /* Flipt's own series, updated where edgeflag's are (eval_metrics.c), so dashboards and alerts
     * written for Flipt work unchanged: flipt_evaluations_{requests,errors,results}_total and
     * flipt_evaluations_latency_milliseconds */
    ef_metric_family *flipt_requests;     /* namespace, flag */
    ef_metric_family *flipt_errors;       /* namespace, flag */
    ef_metric_family *flipt_results;      /* namespace, flag, type, reason, value, match, segment */
    ef_metric_family *flipt_latency_ms;   /* namespace, flag */
    ef_metric_family *flipt_server_errors; /* no labels: every error answer of a route */
    /* namespace, flag: evaluations of flags that do not exist, by the key asked for. Its bound is
     * also the budget of such keys in every family above (eval_metrics.c) */
    ef_metric_family *unknown_flags;
    /* http_responses' and http_seconds' series per route (routes + 1: "unmatched"), method and
     * common status, found once (ef_node_http_metrics_init; NULL: looked up per response) */
    ef_metric_series **http_slots, **http_route_slots;
    unsigned http_routes;
} ef_node_metrics;

/* The settings GET /meta/config and /meta/info report (cmd_serve fills them; nothing secret: no
 * tokens, no database URL, as Flipt leaves those out of its configuration document). */
typedef struct ef_node_settings {
    const char *host;
    unsigned port;
    const char *log_level;                 /* NULL: info */
    const char *auth_exclude;              /* "management,evaluation,ofrep" or NULL */
    const char *dir;                       /* directory mode: the directory */
    bool cors_enabled;
    const char *const *cors_origins;       /* NULL-terminated; NULL: Flipt's default */
    const char *const *cors_headers;       /* NULL-terminated; NULL: Flipt's default */
} ef_node_settings;

typedef struct ef_node {
    ef_registry *registry; /* current snapshot of every namespace: what evaluation reads */
    ef_store *store;       /* NULL in read-only directory mode */
    ef_dir *dir;           /* the directory backend, or NULL */
    ef_auth *auth;         /* NULL when authentication is off */
    ef_metrics *metrics;
    ef_node_metrics m;
    uint64_t version;      /* highest store sequence this node's state reflects (atomic) */
    /* Teardowns registered by route families that own threads or memory, run in reverse order
     * by ef_node_close after the HTTP server has stopped (ef_node_on_close). */
    struct ef_node_closer *closers;
    /* further parts of a node (one line each) */
    struct ef_sync *sync;  /* replication: feed, follower, forwarding, cluster status (src/sync) */
    const char *role;      /* "primary", "replica", "directory", "snapshot" */
    struct ef_activity *activity; /* evaluations per flag and outcome by minute (eval_activity.h) */
    struct ef_activity_peers *activity_peers; /* other nodes' per-flag counts (activity_peers.h) */
    const char *name;      /* `serve --name` (default: the host name); ef_node_name_valid */
    /* A node service's part of GET /ready (continuous backup): appends `"name":{...}` to out and
     * sets *degraded when the service fails without making the node unready. NULL: none. */
    void (*ready_extra)(void *ctx, ef_buf *out, bool *degraded);
    void *ready_extra_ctx;
    bool access_log;
    int64_t started_ns;    /* wall clock */
    ef_node_settings settings;
} ef_node;

/* Creates the metric families above in node->metrics. Returns 0 or -1. */
int ef_node_metrics_init(ef_node *node);
/* Room for the per-route series of the router's routes (ids below nroutes), freed at
 * ef_node_close. Returns 0 or -1 (out of memory). */
int ef_node_http_metrics_init(ef_node *node, unsigned nroutes);
/* One answered request in edgeflag_http_responses_total and its latency histogram (ns: how long
 * it took), labelled by route (NULL: "unmatched"), method and status; with the slots above, no
 * label is made or hashed once a slot holds its series. */
void ef_node_count_response(ef_node *node, const ef_route *r, ef_http_method method,
                            const char *method_name, int status, int64_t ns);

/* Registers every API route (management, evaluation, OFREP, snapshot, auth, health, meta, metrics). */
int ef_api_register(ef_router *r, ef_node *node);

/* Per-family registration, called by ef_api_register. */
int ef_api_register_eval(ef_router *r, ef_node *node);
int ef_api_register_ofrep(ef_router *r, ef_node *node);
int ef_api_register_snapshot(ef_router *r, ef_node *node);
int ef_api_register_meta(ef_router *r, ef_node *node);
int ef_api_register_management(ef_router *r, ef_node *node);
int ef_api_register_auth(ef_router *r, ef_node *node);
/* further route families (one line each) */
int ef_api_register_sync(ef_router *r, ef_node *node); /* src/sync: replication feed, cluster, /ready */
int ef_api_register_ns_stream(ef_router *r, ef_node *node); /* ns_stream.c: change events */
int ef_api_register_ui(ef_router *r, ef_node *node); /* ui_http.c: the embedded web UI */
int ef_api_register_history(ef_router *r, ef_node *node); /* history.c: who changed what */
int ef_api_register_activity(ef_router *r, ef_node *node); /* activity_http.c: flag activity */

/* A node name: 1 to EF_NODE_NAME_MAX bytes of letters, digits, '.', '_' and '-' (it travels in
 * URLs, headers, logs and metric labels, so nothing there needs quoting). */
#define EF_NODE_NAME_MAX 63
static inline bool ef_node_name_valid(const char *s, size_t n)
{
    if (n == 0 || n > EF_NODE_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The namespace a request means: "" is "default". */
static inline ef_bytes ef_api_namespace(ef_bytes ns)
{
    return ns.n ? ns : EF_BYTES_LIT("default");
}

/* The node's version: X-Edgeflag-Version on every response. Raised (never lowered) whenever a
 * snapshot is published; ef_node_track_versions installs the registry listener that does it. */
static inline uint64_t ef_node_version(const ef_node *n)
{
    return __atomic_load_n(&n->version, __ATOMIC_ACQUIRE);
}
void ef_node_raise_version(ef_node *n, uint64_t v);
/* Sets the version, also lower: only for a replica that replaced its state with a dump of another
 * history (or of a primary behind it), where the old numbers no longer mean anything. */
void ef_node_set_version(ef_node *n, uint64_t v);
int ef_node_track_versions(ef_node *n);

/* Registers fn(ctx) to run at ef_node_close. Returns 0 or -1 (out of memory). */
int ef_node_on_close(ef_node *n, void (*fn)(void *ctx), void *ctx);
/* Runs the registered teardowns, newest first. Call after the HTTP server has stopped. */
void ef_node_close(ef_node *n);

/* Answers a store error with Flipt's status and body. */
void ef_api_store_error(ef_http_req *req, const ef_store_err *err);

/* Parses the request body as JSON (any Content-Type, as Flipt does); an empty body is {}.
 * On failure answers 400 and returns NULL. */
const ef_json *ef_api_body_json(ef_http_req *req);

#endif
