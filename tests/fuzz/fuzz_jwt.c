/*
 * fuzz_jwt.c - libFuzzer target: JWT and JWKS parsing and verification (src/api/jwt.c). Input:
 * an optional JWKS document, a newline, then a compact token. The token is parsed, verified
 * against that key set when it parses (else against a fixed set whose keys signed the seed
 * tokens in corpus/jwt/) and its claims checked. Must never crash, leak or read out of bounds,
 * and never accept a token whose alg is not one of Flipt's (none and HMAC above all).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/jwt.h"

static const char FIXED_JWKS[] = "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"xzbsQQadrQUso86S6H7mkvWQJQ30D0X2oXZSsCGTpk5uEWkd1503hJ8ByJIwOSw5cLrL6QwVqb1J5JGeFbclis_NH4I2Ia5BzHG74wvpR8QWwmoAe7IwO9SxQjiHZbsaw0PXDcuL87locHTCMRAKXG57QQPs2gjubONMRJ-dYSy3vzdh7wchh7PS5g4xjD-4UmyO1A-bM3TLn63uXBPQnjfEhVpTAnzHcNaATrxVsqAt_2EeLSR7rhzvPqjtyk2jMrN3PL4QmPc9ML33JO35K4PUeL3X8Gh1VUwWETlBAOcAgMGb-6UVqEoyxla7SJJ8BYpp7r56b8ArkoU1H9yn5w\",\"e\":\"AQAB\",\"kid\":\"r\"},{\"kty\":\"EC\",\"x\":\"01sUGAGAZ-trGvOXf06cYA8ZoeXojmu3HyJPZLJouFo\",\"y\":\"ZtUCg4DHYWUisgNIea76d_uSuu0p09RV1DXYW-5A4iY\",\"crv\":\"P-256\",\"kid\":\"e\"},{\"kty\":\"EC\",\"x\":\"AYvnLvqQIrMGayrf61dC-bH7xhdrwOTTzSBhLtCvw_CwBo9wYDzIULPEFVstzrolrVPrU4k31_ea4r1FNOjDDwxx\",\"y\":\"ATdsoflD2nrnC6J3GGn-8U9gbI2ozZyzii09PYyRsw3TUNqF4n4TZ3X_mfbEXLdyXdZxpnLnq7q-uJrro5muK5IE\",\"crv\":\"P-521\",\"kid\":\"e5\"},{\"crv\":\"Ed25519\",\"x\":\"d83gySvby5otdqTkJdk5wa3ddWBmAT2u0HVGdrSc2IY\",\"kty\":\"OKP\",\"kid\":\"d\"},{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"h\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ef_jwt_keys *fixed; /* built once: RSA key construction is slow */
    char err[256];
    if (!fixed && !(fixed = ef_jwt_keys_from_jwks(FIXED_JWKS, strlen(FIXED_JWKS), NULL, err, sizeof(err)))) abort();
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    ef_jwt_keys *own = NULL;
    if (nl && nl > in) own = ef_jwt_keys_from_jwks(in, (size_t)(nl - in), NULL, err, sizeof(err));
    const char *tok = nl ? nl + 1 : in;
    size_t tl = size - (size_t)(tok - in);
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_jwt t;
    if (ef_jwt_parse(tok, tl, &a, &t, err, sizeof(err)) == EF_JWT_OK) {
        if (ef_bytes_eq(t.alg, EF_BYTES_LIT("none")) || ef_bytes_has_prefix(t.alg, EF_BYTES_LIT("HS"))) abort();
        if (ef_jwt_verify(&t, own ? own : fixed, err, sizeof(err)) == EF_JWT_OK) {
            char *auds[] = {"edgeflag"};
            ef_jwt_expect x = {.issuer = "https://issuer.test", .audiences = auds, .n_audiences = 1};
            ef_jwt_check_claims(&t, &x, 1800000000, err, sizeof(err));
            (void)ef_jwt_claim_str(t.claims, "sub");
        }
    }
    ef_arena_free(&a);
    ef_jwt_keys_free(own);
    return 0;
}
