/*
 * fuzz_client.c - libFuzzer target: what libedgeflag takes from outside the process: the cache
 * file it reads at start (src/client/cache.c) and the snapshot document a node sends it
 * (ef_client_apply), then evaluation through the public API.
 *
 * Input: byte 0 is the mode, the rest the payload.
 *   mode % 3 == 0: the payload is a cache file, read as is;
 *   mode % 3 == 1: the same, with its trailing SHA-256 made right, so the header, lengths and the
 *                  document behind the checksum are reached;
 *   mode % 3 == 2: the payload is a snapshot document from the node; when it is accepted it is
 *                  written to the cache and read back, which must give the same bytes.
 * A cache file that verifies is applied as load_cache applies it. Must never crash, leak, or hand
 * back a cache entry whose lengths do not fit the file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/sha256.h"
#include "client/cache.h"
#include "client/client_int.h"

static void eval_some(ef_client *c)
{
    static const char *const keys[] = {"f", "b", "flag1", "checkout", "dark-mode", ""};
    ef_pair ctx[3] = {ef_pair_of("country", "de"), ef_pair_of("age", "42"),
                      ef_pair_of("signup", "2024-03-01T10:00:00Z")};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        ef_result r;
        if (ef_client_variant(c, keys[i], "user-1", ctx, 3, &r) == EF_OK) {
            size_t n = 0;
            for (size_t k = 0; k < r.segment_count; k++) (void)ef_result_segment(&r, k, &n);
            ef_result_release(&r);
        }
        if (ef_client_boolean(c, keys[i], "user-2", ctx, 3, &r) == EF_OK) ef_result_release(&r);
    }
    ef_status st;
    (void)ef_client_status(c, &st);
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) abort();
}

static char path[256];
static void unlink_path(void) { unlink(path); } /* libFuzzer exits through exit() */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ef_client *c;
    if (!c) {
        const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof(path), "%s/edgeflag-fuzz-client-%d.cache", tmp, (int)getpid());
        atexit(unlink_path);
        /* a node that never answers (the discard port refuses): only our inputs reach it */
        ef_client_options o = {.url = "http://127.0.0.1:9", .disable_stream = true,
                               .poll_interval_ms = 3600000, .timeout_ms = 100};
        if (ef_client_open(&o, &c) != EF_OK) abort();
    }
    if (size < 1 || size > (1u << 20)) return 0;
    unsigned mode = data[0] % 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (mode == 2) {
        if (ef_client_apply(c, (const char *)p, n, 7, "\"etag\"", EF_SOURCE_NODE, 0) != EF_OK) return 0;
        eval_some(c);
        if (ef_cache_write(path, 7, "\"etag\"", (const char *)p, n, 1) != EF_OK) abort();
        ef_cache_entry e;
        if (ef_cache_read(path, &e) != EF_OK) abort();
        if (e.version != 7 || e.saved_ns != 1 || strcmp(e.etag, "\"etag\"") != 0 || e.doc_len != n ||
            (n && memcmp(e.doc, p, n) != 0))
            abort();
        ef_cache_entry_free(&e);
        return 0;
    }
    uint8_t *file = malloc(n + 32);
    if (!file) abort();
    memcpy(file, p, n);
    size_t fl = n;
    if (mode == 1) {
        if (fl < 32) fl = 32;
        memset(file + n, 0, fl - n);
        ef_sha256(file, fl - 32, file + fl - 32);
    }
    write_file(path, file, fl);
    free(file);
    ef_cache_entry e;
    if (ef_cache_read(path, &e) == EF_OK) {
        /* what the reader hands out lies inside the file it read */
        if (e.doc_len > fl || !ef_cache_etag_ok(e.etag, strlen(e.etag))) abort();
        if (e.doc_len) (void)((volatile const char *)e.doc)[e.doc_len - 1];
        if (ef_client_apply(c, e.doc, e.doc_len, e.version, e.etag, EF_SOURCE_CACHE, e.saved_ns) == EF_OK)
            eval_some(c);
        ef_cache_entry_free(&e);
    }
    return 0;
}
