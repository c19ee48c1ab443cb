/*
 * mgmt_flags.c - flags and their variants under /api/v1[/namespaces/{namespaceKey}]/flags.
 *
 * Decoding and dispatch only, never validation: key rules, required names, attachment checks and
 * the default variant are the store's business (with Flipt's messages). Path parameters always win
 * over body fields.
 */
#include "api/mgmt_int.h"

/* ---- flags ---------------------------------------------------------------------------------- */

static void on_flag_list(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_page page;
    if (!ef_mgmt_list(&m, req, ctx, &page)) return;
    ef_doc_flag *items = NULL;
    size_t n = 0;
    ef_store_page_out po = {0};
    int rc = ef_store_flag_list(m.store, m.ns, &page, m.a, &items, &n, &po, &m.err);
    if (rc == 0) {
        ef_obj_list_begin(m.out, "flags");
        for (size_t i = 0; i < n; i++) {
            ef_obj_list_sep(m.out, i);
            ef_obj_flag(m.out, m.ns, &items[i], EF_OBJ_METADATA_ALWAYS);
        }
        ef_obj_list_end(m.out, &po);
    }
    ef_mgmt_reply(&m, rc);
}

static void on_flag_get(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_read(&m, req, ctx)) return;
    ef_doc_flag f;
    int rc = ef_store_flag_get(m.store, m.ns, ef_mgmt_param(&m, "key"), m.a, &f, &m.err);
    if (rc == 0) ef_obj_flag(m.out, m.ns, &f, EF_OBJ_METADATA_IF_SET);
    ef_mgmt_reply(&m, rc);
}

/* Create: {key,name,description,enabled,type,metadata}; update: the same minus type plus
 * defaultVariantId, with the key from the path. */
static bool flag_in_read(ef_mgmt *m, ef_store_flag_in *in)
{
    *in = (ef_store_flag_in){0};
    int type = EF_DOC_VARIANT_FLAG;
    if (!ef_mgmt_str(m, "key", &in->key) || !ef_mgmt_str(m, "name", &in->name) ||
        !ef_mgmt_str(m, "description", &in->description) ||
        !ef_mgmt_bool(m, "enabled", &in->enabled) ||
        !ef_mgmt_enum(m, "type", EF_OBJ_FLAG_TYPE, &type) ||
        !ef_mgmt_object_text(m, "metadata", &in->metadata) ||
        !ef_mgmt_str(m, "defaultVariantId", &in->default_variant_id))
        return false;
    in->type = (ef_doc_flag_type)type;
    ef_bytes path_key = ef_mgmt_param(m, "key");
    if (path_key.n) in->key = path_key;
    return true;
}

static void reply_flag(ef_mgmt *m, const char *op, int rc, const ef_doc_flag *f)
{
    rc = ef_mgmt_written(m, op, rc);
    if (rc == 0) ef_obj_flag(m->out, m->ns, f, EF_OBJ_METADATA_IF_SET);
    ef_mgmt_reply(m, rc);
}

static void on_flag_create(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_flag_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !flag_in_read(&m, &in)) return;
    ef_doc_flag f;
    reply_flag(&m, "flag_create", ef_store_flag_create(m.store, m.ns, &in, m.a, &f, &m.err),
               &f);
}

static void on_flag_update(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_flag_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !flag_in_read(&m, &in)) return;
    ef_doc_flag f;
    reply_flag(&m, "flag_update", ef_store_flag_update(m.store, m.ns, &in, m.a, &f, &m.err),
               &f);
}

static void on_flag_delete(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_write(&m, req, ctx)) return;
    int rc = ef_store_flag_delete(m.store, m.ns, ef_mgmt_param(&m, "key"), &m.err);
    ef_mgmt_reply_empty(&m, ef_mgmt_written(&m, "flag_delete", rc));
}

/* ---- variants ------------------------------------------------------------------------------- */

static bool variant_in_read(ef_mgmt *m, ef_store_variant_in *in)
{
    *in = (ef_store_variant_in){0};
    return ef_mgmt_str(m, "key", &in->key) && ef_mgmt_str(m, "name", &in->name) &&
           ef_mgmt_str(m, "description", &in->description) &&
           ef_mgmt_str(m, "attachment", &in->attachment);
}

static void reply_variant(ef_mgmt *m, const char *op, int rc, const ef_doc_variant *v)
{
    rc = ef_mgmt_written(m, op, rc);
    if (rc == 0) ef_obj_variant(m->out, m->ns, ef_mgmt_param(m, "flagKey"), v);
    ef_mgmt_reply(m, rc);
}

static void on_variant_create(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_variant_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !variant_in_read(&m, &in)) return;
    ef_doc_variant v;
    int rc = ef_store_variant_create(m.store, m.ns, ef_mgmt_param(&m, "flagKey"), &in, m.a,
                                     &v, &m.err);
    reply_variant(&m, "variant_create", rc, &v);
}

static void on_variant_update(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_variant_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !variant_in_read(&m, &in)) return;
    ef_doc_variant v;
    int rc = ef_store_variant_update(m.store, m.ns, ef_mgmt_param(&m, "flagKey"),
                                     ef_mgmt_param(&m, "id"), &in, m.a, &v, &m.err);
    reply_variant(&m, "variant_update", rc, &v);
}

static void on_variant_delete(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_write(&m, req, ctx)) return;
    int rc = ef_store_variant_delete(m.store, m.ns, ef_mgmt_param(&m, "flagKey"),
                                     ef_mgmt_param(&m, "id"), &m.err);
    ef_mgmt_reply_empty(&m, ef_mgmt_written(&m, "variant_delete", rc));
}

int ef_mgmt_register_flags(ef_router *r, ef_node *node)
{
    static const ef_mgmt_route_def routes[] = {
        EF_MGMT_BOTH(EF_GET, "/flags", on_flag_list, EF_RF_STATE),
        EF_MGMT_BOTH(EF_POST, "/flags", on_flag_create, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_GET, "/flags/{key}", on_flag_get, EF_RF_STATE),
        EF_MGMT_BOTH(EF_PUT, "/flags/{key}", on_flag_update, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_DELETE, "/flags/{key}", on_flag_delete, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_POST, "/flags/{flagKey}/variants", on_variant_create, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_PUT, "/flags/{flagKey}/variants/{id}", on_variant_update, EF_RF_WRITE),
        EF_MGMT_BOTH(EF_DELETE, "/flags/{flagKey}/variants/{id}", on_variant_delete, EF_RF_WRITE),
    };
    return ef_mgmt_add_routes(r, node, routes, EF_MGMT_NROUTES(routes));
}
