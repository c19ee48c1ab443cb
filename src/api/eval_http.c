/*
 * eval_http.c - Flipt's evaluation API over HTTP: /evaluate/v1/{variant,boolean,batch} and the
 * legacy /api/v1/evaluate and /api/v1/batch-evaluate (both also under /api/v1/namespaces/{ns}/).
 *
 * Every answer comes from the published snapshots only: one RCU read section, no database, no lock.
 * Results point into the snapshot, so the body is written before the read section ends.
 */
#include <stdio.h>
#include <string.h>

#include "api/auth.h"
#include "api/eval_json.h"
#include "api/eval_metrics.h"
#include "api/node.h"
#include "base/clock.h"
#include "eval/registry_read.h"

static ef_bytes request_id_or_new(ef_http_req *req, ef_bytes given)
{
    if (given.n) return given;
    char *id = ef_arena_alloc(ef_http_arena(req), EF_UUID_LEN + 1);
    if (!id) return given;
    ef_uuid_v4(id);
    return (ef_bytes){id, EF_UUID_LEN};
}

/* now: ef_clock_mono_ns() read once after the evaluation (it also times the evaluation's metric,
 * gives the wall time, and is the request's end for the HTTP metric: a precise clock read costs
 * ~16 ns on this virtual machine, several per request added up). */
static ef_eval_timing timing_at(ef_http_req *req, int64_t now)
{
    ef_http_set_finished_ns(req, now);
    return (ef_eval_timing){.duration_ns = now - ef_http_started_ns(req),
                            .timestamp_ns = ef_clock_wall_at(now)};
}

static void set_version_header(ef_http_req *req, const ef_snapshot *snap)
{
    char v[32];
    ef_u64_dec(snap ? ef_snapshot_version(snap) : 0, v);
    ef_http_add_header(req, "X-Edgeflag-Version", v);
}

/* Closes a batch's responses array with the whole request's duration. */
static void put_request_millis(ef_http_req *req, ef_buf *out)
{
    char ms[32];
    ef_millis_format(ef_clock_mono_ns() - ef_http_started_ns(req), ms);
    ef_buf_puts(out, "],\"requestDurationMillis\":");
    ef_buf_puts(out, ms);
}

/* The body as one evaluation request; false after answering 400. */
static bool read_input(ef_http_req *req, ef_eval_input *in)
{
    /* the common shape in one pass (a context object is depth 2); anything else the slow way */
    unsigned depth = ef_http_max_json_depth(req); /* 0: the parser's default, far above 2 */
    if ((depth == 0 || depth >= 2) && ef_eval_input_fast(ef_http_body(req), ef_http_arena(req), in))
        return true;
    const ef_json *body = ef_api_body_json(req);
    if (!body) return false;
    char err[256];
    if (ef_eval_input_decode(body, ef_http_arena(req), in, err, sizeof(err)) != 0) {
        ef_http_bad_request(req, "%s", err);
        return false;
    }
    return true;
}

typedef enum { KIND_VARIANT, KIND_BOOLEAN } eval_kind;

static void handle_single(ef_http_req *req, ef_node *node, eval_kind kind)
{
    ef_eval_input in;
    if (!read_input(req, &in)) return;
    ef_bytes ns = ef_api_namespace(in.namespace_key);
    if (!ef_auth_namespace_allowed(req, ns)) return;
    ef_bytes rid = request_id_or_new(req, in.request_id);
    ef_buf *out = ef_http_out(req);
    int status = 200;
    int64_t t0 = ef_clock_mono_ns();
    ef_registry_enter(node->registry);
    const ef_snapshot *snap = ef_registry_get(node->registry, ns);
    ef_eval_status st = EF_EVAL_NOT_FOUND;
    if (kind == KIND_VARIANT) {
        ef_variant_result r;
        if (snap) st = ef_eval_variant(snap, &in.req, &r);
        if (st == EF_EVAL_OK) {
            int64_t now = ef_clock_mono_ns();
            ef_eval_timing t = timing_at(req, now);
            ef_write_variant_response(out, &r, rid, &t);
            ef_eval_metrics_variant(node, ns, &r, now - t0);
        }
    } else {
        ef_boolean_result r;
        if (snap) st = ef_eval_boolean(snap, &in.req, &r);
        if (st == EF_EVAL_OK) {
            int64_t now = ef_clock_mono_ns();
            ef_eval_timing t = timing_at(req, now);
            ef_write_boolean_response(out, &r, rid, &t);
            ef_eval_metrics_boolean(node, ns, &r, now - t0);
        }
    }
    if (st != EF_EVAL_OK) {
        ef_write_eval_error(out, st, ns, in.req.flag_key, snap);
        status = st == EF_EVAL_NOT_FOUND ? 404 : 400;
        if (st == EF_EVAL_NOT_FOUND)
            ef_eval_metrics_unknown(node, ns, in.req.flag_key, snap != NULL);
        else
            ef_eval_metrics_error(node, ns, in.req.flag_key);
    }
    set_version_header(req, snap);
    ef_registry_leave(node->registry);
    ef_http_reply(req, status);
}

static void on_variant(ef_http_req *req, void *ctx)
{
    handle_single(req, ctx, KIND_VARIANT);
}

static void on_boolean(ef_http_req *req, void *ctx)
{
    handle_single(req, ctx, KIND_BOOLEAN);
}

/* POST /evaluate/v1/batch: each request evaluated as its flag's own type; an unknown flag is an
 * ERROR_EVALUATION_RESPONSE_TYPE element, not a failure. */
static void on_batch(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    const ef_json *body = ef_api_body_json(req);
    if (!body) return;
    ef_bytes batch_id = {"", 0};
    const ef_json *rid = ef_json_get2(body, "requestId", "request_id");
    if (!ef_json_is_null(rid)) {
        if (rid->type != EF_JSON_STRING) {
            ef_http_bad_request(req, "invalid value for string field requestId");
            return;
        }
        batch_id = rid->str;
    }
    const ef_json *list = ef_json_get(body, "requests");
    if (!ef_json_is_null(list) && list->type != EF_JSON_ARRAY) {
        ef_http_bad_request(req, "invalid value for repeated field requests: expected an array");
        return;
    }
    size_t n = ef_json_is_null(list) ? 0 : list->len;
    ef_eval_input *ins = ef_arena_alloc(ef_http_arena(req), (n ? n : 1) * sizeof(*ins));
    if (!ins) {
        ef_http_error(req, 500, 13, "out of memory");
        return;
    }
    size_t i = 0;
    char err[256];
    for (const ef_json *c = n ? list->child : NULL; c; c = c->next, i++) {
        if (ef_eval_input_decode(c, ef_http_arena(req), &ins[i], err, sizeof(err)) != 0) {
            ef_http_bad_request(req, "requests[%zu]: %s", i, err);
            return;
        }
        if (!ef_auth_namespace_allowed(req, ins[i].namespace_key)) return;
    }
    batch_id = request_id_or_new(req, batch_id);
    ef_buf *out = ef_http_out(req);
    ef_buf_puts(out, "{\"requestId\":");
    ef_json_put_str(out, batch_id);
    ef_buf_puts(out, ",\"responses\":[");
    int64_t t0 = ef_clock_mono_ns();
    ef_registry_enter(node->registry);
    const ef_snapshot *last = NULL;
    ef_eval_timing t = timing_at(req, t0);
    /* the namespace is looked up once for a run of requests naming the same one */
    ef_bytes prev_ns = {NULL, 0};
    const ef_snapshot *snap = NULL;
    for (i = 0; i < n; i++) {
        ef_bytes ns = ef_api_namespace(ins[i].namespace_key);
        if (!prev_ns.p || !ef_bytes_eq(ns, prev_ns)) {
            snap = ef_registry_get(node->registry, ns);
            prev_ns = ns;
        }
        const ef_flag *f = snap ? ef_snapshot_request_flag(snap, &ins[i].req) : NULL;
        if (i) ef_buf_putc(out, ',');
        if (!f) {
            ef_write_batch_not_found(out, ins[i].req.flag_key, ns);
            ef_eval_metrics_unknown(node, ns, ins[i].req.flag_key, snap != NULL);
        } else if (ef_flag_get_type(f) == EF_FLAG_VARIANT) {
            ef_variant_result r;
            ef_eval_variant_flag(f, &ins[i].req, &r);
            ef_write_batch_variant(out, &r, ins[i].request_id, &t);
            ef_eval_metrics_variant(node, ns, &r, -1);
        } else {
            ef_boolean_result r;
            ef_eval_boolean_flag(f, &ins[i].req, &r);
            ef_write_batch_boolean(out, &r, ins[i].request_id, &t);
            ef_eval_metrics_boolean(node, ns, &r, -1);
        }
        if (snap) last = snap;
    }
    set_version_header(req, last);
    ef_registry_leave(node->registry);
    ef_histogram_observe(node->m.evaluation_seconds, &EF_BYTES_LIT("batch"),
                         (double)(ef_clock_mono_ns() - t0) / 1e9);
    put_request_millis(req, out);
    ef_buf_putc(out, '}');
    ef_http_reply(req, 200);
}

/* ---- legacy /api/v1/evaluate (variant flags only, Flipt's EvaluationResponse shape) ---------- */

static void put_context(ef_buf *out, const ef_eval_request *r)
{
    ef_buf_putc(out, '{');
    for (size_t i = 0; i < ef_context_count(r->context); i++) {
        if (i) ef_buf_putc(out, ',');
        ef_json_put_str(out, ef_context_key(r->context, i));
        ef_buf_putc(out, ':');
        ef_json_put_str(out, ef_context_value(r->context, i));
    }
    ef_buf_putc(out, '}');
}

/* Writes one legacy response; returns the evaluation status (OK or an error, nothing written). */
static ef_eval_status legacy_one(ef_node *node, ef_buf *out, const ef_eval_input *in, ef_bytes ns,
                                 ef_bytes request_id, const ef_snapshot *snap, int64_t ts)
{
    ef_variant_result r;
    ef_eval_status st = snap ? ef_eval_variant(snap, &in->req, &r) : EF_EVAL_NOT_FOUND;
    if (st != EF_EVAL_OK) return st;
    ef_eval_metrics_variant(node, ns, &r, -1);
    char stamp[EF_RFC3339_MAX];
    ef_rfc3339_format(ts, stamp);
    ef_buf_puts(out, "{\"requestId\":");
    ef_json_put_str(out, request_id);
    ef_buf_puts(out, ",\"entityId\":");
    ef_json_put_str(out, in->req.entity_id);
    ef_buf_puts(out, ",\"requestContext\":");
    put_context(out, &in->req);
    ef_buf_puts(out, ",\"match\":");
    ef_json_put_bool(out, r.match);
    ef_buf_puts(out, ",\"flagKey\":");
    ef_json_put_str(out, r.flag_key);
    int first = ef_matched_next(&r.segments, 0);
    ef_buf_puts(out, ",\"segmentKey\":");
    ef_json_put_str(out, first >= 0 ? ef_matched_key(&r.segments, first) : (ef_bytes){"", 0});
    ef_buf_printf(out, ",\"timestamp\":\"%s\",\"value\":", stamp);
    ef_json_put_str(out, r.variant_key);
    ef_buf_puts(out, ",\"requestDurationMillis\":0,\"attachment\":");
    ef_json_put_str(out, r.has_attachment ? r.attachment : (ef_bytes){"", 0});
    ef_buf_printf(out, ",\"reason\":\"%s\",\"namespaceKey\":", ef_reason_name(r.reason));
    ef_json_put_str(out, ns);
    ef_buf_puts(out, ",\"segmentKeys\":[");
    for (int i = first, k = 0; i >= 0; i = ef_matched_next(&r.segments, i + 1), k++) {
        if (k) ef_buf_putc(out, ',');
        ef_json_put_str(out, ef_matched_key(&r.segments, i));
    }
    ef_buf_puts(out, "]}");
    return EF_EVAL_OK;
}

static bool legacy_validate(ef_http_req *req, const ef_eval_input *in)
{
    if (in->req.flag_key.n == 0) {
        ef_http_bad_request(req, "invalid field flagKey: must not be empty");
        return false;
    }
    if (in->req.entity_id.n == 0) {
        ef_http_bad_request(req, "invalid field entityId: must not be empty");
        return false;
    }
    return true;
}

/* Whether the route's path names the namespace: then it is the path's, even an empty segment
 * (default), as Flipt's gateway lets path parameters override the body's fields. */
static bool path_names_ns(const ef_http_req *req)
{
    const ef_route *r = ef_http_route(req);
    return r && r->ns == EF_NS_PATH;
}

static void on_legacy_evaluate(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    ef_eval_input in;
    if (!read_input(req, &in)) return;
    ef_bytes ns = ef_api_namespace(path_names_ns(req) ? ef_http_param(req, "namespaceKey") : in.namespace_key);
    if (!ef_auth_namespace_allowed(req, ns) || !legacy_validate(req, &in)) return;
    ef_bytes rid = request_id_or_new(req, in.request_id);
    ef_buf *out = ef_http_out(req);
    ef_registry_enter(node->registry);
    const ef_snapshot *snap = ef_registry_get(node->registry, ns);
    ef_eval_status st = legacy_one(node, out, &in, ns, rid, snap, ef_clock_wall_ns());
    if (st != EF_EVAL_OK) ef_write_eval_error(out, st, ns, in.req.flag_key, snap);
    set_version_header(req, snap);
    ef_registry_leave(node->registry);
    ef_http_reply(req, st == EF_EVAL_OK ? 200 : st == EF_EVAL_NOT_FOUND ? 404 : 400);
}

static void on_legacy_batch(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    const ef_json *body = ef_api_body_json(req);
    if (!body) return;
    ef_bytes path_ns = ef_http_param(req, "namespaceKey");
    ef_bytes body_ns = {"", 0}, batch_id = {"", 0};
    /* a member of the wrong type is a 400, as for every other field (never silently dropped) */
    const ef_json *v = ef_json_get2(body, "namespaceKey", "namespace_key");
    if (!ef_json_is_null(v) && v->type != EF_JSON_STRING) {
        ef_http_bad_request(req, "invalid value for string field namespaceKey");
        return;
    }
    if (!ef_json_is_null(v)) body_ns = v->str;
    v = ef_json_get2(body, "requestId", "request_id");
    if (!ef_json_is_null(v) && v->type != EF_JSON_STRING) {
        ef_http_bad_request(req, "invalid value for string field requestId");
        return;
    }
    if (!ef_json_is_null(v)) batch_id = v->str;
    bool exclude = false;
    v = ef_json_get2(body, "excludeNotFound", "exclude_not_found");
    if (!ef_json_is_null(v)) {
        if (v->type != EF_JSON_TRUE && v->type != EF_JSON_FALSE) {
            ef_http_bad_request(req, "invalid value for bool field excludeNotFound");
            return;
        }
        exclude = v->type == EF_JSON_TRUE;
    }
    const ef_json *list = ef_json_get(body, "requests");
    if (ef_json_is_null(list) || list->type != EF_JSON_ARRAY || list->len == 0) {
        ef_http_bad_request(req, "invalid field requests: must not be empty");
        return;
    }
    ef_bytes ns = ef_api_namespace(path_names_ns(req) ? path_ns : body_ns);
    if (!ef_auth_namespace_allowed(req, ns)) return;
    size_t n = list->len, i = 0;
    ef_eval_input *ins = ef_arena_alloc(ef_http_arena(req), n * sizeof(*ins));
    if (!ins) {
        ef_http_error(req, 500, 13, "out of memory");
        return;
    }
    char err[256];
    for (const ef_json *c = list->child; c; c = c->next, i++) {
        if (ef_eval_input_decode(c, ef_http_arena(req), &ins[i], err, sizeof(err)) != 0) {
            ef_http_bad_request(req, "requests[%zu]: %s", i, err);
            return;
        }
        ef_bytes own = ef_api_namespace(ins[i].namespace_key);
        if (ins[i].namespace_key.n && !ef_bytes_eq(own, ns)) {
            ef_http_bad_request(req, "invalid field namespaceKey: must be the same for all requests if specified");
            return;
        }
        if (!legacy_validate(req, &ins[i])) return;
    }
    batch_id = request_id_or_new(req, batch_id);
    ef_buf *out = ef_http_out(req);
    ef_buf_puts(out, "{\"requestId\":");
    ef_json_put_str(out, batch_id);
    ef_buf_puts(out, ",\"responses\":[");
    int64_t ts = ef_clock_wall_ns();
    ef_registry_enter(node->registry);
    const ef_snapshot *snap = ef_registry_get(node->registry, ns);
    size_t written = 0;
    for (i = 0; i < n; i++) {
        size_t mark = out->len;
        if (written) ef_buf_putc(out, ',');
        ef_eval_status st = legacy_one(node, out, &ins[i], ns, (ef_bytes){"", 0}, snap, ts);
        if (st == EF_EVAL_OK) {
            written++;
            continue;
        }
        out->len = mark;
        if (st == EF_EVAL_NOT_FOUND && exclude) continue;
        ef_buf_clear(out);
        ef_write_eval_error(out, st, ns, ins[i].req.flag_key, snap);
        ef_registry_leave(node->registry);
        ef_http_reply(req, st == EF_EVAL_NOT_FOUND ? 404 : 400);
        return;
    }
    set_version_header(req, snap);
    ef_registry_leave(node->registry);
    put_request_millis(req, out);
    ef_buf_putc(out, '}');
    ef_http_reply(req, 200);
}

int ef_api_register_eval(ef_router *r, ef_node *node)
{
    int rc = 0;
    /* Evaluation reads the node's state and never writes, whatever its method. The namespace is
     * in the body (each handler checks it) unless the path names it. */
#define EVAL_BODY(p, f)                                                                            \
    (&(ef_route){.methods = EF_POST, .pattern = (p), .fn = (f), .ctx = node,                       \
                 .cls = EF_ROUTE_EVALUATION, .ns = EF_NS_BODY, .flags = EF_RF_STATE})
#define EVAL_PATH(p, f)                                                                            \
    (&(ef_route){.methods = EF_POST, .pattern = (p), .fn = (f), .ctx = node,                       \
                 .cls = EF_ROUTE_EVALUATION, .ns = EF_NS_PATH, .ns_param = "namespaceKey",         \
                 .flags = EF_RF_STATE | EF_RF_NS_EMPTY})
    rc |= ef_router_add_route(r, EVAL_BODY("/evaluate/v1/variant", on_variant));
    rc |= ef_router_add_route(r, EVAL_BODY("/evaluate/v1/boolean", on_boolean));
    rc |= ef_router_add_route(r, EVAL_BODY("/evaluate/v1/batch", on_batch));
    rc |= ef_router_add_route(r, EVAL_BODY("/api/v1/evaluate", on_legacy_evaluate));
    rc |= ef_router_add_route(r, EVAL_PATH("/api/v1/namespaces/{namespaceKey}/evaluate", on_legacy_evaluate));
    rc |= ef_router_add_route(r, EVAL_BODY("/api/v1/batch-evaluate", on_legacy_batch));
    rc |= ef_router_add_route(r, EVAL_PATH("/api/v1/namespaces/{namespaceKey}/batch-evaluate", on_legacy_batch));
#undef EVAL_BODY
#undef EVAL_PATH
    return rc;
}
