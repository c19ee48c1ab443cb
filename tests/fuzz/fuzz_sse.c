/*
 * fuzz_sse.c - libFuzzer target: the bounded server-sent-events reader (src/base/sse.c) that the
 * follower and libedgeflag share. Must never crash or read out of bounds, never hand out an event
 * whose data is past its limit, and read the same events whatever the chunking: the input is fed
 * once whole and once in chunks whose sizes come from the input, and both runs must agree on
 * every event and on the final result.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/sse.h"

typedef struct run {
    uint64_t hash; /* FNV-1a over every event's name and data */
    unsigned events;
} run;

static const ef_sse_limit LIMITS[] = {{"txn", 300}, {"reset", 2000}, {"heartbeat", 16}};

static void mix(run *r, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = r->hash ? r->hash : 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    r->hash = h;
}

static int on_event(void *ud, const char *event, ef_sse *p)
{
    run *r = ud;
    if (p->data->len > ef_sse_limit_of(p, event)) abort();
    if (p->data->data[p->data->len] != '\0') abort();
    mix(r, event, strlen(event) + 1);
    mix(r, p->data->data, p->data->len);
    mix(r, "|", 1);
    r->events++;
    return event[0] == 's' && !strcmp(event, "stop"); /* lets the fuzzer reach EF_SSE_STOPPED */
}

static int feed(const uint8_t *data, size_t size, const uint8_t *cuts, size_t ncuts, run *r)
{
    ef_buf buf;
    ef_buf_init(&buf);
    ef_sse p;
    ef_sse_config cfg = {.limits = LIMITS, .nlimits = 3, .default_max_data = 100, .max_line = 64,
                         .on_event = on_event, .ud = r};
    ef_sse_init(&p, &buf, &cfg);
    int rc = EF_SSE_OK;
    size_t at = 0, k = 0;
    while (at < size && rc == EF_SSE_OK) {
        size_t n = ncuts ? (size_t)cuts[k++ % ncuts] % 17 : size - at;
        if (n == 0 && k % ncuts == 0) n = 1; /* zero-length chunks, but always progress */
        if (n > size - at) n = size - at;
        rc = ef_sse_feed(&p, (const char *)data + at, n);
        at += n;
    }
    ef_buf_free(&buf);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first 8 bytes choose the chunk sizes (0..16; zero-length chunks too, but every round of
     * eight moves on) */
    size_t ncuts = size < 8 ? size : 8;
    run whole = {0}, pieces = {0};
    int a = feed(data + ncuts, size - ncuts, NULL, 0, &whole);
    int b = feed(data + ncuts, size - ncuts, data, ncuts, &pieces);
    if (a != b || whole.hash != pieces.hash || whole.events != pieces.events) abort();
    return 0;
}
