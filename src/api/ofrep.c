/*
 * ofrep.c - the OpenFeature Remote Evaluation Protocol as Flipt serves it: configuration, one flag,
 * and bulk evaluation. The namespace comes from the X-Flipt-Namespace header ("default" without it).
 *
 * Like the evaluation API, answers come from the published snapshot only. Errors use OFREP's body
 * {"key","errorCode","errorDetails"}, not Flipt's gRPC error body.
 *
 * One deliberate leniency: OpenFeature contexts often carry numbers and booleans; Flipt's map of
 * strings would refuse them, edgeflag passes their JSON text (5, true) as the string value. Objects
 * and arrays are refused with INVALID_CONTEXT.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/eval_metrics.h"
#include "api/node.h"
#include "base/clock.h"
#include "eval/registry_read.h"

static void ofrep_error(ef_http_req *req, int status, ef_bytes key, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void ofrep_error(ef_http_req *req, int status, ef_bytes key, const char *code, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ef_buf *out = ef_http_out(req);
    ef_buf_clear(out);
    ef_buf_puts(out, "{\"key\":");
    ef_json_put_str(out, key);
    ef_buf_printf(out, ",\"errorCode\":\"%s\",\"errorDetails\":", code);
    ef_json_put_cstr(out, msg);
    ef_buf_putc(out, '}');
    ef_http_reply(req, status);
}

static const char *ofrep_reason(ef_reason r)
{
    switch (r) {
    case EF_REASON_MATCH: return "TARGETING_MATCH";
    case EF_REASON_DEFAULT: return "DEFAULT";
    case EF_REASON_FLAG_DISABLED: return "DISABLED";
    default: return "UNKNOWN";
    }
}

typedef struct ofrep_ctx {
    ef_eval_request req;
    ef_bytes flags; /* bulk: comma-separated keys from context.flags, or empty */
    bool has_flags;
} ofrep_ctx;

/* A context member's value as the engine sees it: 1 and *v for a string, a number (its literal
 * text) or a boolean, 0 for null (skipped), -1 for anything else. */
static int context_value_of(const ef_json *c, ef_bytes *v)
{
    switch (c->type) {
    case EF_JSON_STRING:
    case EF_JSON_NUMBER: *v = c->str; return 1;
    case EF_JSON_TRUE: *v = EF_BYTES_LIT("true"); return 1;
    case EF_JSON_FALSE: *v = EF_BYTES_LIT("false"); return 1;
    case EF_JSON_NULL: return 0;
    default: return -1;
    }
}

/* Reads {"context":{...}} into a request. Returns false after answering 400. */
static bool read_context(ef_http_req *req, ef_bytes key, ofrep_ctx *oc)
{
    memset(oc, 0, sizeof(*oc));
    const ef_json *body = NULL;
    ef_bytes raw = ef_http_body(req);
    ef_json_error je;
    ef_json_opts o = {.max_depth = ef_http_max_json_depth(req)};
    if (raw.n == 0) {
        body = NULL;
    } else if (!(body = ef_json_parse(raw.p, raw.n, ef_http_arena(req), &o, &je)) || body->type != EF_JSON_OBJECT) {
        ofrep_error(req, 400, key, "PARSE_ERROR", "request body is not a JSON object");
        return false;
    }
    const ef_json *ctx = body ? ef_json_get(body, "context") : NULL;
    if (!ef_json_is_null(ctx) && ctx->type != EF_JSON_OBJECT) {
        ofrep_error(req, 400, key, "INVALID_CONTEXT", "context must be an object");
        return false;
    }
    /* first pass: check every value, find the entity and size the request block */
    size_t n = 0, text = 0;
    ef_bytes entity = {"", 0};
    for (const ef_json *c = ef_json_is_null(ctx) ? NULL : ctx->child; c; c = c->next) {
        ef_bytes v;
        int kind = context_value_of(c, &v);
        if (kind == 0) continue;
        if (kind < 0) {
            ofrep_error(req, 400, key, "INVALID_CONTEXT", "context value of %.*s must be a string, number or boolean",
                        (int)c->key.n, c->key.p);
            return false;
        }
        if (ef_bytes_eq(c->key, EF_BYTES_LIT("targetingKey"))) entity = v;
        if (ef_bytes_eq(c->key, EF_BYTES_LIT("flags"))) {
            oc->flags = v;
            oc->has_flags = true;
        }
        n++;
        text += c->key.n + v.n;
    }
    char uuid[EF_UUID_LEN + 1];
    if (entity.n == 0) { /* Flipt evaluates an anonymous entity with a random id */
        ef_uuid_v4(uuid);
        entity = (ef_bytes){uuid, EF_UUID_LEN};
    }
    text += entity.n;
    size_t size = ef_request_size(n, text);
    void *mem = size ? ef_arena_alloc(ef_http_arena(req), size) : NULL;
    if (!mem) {
        ofrep_error(req, 500, key, "GENERAL", "out of memory");
        return false;
    }
    ef_context *block = ef_request_init(&oc->req, mem, n, text, (ef_bytes){"", 0}, entity);
    for (const ef_json *c = n ? ctx->child : NULL; c; c = c->next) {
        ef_bytes v;
        if (context_value_of(c, &v) > 0) ef_request_add_context(block, c->key, v);
    }
    return true;
}

static ef_bytes namespace_of(ef_http_req *req)
{
    const char *h = ef_http_header(req, "X-Flipt-Namespace");
    return ef_api_namespace(h ? ef_bytes_of(h) : (ef_bytes){"", 0});
}

/* Writes one evaluated flag object. */
static void put_flag(ef_node *node, ef_bytes ns, ef_buf *out, const ef_flag *f, const ef_eval_request *r)
{
    ef_buf_puts(out, "{\"key\":");
    ef_json_put_str(out, ef_flag_key(f));
    if (ef_flag_get_type(f) == EF_FLAG_BOOLEAN) {
        ef_boolean_result b;
        ef_eval_boolean_flag(f, r, &b);
        ef_eval_metrics_boolean(node, ns, &b, -1);
        ef_buf_printf(out, ",\"reason\":\"%s\",\"variant\":\"%s\",\"value\":%s,\"metadata\":{}}",
                      ofrep_reason(b.reason), b.enabled ? "true" : "false", b.enabled ? "true" : "false");
        return;
    }
    ef_variant_result v;
    ef_eval_variant_flag(f, r, &v);
    ef_eval_metrics_variant(node, ns, &v, -1);
    ef_buf_printf(out, ",\"reason\":\"%s\",\"variant\":", ofrep_reason(v.reason));
    ef_json_put_str(out, v.variant_key);
    ef_buf_puts(out, ",\"value\":");
    ef_json_put_str(out, v.variant_key);
    ef_buf_puts(out, ",\"metadata\":{");
    bool any = false;
    if (ef_matched_count(&v.segments)) {
        /* "segments" is one comma-separated string, as Flipt's OFREP bridge sends it */
        ef_buf keys;
        ef_buf_init(&keys);
        for (int i = ef_matched_next(&v.segments, 0); i >= 0; i = ef_matched_next(&v.segments, i + 1)) {
            if (keys.len) ef_buf_putc(&keys, ',');
            ef_bytes key = ef_matched_key(&v.segments, i);
            ef_buf_append(&keys, key.p, key.n);
        }
        ef_buf_puts(out, "\"segments\":");
        ef_json_put_str(out, (ef_bytes){keys.data ? keys.data : "", keys.len});
        ef_buf_free(&keys);
        any = true;
    }
    if (v.has_attachment && v.attachment.n) {
        if (any) ef_buf_putc(out, ',');
        ef_buf_puts(out, "\"attachment\":");
        ef_json_put_str(out, v.attachment);
    }
    ef_buf_puts(out, "}}");
}

static void on_evaluate_flag(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    ef_bytes key = ef_http_param(req, "key");
    if (key.n == 0) {
        ofrep_error(req, 400, key, "INVALID_CONTEXT", "flag key was not provided");
        return;
    }
    ofrep_ctx oc;
    if (!read_context(req, key, &oc)) return;
    ef_bytes ns = namespace_of(req);
    ef_registry_enter(node->registry);
    const ef_snapshot *snap = ef_registry_get(node->registry, ns);
    const ef_flag *f = snap ? ef_snapshot_find_flag(snap, key) : NULL;
    if (f) put_flag(node, ns, ef_http_out(req), f, &oc.req);
    bool ns_exists = snap != NULL;
    ef_registry_leave(node->registry);
    if (!f) {
        ef_eval_metrics_unknown(node, ns, key, ns_exists);
        ofrep_error(req, 404, key, "FLAG_NOT_FOUND", "flag was not found %.*s", (int)key.n, key.p);
        return;
    }
    ef_http_reply(req, 200);
}

/* Bulk: the flags named in context.flags (comma-separated), else every boolean flag and every
 * enabled variant flag. Any unknown named flag fails the whole request, as in Flipt. */
static void on_evaluate_bulk(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    ofrep_ctx oc;
    if (!read_context(req, (ef_bytes){"", 0}, &oc)) return;
    ef_bytes ns = namespace_of(req);
    ef_buf *out = ef_http_out(req);
    ef_buf_puts(out, "{\"flags\":[");
    ef_registry_enter(node->registry);
    const ef_snapshot *snap = ef_registry_get(node->registry, ns);
    size_t written = 0;
    ef_bytes missing = {NULL, 0};
    if (oc.has_flags) {
        const char *p = oc.flags.p, *end = oc.flags.p + oc.flags.n;
        while (p <= end && !missing.p) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *stop = comma ? comma : end;
            ef_bytes k = {p, (size_t)(stop - p)};
            while (k.n && k.p[0] == ' ') k.p++, k.n--;
            while (k.n && k.p[k.n - 1] == ' ') k.n--;
            if (k.n) {
                const ef_flag *f = snap ? ef_snapshot_find_flag(snap, k) : NULL;
                if (!f) {
                    missing = k;
                    break;
                }
                if (written++) ef_buf_putc(out, ',');
                put_flag(node, ns, out, f, &oc.req);
            }
            if (!comma) break;
            p = comma + 1;
        }
    } else if (snap) {
        for (size_t i = 0; i < ef_snapshot_flag_count(snap); i++) {
            const ef_flag *f = ef_snapshot_flag_at(snap, i);
            if (ef_flag_get_type(f) == EF_FLAG_VARIANT && !ef_flag_enabled(f)) continue;
            if (written++) ef_buf_putc(out, ',');
            put_flag(node, ns, out, f, &oc.req);
        }
    }
    ef_registry_leave(node->registry);
    if (missing.p) {
        char *copy = ef_arena_memdup(ef_http_arena(req), missing.p, missing.n);
        ofrep_error(req, 404, (ef_bytes){copy, missing.n}, "FLAG_NOT_FOUND", "flag was not found %s", copy);
        return;
    }
    ef_buf_puts(out, "]}");
    ef_http_reply(req, 200);
}

static void on_configuration(ef_http_req *req, void *ctx)
{
    (void)ctx;
    /* State changes reach this node by push, so clients may poll as often as once a second. */
    ef_buf_puts(ef_http_out(req),
                "{\"name\":\"flipt\",\"capabilities\":{\"cacheInvalidation\":{\"polling\":{\"enabled\":true,"
                "\"minPollingIntervalMs\":1000}},\"flagEvaluation\":{\"supportedTypes\":[\"string\",\"boolean\"]}}}");
    ef_http_reply(req, 200);
}

int ef_api_register_ofrep(ef_router *r, ef_node *node)
{
    int rc = 0;
    /* The namespace is the X-Flipt-Namespace header. The configuration names no flag, but a
     * provider asks for it with the same header as its evaluations, so it is scoped the same way. */
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/ofrep/v1/configuration",
                                             .fn = on_configuration, .ctx = node, .cls = EF_ROUTE_OFREP,
                                             .ns = EF_NS_HEADER});
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_POST, .pattern = "/ofrep/v1/evaluate/flags/{key}",
                                             .fn = on_evaluate_flag, .ctx = node, .cls = EF_ROUTE_OFREP,
                                             .ns = EF_NS_HEADER, .flags = EF_RF_STATE});
    rc |= ef_router_add_route(r, &(ef_route){.methods = EF_POST, .pattern = "/ofrep/v1/evaluate/flags",
                                             .fn = on_evaluate_bulk, .ctx = node, .cls = EF_ROUTE_OFREP,
                                             .ns = EF_NS_HEADER, .flags = EF_RF_STATE});
    return rc;
}
