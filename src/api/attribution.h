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

/* Fills *out for a request on a write route (strings in the request's arena or static).
 * from_replica: the request comes from a replica that follows this node (the composition root
 * asks the sync layer, ef_sync_from_downstream); only then are X-Edgeflag-Forwarded-By ("via")
 * and X-Edgeflag-Forwarded-For (the caller's address) taken, else "via" is empty and the address
 * is the peer's. */
void ef_api_attribution(ef_http_req *req, bool from_replica, ef_store_attribution *out);

/* Flipt's audit type and action of a write route: "flag" and "created" for POST .../flags. The
 * type is the last collection the pattern names (namespaces, flags, variants, segments,
 * constraints, rules, distributions, rollouts; /auth/v1 writes are "token"); the action comes from
 * the method (POST created, PUT updated, DELETE deleted). Returns false for anything else. */
bool ef_api_write_kind(const ef_route *r, ef_http_method m, const char **type, const char **action);

#endif
