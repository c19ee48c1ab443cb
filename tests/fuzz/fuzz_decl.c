/*
 * fuzz_decl.c - libFuzzer target: the declarative features.yml/JSON reader, and the writer on
 * whatever parsed (write, parse again: must succeed). Must never crash or hang on any input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "store/doc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc;
    ef_decl_error err;
    if (ef_decl_parse("fuzz.yml", (const char *)data, size, &a, &doc, &err) == 0) {
        ef_buf out;
        ef_buf_init(&out);
        if (ef_decl_write_yaml(&doc, &out) == 0 && ef_buf_ok(&out)) {
            ef_doc again;
            if (ef_decl_parse("again.yml", out.data, out.len, &a, &again, &err) != 0) abort();
        }
        ef_buf_free(&out);
    }
    ef_arena_free(&a);
    return 0;
}
