/*
 * auth.h - Flipt's static-token authentication: when it is on, every route except health,
 * metrics, the UI and /auth/v1/method needs `Authorization: Bearer <token>`; route classes can be
 * excluded (management, evaluation, ofrep) as Flipt's authentication.exclude does. Tokens are
 * compared as SHA-256 hashes in constant time.
 */
#ifndef EF_API_AUTH_H
#define EF_API_AUTH_H

#include <stdbool.h>

#include "http/http.h"

typedef struct ef_auth ef_auth;

/* token: the bootstrap token (required). exclude: comma-separated classes or NULL.
 * Returns NULL with a message in err on a bad exclude list. */
ef_auth *ef_auth_new(const char *token, const char *exclude, char *err, size_t errlen);
void ef_auth_free(ef_auth *a);

/* Answers 401 and returns false when the request needs credentials it does not carry. */
bool ef_auth_allow(ef_auth *a, ef_http_req *req);

/* Whether the request carries the given bearer token (for forwarded requests). */
bool ef_auth_token_valid(ef_auth *a, const char *token);

#endif
