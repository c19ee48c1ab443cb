/*
 * mgmt_segments.c - segments and their constraints under
 * /api/v1[/namespaces/{namespaceKey}]/segments.
 *
 * Decoding and dispatch only, never validation: operator/type checks, value rules (isoneof lists,
 * datetimes) and their messages belong to the store. Path parameters always win over body fields.
 */
#include "api/mgmt_int.h"

/* ---- segments ------------------------------------------------------------------------------- */

static void on_segment_list(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_page page;
    if (!ef_mgmt_list(&m, req, ctx, &page)) return;
    ef_doc_segment *items = NULL;
    size_t n = 0;
    ef_store_page_out po = {0};
    int rc = ef_store_segment_list(m.store, m.ns, &page, m.a, &items, &n, &po, &m.err);
    if (rc == 0) {
        ef_obj_list_begin(m.out, "segments");
        for (size_t i = 0; i < n; i++) {
            ef_obj_list_sep(m.out, i);
            ef_obj_segment(m.out, m.ns, &items[i]);
        }
        ef_obj_list_end(m.out, &po);
    }
    ef_mgmt_reply(&m, rc);
}

static void on_segment_get(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_read(&m, req, ctx)) return;
    ef_doc_segment s;
    int rc = ef_store_segment_get(m.store, m.ns, ef_mgmt_param(&m, "key"), m.a, &s, &m.err);
    if (rc == 0) ef_obj_segment(m.out, m.ns, &s);
    ef_mgmt_reply(&m, rc);
}

/* {key,name,description,matchType}; on update the key comes from the path. */
static bool segment_in_read(ef_mgmt *m, ef_store_segment_in *in)
{
    *in = (ef_store_segment_in){0};
    int match = EF_DOC_MATCH_ALL;
    if (!ef_mgmt_str(m, "key", &in->key) || !ef_mgmt_str(m, "name", &in->name) ||
        !ef_mgmt_str(m, "description", &in->description) ||
        !ef_mgmt_enum(m, "matchType", EF_OBJ_MATCH_TYPE, &match))
        return false;
    in->match_type = (ef_doc_match_type)match;
    ef_bytes path_key = ef_mgmt_param(m, "key");
    if (path_key.n) in->key = path_key;
    return true;
}

static void reply_segment(ef_mgmt *m, const char *op, int rc, const ef_doc_segment *s)
{
    rc = ef_mgmt_written(m, op, rc);
    if (rc == 0) ef_obj_segment(m->out, m->ns, s);
    ef_mgmt_reply(m, rc);
}

static void on_segment_create(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_segment_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !segment_in_read(&m, &in)) return;
    ef_doc_segment s;
    reply_segment(&m, "segment_create",
                  ef_store_segment_create(m.store, m.ns, &in, m.a, &s, &m.err), &s);
}

static void on_segment_update(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_segment_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !segment_in_read(&m, &in)) return;
    ef_doc_segment s;
    reply_segment(&m, "segment_update",
                  ef_store_segment_update(m.store, m.ns, &in, m.a, &s, &m.err), &s);
}

static void on_segment_delete(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_write(&m, req, ctx)) return;
    int rc = ef_store_segment_delete(m.store, m.ns, ef_mgmt_param(&m, "key"), &m.err);
    ef_mgmt_reply_empty(&m, ef_mgmt_written(&m, "segment_delete", rc));
}

/* ---- constraints ---------------------------------------------------------------------------- */

static bool constraint_in_read(ef_mgmt *m, ef_store_constraint_in *in)
{
    *in = (ef_store_constraint_in){0};
    int type = EF_DOC_CT_UNKNOWN;
    if (!ef_mgmt_enum(m, "type", EF_OBJ_COMPARISON_TYPE, &type) ||
        !ef_mgmt_str(m, "property", &in->property) || !ef_mgmt_str(m, "operator", &in->op) ||
        !ef_mgmt_str(m, "value", &in->value) ||
        !ef_mgmt_str(m, "description", &in->description))
        return false;
    in->type = (ef_doc_ctype)type;
    return true;
}

static void reply_constraint(ef_mgmt *m, const char *op, int rc, const ef_doc_constraint *c)
{
    rc = ef_mgmt_written(m, op, rc);
    if (rc == 0) ef_obj_constraint(m->out, m->ns, ef_mgmt_param(m, "segmentKey"), c);
    ef_mgmt_reply(m, rc);
}

static void on_constraint_create(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_constraint_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !constraint_in_read(&m, &in)) return;
    ef_doc_constraint c;
    int rc = ef_store_constraint_create(m.store, m.ns, ef_mgmt_param(&m, "segmentKey"), &in,
                                        m.a, &c, &m.err);
    reply_constraint(&m, "constraint_create", rc, &c);
}

static void on_constraint_update(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_constraint_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !constraint_in_read(&m, &in)) return;
    ef_doc_constraint c;
    int rc = ef_store_constraint_update(m.store, m.ns, ef_mgmt_param(&m, "segmentKey"),
                                        ef_mgmt_param(&m, "id"), &in, m.a, &c, &m.err);
    reply_constraint(&m, "constraint_update", rc, &c);
}

static void on_constraint_delete(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_write(&m, req, ctx)) return;
    int rc = ef_store_constraint_delete(m.store, m.ns, ef_mgmt_param(&m, "segmentKey"),
                                        ef_mgmt_param(&m, "id"), &m.err);
    ef_mgmt_reply_empty(&m, ef_mgmt_written(&m, "constraint_delete", rc));
}

int ef_mgmt_register_segments(ef_router *r, ef_node *node)
{
    static const ef_mgmt_route_def routes[] = {
        EF_MGMT_BOTH(EF_GET, "/segments", on_segment_list, EF_RF_STATE),
        EF_MGMT_BOTH(EF_POST, "/segments", on_segment_create, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_GET, "/segments/{key}", on_segment_get, EF_RF_STATE),
        EF_MGMT_BOTH(EF_PUT, "/segments/{key}", on_segment_update, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_DELETE, "/segments/{key}", on_segment_delete, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_POST, "/segments/{segmentKey}/constraints", on_constraint_create, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_PUT, "/segments/{segmentKey}/constraints/{id}", on_constraint_update, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_DELETE, "/segments/{segmentKey}/constraints/{id}", on_constraint_delete, EF_RF_WRITE),
    };
    return ef_mgmt_add_routes(r, node, routes, EF_MGMT_NROUTES(routes));
}
