/*
 * auth_int.h - what the authentication methods (static tokens in auth.c, JWT in auth_jwt.c, OIDC
 * sessions) share inside api/: the identity a method records on an accepted request. Not a public
 * contract: auth.h is. Every method must fill the same identity, so namespace scopes and the actor
 * recorded for audit never depend on how a caller proved who they are.
 */
#ifndef EF_API_AUTH_INT_H
#define EF_API_AUTH_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "api/auth.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"
#include "store/store.h"

typedef enum ef_auth_method { EF_AUTH_TOKEN, EF_AUTH_JWT, EF_AUTH_OIDC } ef_auth_method;

/* What authentication recorded on an accepted request (its user slot). Every byte lives in the
 * request's arena or is static. Requests on open or excluded routes have none. */
typedef struct ef_auth_identity {
    ef_auth_method method;
    bool bootstrap;
    uint8_t hash[32]; /* tokens: SHA-256 of the token, finds its row again for /auth/v1/self */
    ef_bytes id;      /* token id ("bootstrap" for the configured one); JWT/OIDC: the subject */
    ef_bytes row_id;  /* stored token or session: its row's id (what sign-out expires) */
    bool via_cookie;  /* the credential came in the session cookie (writes need the CSRF token) */
    ef_bytes name;    /* token name; JWT/OIDC: the person's name, if any */
    ef_bytes email;   /* JWT/OIDC: the person's email, if any */
    ef_bytes ns;      /* scope; empty = every namespace */
    const ef_json *claims; /* JWT: the verified claims (for /auth/v1/self) */
    int64_t expires_s;     /* JWT: exp, 0 when none */
} ef_auth_identity;

typedef struct ef_auth_jwt ef_auth_jwt;

/* Whether a stored token row is an OIDC sign-in's session (else a static token). */
bool ef_auth_row_is_session(const ef_store_token *t);

/* The oidc method's state when it is on, else NULL (oidc.c reaches it through the node). */
struct ef_oidc *ef_auth_oidc(ef_auth *a);

ef_auth_jwt *ef_auth_jwt_new(const ef_auth_jwt_config *c, char *err, size_t errlen);
void ef_auth_jwt_free(ef_auth_jwt *j);
/* Verifies a compact token (signature, algorithm, issuer, subject, audience, time); on success
 * *out is its identity in arena. Never blocks on the network. */
bool ef_auth_jwt_check(ef_auth_jwt *j, const char *token, ef_arena *arena, const ef_auth_identity **out);
/* Whether a bearer credential has the shape of a JWT (three base64url parts), which no static
 * token has. */
bool ef_auth_looks_like_jwt(const char *token);
/* /auth/v1/self for a JWT caller: Flipt's Authentication with method METHOD_JWT and the metadata
 * Flipt derives from the claims. */
void ef_auth_jwt_put_self(ef_buf *out, const ef_auth_identity *id);

#endif
