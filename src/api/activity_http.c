/*
 * activity_http.c - GET /edgeflag/v1/namespaces/{ns}/flags/{key}/activity[?minutes=N]: the flag's
 * evaluations on this node per outcome and minute (eval_activity.h), and per node and summed over
 * the nodes this node can see (this one and those whose counts its replicas reported up,
 * activity_peers.h), for the flag page's chart; and this node's counts as Prometheus metrics.
 * Reads only: never touches the evaluation path's table other than through its read functions.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/activity_peers.h"
#include "api/eval_activity.h"
#include "api/node.h"
#include "base/cnum.h"
#include "base/json.h"

struct per_node {
    ef_buf *out;
    unsigned minutes;
    uint64_t sum[EF_ACT_MINUTES];
    unsigned n;
};

/* {"node":..,"self":bool,"counts":[..],"total":n}, and its counts into the sum. The first node
 * written is this one. */
static void put_node(const char *name, const uint64_t *counts, void *ctx)
{
    struct per_node *pn = ctx;
    uint64_t total = 0;
    ef_buf_puts(pn->out, pn->n ? ",{\"node\":" : "{\"node\":");
    ef_json_put_cstr(pn->out, name);
    ef_buf_printf(pn->out, ",\"self\":%s,\"counts\":[", pn->n ? "false" : "true");
    for (unsigned i = 0; i < pn->minutes; i++) {
        ef_buf_printf(pn->out, "%s%" PRIu64, i ? "," : "", counts[i]);
        pn->sum[i] += counts[i];
        total += counts[i];
    }
    ef_buf_printf(pn->out, "],\"total\":%" PRIu64 "}", total);
    pn->n++;
}

static void on_activity(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    ef_bytes ns = ef_api_namespace(ef_http_param(req, "ns"));
    ef_bytes flag = ef_http_param(req, "key");
    unsigned minutes = 60;
    const char *q = ef_http_query(req, "minutes");
    if (q) {
        uint64_t m;
        if (!ef_parse_u64(q, &m) || m < 1 || m > EF_ACT_MINUTES) {
            ef_http_bad_request(req, "invalid minutes '%s': want 1 to %d", q, EF_ACT_MINUTES);
            return;
        }
        minutes = (unsigned)m;
    }
    ef_buf *out = ef_http_out(req);
    ef_buf_puts(out, "{\"node\":");
    ef_json_put_cstr(out, node->name ? node->name : "edgeflag");
    ef_buf_puts(out, ",\"namespace\":");
    ef_json_put_str(out, ns);
    ef_buf_puts(out, ",\"flag\":");
    ef_json_put_str(out, flag);
    ef_buf_puts(out, ",\"activity\":");
    ef_activity_tick(node->activity, ef_activity_minute()); /* the clock thread's tick may be due */
    ef_activity_flag_json(node->activity, ns, flag, minutes, out);
    /* per node (this one first), then the sum; all on this node's minutes */
    struct per_node pn = {out, minutes, {0}, 0};
    uint64_t own[EF_ACT_MINUTES];
    ef_activity_flag_counts(node->activity, ns, flag, minutes, own);
    ef_buf_puts(out, ",\"nodes\":[");
    put_node(node->name ? node->name : "edgeflag", own, &pn);
    ef_activity_peers_flag(node->activity_peers, ns, flag, minutes, ef_activity_now(node->activity), put_node, &pn);
    ef_buf_puts(out, "],\"sum\":{\"counts\":[");
    uint64_t total = 0;
    for (unsigned i = 0; i < minutes; i++) {
        ef_buf_printf(out, "%s%" PRIu64, i ? "," : "", pn.sum[i]);
        total += pn.sum[i];
    }
    ef_buf_printf(out, "],\"total\":%" PRIu64 ",\"nodes\":%u}}", total, pn.n);
    ef_http_reply(req, 200);
}

static void collect(ef_buf *out, void *ctx)
{
    ef_node *node = ctx;
    ef_activity_tick(node->activity, ef_activity_minute());
    ef_activity_metrics(node->activity, node->name ? node->name : "edgeflag", out);
}

int ef_api_register_activity(ef_router *r, ef_node *node)
{
    if (!node->activity) return 0;
    if (node->metrics && ef_metrics_add_collector(node->metrics, collect, node) != 0) return -1;
    return ef_router_add_route(r, &(ef_route){.methods = EF_GET,
                                              .pattern = "/edgeflag/v1/namespaces/{ns}/flags/{key}/activity",
                                              .fn = on_activity, .ctx = node, .cls = EF_ROUTE_MANAGEMENT,
                                              .ns = EF_NS_PATH, .ns_param = "ns", .flags = EF_RF_STATE});
}
