/*
 * fuzz_http.c - libFuzzer target: raw bytes as an HTTP request (request line, target, headers,
 * body; pipelined requests too) to an in-process node composed as `edgeflag serve` composes it,
 * with authentication on (tests/fuzz/fuzz_server.h). Reaches libmicrohttpd's parser, the server's
 * limits and percent-decoding, the real route table, the auth and scope decision, the sync hooks
 * (min-version waits, write wake-ups) and every handler. Must never crash, leak, answer 500,
 * answer with anything but HTTP, or let a refused request change the store.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz_server *z;
    if (!z) z = fz_start();
    if (size > 65536) return 0;
    fz_send_checked(z, (const char *)data, size);
    return 0;
}
