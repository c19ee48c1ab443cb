/*
 * fuzz_snapshot.c - libFuzzer target: a snapshot document as `edgeflag serve --snapshot` and
 * `edgeflag eval --snapshot` load it (ef_snapshot_read_file: read, parse, compile, attach the
 * document), published to a registry as serve publishes it, then every flag evaluated for a few
 * entities and contexts (strings, numbers, dates, booleans) through the same response writers
 * the HTTP API uses. Evaluation must be deterministic: each answer is computed twice and compared.
 * Must never crash, leak or hit undefined behaviour on any document.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/eval_json.h"
#include "api/snapshot_file.h"
#include "eval/registry.h"

static void eval_all(const ef_snapshot *s)
{
    static const ef_kv ctxs[][3] = {
        {{EF_BYTES_LIT("country"), EF_BYTES_LIT("de")}, {EF_BYTES_LIT("age"), EF_BYTES_LIT("42")},
         {EF_BYTES_LIT("signup"), EF_BYTES_LIT("2024-03-01T10:00:00Z")}},
        {{EF_BYTES_LIT("country"), EF_BYTES_LIT("")}, {EF_BYTES_LIT("age"), EF_BYTES_LIT("-1e309")},
         {EF_BYTES_LIT("beta"), EF_BYTES_LIT("true")}},
        {{EF_BYTES_LIT("plan"), EF_BYTES_LIT("pro")}, {EF_BYTES_LIT("age"), EF_BYTES_LIT("0x10")},
         {EF_BYTES_LIT("signup"), EF_BYTES_LIT("1969-12-31")}},
    };
    static const ef_bytes entities[] = {EF_BYTES_LIT("user-1"), EF_BYTES_LIT(""), EF_BYTES_LIT("\xff\x00z")};
    ef_buf out;
    ef_buf_init(&out);
    ef_arena reqs;
    ef_arena_init(&reqs, 4096);
    size_t n = ef_snapshot_flag_count(s);
    for (size_t i = 0; i < n && i < 64; i++) {
        const ef_flag *f = ef_snapshot_flag_at(s, i);
        for (size_t c = 0; c < 3; c++) {
            ef_eval_request r;
            if (ef_request_build(&reqs, ef_flag_key(f), entities[c], ctxs[c], 3, &r) != 0) abort();
            ef_eval_timing t = {1000, 0};
            if (ef_flag_get_type(f) == EF_FLAG_VARIANT) {
                ef_variant_result a, b;
                ef_eval_variant_flag(f, &r, &a);
                ef_eval_variant_flag(f, &r, &b);
                if (a.match != b.match || a.reason != b.reason || !ef_bytes_eq(a.variant_key, b.variant_key))
                    abort();
                ef_buf_clear(&out);
                ef_write_variant_response(&out, &a, EF_BYTES_LIT("r"), &t);
            } else {
                ef_boolean_result a, b;
                ef_eval_boolean_flag(f, &r, &a);
                ef_eval_boolean_flag(f, &r, &b);
                if (a.enabled != b.enabled || a.reason != b.reason) abort();
                ef_buf_clear(&out);
                ef_write_boolean_response(&out, &a, EF_BYTES_LIT("r"), &t);
            }
        }
    }
    ef_buf_free(&out);
    ef_arena_free(&reqs);
}

static char path[256];
static void unlink_path(void) { unlink(path); } /* libFuzzer exits through exit() */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ef_registry *reg;
    if (!reg) {
        const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof(path), "%s/edgeflag-fuzz-snapshot-%d.json", tmp, (int)getpid());
        atexit(unlink_path);
        if (!(reg = ef_registry_new())) abort();
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    char err[600];
    ef_snapshot *s = ef_snapshot_read_file(path, err, sizeof(err));
    if (!s) return 0;
    ef_bytes doc = ef_snapshot_document(s);
    if (doc.n != size || (size && memcmp(doc.p, data, size) != 0)) abort(); /* served as loaded */
    ef_bytes ns = ef_snapshot_namespace(s);
    char nsbuf[256];
    size_t nl = ns.n < sizeof(nsbuf) - 1 ? ns.n : sizeof(nsbuf) - 1;
    memcpy(nsbuf, ns.p, nl);
    nsbuf[nl] = '\0';
    if (ef_registry_publish(reg, s) != 0) abort();
    ef_registry_read_lock(reg);
    const ef_snapshot *cur = ef_registry_get(reg, ef_bytes_of(nsbuf));
    if (cur && nl == ns.n) eval_all(cur);
    ef_registry_read_unlock(reg);
    ef_registry_remove(reg, (ef_bytes){nsbuf, nl});
    return 0;
}
