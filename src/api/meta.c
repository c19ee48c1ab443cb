/*
 * meta.c - /health, /meta/info and /metrics. Health and metrics are never authenticated (as in
 * Flipt); /meta/info is.
 */
#include <stdio.h>
#include <sys/utsname.h>

#include "api/node.h"
#include "base/clock.h"

static void on_health(ef_http_req *req, void *ctx)
{
    (void)ctx;
    ef_buf_puts(ef_http_out(req), "{\"status\":\"SERVING\"}");
    ef_http_reply(req, 200);
}

static void on_info(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    struct utsname u;
    if (uname(&u) != 0) u.machine[0] = '\0';
    ef_buf *out = ef_http_out(req);
    ef_buf_puts(out, "{\"version\":\"" EF_VERSION "\",\"latestVersion\":\"\",\"latestVersionURL\":\"\","
                     "\"commit\":\"\",\"buildDate\":\"" __DATE__ "\",\"goVersion\":\"\","
                     "\"updateAvailable\":false,\"isRelease\":true,\"os\":\"linux\",\"arch\":");
    ef_json_put_cstr(out, u.machine);
    ef_buf_puts(out, ",\"edgeflag\":{\"role\":");
    ef_json_put_cstr(out, node->role ? node->role : "primary");
    ef_buf_printf(out, ",\"namespaces\":%u}}", ef_registry_count(node->registry));
    ef_http_reply(req, 200);
}

static void put_namespace_version(const ef_snapshot *s, void *ctx)
{
    ef_buf *out = ctx;
    ef_buf_puts(out, "edgeflag_snapshot_version{namespace=\"");
    ef_metrics_put_label_value(out, ef_snapshot_namespace(s));
    ef_buf_printf(out, "\"} %llu\n", (unsigned long long)ef_snapshot_version(s));
}

static void put_namespace_flags(const ef_snapshot *s, void *ctx)
{
    ef_buf *out = ctx;
    ef_buf_puts(out, "edgeflag_snapshot_flags{namespace=\"");
    ef_metrics_put_label_value(out, ef_snapshot_namespace(s));
    ef_buf_printf(out, "\"} %zu\n", ef_snapshot_flag_count(s));
}

/* Gauges read from the registry at scrape time. */
static void collect_snapshots(ef_buf *out, void *ctx)
{
    ef_node *node = ctx;
    ef_buf_puts(out, "# HELP edgeflag_snapshot_version Version (store sequence) of the snapshot each namespace is evaluated from.\n"
                     "# TYPE edgeflag_snapshot_version gauge\n");
    ef_registry_foreach(node->registry, put_namespace_version, out);
    ef_buf_puts(out, "# HELP edgeflag_snapshot_flags Flags in each namespace's snapshot.\n"
                     "# TYPE edgeflag_snapshot_flags gauge\n");
    ef_registry_foreach(node->registry, put_namespace_flags, out);
    ef_buf_printf(out, "# HELP edgeflag_start_time_seconds When this process started (Unix time).\n"
                       "# TYPE edgeflag_start_time_seconds gauge\nedgeflag_start_time_seconds %.3f\n",
                  (double)node->started_ns / 1e9);
}

static void on_metrics(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    ef_metrics_write(node->metrics, ef_http_out(req));
    ef_http_add_header(req, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    ef_http_reply(req, 200);
}

int ef_api_register_meta(ef_router *r, ef_node *node)
{
    int rc = 0;
    /* about the node, not its state: no namespace, X-Edgeflag-Min-Version does not apply */
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET | EF_HEAD, .pattern = "/health",
                                             .fn = on_health, .ctx = node, .cls = EF_ROUTE_OPEN});
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/meta/info", .fn = on_info,
                                             .ctx = node, .cls = EF_ROUTE_MANAGEMENT});
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/metrics", .fn = on_metrics,
                                             .ctx = node, .cls = EF_ROUTE_OPEN});
    rc |= ef_metrics_add_collector(node->metrics, collect_snapshots, node);
    return rc;
}
