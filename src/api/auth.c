/*
 * auth.c - static bearer tokens (see auth.h). Never logs or echoes a token; never compares one
 * with an early exit.
 */
#include "api/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/node.h"
#include "base/sha256.h"

struct ef_auth {
    uint8_t token_hash[32];
    unsigned exclude; /* bit per ef_route_class */
};

ef_auth *ef_auth_new(const char *token, const char *exclude, char *err, size_t errlen)
{
    if (!token || !*token) {
        snprintf(err, errlen, "authentication needs a non-empty token");
        return NULL;
    }
    ef_auth *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ef_sha256(token, strlen(token), a->token_hash);
    const char *p = exclude ? exclude : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 10 && !strncmp(p, "management", n))
            a->exclude |= 1u << EF_ROUTE_MANAGEMENT;
        else if (n == 10 && !strncmp(p, "evaluation", n))
            a->exclude |= 1u << EF_ROUTE_EVALUATION;
        else if (n == 5 && !strncmp(p, "ofrep", n))
            a->exclude |= 1u << EF_ROUTE_OFREP;
        else if (n) {
            snprintf(err, errlen, "unknown authentication exclude '%.*s' (management, evaluation, ofrep)", (int)n, p);
            free(a);
            return NULL;
        }
        p += n + (comma ? 1 : 0);
    }
    return a;
}

void ef_auth_free(ef_auth *a)
{
    free(a);
}

bool ef_auth_token_valid(ef_auth *a, const char *token)
{
    uint8_t h[32];
    ef_sha256(token, strlen(token), h);
    return ef_ct_equal(h, a->token_hash, 32);
}

bool ef_auth_allow(ef_auth *a, ef_http_req *req)
{
    const ef_route *r = ef_http_route(req);
    ef_route_class cls = r ? r->cls : EF_ROUTE_OPEN;
    if (cls == EF_ROUTE_OPEN) return true;
    if (a->exclude & (1u << cls)) return true;
    const char *h = ef_http_header(req, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *t = h + 7;
        while (*t == ' ') t++;
        if (*t && ef_auth_token_valid(a, t)) return true;
    }
    ef_http_error(req, 401, 16, "request was not authenticated");
    return false;
}

static void on_methods(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    ef_buf_printf(ef_http_out(req),
                  "{\"methods\":[{\"method\":\"METHOD_TOKEN\",\"enabled\":%s,\"sessionCompatible\":false,"
                  "\"metadata\":null}]}",
                  node->auth ? "true" : "false");
    ef_http_reply(req, 200);
}

static void on_self(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    if (!node->auth) {
        ef_http_error(req, 401, 16, "request was not authenticated");
        return;
    }
    /* reaching here means the before-hook accepted the bootstrap token */
    ef_buf_puts(ef_http_out(req), "{\"id\":\"bootstrap\",\"method\":\"METHOD_TOKEN\",\"expiresAt\":null,"
                                  "\"createdAt\":null,\"updatedAt\":null,\"metadata\":"
                                  "{\"io.flipt.auth.token.name\":\"bootstrap\"}}");
    ef_http_reply(req, 200);
}

int ef_api_register_auth(ef_router *r, ef_node *node)
{
    int rc = 0;
    rc |= ef_router_add(r, EF_GET, "/auth/v1/method", on_methods, node, EF_ROUTE_OPEN);
    rc |= ef_router_add(r, EF_GET, "/auth/v1/self", on_self, node, EF_ROUTE_AUTH);
    return rc;
}
