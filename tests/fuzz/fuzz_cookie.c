/*
 * fuzz_cookie.c - libFuzzer target: the Cookie header reader (src/base/cookie.c) that finds the
 * OIDC state and session cookies. Input: a cookie name, a newline, then the header. Must never
 * crash or read or write out of bounds, and a value it returns must fit, hold no ';', and be
 * what follows "name=" in the header.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cookie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1);
    if (!in) return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    char *nl = strchr(in, '\n');
    const char *name = nl ? in : "flipt_client_token";
    const char *header = nl ? nl + 1 : in;
    if (nl) *nl = '\0';
    size_t caps[] = {1, 8, 64};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        char out[64];
        memset(out, 'Z', sizeof(out));
        if (ef_cookie_get(header, name, out, caps[i])) {
            size_t vl = strlen(out);
            if (vl >= caps[i] || strchr(out, ';')) abort();
            char want[200];
            size_t nlen = strlen(name);
            if (nlen + 1 + vl < sizeof(want)) {
                memcpy(want, name, nlen);
                want[nlen] = '=';
                memcpy(want + nlen + 1, out, vl);
                want[nlen + 1 + vl] = '\0';
                if (!strstr(header, want)) abort();
            }
        }
    }
    free(in);
    return 0;
}
