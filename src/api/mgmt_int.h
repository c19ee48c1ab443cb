/*
 * mgmt_int.h - what the management-API handler files (mgmt_*.c) share: the request context every
 * handler starts from, request decoding helpers, write bookkeeping (metrics) and per-file route
 * registration. Only mgmt*.c include this; nothing here may touch a backend directly.
 */
#ifndef EF_API_MGMT_INT_H
#define EF_API_MGMT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "api/json_in.h"
#include "api/node.h"
#include "api/objects.h"

/* One management request being handled. */
typedef struct ef_mgmt {
    ef_http_req *req;
    ef_node *node;
    ef_store *store;     /* node->store, or the directory's read view (writes never reach it) */
    ef_store view;       /* the directory's read view when there is no store */
    ef_arena *a;         /* the request arena: all scratch lives here */
    ef_buf *out;         /* the response body */
    ef_bytes ns;         /* namespace key ("default" when the request names none) */
    const ef_json *body; /* the body object of POST/PUT; NULL for reads and DELETE */
    int64_t t0;          /* monotonic start, for the write latency histogram */
    ef_store_err err;    /* filled by the store call that failed */
} ef_mgmt;

/* Start of a read (GET): answers 501 in snapshot mode (no store, no directory) and returns false. */
bool ef_mgmt_read(ef_mgmt *m, ef_http_req *req, void *ctx);
/* Start of a write: answers Flipt's read-only 500 without a store (directory, snapshot), parses the body
 * (400 on bad JSON). Returns false when it has answered. */
bool ef_mgmt_write(ef_mgmt *m, ef_http_req *req, void *ctx);
/* Start of a list: ef_mgmt_read plus limit/offset/pageToken from the query (400 on bad numbers). */
bool ef_mgmt_list(ef_mgmt *m, ef_http_req *req, void *ctx, ef_store_page *page);

/* A path parameter (the path always wins over body fields of the same name). */
ef_bytes ef_mgmt_param(const ef_mgmt *m, const char *name);
/* A query parameter under its camelCase or (if not NULL) snake_case name; empty when absent. */
ef_bytes ef_mgmt_query(const ef_mgmt *m, const char *camel, const char *snake);

/* Body field readers: true if the body is still good, else they answered 400 and return false.
 * An absent (or null) field leaves *out untouched. */
bool ef_mgmt_str(ef_mgmt *m, const char *camel, ef_bytes *out);
bool ef_mgmt_bool(ef_mgmt *m, const char *camel, bool *out);
bool ef_mgmt_i32(ef_mgmt *m, const char *camel, int32_t *out);
bool ef_mgmt_f32(ef_mgmt *m, const char *camel, float *out);
bool ef_mgmt_str_array(ef_mgmt *m, const char *camel, ef_bytes **out, size_t *n);
/* An enum given by name or number; unknown names are 400. */
bool ef_mgmt_enum(ef_mgmt *m, const char *camel, ef_obj_enum e, int *out);
/* A field that must be a JSON object (metadata); written compactly into the arena. */
bool ef_mgmt_object_text(ef_mgmt *m, const char *camel, ef_bytes *out);
/* A nested object member (rollout `segment` / `threshold`): *out is NULL when absent; a member
 * that is not an object is 400. */
bool ef_mgmt_child(ef_mgmt *m, const char *camel, const ef_json **out);

/* Ends a write: counts it in store_writes {op, ok|error} and observes its latency. Returns rc. */
int ef_mgmt_written(ef_mgmt *m, const char *op, int rc);
/* Answers with the response body written so far (200), or the store error when rc != 0. */
void ef_mgmt_reply(ef_mgmt *m, int rc);
/* Answers {} (DELETE and order), or the store error when rc != 0. */
void ef_mgmt_reply_empty(ef_mgmt *m, int rc);

/* Route tables. Patterns must be string literals: the router keeps the pointer. Each entry
 * declares its facts (src/http/http.h): where its namespace comes from and whether it reads the
 * node's state (EF_RF_STATE: every GET) or writes (EF_RF_WRITE: every POST, PUT and DELETE).
 * EF_MGMT_BOTH spells a route in both of Flipt's forms: /api/v1/namespaces/{namespaceKey}/<x>
 * (the path names the namespace) and /api/v1/<x> (the namespaceKey field of the body or query,
 * else "default": namespace_of in mgmt.c reads it and checks the token's scope). */
typedef struct ef_mgmt_route_def {
    unsigned methods;
    const char *pattern;
    ef_http_handler fn;
    ef_route_ns ns;
    const char *ns_param;
    unsigned flags;
} ef_mgmt_route_def;
#define EF_MGMT_DEFAULT_NS "/api/v1"
#define EF_MGMT_NAMESPACED "/api/v1/namespaces/{namespaceKey}"
#define EF_MGMT_IN_PATH(methods, suffix, fn, flags)                                              \
    {(methods), EF_MGMT_NAMESPACED suffix, (fn), EF_NS_PATH, "namespaceKey", (flags) | EF_RF_NS_EMPTY}
#define EF_MGMT_BOTH(methods, suffix, fn, flags)                                                 \
    {(methods), EF_MGMT_DEFAULT_NS suffix, (fn), EF_NS_BODY, NULL, (flags)},                      \
        EF_MGMT_IN_PATH(methods, suffix, fn, flags)
#define EF_MGMT_NROUTES(t) (sizeof(t) / sizeof((t)[0]))
int ef_mgmt_add_routes(ef_router *r, ef_node *node, const ef_mgmt_route_def *defs, size_t n);

int ef_mgmt_register_namespaces(ef_router *r, ef_node *node);
int ef_mgmt_register_flags(ef_router *r, ef_node *node);
int ef_mgmt_register_segments(ef_router *r, ef_node *node);
int ef_mgmt_register_rules(ef_router *r, ef_node *node);
int ef_mgmt_register_rollouts(ef_router *r, ef_node *node);

#endif
