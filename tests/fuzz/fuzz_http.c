/*
 * fuzz_http.c - libFuzzer target: raw bytes as an HTTP request (request line, target, headers,
 * body; pipelined requests too) to an in-process node composed as `edgeflag serve` composes it,
 * with authentication on (tests/fuzz/fuzz_server.h). Reaches libmicrohttpd's parser, the server's
 * limits and percent-decoding, the real route table, the auth and scope decision, the sync hooks
 * (min-version waits, write wake-ups) and every handler. Must never crash, leak, answer 500,
 * answer with anything but HTTP, let a refused request change the store, or let a request that
 * carries only the token scoped to ns1 change namespace "default".
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz_server *z;
    static uint64_t base_default;
    if (!z) {
        z = fz_start();
        base_default = fz_ns_version(z, "default");
    }
    if (size > 65536) return 0;
    /* with only the token scoped to ns1 in it, nothing may change namespace "default" */
    bool scoped_only = memmem(data, size, "@TOK@", 5) && !memmem(data, size, FZ_BOOTSTRAP, sizeof(FZ_BOOTSTRAP) - 1);
    z->protect_ns = scoped_only ? "default" : NULL;
    z->protect_version = base_default;
    fz_send_checked(z, (const char *)data, size);
    return 0;
}
