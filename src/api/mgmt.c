/*
 * mgmt.c - Flipt's management REST API (/api/v1): route registration and what every handler
 * shares (request context, namespace and pagination, field decoding with Flipt's 400s, write
 * metrics, replies).
 *
 * Handlers decode and dispatch only: validation and Flipt's messages live in the store, so the API
 * and imports can never disagree about what is valid. Nothing here may keep state between requests.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/auth.h"
#include "api/mgmt_int.h"
#include "base/clock.h"
#include "store/dir.h"

/* ---- request context ------------------------------------------------------------------------ */

ef_bytes ef_mgmt_param(const ef_mgmt *m, const char *name)
{
    return ef_http_param(m->req, name);
}

ef_bytes ef_mgmt_query(const ef_mgmt *m, const char *camel, const char *snake)
{
    /* the gateway maps query parameters to request fields under either spelling */
    const char *v = ef_http_query(m->req, camel);
    if (!v && snake) v = ef_http_query(m->req, snake);
    return v ? ef_bytes_of(v) : (ef_bytes){"", 0};
}

/* The namespace: the path parameter, else the request's namespaceKey field (body or query, as the
 * gateway fills fields not bound by the path), else "default". */
static ef_bytes namespace_of(const ef_mgmt *m)
{
    /* A path that names the namespace wins even when empty (then "default"), as Flipt's gateway
     * binds path parameters over the body's: the scope check read the same path parameter. */
    const ef_route *r = ef_http_route(m->req);
    if (r && r->ns == EF_NS_PATH) return ef_api_namespace(ef_mgmt_param(m, r->ns_param));
    ef_bytes ns = ef_mgmt_param(m, "namespaceKey");
    if (ns.n) return ns;
    const ef_json *v = m->body ? ef_jin_field(m->body, "namespaceKey") : NULL;
    if (v && v->type == EF_JSON_STRING) return ef_api_namespace(v->str);
    return ef_api_namespace(ef_mgmt_query(m, "namespaceKey", "namespace_key"));
}

/* A token scoped to a namespace reaches only that one. Routes whose path names the namespace were
 * checked by authentication before the handler ran; on the others (EF_NS_BODY) only the request's
 * fields say it, so it is checked here, once, before any handler reads or writes. */
static bool namespace_allowed(const ef_mgmt *m)
{
    const ef_route *r = ef_http_route(m->req);
    return !r || r->ns != EF_NS_BODY || ef_auth_namespace_allowed(m->req, m->ns);
}

static void mgmt_init(ef_mgmt *m, ef_http_req *req, void *ctx)
{
    *m = (ef_mgmt){.req = req,
                   .node = ctx,
                   .a = ef_http_arena(req),
                   .out = ef_http_out(req),
                   .t0 = ef_clock_mono_ns()};
    /* directory mode: the reads come from the files, as Flipt's local storage answers them */
    if (m->node->store)
        m->store = m->node->store;
    else if (m->node->dir) {
        ef_dir_store_view(m->node->dir, &m->view);
        m->store = &m->view;
    }
}

bool ef_mgmt_read(ef_mgmt *m, ef_http_req *req, void *ctx)
{
    mgmt_init(m, req, ctx);
    if (!m->store) {
        /* a single snapshot document (--snapshot) has no management API */
        ef_http_error(req, 501, 12, "not supported in snapshot mode");
        return false;
    }
    m->ns = namespace_of(m);
    return namespace_allowed(m);
}

bool ef_mgmt_write(ef_mgmt *m, ef_http_req *req, void *ctx)
{
    mgmt_init(m, req, ctx);
    if (!m->node->store) {
        /* What Flipt answers to every write on storage other than a database (its unmodifiable
         * store wrapper; the gRPC layer makes the plain error an Internal 500). */
        ef_store_err ro;
        ef_dir_store_refuse(&ro);
        ef_api_store_error(req, &ro);
        return false;
    }
    /* DELETE has no body binding in Flipt's gateway: whatever is sent is ignored. */
    if (ef_http_method_of(req) != EF_DELETE) {
        m->body = ef_api_body_json(req);
        if (!m->body) return false;
        /* a namespaceKey of another type must not quietly mean "default" */
        const ef_json *nk = ef_jin_field(m->body, "namespaceKey");
        if (!ef_json_is_null(nk) && nk->type != EF_JSON_STRING) {
            ef_http_bad_request(req, "invalid value for field namespaceKey: expected a string");
            return false;
        }
    }
    m->ns = namespace_of(m);
    return namespace_allowed(m);
}

/* An int32 from the query (decimal); absent leaves *out as is. */
static bool query_i32(ef_mgmt *m, const char *name, int32_t *out)
{
    ef_bytes v = ef_mgmt_query(m, name, NULL);
    if (!v.n) return true;
    errno = 0;
    char *end;
    long long x = strtoll(v.p, &end, 10);
    /* strtoll also skips leading white space and takes a '+': the gateway's ParseInt does not */
    const char *d = v.p[0] == '-' ? v.p + 1 : v.p;
    bool digits = *d >= '0' && *d <= '9';
    if (!digits || *end || errno || x < INT32_MIN || x > INT32_MAX) {
        ef_http_bad_request(m->req,
                            "invalid value for query parameter %s: \"%.*s\" is not a 32-bit "
                            "integer",
                            name, (int)(v.n > 64 ? 64 : v.n), v.p);
        return false;
    }
    *out = (int32_t)x;
    return true;
}

/* The token exactly as the query decodes it: a '+' left unescaped is a space, and Flipt reports
 * such a token as it received it (`pageToken is not valid: "Hello World"`); its clients escape. */
static ef_bytes page_token_of(ef_mgmt *m)
{
    return ef_mgmt_query(m, "pageToken", "page_token");
}

bool ef_mgmt_list(ef_mgmt *m, ef_http_req *req, void *ctx, ef_store_page *page)
{
    *page = (ef_store_page){0};
    if (!ef_mgmt_read(m, req, ctx)) return false;
    if (!query_i32(m, "limit", &page->limit) || !query_i32(m, "offset", &page->offset))
        return false;
    page->page_token = page_token_of(m);
    return true;
}

/* ---- body fields ---------------------------------------------------------------------------- */

static bool field_ok(ef_mgmt *m, bool ok, const ef_jin_err *e)
{
    if (!ok) ef_http_bad_request(m->req, "%s", e->message);
    return ok;
}

bool ef_mgmt_str(ef_mgmt *m, const char *camel, ef_bytes *out)
{
    ef_jin_err e;
    return field_ok(m, ef_jin_str(m->body, camel, out, NULL, &e), &e);
}

bool ef_mgmt_bool(ef_mgmt *m, const char *camel, bool *out)
{
    ef_jin_err e;
    return field_ok(m, ef_jin_bool(m->body, camel, out, NULL, &e), &e);
}

bool ef_mgmt_i32(ef_mgmt *m, const char *camel, int32_t *out)
{
    ef_jin_err e;
    return field_ok(m, ef_jin_i32(m->body, camel, out, NULL, &e), &e);
}

bool ef_mgmt_f32(ef_mgmt *m, const char *camel, float *out)
{
    ef_jin_err e;
    return field_ok(m, ef_jin_f32(m->body, camel, out, NULL, &e), &e);
}

bool ef_mgmt_str_array(ef_mgmt *m, const char *camel, ef_bytes **out, size_t *n)
{
    ef_jin_err e;
    return field_ok(m, ef_jin_str_array(m->body, camel, m->a, out, n, NULL, &e), &e);
}

bool ef_mgmt_enum(ef_mgmt *m, const char *camel, ef_obj_enum en, int *out)
{
    const ef_json *v = ef_jin_field(m->body, camel);
    if (ef_json_is_null(v)) return true;
    if (v->type == EF_JSON_STRING) {
        if (ef_obj_enum_value(en, v->str, out)) return true;
        ef_http_bad_request(m->req, "invalid value for enum field %s: \"%.*s\"", camel,
                            (int)(v->str.n > 64 ? 64 : v->str.n), v->str.p);
        return false;
    }
    /* protobuf JSON also takes the number; values without a name go on to validation */
    int32_t x;
    ef_jin_err e;
    if (!field_ok(m, ef_jin_i32(m->body, camel, &x, NULL, &e), &e)) return false;
    *out = x;
    return true;
}

/* What Flipt's gateway refuses when it reads a google.protobuf.Struct (protojson): a key twice in
 * one object, and a number a double cannot hold. Either would also make the value one that
 * export cannot write and import read back. Sends the 400 and returns false. */
static bool struct_ok(ef_mgmt *m, const char *camel, const ef_json *v)
{
    if (v->type == EF_JSON_NUMBER && !isfinite(v->num)) {
        ef_http_bad_request(m->req, "invalid value for field %s: invalid google.protobuf.Value: %.*s",
                            camel, (int)(v->str.n > 64 ? 64 : v->str.n), v->str.p);
        return false;
    }
    if (v->type == EF_JSON_OBJECT) {
        bool *shadowed;
        long n = ef_json_shadowed(v, m->a, &shadowed);
        if (n < 0) {
            ef_http_error(m->req, 500, 13, "out of memory");
            return false;
        }
        size_t i = 0;
        for (const ef_json *k = v->child; n > 0 && k; k = k->next, i++)
            if (shadowed[i]) {
                ef_http_bad_request(m->req, "invalid value for field %s: duplicate map key \"%.*s\"", camel,
                                    (int)(k->key.n > 64 ? 64 : k->key.n), k->key.p);
                return false;
            }
    }
    if (v->type == EF_JSON_OBJECT || v->type == EF_JSON_ARRAY)
        for (const ef_json *k = v->child; k; k = k->next)
            if (!struct_ok(m, camel, k)) return false;
    return true;
}

bool ef_mgmt_object_text(ef_mgmt *m, const char *camel, ef_bytes *out)
{
    const ef_json *v = ef_jin_field(m->body, camel);
    if (ef_json_is_null(v)) return true;
    if (v->type != EF_JSON_OBJECT) {
        ef_http_bad_request(m->req, "invalid value for field %s: expected an object", camel);
        return false;
    }
    if (!struct_ok(m, camel, v)) return false;
    ef_buf b;
    ef_buf_init(&b);
    ef_jin_write_compact(&b, v);
    char *copy = ef_buf_ok(&b) ? ef_arena_memdup(m->a, b.data, b.len) : NULL;
    size_t len = b.len;
    ef_buf_free(&b);
    if (!copy) {
        ef_http_error(m->req, 500, 13, "out of memory");
        return false;
    }
    *out = (ef_bytes){copy, len};
    return true;
}

bool ef_mgmt_child(ef_mgmt *m, const char *camel, const ef_json **out)
{
    const ef_json *v = ef_jin_field(m->body, camel);
    *out = NULL;
    if (ef_json_is_null(v)) return true;
    if (v->type != EF_JSON_OBJECT) {
        ef_http_bad_request(m->req, "invalid value for field %s: expected an object", camel);
        return false;
    }
    *out = v;
    return true;
}

/* ---- finishing ------------------------------------------------------------------------------ */

int ef_mgmt_written(ef_mgmt *m, const char *op, int rc)
{
    ef_node_metrics *nm = &m->node->m;
    ef_bytes labels[2] = {ef_bytes_of(op), rc == 0 ? EF_BYTES_LIT("ok") : EF_BYTES_LIT("error")};
    if (nm->store_writes) ef_counter_add(nm->store_writes, labels, 1);
    if (nm->store_write_seconds)
        ef_histogram_observe(nm->store_write_seconds, NULL,
                             (double)(ef_clock_mono_ns() - m->t0) / 1e9);
    return rc;
}

void ef_mgmt_reply(ef_mgmt *m, int rc)
{
    if (rc != 0) {
        ef_buf_clear(m->out);
        ef_api_store_error(m->req, &m->err);
        return;
    }
    ef_http_reply(m->req, 200);
}

void ef_mgmt_reply_empty(ef_mgmt *m, int rc)
{
    if (rc == 0) ef_buf_puts(m->out, "{}");
    ef_mgmt_reply(m, rc);
}

/* ---- routes --------------------------------------------------------------------------------- */

int ef_mgmt_add_routes(ef_router *r, ef_node *node, const ef_mgmt_route_def *defs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ef_router_add_route(r, &(ef_route){.methods = defs[i].methods, .pattern = defs[i].pattern,
                                               .fn = defs[i].fn, .ctx = node, .cls = EF_ROUTE_MANAGEMENT,
                                               .ns = defs[i].ns, .ns_param = defs[i].ns_param,
                                               .flags = defs[i].flags}) != 0)
            return -1;
    return 0;
}

int ef_api_register_management(ef_router *r, ef_node *node)
{
    if (ef_mgmt_register_namespaces(r, node) || ef_mgmt_register_flags(r, node) ||
        ef_mgmt_register_segments(r, node) || ef_mgmt_register_rules(r, node) ||
        ef_mgmt_register_rollouts(r, node))
        return -1;
    return 0;
}
