/*
 * jwt.h - JSON Web Token verification (RFC 7515 compact JWS, RFC 7519 claims, RFC 7517 key sets),
 * as Flipt's `jwt` authentication method checks tokens: the signing algorithms it accepts (RS256,
 * RS512, ES256, ES512, EdDSA/Ed25519), its issuer/subject/audience checks and its time rules
 * (hashicorp/cap: one of exp, nbf, iat required; 60 s of clock skew; a missing exp or nbf derived
 * with 150 s of leeway).
 *
 * Pure functions over bytes and OpenSSL's libcrypto: no network, no threads, no global state, so
 * the parsers can be fuzzed (tests/fuzz/fuzz_jwt.c). Key sets are immutable once built and may be
 * shared by any number of threads verifying at once.
 *
 * Never accepted: alg "none", any HMAC algorithm (a public key is never used as a shared secret),
 * an algorithm whose family does not match the key's type, a header with "crit", RSA keys under
 * 2048 bits, keys a header names by URL (jku, x5u, jwk: never fetched, never trusted).
 */
#ifndef EF_API_JWT_H
#define EF_API_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/bytes.h"
#include "base/json.h"

#define EF_JWT_MAX_TOKEN 16384     /* bytes of a compact token */
#define EF_JWT_MAX_JWKS (1u << 20) /* bytes of a key set document */
#define EF_JWT_MAX_KEYS 64         /* usable keys kept from one key set */

typedef struct ef_jwt_keys ef_jwt_keys;

/* A JWKS document ({"keys":[...]}): keeps the usable keys; skips (and counts in *skipped, if
 * given) keys of other types, curves or uses, malformed keys and RSA keys under 2048 bits. NULL
 * with a message when the document is not a key set. */
ef_jwt_keys *ef_jwt_keys_from_jwks(const char *json, size_t n, size_t *skipped, char *err, size_t errlen);
/* One PEM public key (SubjectPublicKeyInfo "PUBLIC KEY", or an X.509 certificate). */
ef_jwt_keys *ef_jwt_keys_from_pem(const char *pem, size_t n, char *err, size_t errlen);
size_t ef_jwt_keys_count(const ef_jwt_keys *k);
void ef_jwt_keys_free(ef_jwt_keys *k);

typedef enum ef_jwt_status {
    EF_JWT_OK = 0,
    EF_JWT_MALFORMED,     /* not a compact JWS with JSON header and claims */
    EF_JWT_REFUSED_ALG,   /* none, HMAC, unknown, or crit */
    EF_JWT_UNKNOWN_KEY,   /* no key of the set may have signed it (a refresh may help) */
    EF_JWT_BAD_SIGNATURE, /* the keys that may have signed it say no */
    EF_JWT_BAD_CLAIMS,    /* issuer, subject, audience or time */
} ef_jwt_status;

/* A token taken apart. Every pointer is into the arena given to ef_jwt_parse. */
typedef struct ef_jwt {
    ef_bytes alg;
    ef_bytes kid;  /* empty when the header has none */
    const ef_json *header;
    const ef_json *claims;
    ef_bytes signing_input; /* "header.payload" as sent */
    ef_bytes signature;     /* decoded */
} ef_jwt;

typedef struct ef_jwt_expect {
    const char *issuer;  /* NULL or "": not checked */
    const char *subject; /* NULL or "": not checked */
    char *const *audiences; /* the token's aud must hold one of them; NULL or n_audiences 0: not checked */
    size_t n_audiences;
} ef_jwt_expect;

/* Splits, decodes and parses a compact token; refuses alg none/HMAC/unknown and crit headers. */
ef_jwt_status ef_jwt_parse(const char *token, size_t n, ef_arena *arena, ef_jwt *out, char *err, size_t errlen);
/* Checks the signature against the keys that may have made it (same kid, or either has none;
 * the key's type fits alg). */
ef_jwt_status ef_jwt_verify(const ef_jwt *t, const ef_jwt_keys *keys, char *err, size_t errlen);
/* Issuer, subject, audience and time (now in seconds since the epoch), as Flipt checks them. */
ef_jwt_status ef_jwt_check_claims(const ef_jwt *t, const ef_jwt_expect *x, int64_t now, char *err, size_t errlen);

/* A claim that is a string, or empty bytes. */
ef_bytes ef_jwt_claim_str(const ef_json *obj, const char *name);

/* base64url without padding; out holds at least (n * 4 + 2) / 3 + 1 bytes (NUL-terminated). */
void ef_b64url_encode(const uint8_t *in, size_t n, char *out);

/* Strict base64url without padding (RFC 7515 section 2); false on any other byte. out holds at
 * least n * 3 / 4 + 1 bytes. */
bool ef_b64url_decode(const char *in, size_t n, uint8_t *out, size_t *outlen);

#endif
