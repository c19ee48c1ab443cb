/*
 * auth.h - Flipt's static-token authentication. When it is on, every route except health,
 * metrics, the UI and /auth/v1/method needs `Authorization: Bearer <token>`; route classes can be
 * excluded (management, evaluation, ofrep) as Flipt's authentication.exclude does.
 *
 * Tokens: the bootstrap token from the configuration, plus tokens created through
 * POST /auth/v1/method/token, kept in the store as SHA-256 hashes (so they replicate like any other
 * row). Checking a request never touches the database: the valid tokens are held in memory as an
 * immutable table published with RCU, reloaded after every local token write and once a second
 * (to pick up tokens created or revoked on other nodes). Hashes are compared in constant time.
 * A token may be scoped to one namespace; requests for other namespaces are refused.
 *
 * Scope is enforced from each route's declaration (ef_route.ns), never guessed: the path
 * parameter or the X-Flipt-Namespace header it names is checked here before the handler runs;
 * EF_NS_BODY routes check in the handler with ef_auth_namespace_allowed; a scoped token may not
 * use an EF_NS_NONE route at all. As in Flipt, a request outside the scope is answered exactly
 * like one without a valid token: 401 {"code":16,"message":"request was not authenticated"}.
 */
#ifndef EF_API_AUTH_H
#define EF_API_AUTH_H

#include <stdbool.h>

#include "api/jwks.h"
#include "api/oidc.h"
#include "http/http.h"
#include "store/store.h"

typedef struct ef_auth ef_auth;

/* token: the bootstrap token, or NULL when another method (JWT) is what makes authentication
 * required. exclude: comma-separated classes or NULL. store: where created tokens live (NULL: the
 * bootstrap token only). Returns NULL with a message in err. */
ef_auth *ef_auth_new(const char *token, const char *exclude, ef_store *store, char *err, size_t errlen);
/* Answers the requests the authentication methods hold suspended (OIDC sign-ins waiting on their
 * code exchange: ef_oidc_drain) and refuses new ones, waiting up to wait_ms for that. Call after
 * ef_http_server_quiesce and before ef_http_server_stop. NULL: nothing. */
void ef_auth_drain(ef_auth *a, unsigned wait_ms);
void ef_auth_free(ef_auth *a);

/* Flipt's `jwt` method (docs/auth.md): `Authorization: JWT <token>`, or `Bearer <token>` when the
 * credential has a JWT's shape. The claim io.flipt.auth.token.namespace scopes a JWT to one
 * namespace exactly as a scoped static token is. */
typedef struct ef_auth_jwt_config {
    ef_jwks_config keys;
    const char *issuer;    /* validate_claims.issuer, or NULL */
    const char *subject;   /* validate_claims.subject, or NULL */
    const char *audiences; /* validate_claims.audiences, comma or space separated, or NULL */
} ef_auth_jwt_config;
/* Accepts JWTs from now on. -1 with a message when the configuration is refused. */
int ef_auth_enable_jwt(ef_auth *a, const ef_auth_jwt_config *c, char *err, size_t errlen);

/* Flipt's `oidc` method (oidc.h, docs/auth.md): sign-in routes, sessions in the store, the session
 * cookie accepted (writes with X-CSRF-Token). Needs the store. -1 with a message when refused. */
int ef_auth_enable_oidc(ef_auth *a, const ef_oidc_config *c, char *err, size_t errlen);

/* Answers 401 and returns false when the request may not proceed (no valid token, or a namespace
 * outside the token's scope). On success records which token matched, for the handler. */
bool ef_auth_allow(ef_auth *a, ef_http_req *req);
/* Whether the credential ef_auth_allow accepted for req is still good now: a stored token or
 * session not revoked, expired or (sessions) refused by email_matches since; a JWT not past its
 * exp. True for the bootstrap token and for requests that needed none. Answers nothing, blocks on
 * nothing: asked about open streams, from another thread than req's. */
bool ef_auth_still_valid(ef_auth *a, const ef_http_req *req);
/* For EF_NS_BODY routes, whose namespace only the handler can read: false (after answering 401)
 * when the request's token is scoped to another namespace ("" means "default"). Always true when
 * authentication is off or the route's class is excluded. */
bool ef_auth_namespace_allowed(ef_http_req *req, ef_bytes ns);
/* The id of the token that authenticated this request ("bootstrap" for the configured one), or
 * "" when none did (open or excluded route, authentication off). */
ef_bytes ef_auth_token_id(const ef_http_req *req);

/* Who made a request, as every authentication method reports it: what the change log, the history
 * API and audit events record. The strings live as long as the request (its arena, or static). */
typedef struct ef_actor {
    const char *method; /* "token" (bootstrap or created static token), "jwt", "oidc", "none" */
    ef_bytes id;        /* token id ("bootstrap" for the configured one), JWT/OIDC subject; "" for none */
    ef_bytes name;      /* token name, JWT/OIDC name; "anonymous" for none */
    ef_bytes email;     /* OIDC/JWT email claim when there is one, else "" */
} ef_actor;

/* Fills *out with the request's caller. A request no method authenticated (authentication off, an
 * open or excluded route) is {"none", "", "anonymous", ""}. Never fails. */
void ef_auth_actor(const ef_http_req *req, ef_actor *out);

/* Whether a bearer token is valid now (for forwarded requests and stream followers). */
bool ef_auth_token_valid(ef_auth *a, const char *token);

/* Reloads the created tokens from the store now. */
int ef_auth_reload(ef_auth *a);

/* Flipt's cleanup of expired authentications (auth_cleanup.c): per method, every interval, the
 * rows whose expiry is more than the grace period past are deleted. An interval of 0 leaves that
 * method alone. */
typedef struct ef_auth_cleanup_config {
    unsigned token_interval_s, token_grace_s; /* static tokens created with an expiry */
    unsigned oidc_interval_s, oidc_grace_s;   /* OIDC sign-in sessions */
} ef_auth_cleanup_config;

typedef struct ef_auth_cleanup ef_auth_cleanup;

/* Starts the cleanup thread (a first pass right away). Only for a store that takes writes. */
ef_auth_cleanup *ef_auth_cleanup_start(ef_store *store, const ef_auth_cleanup_config *cfg, char *err, size_t errlen);
void ef_auth_cleanup_stop(ef_auth_cleanup *c); /* NULL is fine */
/* One pass for one method (sessions: OIDC sessions, else static tokens): deletes the rows that
 * expired before expired_before_ns, counting them in *deleted. Returns 0 or -1 with err. */
int ef_auth_cleanup_run(ef_store *store, bool sessions, int64_t expired_before_ns, unsigned *deleted,
                        ef_store_err *err);

#endif
