/*
 * fuzz_decl.c - libFuzzer target: the declarative features.yml/JSON reader, and the writer on
 * whatever parsed (write, parse again: must succeed), and each flag's snapshot piece compiled
 * from its text and from its values (ef_doc_snapshot_flag_src): both refuse, or both give the
 * same part (the store's full load compiles from values). Must never crash or hang on any input.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../unit/flag_same.h"
#include "store/doc.h"

/* Every flag of ns, compiled both ways; aborts where they differ. */
static void compile_both_ways(const ef_doc_namespace *ns, ef_arena *scratch, ef_arena *vals)
{
    ef_buf piece;
    ef_buf_init(&piece);
    for (size_t i = 0; i < ns->nflags; i++) {
        ef_buf_clear(&piece);
        if (ef_doc_write_snapshot_flag(ns, &ns->flags[i], NULL, &piece) != 0) continue;
        ef_compile_error e;
        ef_flag_part *text = ef_flag_part_compile(piece.data, piece.len, &e);
        ef_flag_src src;
        ef_arena_reset(vals);
        int rc = ef_doc_snapshot_flag_src(ns, &ns->flags[i], NULL, vals, &src);
        if (rc == 0) {
            ef_flag_part *values = ef_flag_part_compile_src(&src, piece.data, piece.len, scratch, &e);
            if (!text != !values) abort();
            if (text && ef_test_part_differs(text, values)) abort();
            ef_flag_part_unref(values);
        } else if (rc != -EILSEQ) {
            abort(); /* the writer wrote it: only invalid UTF-8 may leave the values out */
        }
        ef_flag_part_unref(text);
    }
    ef_buf_free(&piece);
}

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
        ef_arena scratch, vals;
        ef_arena_init(&scratch, 4096);
        ef_arena_init(&vals, 4096);
        for (size_t n = 0; n < doc.nnamespaces; n++) compile_both_ways(&doc.namespaces[n], &scratch, &vals);
        ef_arena_free(&scratch);
        ef_arena_free(&vals);
    }
    ef_arena_free(&a);
    return 0;
}
