/*
 * oidc.h - Flipt's `oidc` method: people sign in to the UI through an OpenID Connect provider
 * (authorization code flow with PKCE, state and nonce checked, the ID token verified with the
 * provider's published keys) and get a server-side session: a row in the store's token table
 * (so it survives a restart, replicates, lists under /auth/v1/authentications and can be
 * revoked) whose secret travels only in an HttpOnly cookie (flipt_client_token, SameSite=Strict,
 * Secure when configured (cmd_serve sets it when serving HTTPS) or when the request arrived over
 * TLS at a proxy).
 *
 * Routes, as Flipt has them: GET /auth/v1/method/oidc/{provider}/authorize answers
 * {"authorizeUrl": ...} and sets the state cookie (flipt_client_state); GET .../callback checks
 * state, exchanges the code, verifies the ID token, creates the session and redirects to "/".
 * Sign-out is PUT /auth/v1/self/expire (auth.c), which also clears the cookie.
 *
 * The provider's discovery document and keys are fetched in the background; an authorize before
 * they arrived answers 503. Only the callback waits on the network (the code exchange), and it
 * holds no server thread meanwhile: its request is suspended while the module's own thread runs
 * the exchange, bounded by a timeout and by a number of exchanges at once (oidc.c).
 */
#ifndef EF_API_OIDC_H
#define EF_API_OIDC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/bytes.h"
#include "base/buf.h"
#include "http/http.h"

typedef struct ef_oidc_provider_config {
    const char *name;             /* the {provider} path segment */
    const char *issuer_url;       /* discovery: ISSUER/.well-known/openid-configuration */
    const char *client_id;
    const char *client_secret;    /* NULL: a public client (PKCE alone) */
    const char *redirect_address; /* this server as the browser reaches it: http(s)://host[:port] */
    const char *scopes;           /* extra scopes besides openid, space or comma separated */
    bool use_pkce;
} ef_oidc_provider_config;

typedef struct ef_oidc_config {
    const ef_oidc_provider_config *providers;
    size_t n_providers;
    unsigned token_lifetime_s; /* a session's life (0: 86400) */
    unsigned state_lifetime_s; /* between authorize and callback (0: 600) */
    bool secure;               /* Secure cookies even without X-Forwarded-Proto: https */
    const char *domain;        /* cookie Domain, or NULL (host-only) */
    const char *email_matches; /* Flipt's email_matches: POSIX extended regular expressions
                                * separated by white space; a session's email must match one
                                * (NULL or none: any email) */
} ef_oidc_config;

typedef struct ef_oidc ef_oidc;

ef_oidc *ef_oidc_new(const ef_oidc_config *c, char *err, size_t errlen);
/* Answers every callback waiting on a code exchange 503 "the server is stopping; sign in again"
 * (its transfer ended; the state is used up) and refuses new exchanges the same way, then returns
 * once none is held, or after wait_ms (logged: the exchange thread is stuck in libcurl). An
 * exchange that already succeeded has its request back with the server, which writes the session
 * within its grace. Call after ef_http_server_quiesce and before ef_http_server_stop: the server
 * frees the requests it stops with, and the exchanges must not hold one then. NULL: nothing. */
void ef_oidc_drain(ef_oidc *o, unsigned wait_ms);
/* After the HTTP server stopped (and ef_oidc_drain before it). */
void ef_oidc_free(ef_oidc *o);

/* The "metadata" of METHOD_OIDC in GET /auth/v1/method: {"providers":{NAME:{authorize_url,callback_url}}}. */
void ef_oidc_put_method_metadata(const ef_oidc *o, ef_buf *out);

/* A session cookie (Set-Cookie) for token, or one that clears it when token is NULL. */
void ef_oidc_set_session_cookie(const ef_oidc *o, ef_http_req *req, const char *token);

/* Whether a session with this email may act (email_matches; true when none are configured). */
bool ef_oidc_email_allowed(const ef_oidc *o, ef_bytes email);

/* The route handlers (ctx: the ef_node); registered by ef_api_register_auth. */
void ef_oidc_on_authorize(ef_http_req *req, void *ctx);
void ef_oidc_on_callback(ef_http_req *req, void *ctx);

/* The value of one cookie of the request's Cookie header, into out; false when absent or longer
 * than cap - 1. */
bool ef_oidc_cookie(ef_http_req *req, const char *name, char *out, size_t cap);

/* The CSRF token of a session, derived from its secret (which only the HttpOnly cookie holds):
 * base64url(SHA-256("edgeflag-csrf:" + base64url(SHA-256(token)))), 43 characters and a NUL. */
void ef_oidc_csrf_of(const char *token, char out[44]);

#endif
