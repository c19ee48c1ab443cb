/*
 * jwt.c - JWT verification with libcrypto (see jwt.h). It must never trust the token's header to
 * choose a key type or an algorithm family (the alg table and the key's own type decide), never
 * follow a URL from a token, and never read past the bytes it was given.
 */
#include "api/jwt.h"

#include <math.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum key_kind { K_RSA, K_P256, K_P521, K_ED25519 } key_kind;

typedef struct key {
    char *kid; /* NULL: none (a PEM key, or a JWKS key without one) */
    char *alg; /* NULL: the key does not pin one */
    key_kind kind;
    EVP_PKEY *pkey;
} key;

struct ef_jwt_keys {
    size_t n;
    key k[];
};

/* The algorithms Flipt's jwt method accepts, and what each needs from a key. */
typedef struct alg_info {
    const char *name;
    key_kind kind;
    const char *md; /* NULL: EdDSA (no separate digest) */
    size_t ec_len;  /* ECDSA: length of r||s */
} alg_info;

static const alg_info algs[] = {
    {"RS256", K_RSA, "SHA256", 0},     {"RS512", K_RSA, "SHA512", 0}, {"ES256", K_P256, "SHA256", 64},
    {"ES512", K_P521, "SHA512", 132}, {"EdDSA", K_ED25519, NULL, 0},
};

static const alg_info *alg_find(ef_bytes name)
{
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (ef_bytes_eq(name, ef_bytes_of(algs[i].name))) return &algs[i];
    return NULL;
}

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

void ef_b64url_encode(const uint8_t *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = al[v >> 18 & 63];
        out[o++] = al[v >> 12 & 63];
        if (i + 1 < n) out[o++] = al[v >> 6 & 63];
        if (i + 2 < n) out[o++] = al[v & 63];
    }
    out[o] = '\0';
}

bool ef_b64url_decode(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
    if (n % 4 == 1) return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64v((unsigned char)in[i]);
        if (v < 0) return false;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    *outlen = o;
    return true;
}

static void seterr(char *err, size_t errlen, const char *fmt, const char *a)
{
    if (err && errlen) snprintf(err, errlen, fmt, a ? a : "");
}

/* ---- key sets ------------------------------------------------------------------------------ */

void ef_jwt_keys_free(ef_jwt_keys *ks)
{
    if (!ks) return;
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->k[i].kid);
        free(ks->k[i].alg);
        EVP_PKEY_free(ks->k[i].pkey);
    }
    free(ks);
}

size_t ef_jwt_keys_count(const ef_jwt_keys *ks)
{
    return ks ? ks->n : 0;
}

/* A base64url member decoded into an arena copy; false when missing or not base64url. */
static bool member_b64(const ef_json *o, const char *name, ef_arena *a, uint8_t **out, size_t *outlen)
{
    const ef_json *v = ef_json_get(o, name);
    if (!v || v->type != EF_JSON_STRING || v->str.n == 0 || v->str.n > 4096) return false;
    *out = ef_arena_alloc(a, v->str.n);
    return *out && ef_b64url_decode(v->str.p, v->str.n, *out, outlen) && *outlen > 0;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pk = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static EVP_PKEY *rsa_from_jwk(const ef_json *o, ef_arena *a, const char **why)
{
    uint8_t *n, *e;
    size_t nl, el;
    if (!member_b64(o, "n", a, &n, &nl) || !member_b64(o, "e", a, &e, &el) || el > 8) {
        *why = "RSA key without valid n and e";
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pk = pkey_fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    if (!pk) *why = "RSA key rejected by libcrypto";
    return pk;
}

static EVP_PKEY *ec_from_jwk(const ef_json *o, key_kind kind, ef_arena *a, const char **why)
{
    size_t clen = kind == K_P256 ? 32 : 66;
    uint8_t *x, *y;
    size_t xl, yl;
    if (!member_b64(o, "x", a, &x, &xl) || !member_b64(o, "y", a, &y, &yl) || xl != clen || yl != clen) {
        *why = "EC key without valid x and y for its curve";
        return NULL;
    }
    uint8_t pt[1 + 2 * 66];
    pt[0] = 4; /* uncompressed point */
    memcpy(pt + 1, x, clen);
    memcpy(pt + 1 + clen, y, clen);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pk = NULL;
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, kind == K_P256 ? "prime256v1" : "secp521r1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * clen))
        pk = pkey_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (pk) { /* a point off the curve is no key */
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(pk, NULL);
        bool ok = c && EVP_PKEY_public_check(c) == 1;
        EVP_PKEY_CTX_free(c);
        if (!ok) {
            EVP_PKEY_free(pk);
            pk = NULL;
        }
    }
    if (!pk) *why = "EC key is not a point on its curve";
    return pk;
}

/* RSA keys shorter than this are refused: they can be factored. */
#define MIN_RSA_BITS 2048

static bool key_acceptable(key_kind kind, EVP_PKEY *pk, const char **why)
{
    if (kind == K_RSA && EVP_PKEY_get_bits(pk) < MIN_RSA_BITS) {
        *why = "RSA key shorter than 2048 bits";
        return false;
    }
    return true;
}

static ef_jwt_keys *keys_alloc(size_t n)
{
    ef_jwt_keys *ks = calloc(1, sizeof(*ks) + n * sizeof(key));
    return ks;
}

ef_jwt_keys *ef_jwt_keys_from_jwks(const char *json, size_t n, size_t *skipped, char *err, size_t errlen)
{
    if (skipped) *skipped = 0;
    if (n > EF_JWT_MAX_JWKS) {
        seterr(err, errlen, "key set larger than 1 MiB%s", NULL);
        return NULL;
    }
    ef_arena a;
    ef_arena_init(&a, 8192);
    ef_json_error je;
    ef_json_opts jo = {.max_depth = 16};
    ef_jwt_keys *ks = NULL;
    const ef_json *root = ef_json_parse(json, n, &a, &jo, &je);
    const ef_json *arr = root && root->type == EF_JSON_OBJECT ? ef_json_get(root, "keys") : NULL;
    if (!arr || arr->type != EF_JSON_ARRAY) {
        seterr(err, errlen, "%s", root ? "not a key set: no \"keys\" array" : je.message);
        goto out;
    }
    if (!(ks = keys_alloc(arr->len < EF_JWT_MAX_KEYS ? arr->len : EF_JWT_MAX_KEYS))) {
        seterr(err, errlen, "out of memory%s", NULL);
        goto out;
    }
    size_t skip = 0;
    for (const ef_json *k = arr->child; k; k = k->next) {
        if (k->type != EF_JSON_OBJECT) {
            seterr(err, errlen, "key set entry is not an object%s", NULL);
            goto fail;
        }
        ef_bytes kty = ef_jwt_claim_str(k, "kty"), crv = ef_jwt_claim_str(k, "crv");
        ef_bytes use = ef_jwt_claim_str(k, "use"), kid = ef_jwt_claim_str(k, "kid");
        ef_bytes alg = ef_jwt_claim_str(k, "alg");
        const ef_json *kidv = ef_json_get(k, "kid");
        if (kidv && kidv->type != EF_JSON_STRING) {
            seterr(err, errlen, "key set entry has a kid that is not a string%s", NULL);
            goto fail;
        }
        key_kind kind;
        if (ef_bytes_eq(kty, EF_BYTES_LIT("RSA")))
            kind = K_RSA;
        else if (ef_bytes_eq(kty, EF_BYTES_LIT("EC")) && ef_bytes_eq(crv, EF_BYTES_LIT("P-256")))
            kind = K_P256;
        else if (ef_bytes_eq(kty, EF_BYTES_LIT("EC")) && ef_bytes_eq(crv, EF_BYTES_LIT("P-521")))
            kind = K_P521;
        else if (ef_bytes_eq(kty, EF_BYTES_LIT("OKP")) && ef_bytes_eq(crv, EF_BYTES_LIT("Ed25519")))
            kind = K_ED25519;
        else {
            skip++; /* another type (oct, P-384, X25519, ...): not for Flipt's algorithms */
            continue;
        }
        if ((use.n && !ef_bytes_eq(use, EF_BYTES_LIT("sig"))) || ks->n >= EF_JWT_MAX_KEYS) {
            skip++;
            continue;
        }
        const alg_info *ai = alg.n ? alg_find(alg) : NULL;
        if (alg.n && (!ai || ai->kind != kind)) {
            skip++; /* pinned to an algorithm this method does not accept with this key */
            continue;
        }
        const char *why = "unsupported key";
        EVP_PKEY *pk = NULL;
        if (kind == K_RSA)
            pk = rsa_from_jwk(k, &a, &why);
        else if (kind == K_ED25519) {
            uint8_t *x;
            size_t xl;
            if (member_b64(k, "x", &a, &x, &xl) && xl == 32)
                pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
            why = "Ed25519 key without a valid x";
        } else
            pk = ec_from_jwk(k, kind, &a, &why);
        if (pk && !key_acceptable(kind, pk, &why)) {
            EVP_PKEY_free(pk);
            pk = NULL;
        }
        if (!pk) { /* one broken or weak key must not take the provider's other keys with it */
            skip++;
            continue;
        }
        key *e = &ks->k[ks->n++];
        e->kind = kind;
        e->pkey = pk;
        e->kid = kidv ? strndup(kid.p, kid.n) : NULL;
        e->alg = alg.n ? strndup(alg.p, alg.n) : NULL;
        if ((kidv && !e->kid) || (alg.n && !e->alg)) {
            seterr(err, errlen, "out of memory%s", NULL);
            goto fail;
        }
    }
    if (skipped) *skipped = skip;
    goto out;
fail:
    ef_jwt_keys_free(ks);
    ks = NULL;
out:
    ERR_clear_error();
    ef_arena_free(&a);
    return ks;
}

ef_jwt_keys *ef_jwt_keys_from_pem(const char *pem, size_t n, char *err, size_t errlen)
{
    if (n > EF_JWT_MAX_JWKS || n > INT32_MAX) {
        seterr(err, errlen, "key file larger than 1 MiB%s", NULL);
        return NULL;
    }
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    EVP_PKEY *pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    if (!pk && b) { /* a certificate: its subject's key */
        BIO_free(b);
        b = BIO_new_mem_buf(pem, (int)n);
        X509 *crt = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        if (crt) pk = X509_get_pubkey(crt);
        X509_free(crt);
    }
    BIO_free(b);
    ERR_clear_error();
    if (!pk) {
        seterr(err, errlen, "no PEM public key (\"PUBLIC KEY\" or \"CERTIFICATE\") found%s", NULL);
        return NULL;
    }
    key_kind kind;
    const char *why = "unsupported key type (RSA, EC P-256, EC P-521 or Ed25519)";
    char group[64] = "";
    size_t gl = 0;
    bool ok = true;
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        kind = K_RSA;
        break;
    case EVP_PKEY_ED25519:
        kind = K_ED25519;
        break;
    case EVP_PKEY_EC:
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &gl);
        if (!strcmp(group, "prime256v1"))
            kind = K_P256;
        else if (!strcmp(group, "secp521r1"))
            kind = K_P521;
        else
            ok = false;
        break;
    default:
        ok = false;
    }
    if (!ok || !key_acceptable(kind, pk, &why)) {
        EVP_PKEY_free(pk);
        seterr(err, errlen, "%s", why);
        return NULL;
    }
    ef_jwt_keys *ks = keys_alloc(1);
    if (!ks) {
        EVP_PKEY_free(pk);
        seterr(err, errlen, "out of memory%s", NULL);
        return NULL;
    }
    ks->n = 1;
    ks->k[0] = (key){.kind = kind, .pkey = pk};
    return ks;
}

/* ---- tokens -------------------------------------------------------------------------------- */

ef_bytes ef_jwt_claim_str(const ef_json *obj, const char *name)
{
    const ef_json *v = obj && obj->type == EF_JSON_OBJECT ? ef_json_get(obj, name) : NULL;
    return v && v->type == EF_JSON_STRING ? v->str : (ef_bytes){"", 0};
}

/* Decodes one base64url part into the arena and parses it as a JSON object. */
static const ef_json *part_json(const char *p, size_t n, ef_arena *a)
{
    uint8_t *raw = ef_arena_alloc(a, n * 3 / 4 + 1);
    size_t rl;
    if (!raw || !ef_b64url_decode(p, n, raw, &rl)) return NULL;
    ef_json_error je;
    ef_json_opts jo = {.max_depth = 16};
    const ef_json *j = ef_json_parse((const char *)raw, rl, a, &jo, &je);
    return j && j->type == EF_JSON_OBJECT ? j : NULL;
}

ef_jwt_status ef_jwt_parse(const char *token, size_t n, ef_arena *arena, ef_jwt *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (n == 0 || n > EF_JWT_MAX_TOKEN) {
        seterr(err, errlen, "token is empty or longer than 16 KiB%s", NULL);
        return EF_JWT_MALFORMED;
    }
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token))) {
        seterr(err, errlen, "not a compact JWS (three dot-separated parts)%s", NULL);
        return EF_JWT_MALFORMED;
    }
    out->header = part_json(token, (size_t)(d1 - token), arena);
    if (!out->header) {
        seterr(err, errlen, "header is not base64url JSON object%s", NULL);
        return EF_JWT_MALFORMED;
    }
    const ef_json *alg = ef_json_get(out->header, "alg");
    const ef_json *kid = ef_json_get(out->header, "kid");
    if (!alg || alg->type != EF_JSON_STRING || (kid && kid->type != EF_JSON_STRING)) {
        seterr(err, errlen, "header without a string alg (or with a kid that is not a string)%s", NULL);
        return EF_JWT_MALFORMED;
    }
    out->alg = alg->str;
    out->kid = kid ? kid->str : (ef_bytes){"", 0};
    if (!alg_find(out->alg)) {
        char a[40];
        snprintf(a, sizeof(a), "%.*s", (int)(out->alg.n > 32 ? 32 : out->alg.n), out->alg.p);
        seterr(err, errlen, "algorithm \"%s\" is not accepted (RS256, RS512, ES256, ES512, EdDSA)", a);
        return EF_JWT_REFUSED_ALG;
    }
    if (ef_json_get(out->header, "crit")) { /* no extension is understood here, so none may be critical */
        seterr(err, errlen, "header has crit extensions%s", NULL);
        return EF_JWT_REFUSED_ALG;
    }
    out->claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1), arena);
    if (!out->claims) {
        seterr(err, errlen, "payload is not a base64url JSON object%s", NULL);
        return EF_JWT_MALFORMED;
    }
    size_t sl = n - (size_t)(d2 + 1 - token), dl;
    uint8_t *sig = ef_arena_alloc(arena, sl * 3 / 4 + 1);
    if (!sig || !ef_b64url_decode(d2 + 1, sl, sig, &dl) || dl == 0) {
        seterr(err, errlen, "signature is missing or not base64url%s", NULL);
        return EF_JWT_MALFORMED;
    }
    out->signature = (ef_bytes){(const char *)sig, dl};
    out->signing_input = (ef_bytes){token, (size_t)(d2 - token)};
    return EF_JWT_OK;
}

/* ECDSA signatures in a JWS are r||s of fixed width; libcrypto verifies DER. */
static unsigned char *ecdsa_der(const ef_jwt *t, size_t half, int *derlen)
{
    const unsigned char *s = (const unsigned char *)t->signature.p;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(s, (int)half, NULL), *ss = BN_bin2bn(s + half, (int)half, NULL);
    unsigned char *der = NULL;
    if (es && r && ss && ECDSA_SIG_set0(es, r, ss)) {
        r = ss = NULL; /* owned by es now */
        *derlen = i2d_ECDSA_SIG(es, &der);
        if (*derlen <= 0) der = NULL;
    }
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(es);
    return der;
}

static bool verify_one(const ef_jwt *t, const alg_info *ai, EVP_PKEY *pk)
{
    const unsigned char *sig = (const unsigned char *)t->signature.p;
    size_t siglen = t->signature.n;
    unsigned char *der = NULL;
    if (ai->ec_len) {
        int dl = 0;
        if (t->signature.n != ai->ec_len || !(der = ecdsa_der(t, ai->ec_len / 2, &dl))) return false;
        sig = der;
        siglen = (size_t)dl;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestVerifyInit_ex(ctx, NULL, ai->md, NULL, NULL, pk, NULL) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)t->signing_input.p, t->signing_input.n) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

/* Tokens without kid are tried against every fitting key; at most this many, so a token cannot
 * make one request cost the whole key set. */
#define MAX_TRIES 8

ef_jwt_status ef_jwt_verify(const ef_jwt *t, const ef_jwt_keys *ks, char *err, size_t errlen)
{
    const alg_info *ai = alg_find(t->alg);
    if (!ai) {
        seterr(err, errlen, "algorithm not accepted%s", NULL);
        return EF_JWT_REFUSED_ALG;
    }
    unsigned tried = 0;
    for (size_t i = 0; ks && i < ks->n && tried < MAX_TRIES; i++) {
        const key *k = &ks->k[i];
        if (k->kind != ai->kind) continue;
        if (k->alg && strcmp(k->alg, ai->name) != 0) continue;
        if (t->kid.n && k->kid && !ef_bytes_eq(t->kid, ef_bytes_of(k->kid))) continue;
        tried++;
        if (verify_one(t, ai, k->pkey)) return EF_JWT_OK;
    }
    ERR_clear_error(); /* failed verifications leave entries in this thread's queue */
    if (!tried) {
        seterr(err, errlen, "no key of the key set fits the token's kid and algorithm%s", NULL);
        return EF_JWT_UNKNOWN_KEY;
    }
    seterr(err, errlen, "signature does not verify%s", NULL);
    return EF_JWT_BAD_SIGNATURE;
}

/* A NumericDate claim: false when present but not a number of seconds; 0 when absent. */
static bool numeric_date(const ef_json *claims, const char *name, int64_t *out)
{
    const ef_json *v = ef_json_get(claims, name);
    *out = 0;
    if (!v || v->type == EF_JSON_NULL) return true;
    if (v->type != EF_JSON_NUMBER || !isfinite(v->num) || v->num < -1e12 || v->num > 1e12) return false;
    *out = (int64_t)v->num;
    return true;
}

#define LEEWAY_DEFAULT 150 /* s: cap's default for a missing exp or nbf */
#define CLOCK_SKEW 60      /* s: go-jose's default leeway, which cap applies to every time claim */

ef_jwt_status ef_jwt_check_claims(const ef_jwt *t, const ef_jwt_expect *x, int64_t now, char *err, size_t errlen)
{
    const ef_json *c = t->claims;
    const ef_json *iss = ef_json_get(c, "iss"), *sub = ef_json_get(c, "sub"), *aud = ef_json_get(c, "aud");
    if ((iss && iss->type != EF_JSON_STRING) || (sub && sub->type != EF_JSON_STRING)) {
        seterr(err, errlen, "iss or sub is not a string%s", NULL);
        return EF_JWT_BAD_CLAIMS;
    }
    if (aud && aud->type != EF_JSON_STRING && aud->type != EF_JSON_ARRAY) {
        seterr(err, errlen, "aud is neither a string nor an array of strings%s", NULL);
        return EF_JWT_BAD_CLAIMS;
    }
    if (aud && aud->type == EF_JSON_ARRAY)
        for (const ef_json *e = aud->child; e; e = e->next)
            if (e->type != EF_JSON_STRING) {
                seterr(err, errlen, "aud is neither a string nor an array of strings%s", NULL);
                return EF_JWT_BAD_CLAIMS;
            }
    if (x->issuer && *x->issuer && !(iss && ef_bytes_eq(iss->str, ef_bytes_of(x->issuer)))) {
        seterr(err, errlen, "invalid issuer (iss) claim%s", NULL);
        return EF_JWT_BAD_CLAIMS;
    }
    if (x->subject && *x->subject && !(sub && ef_bytes_eq(sub->str, ef_bytes_of(x->subject)))) {
        seterr(err, errlen, "invalid subject (sub) claim%s", NULL);
        return EF_JWT_BAD_CLAIMS;
    }
    if (x->audiences && x->n_audiences) {
        bool found = false;
        for (size_t i = 0; i < x->n_audiences && !found; i++) {
            ef_bytes want = ef_bytes_of(x->audiences[i]);
            if (aud && aud->type == EF_JSON_STRING)
                found = ef_bytes_eq(aud->str, want);
            else if (aud)
                for (const ef_json *e = aud->child; e && !found; e = e->next) found = ef_bytes_eq(e->str, want);
        }
        if (!found) {
            seterr(err, errlen, "invalid audience (aud) claim%s", NULL);
            return EF_JWT_BAD_CLAIMS;
        }
    }
    int64_t iat, exp, nbf;
    if (!numeric_date(c, "iat", &iat) || !numeric_date(c, "exp", &exp) || !numeric_date(c, "nbf", &nbf)) {
        seterr(err, errlen, "iat, exp or nbf is not a number of seconds%s", NULL);
        return EF_JWT_BAD_CLAIMS;
    }
    if (!iat && !exp && !nbf) {
        seterr(err, errlen, "no issued at (iat), not before (nbf), or expiration time (exp) claims in token%s", NULL);
        return EF_JWT_BAD_CLAIMS;
    }
    if (!exp) exp = (nbf > iat ? nbf : iat) + LEEWAY_DEFAULT;
    if (!nbf) nbf = iat ? iat : exp - LEEWAY_DEFAULT;
    if (now + CLOCK_SKEW < nbf) {
        seterr(err, errlen, "invalid not before (nbf) claim: token not yet valid%s", NULL);
        return EF_JWT_BAD_CLAIMS;
    }
    if (now - CLOCK_SKEW > exp) {
        seterr(err, errlen, "invalid expiration time (exp) claim: token is expired%s", NULL);
        return EF_JWT_BAD_CLAIMS;
    }
    if (iat && now + CLOCK_SKEW < iat) {
        seterr(err, errlen, "invalid issued at (iat) claim: token issued in the future%s", NULL);
        return EF_JWT_BAD_CLAIMS;
    }
    return EF_JWT_OK;
}
