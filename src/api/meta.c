/*
 * meta.c - /health, /meta/info, /meta/config and /metrics. Health and metrics are never
 * authenticated (as in Flipt); the /meta routes are. /meta/config never shows a secret (tokens, database
 * URLs), as Flipt's never does.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "api/node.h"
#include "base/clock.h"

static void on_health(ef_http_req *req, void *ctx)
{
    (void)ctx;
    ef_buf_puts(ef_http_out(req), "{\"status\":\"SERVING\"}");
    ef_http_reply(req, 200);
}

/* GOARCH spelling of the machine (Flipt reports Go's names). */
static const char *go_arch(const char *machine)
{
    static const struct {
        const char *uname, *go;
    } t[] = {{"x86_64", "amd64"}, {"aarch64", "arm64"}, {"i686", "386"}, {"i386", "386"},
             {"armv7l", "arm"}, {"riscv64", "riscv64"}, {"ppc64le", "ppc64le"}, {"s390x", "s390x"}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(machine, t[i].uname) == 0) return t[i].go;
    return machine;
}

/* Flipt's storage type: "database" over a store, "local" for a directory (and a snapshot file);
 * read-only without a store, as Flipt's filesystem storages are. */
static const char *storage_type(const ef_node *node)
{
    return node->store ? "database" : "local";
}

/* GET /meta/info: Flipt's info document (internal/info), with edgeflag's own part added. */
static void on_info(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    struct utsname u;
    if (uname(&u) != 0) u.machine[0] = '\0';
    ef_buf *out = ef_http_out(req);
    ef_buf_puts(out, "{\"version\":\"" EF_VERSION "\",\"latestVersion\":\"\",\"latestVersionURL\":\"\","
                     "\"commit\":\"\",\"buildDate\":\"" EF_BUILD_DATE "\",\"goVersion\":\"\","
                     "\"updateAvailable\":false,\"isRelease\":true,\"os\":\"linux\",\"arch\":");
    ef_json_put_cstr(out, go_arch(u.machine));
    ef_buf_printf(out, ",\"authentication\":{\"required\":%s},\"storage\":{\"type\":\"%s\"%s},"
                       "\"analytics\":{},\"ui\":{\"theme\":\"system\"}",
                  node->auth ? "true" : "false", storage_type(node), node->store ? "" : ",\"readOnly\":true");
    ef_buf_puts(out, ",\"edgeflag\":{\"role\":");
    ef_json_put_cstr(out, node->role ? node->role : "primary");
    ef_buf_printf(out, ",\"namespaces\":%u}}", ef_registry_count(node->registry));
    ef_http_reply(req, 200);
}

static void put_strings(ef_buf *out, const char *const *v, const char *const *dflt)
{
    const char *const *list = v ? v : dflt;
    ef_buf_putc(out, '[');
    for (size_t i = 0; list[i]; i++) {
        if (i) ef_buf_putc(out, ',');
        ef_json_put_cstr(out, list[i]);
    }
    ef_buf_putc(out, ']');
}

/* GET /meta/config: the configuration as Flipt's JSON shows it (internal/config, its json tags),
 * for the keys that mean something here. Like Flipt it never shows secrets: no token, no
 * database URL. */
static void on_config(ef_http_req *req, void *ctx)
{
    static const char *const any_origin[] = {"*", NULL};
    ef_node *node = ctx;
    const ef_node_settings *st = &node->settings;
    ef_buf *out = ef_http_out(req);
    char level[16] = "INFO";
    if (st->log_level) {
        size_t i = 0;
        for (; st->log_level[i] && i + 1 < sizeof(level); i++)
            level[i] = (char)toupper((unsigned char)st->log_level[i]);
        level[i] = '\0';
    }
    ef_buf_puts(out, "{\"version\":\"1.0\",\"authentication\":{\"required\":");
    ef_buf_puts(out, node->auth ? "true" : "false");
    const char *ex = st->auth_exclude ? st->auth_exclude : "";
    if (*ex) {
        ef_buf_printf(out, ",\"exclude\":{%s%s%s%s%s}", strstr(ex, "management") ? "\"management\":true" : "",
                      strstr(ex, "management") && strstr(ex, "evaluation") ? "," : "",
                      strstr(ex, "evaluation") ? "\"evaluation\":true" : "",
                      strstr(ex, "ofrep") && (strstr(ex, "management") || strstr(ex, "evaluation")) ? "," : "",
                      strstr(ex, "ofrep") ? "\"ofrep\":true" : "");
    }
    ef_buf_printf(out, ",\"session\":{\"csrf\":{}},\"methods\":{\"token\":{\"enabled\":%s,\"bootstrap\":{}}}}",
                  node->auth ? "true" : "false");
    ef_buf_printf(out, ",\"cors\":{\"enabled\":%s,\"allowedOrigins\":", st->cors_enabled ? "true" : "false");
    put_strings(out, st->cors_origins, any_origin);
    ef_buf_puts(out, ",\"allowedHeaders\":");
    put_strings(out, st->cors_headers, ef_http_cors_default_headers);
    ef_buf_printf(out, "},\"db\":{},\"log\":{\"level\":\"%s\",\"encoding\":\"console\",\"grpcLevel\":\"ERROR\"},"
                       "\"meta\":{\"checkForUpdates\":false,\"telemetryEnabled\":false},\"server\":{\"host\":",
                  level);
    ef_json_put_cstr(out, st->host ? st->host : "127.0.0.1");
    ef_buf_printf(out, ",\"protocol\":\"http\",\"httpPort\":%u},\"storage\":{\"type\":\"%s\"", st->port,
                  storage_type(node));
    if (!node->store && st->dir) {
        ef_buf_puts(out, ",\"local\":{\"path\":");
        ef_json_put_cstr(out, st->dir);
        ef_buf_putc(out, '}');
    }
    if (!node->store) ef_buf_puts(out, ",\"readOnly\":true");
    ef_buf_puts(out, "},\"ui\":{\"enabled\":true,\"defaultTheme\":\"system\"}}");
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
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/meta/config", .fn = on_config,
                                             .ctx = node, .cls = EF_ROUTE_MANAGEMENT});
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/metrics", .fn = on_metrics,
                                             .ctx = node, .cls = EF_ROUTE_OPEN});
    rc |= ef_metrics_add_collector(node->metrics, collect_snapshots, node);
    return rc;
}
