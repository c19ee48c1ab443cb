/*
 * mgmt_rollouts.c - rollouts of boolean flags and their ordering under
 * /api/v1/namespaces/{namespaceKey}/flags/{flagKey}/rollouts (Flipt binds them only in the
 * namespaced form).
 *
 * Decoding and dispatch only, never validation: rank uniqueness, type changes, percentage bounds
 * and their messages belong to the store. Path parameters always win over body fields.
 */
#include "api/mgmt_int.h"

static void on_rollout_list(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_page page;
    if (!ef_mgmt_list(&m, req, ctx, &page)) return;
    ef_bytes flag = ef_mgmt_param(&m, "flagKey");
    ef_store_rollout *items = NULL;
    size_t n = 0;
    ef_store_page_out po = {0};
    int rc = ef_store_rollout_list(m.store, m.ns, flag, &page, m.a, &items, &n, &po, &m.err);
    if (rc == 0) {
        /* Flipt's RolloutList names its array "rules". */
        ef_obj_list_begin(m.out, "rules");
        for (size_t i = 0; i < n; i++) {
            ef_obj_list_sep(m.out, i);
            ef_obj_rollout(m.out, m.ns, flag, &items[i]);
        }
        ef_obj_list_end(m.out, &po);
    }
    ef_mgmt_reply(&m, rc);
}

static void on_rollout_get(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_read(&m, req, ctx)) return;
    ef_bytes flag = ef_mgmt_param(&m, "flagKey");
    ef_store_rollout r;
    int rc = ef_store_rollout_get(m.store, m.ns, flag, ef_mgmt_param(&m, "id"), m.a, &r,
                                  &m.err);
    if (rc == 0) ef_obj_rollout(m.out, m.ns, flag, &r);
    ef_mgmt_reply(&m, rc);
}

static bool segment_rule_read(ef_mgmt *m, ef_store_rollout_in *in)
{
    ef_bytes *keys = NULL;
    int op = EF_DOC_OP_OR;
    if (!ef_mgmt_str(m, "segmentKey", &in->segment_key) ||
        !ef_mgmt_str_array(m, "segmentKeys", &keys, &in->nsegment_keys) ||
        !ef_mgmt_enum(m, "segmentOperator", EF_OBJ_SEGMENT_OP, &op) ||
        !ef_mgmt_bool(m, "value", &in->value))
        return false;
    in->segment_keys = keys;
    in->op = (ef_doc_seg_op)op;
    return true;
}

static bool threshold_rule_read(ef_mgmt *m, ef_store_rollout_in *in)
{
    return ef_mgmt_f32(m, "percentage", &in->percentage) && ef_mgmt_bool(m, "value", &in->value);
}

/* The rule is a oneof: `segment` or `threshold` decides the type; neither leaves UNKNOWN, which
 * the store rejects with Flipt's message. The field readers work on m->body, so the member object
 * stands in for it while it is decoded. */
static bool rule_member_read(ef_mgmt *m, ef_store_rollout_in *in)
{
    const ef_json *seg, *thr;
    if (!ef_mgmt_child(m, "segment", &seg) || !ef_mgmt_child(m, "threshold", &thr)) return false;
    if (seg && thr) {
        ef_http_bad_request(m->req, "error parsing \"threshold\": oneof rule is already set");
        return false;
    }
    const ef_json *body = m->body;
    bool ok = true;
    if (seg) {
        in->type = EF_DOC_ROLLOUT_SEGMENT;
        m->body = seg;
        ok = segment_rule_read(m, in);
    } else if (thr) {
        in->type = EF_DOC_ROLLOUT_THRESHOLD;
        m->body = thr;
        ok = threshold_rule_read(m, in);
    }
    m->body = body;
    return ok;
}

/* {rank, description, segment{…} | threshold{…}}; rank only matters on create. */
static bool rollout_in_read(ef_mgmt *m, ef_store_rollout_in *in)
{
    *in = (ef_store_rollout_in){.type = EF_DOC_ROLLOUT_UNKNOWN};
    return ef_mgmt_i32(m, "rank", &in->rank) &&
           ef_mgmt_str(m, "description", &in->description) && rule_member_read(m, in);
}

static void reply_rollout(ef_mgmt *m, const char *op, int rc, const ef_store_rollout *r)
{
    rc = ef_mgmt_written(m, op, rc);
    if (rc == 0) ef_obj_rollout(m->out, m->ns, ef_mgmt_param(m, "flagKey"), r);
    ef_mgmt_reply(m, rc);
}

static void on_rollout_create(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_rollout_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !rollout_in_read(&m, &in)) return;
    ef_store_rollout r;
    int rc = ef_store_rollout_create(m.store, m.ns, ef_mgmt_param(&m, "flagKey"), &in, m.a,
                                     &r, &m.err);
    reply_rollout(&m, "rollout_create", rc, &r);
}

static void on_rollout_update(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_rollout_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !rollout_in_read(&m, &in)) return;
    ef_store_rollout r;
    int rc = ef_store_rollout_update(m.store, m.ns, ef_mgmt_param(&m, "flagKey"),
                                     ef_mgmt_param(&m, "id"), &in, m.a, &r, &m.err);
    reply_rollout(&m, "rollout_update", rc, &r);
}

static void on_rollout_delete(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_write(&m, req, ctx)) return;
    int rc = ef_store_rollout_delete(m.store, m.ns, ef_mgmt_param(&m, "flagKey"),
                                     ef_mgmt_param(&m, "id"), &m.err);
    ef_mgmt_reply_empty(&m, ef_mgmt_written(&m, "rollout_delete", rc));
}

static void on_rollout_order(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_bytes *ids = NULL;
    size_t n = 0;
    if (!ef_mgmt_write(&m, req, ctx) || !ef_mgmt_str_array(&m, "rolloutIds", &ids, &n)) return;
    int rc = ef_store_rollout_order(m.store, m.ns, ef_mgmt_param(&m, "flagKey"), ids, n,
                                    &m.err);
    ef_mgmt_reply_empty(&m, ef_mgmt_written(&m, "rollout_order", rc));
}

int ef_mgmt_register_rollouts(ef_router *r, ef_node *node)
{
#define ROLLOUTS "/flags/{flagKey}/rollouts"
    static const ef_mgmt_route_def routes[] = {
        EF_MGMT_IN_PATH(EF_GET, ROLLOUTS, on_rollout_list, EF_RF_STATE),
        EF_MGMT_IN_PATH(EF_POST, ROLLOUTS, on_rollout_create, EF_RF_WRITE),
        EF_MGMT_IN_PATH(EF_PUT, ROLLOUTS "/order", on_rollout_order, EF_RF_WRITE),
        EF_MGMT_IN_PATH(EF_GET, ROLLOUTS "/{id}", on_rollout_get, EF_RF_STATE),
        EF_MGMT_IN_PATH(EF_PUT, ROLLOUTS "/{id}", on_rollout_update, EF_RF_WRITE),
        EF_MGMT_IN_PATH(EF_DELETE, ROLLOUTS "/{id}", on_rollout_delete, EF_RF_WRITE),
    };
#undef ROLLOUTS
    return ef_mgmt_add_routes(r, node, routes, EF_MGMT_NROUTES(routes));
}
