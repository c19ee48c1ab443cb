/*
 * fuzz_json.c - libFuzzer target: the strict JSON reader, then the snapshot compiler and one
 * evaluation on whatever parsed. Must never crash, leak or read out of bounds on any input. Every
 * number must read as strtod reads its text, bit for bit, and write back as text that reads as the
 * same double (the reader's and writer's fast paths against libc).
 */
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

#include "base/buf.h"

#include "base/json.h"
#include "eval/eval.h"

static void check_numbers(const ef_json *v, ef_buf *b)
{
    for (; v; v = v->next) {
        if (v->type == EF_JSON_NUMBER) {
            char text[512];
            if (v->str.n < sizeof(text)) {
                memcpy(text, v->str.p, v->str.n);
                text[v->str.n] = '\0';
                double want = strtod(text, NULL);
                if (memcmp(&want, &v->num, sizeof(want)) != 0) abort();
            }
            if (isfinite(v->num)) {
                ef_buf_clear(b);
                ef_json_put_double(b, v->num);
                ef_buf_putc(b, '\0');
                if (!b->failed && v->num != 0 && strtod(b->data, NULL) != v->num) abort();
            }
        }
        check_numbers(v->child, b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error e;
    ef_json_opts o = {.max_depth = 64};
    ef_json *v = ef_json_parse((const char *)data, size, &a, &o, &e);
    if (v) {
        ef_buf b;
        ef_buf_init(&b);
        check_numbers(v, &b);
        ef_buf_free(&b);
        ef_compile_error ce;
        ef_snapshot *s = ef_snapshot_compile(v, &ce);
        if (s) {
            ef_kv ctx[2] = {{EF_BYTES_LIT("country"), EF_BYTES_LIT("de")}, {EF_BYTES_LIT("age"), EF_BYTES_LIT("42")}};
            for (size_t i = 0; i < ef_snapshot_flag_count(s); i++) {
                const ef_flag *f = ef_snapshot_flag_at(s, i);
                ef_eval_request r;
                if (ef_request_build(&a, ef_flag_key(f), EF_BYTES_LIT("user-1"), ctx, 2, &r) != 0) abort();
                ef_variant_result vr;
                ef_boolean_result br;
                if (ef_flag_get_type(f) == EF_FLAG_VARIANT)
                    ef_eval_variant_flag(f, &r, &vr);
                else
                    ef_eval_boolean_flag(f, &r, &br);
            }
            ef_snapshot_free(s);
        }
    }
    ef_arena_free(&a);
    return 0;
}
