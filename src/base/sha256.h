/*
 * sha256.h - SHA-256 (FIPS 180-4), for hashing client tokens before they are stored or compared, and
 * HMAC-SHA256 for signing audit webhooks.
 */
#ifndef EF_BASE_SHA256_H
#define EF_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

void ef_sha256(const void *data, size_t len, uint8_t out[32]);
/* HMAC-SHA256 (RFC 2104) of msg under key. Returns 0, or -1 when memory ran out. */
int ef_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len, uint8_t out[32]);
/* Constant-time comparison of two equal-length byte strings. */
int ef_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
