/*
 * attribution.h - who asked for a write, as the change log records it (ef_store_attribution):
 * the caller from authentication (ef_auth_actor), the replicas that forwarded the request, and
 * what the write is (Flipt's audit type and action), derived from the route's own declaration.
 * It must never turn a header into an identity: the actor comes from authentication alone.
 */
#ifndef EF_API_ATTRIBUTION_H
#define EF_API_ATTRIBUTION_H

#include "http/http.h"
#include "store/store.h"

/* Fills *out for a request on a write route (strings in the request's arena or static). */
void ef_api_attribution(ef_http_req *req, ef_store_attribution *out);

/* Flipt's audit type and action of a write route: "flag" and "created" for POST .../flags. The
 * type is the last collection the pattern names (namespaces, flags, variants, segments,
 * constraints, rules, distributions, rollouts; /auth/v1 writes are "token"); the action comes from
 * the method (POST created, PUT updated, DELETE deleted). Returns false for anything else. */
bool ef_api_write_kind(const ef_route *r, ef_http_method m, const char **type, const char **action);

#endif
