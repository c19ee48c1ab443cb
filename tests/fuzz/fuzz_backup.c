/*
 * fuzz_backup.c - libFuzzer target: everything continuous backup reads back from a bucket
 * (src/backup/format.c, src/backup/s3_xml.c): log batches, snapshot manifests, object names,
 * ListObjectsV2 answers and S3 error answers. The first byte picks the reader. Must never crash,
 * read out of bounds or leak, and what a reader accepts must survive its writer: a batch read back
 * and written again reads as the same entries, a name formats to the same bytes, a manifest
 * written again reads as the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup/format.h"
#include "backup/s3.h"

typedef struct entries {
    ef_bk_entry e[64];
    char *copy[64];
    size_t n;
    uint64_t hash;
} entries;

static void mix(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t x = *h ? *h : 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) x = (x ^ b[i]) * 1099511628211ull;
    *h = x;
}

static int on_entry(void *ctx, const ef_bk_entry *e)
{
    entries *k = ctx;
    mix(&k->hash, &e->seq, sizeof(e->seq));
    mix(&k->hash, &e->time_ns, sizeof(e->time_ns));
    mix(&k->hash, e->entry.p, e->entry.n);
    if (k->n < 64) {
        char *c = malloc(e->entry.n + 1);
        if (!c) abort();
        memcpy(c, e->entry.p, e->entry.n);
        k->copy[k->n] = c;
        k->e[k->n] = (ef_bk_entry){e->seq, e->time_ns, {c, e->entry.n}};
        k->n++;
    }
    return 0;
}

static void entries_free(entries *k)
{
    for (size_t i = 0; i < k->n; i++) free(k->copy[i]);
}

static int on_key(void *ctx, ef_bytes key, uint64_t size)
{
    (void)size;
    if (key.n == 0 || key.n > 1024) abort();
    mix(ctx, key.p, key.n);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    char err[256];
    switch (data[0] % 5) {
    case 0: {
        entries a = {0};
        ef_bk_batch_head h;
        if (ef_bk_batch_read(p, n, &h, on_entry, &a, err, sizeof(err)) == 0) {
            if (a.n != h.count && h.count <= 64) abort();
            if (a.n == h.count) { /* written again, it reads as the same entries */
                ef_buf b;
                ef_buf_init(&b);
                ef_bk_batch_write(&b, h.history, a.e, a.n);
                entries c = {0};
                ef_bk_batch_head h2;
                if (!ef_buf_ok(&b) || ef_bk_batch_read(b.data, b.len, &h2, on_entry, &c, err, sizeof(err)) != 0 ||
                    c.hash != a.hash || h2.first != h.first || h2.last != h.last || strcmp(h2.history, h.history))
                    abort();
                entries_free(&c);
                ef_buf_free(&b);
            }
        }
        entries_free(&a);
        break;
    }
    case 1: {
        ef_bk_manifest m, m2;
        if (ef_bk_manifest_read(p, n, &m, err, sizeof(err)) == 0) {
            ef_buf b;
            ef_buf_init(&b);
            ef_bk_manifest_write(&b, &m);
            if (!ef_buf_ok(&b) || ef_bk_manifest_read(b.data, b.len, &m2, err, sizeof(err)) != 0 ||
                memcmp(&m, &m2, sizeof(m)) != 0)
                abort();
            ef_buf_free(&b);
        }
        break;
    }
    case 2: {
        uint64_t h = 0;
        ef_s3_list_page pg;
        if (ef_s3_xml_list(p, n, on_key, &h, &pg, err, sizeof(err)) == 0 &&
            strnlen(pg.next_token, sizeof(pg.next_token)) >= sizeof(pg.next_token))
            abort();
        break;
    }
    case 3: {
        char code[64], msg[128];
        ef_s3_xml_error(p, n, code, sizeof(code), msg, sizeof(msg));
        if (strnlen(code, sizeof(code)) >= sizeof(code) || strnlen(msg, sizeof(msg)) >= sizeof(msg)) abort();
        break;
    }
    default: {
        ef_bk_name nm;
        if (ef_bk_name_parse((ef_bytes){p, n}, &nm)) {
            char out[512];
            ef_bk_name_format(&nm, out, sizeof(out));
            if (strlen(out) != n || memcmp(out, p, n) != 0) abort();
        }
        break;
    }
    }
    return 0;
}
