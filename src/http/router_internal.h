/*
 * router_internal.h - the router's data, shared by router.c and server.c only.
 */
#ifndef EF_HTTP_ROUTER_INTERNAL_H
#define EF_HTTP_ROUTER_INTERNAL_H

#include "http/http.h"

#define EF_ROUTE_MAX_SEGMENTS 12

typedef struct segment {
    const char *text;
    size_t len;
    bool param;
} segment;

typedef struct route_entry {
    ef_route route;
    char *text; /* owned copy of the pattern, split in place */
    unsigned nseg;
    int empty_ok;   /* index of the segment that may be empty (EF_RF_NS_EMPTY), or -1 */
    segment seg[EF_ROUTE_MAX_SEGMENTS];
    char *literal;       /* a pattern without parameters, as "/a/b/c" (owned); NULL otherwise */
    size_t literal_len;
    unsigned same_next;  /* the next route (id + 1) with the same literal path, 0 for none */
} route_entry;

struct ef_router {
    route_entry *entries;
    unsigned n, cap;
    /* the ids of the routes with k segments: a path is only compared with those (every request
     * is matched, and most routes differ in length) */
    unsigned *by_len[EF_ROUTE_MAX_SEGMENTS + 1];
    unsigned nby_len[EF_ROUTE_MAX_SEGMENTS + 1];
    /* the routes without parameters by their path (open addressing, ids + 1, 0 = empty): a path
     * written plainly that names one of them is answered without comparing segments, since a
     * route of literals is more specific than any route with a parameter */
    unsigned *literal_slots;
    unsigned literal_mask; /* slots - 1; no table when literal_slots is NULL */
    ef_http_handler fallback;
    void *fallback_ctx;
};

typedef struct route_param {
    const char *name;
    ef_bytes value;
} route_param;

typedef struct router_match {
    const ef_route *route;   /* NULL if nothing matched */
    bool method_not_allowed; /* the path exists with other methods */
    unsigned allowed;        /* with method_not_allowed: every method the path takes (EF_GET...) */
} router_match;

/* The value of a 405's Allow header for methods (EF_GET | ...), "GET, POST" in the order of
 * ef_http_method; out holds EF_ROUTER_ALLOW_MAX bytes. */
#define EF_ROUTER_ALLOW_MAX 64
void ef_router_allow_text(unsigned methods, char *out);

router_match ef_router_match(const ef_router *r, unsigned method, const char *path,
                             route_param *params, unsigned *nparams);

#endif
