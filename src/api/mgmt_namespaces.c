/*
 * mgmt_namespaces.c - /api/v1/namespaces: list, get, create, update, delete.
 *
 * Decoding and dispatch only, never validation: the store decides what is valid (protected
 * `default`, namespaces that still hold flags) and words the errors as Flipt does.
 */
#include <string.h>

#include "api/mgmt_int.h"

static void on_list(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_page page;
    if (!ef_mgmt_list(&m, req, ctx, &page)) return;
    ef_doc_namespace *items = NULL;
    size_t n = 0;
    ef_store_page_out po = {0};
    int rc = ef_store_ns_list(m.store, &page, m.a, &items, &n, &po, &m.err);
    if (rc == 0) {
        ef_obj_list_begin(m.out, "namespaces");
        for (size_t i = 0; i < n; i++) {
            ef_obj_list_sep(m.out, i);
            ef_obj_namespace(m.out, &items[i]);
        }
        ef_obj_list_end(m.out, &po);
    }
    ef_mgmt_reply(&m, rc);
}

static void on_get(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_read(&m, req, ctx)) return;
    ef_doc_namespace ns;
    int rc = ef_store_ns_get(m.store, ef_mgmt_param(&m, "key"), m.a, &ns, &m.err);
    if (rc == 0) ef_obj_namespace(m.out, &ns);
    ef_mgmt_reply(&m, rc);
}

/* {key,name,description}; on update the key comes from the path. */
static bool ns_in_read(ef_mgmt *m, ef_store_ns_in *in)
{
    *in = (ef_store_ns_in){0};
    if (!ef_mgmt_str(m, "key", &in->key) || !ef_mgmt_str(m, "name", &in->name) ||
        !ef_mgmt_str(m, "description", &in->description))
        return false;
    ef_bytes path_key = ef_mgmt_param(m, "key");
    if (path_key.n) in->key = path_key;
    return true;
}

static void on_create(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_ns_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !ns_in_read(&m, &in)) return;
    ef_doc_namespace ns;
    int rc = ef_mgmt_written(&m, "namespace_create",
                             ef_store_ns_create(m.store, &in, m.a, &ns, &m.err));
    if (rc == 0) ef_obj_namespace(m.out, &ns);
    ef_mgmt_reply(&m, rc);
}

static void on_update(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    ef_store_ns_in in;
    if (!ef_mgmt_write(&m, req, ctx) || !ns_in_read(&m, &in)) return;
    ef_doc_namespace ns;
    int rc = ef_mgmt_written(&m, "namespace_update",
                             ef_store_ns_update(m.store, &in, m.a, &ns, &m.err));
    if (rc == 0) ef_obj_namespace(m.out, &ns);
    ef_mgmt_reply(&m, rc);
}

/* ?force= as Flipt's gateway parses a bool (Go's strconv.ParseBool); absent is false. */
static bool query_force(ef_mgmt *m, bool *force)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    const char *v = ef_http_query(m->req, "force");
    *force = false;
    if (!v) return true;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(v, yes[i]) == 0) return (*force = true);
        if (strcmp(v, no[i]) == 0) return true;
    }
    ef_http_bad_request(m->req, "parsing field \"force\": strconv.ParseBool: parsing \"%.64s\": invalid syntax", v);
    return false;
}

static void on_delete(ef_http_req *req, void *ctx)
{
    ef_mgmt m;
    if (!ef_mgmt_write(&m, req, ctx)) return;
    bool force;
    if (!query_force(&m, &force)) return;
    int rc = ef_mgmt_written(
        &m, "namespace_delete",
        ef_store_ns_delete_forced(m.store, ef_mgmt_param(&m, "key"), force, &m.err));
    ef_mgmt_reply_empty(&m, rc);
}

int ef_mgmt_register_namespaces(ef_router *r, ef_node *node)
{
    static const ef_mgmt_route_def routes[] = {
        /* listing and creating are about every namespace: a scoped token may not (as in Flipt) */
        {EF_GET, "/api/v1/namespaces", on_list, EF_NS_NONE, NULL, EF_RF_STATE},
        {EF_POST, "/api/v1/namespaces", on_create, EF_NS_NONE, NULL, EF_RF_WRITE},
        {EF_GET, "/api/v1/namespaces/{key}", on_get, EF_NS_PATH, "key", EF_RF_STATE},
        {EF_PUT, "/api/v1/namespaces/{key}", on_update, EF_NS_PATH, "key", EF_RF_WRITE},
        {EF_DELETE, "/api/v1/namespaces/{key}", on_delete, EF_NS_PATH, "key", EF_RF_WRITE},
    };
    return ef_mgmt_add_routes(r, node, routes, EF_MGMT_NROUTES(routes));
}
