/*
 * jwks.h - the keys JWT authentication verifies with: a PEM public key file read once at start,
 * or a JWKS URL fetched in the background, kept in memory and refreshed periodically and when a
 * token names a key the set does not have (the provider rotated its keys).
 *
 * Verifying never waits on the network: a request reads the current immutable key set (RCU) and
 * answers at once; a token signed by an unknown key is refused and wakes the refresher, which
 * fetches at most once per min_refresh_s (so a flood of made-up kids costs the provider one fetch
 * per interval, not one per request). A failed fetch keeps the last good set and retries with
 * backoff; a JWKS URL that is down at start leaves JWT refused and everything else served.
 */
#ifndef EF_API_JWKS_H
#define EF_API_JWKS_H

#include <stdint.h>

#include "api/jwt.h"

typedef struct ef_jwks ef_jwks;

typedef struct ef_jwks_config {
    const char *url;        /* JWKS URL (http or https), or NULL */
    const char *pem_file;   /* or a PEM public key file; exactly one of the two */
    unsigned refresh_s;     /* periodic refresh of a URL's keys (0: 300) */
    unsigned min_refresh_s; /* least time between two fetches (0: 10) */
    unsigned timeout_ms;    /* one fetch (0: 5000) */
} ef_jwks_config;

ef_jwks *ef_jwks_new(const ef_jwks_config *c, char *err, size_t errlen);
void ef_jwks_free(ef_jwks *j);

/* Verifies t's signature with the current keys; EF_JWT_UNKNOWN_KEY also asks for a refresh. */
ef_jwt_status ef_jwks_verify(ef_jwks *j, const ef_jwt *t, char *err, size_t errlen);

/* Successful fetches so far (a URL source), for metrics and tests. */
uint64_t ef_jwks_fetches(const ef_jwks *j);

#endif
