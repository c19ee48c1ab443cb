/*
 * fuzz_json.c - libFuzzer target: the strict JSON reader, then the snapshot compiler and one
 * evaluation on whatever parsed. Must never crash, leak or read out of bounds on any input.
 */
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>

#include "base/json.h"
#include "eval/eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error e;
    ef_json_opts o = {.max_depth = 64};
    ef_json *v = ef_json_parse((const char *)data, size, &a, &o, &e);
    if (v) {
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
