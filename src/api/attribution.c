/*
 * attribution.c - builds the attribution of a write request (see attribution.h). It must never
 * trust X-Edgeflag-Forwarded-By as an identity (it is recorded as "via", bounded and printable,
 * and only from a replica that follows this node, as the caller's reported address is),
 * and never guess a write's type from anything but its route pattern and method.
 */
#include "api/attribution.h"

#include <string.h>

#include "api/auth.h"

static const struct {
    const char *segment, *type;
} collections[] = {
    {"namespaces", "namespace"}, {"flags", "flag"},     {"variants", "variant"},
    {"segments", "segment"},     {"constraints", "constraint"}, {"rules", "rule"},
    {"distributions", "distribution"}, {"rollouts", "rollout"},
};

bool ef_api_write_kind(const ef_route *r, ef_http_method m, const char **type, const char **action)
{
    *action = m == EF_POST ? "created" : m == EF_PUT ? "updated" : m == EF_DELETE ? "deleted" : NULL;
    *type = NULL;
    if (!r || !*action) return false;
    if (strncmp(r->pattern, "/auth/v1/", 9) == 0) {
        *type = "token";
        return true;
    }
    /* the last literal segment that names a collection: .../flags/{flagKey}/rules/order is "rule" */
    for (const char *p = r->pattern; *p;) {
        while (*p == '/') p++;
        size_t n = strcspn(p, "/");
        for (size_t i = 0; i < sizeof(collections) / sizeof(collections[0]); i++)
            if (strlen(collections[i].segment) == n && !strncmp(p, collections[i].segment, n))
                *type = collections[i].type;
        p += n;
    }
    return *type != NULL;
}

/* A header value kept only when it is short, printable ASCII; else "?" (so a lie is visible). */
static ef_bytes bounded_header(ef_http_req *req, const char *name)
{
    const char *v = ef_http_header(req, name);
    if (!v || !*v) return (ef_bytes){"", 0};
    size_t n = strlen(v);
    if (n > EF_FORWARDED_BY_MAX) return EF_BYTES_LIT("?");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) return EF_BYTES_LIT("?");
    return (ef_bytes){v, n};
}

void ef_api_attribution(ef_http_req *req, bool from_replica, ef_store_attribution *out)
{
    ef_actor who;
    ef_auth_actor(req, &who);
    const ef_route *r = ef_http_route(req);
    const char *type = NULL, *action = NULL;
    ef_api_write_kind(r, ef_http_method_of(req), &type, &action);
    *out = (ef_store_attribution){
        .method = ef_bytes_of(who.method),
        .id = who.id,
        .name = who.name,
        .email = who.email,
        /* what a replica reports, taken from nobody else: a client that reached this node
         * directly could otherwise record any address and any chain of replicas */
        .via = from_replica ? bounded_header(req, EF_FORWARDED_BY_HEADER) : (ef_bytes){"", 0},
        .type = type ? ef_bytes_of(type) : (ef_bytes){"", 0},
        .action = action ? ef_bytes_of(action) : (ef_bytes){"", 0},
    };
    /* Through a replica the peer is that replica: the caller's address is what it reported. */
    ef_bytes fwd_for = out->via.n ? bounded_header(req, "X-Edgeflag-Forwarded-For") : (ef_bytes){"", 0};
    out->ip = fwd_for.n ? fwd_for : ef_bytes_of(ef_http_peer(req));
    if (r && r->ns == EF_NS_PATH) {
        ef_bytes ns = ef_http_param(req, r->ns_param);
        out->ns = ns.n ? ns : EF_BYTES_LIT("default");
    }
    ef_bytes flag = ef_http_param(req, "flagKey");
    if (!flag.n && type && !strcmp(type, "flag")) flag = ef_http_param(req, "key");
    out->flag = flag;
}
