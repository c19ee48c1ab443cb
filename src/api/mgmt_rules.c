/*
 * mgmt_rules.c - rules of variant flags, their distributions, and rule ordering under
 * /api/v1[/namespaces/{namespaceKey}]/flags/{flagKey}/rules.
 *
 * Decoding and dispatch only, never validation: segment-key forms, ranks, rollout bounds and their
 * messages belong to the store. Path parameters always win over body fields.
 */
#include "api/mgmt_int.h"

/* ---- rules ---------------------------------------------------------------------------------- */

static void on_rule_list(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_page page;
    if (!ef_mgmt_list(&m, req, ctx, &page)) return;
    ef_bytes flag = ef_mgmt_param(&m, "flagKey");
    ef_store_rule *items = NULL;
    size_t n = 0;
    ef_store_page_out po = {0};
    int rc = ef_store_rule_list(m.store, m.ns, flag, &page, m.a, &items, &n, &po, &m.err);
    if (rc == 0) {
        ef_obj_list_begin(m.out, "rules");
        for (size_t i = 0; i < n; i++) {
            ef_obj_list_sep(m.out, i);
            ef_obj_rule(m.out, m.ns, flag, &items[i]);
        }
        ef_obj_list_end(m.out, &po);
    }
    ef_mgmt_reply(&m, rc);
}

static void on_rule_get(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_read(&m, req, ctx)) return;
    ef_bytes flag = ef_mgmt_param(&m, "flagKey");
    ef_store_rule r;
    int rc = ef_store_rule_get(m.store, m.ns, flag, ef_mgmt_param(&m, "id"), m.a, &r, &m.err);
    if (rc == 0) ef_obj_rule(m.out, m.ns, flag, &r);
    ef_mgmt_reply(&m, rc);
}

/* {segmentKey | segmentKeys, segmentOperator, rank}; rank only matters on create. */
static bool rule_in_read(ef_mgmt *m, ef_store_rule_in *in)
{
    *in = (ef_store_rule_in){0};
    ef_bytes *keys = NULL;
    int op = EF_DOC_OP_OR;
    if (!ef_mgmt_str(m, "segmentKey", &in->segment_key) ||
        !ef_mgmt_str_array(m, "segmentKeys", &keys, &in->nsegment_keys) ||
        !ef_mgmt_enum(m, "segmentOperator", EF_OBJ_SEGMENT_OP, &op) ||
        !ef_mgmt_i32(m, "rank", &in->rank))
        return false;
    in->segment_keys = keys;
    in->op = (ef_doc_seg_op)op;
    return true;
}

static void reply_rule(ef_mgmt *m, const char *op, int rc, const ef_store_rule *r)
{
    rc = ef_mgmt_written(m, op, rc);
    if (rc == 0) ef_obj_rule(m->out, m->ns, ef_mgmt_param(m, "flagKey"), r);
    ef_mgmt_reply(m, rc);
}

static void on_rule_create(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_rule_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !rule_in_read(&m, &in)) return;
    ef_store_rule r;
    int rc = ef_store_rule_create(m.store, m.ns, ef_mgmt_param(&m, "flagKey"), &in, m.a, &r,
                                  &m.err);
    reply_rule(&m, "rule_create", rc, &r);
}

static void on_rule_update(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_rule_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !rule_in_read(&m, &in)) return;
    ef_store_rule r;
    int rc = ef_store_rule_update(m.store, m.ns, ef_mgmt_param(&m, "flagKey"),
                                  ef_mgmt_param(&m, "id"), &in, m.a, &r, &m.err);
    reply_rule(&m, "rule_update", rc, &r);
}

static void on_rule_delete(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_write(&m, req, ctx)) return;
    int rc = ef_store_rule_delete(m.store, m.ns, ef_mgmt_param(&m, "flagKey"),
                                  ef_mgmt_param(&m, "id"), &m.err);
    ef_mgmt_reply_empty(&m, ef_mgmt_written(&m, "rule_delete", rc));
}

static void on_rule_order(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_bytes *ids = NULL;
    size_t n = 0;
    if (!ef_mgmt_write(&m, req, ctx) || !ef_mgmt_str_array(&m, "ruleIds", &ids, &n)) return;
    int rc = ef_store_rule_order(m.store, m.ns, ef_mgmt_param(&m, "flagKey"), ids, n, &m.err);
    ef_mgmt_reply_empty(&m, ef_mgmt_written(&m, "rule_order", rc));
}

/* ---- distributions -------------------------------------------------------------------------- */

static bool distribution_in_read(ef_mgmt *m, ef_store_distribution_in *in)
{
    *in = (ef_store_distribution_in){0};
    return ef_mgmt_str(m, "variantId", &in->variant_id) && ef_mgmt_f32(m, "rollout", &in->rollout);
}

static void reply_distribution(ef_mgmt *m, const char *op, int rc, const ef_doc_distribution *d)
{
    rc = ef_mgmt_written(m, op, rc);
    if (rc == 0) ef_obj_distribution(m->out, ef_mgmt_param(m, "ruleId"), d);
    ef_mgmt_reply(m, rc);
}

static void on_distribution_create(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_distribution_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !distribution_in_read(&m, &in)) return;
    ef_doc_distribution d;
    int rc = ef_store_distribution_create(m.store, m.ns, ef_mgmt_param(&m, "flagKey"),
                                          ef_mgmt_param(&m, "ruleId"), &in, m.a, &d, &m.err);
    reply_distribution(&m, "distribution_create", rc, &d);
}

static void on_distribution_update(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_distribution_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !distribution_in_read(&m, &in)) return;
    ef_doc_distribution d;
    int rc = ef_store_distribution_update(m.store, m.ns, ef_mgmt_param(&m, "flagKey"),
                                          ef_mgmt_param(&m, "ruleId"), ef_mgmt_param(&m, "id"),
                                          &in, m.a, &d, &m.err);
    reply_distribution(&m, "distribution_update", rc, &d);
}

static void on_distribution_delete(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_write(&m, req, ctx)) return;
    /* DELETE has no body in Flipt's binding: variantId travels in the query. */
    int rc = ef_store_distribution_delete(m.store, m.ns, ef_mgmt_param(&m, "flagKey"),
                                          ef_mgmt_param(&m, "ruleId"), ef_mgmt_param(&m, "id"),
                                          ef_mgmt_query(&m, "variantId", "variant_id"), &m.err);
    ef_mgmt_reply_empty(&m, ef_mgmt_written(&m, "distribution_delete", rc));
}

int ef_mgmt_register_rules(ef_router *r, ef_node *node)
{
#define RULES "/flags/{flagKey}/rules"
#define DISTS RULES "/{ruleId}/distributions"
    static const ef_mgmt_route_def routes[] = {
        EF_MGMT_BOTH(EF_GET, RULES, on_rule_list, EF_RF_STATE),
        EF_MGMT_BOTH(EF_POST, RULES, on_rule_create, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_PUT, RULES "/order", on_rule_order, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_GET, RULES "/{id}", on_rule_get, EF_RF_STATE),
        EF_MGMT_BOTH(EF_PUT, RULES "/{id}", on_rule_update, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_DELETE, RULES "/{id}", on_rule_delete, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_POST, DISTS, on_distribution_create, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_PUT, DISTS "/{id}", on_distribution_update, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_DELETE, DISTS "/{id}", on_distribution_delete, EF_RF_WRITE),
    };
#undef DISTS
#undef RULES
    return ef_mgmt_add_routes(r, node, routes, EF_MGMT_NROUTES(routes));
}
