/*
 * snap_helper.h - test helpers: compile a snapshot from JSON text, build requests, evaluate.
 */
#ifndef EF_TEST_SNAP_HELPER_H
#define EF_TEST_SNAP_HELPER_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/json.h"
#include "eval/eval.h"

static inline ef_snapshot *snap_from_json(const char *text)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error jerr;
    ef_json *doc = ef_json_parse(text, strlen(text), &a, NULL, &jerr);
    if (!doc) fail_msg("test JSON invalid at %u:%u: %s", jerr.line, jerr.column, jerr.message);
    ef_compile_error cerr;
    ef_snapshot *s = ef_snapshot_compile(doc, &cerr);
    if (!s) fail_msg("compile failed: %s", cerr.message);
    ef_arena_free(&a);
    return s;
}

/* Compiles and returns the error message (or NULL if it compiled). */
static inline const char *snap_compile_error(const char *text, ef_compile_error *cerr)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error jerr;
    ef_json *doc = ef_json_parse(text, strlen(text), &a, NULL, &jerr);
    assert_non_null(doc);
    ef_snapshot *s = ef_snapshot_compile(doc, cerr);
    ef_arena_free(&a);
    if (s) {
        ef_snapshot_free(s);
        return NULL;
    }
    return cerr->message;
}

#define KV(k, v) ((ef_kv){{(k), sizeof(k) - 1}, {(v), sizeof(v) - 1}})

static inline ef_eval_request req_of(const char *flag, const char *entity, const ef_kv *ctx, size_t n)
{
    ef_eval_request r = {ef_bytes_of(flag), ef_bytes_of(entity), ctx, n};
    return r;
}

static inline void assert_bytes(ef_bytes got, const char *want)
{
    if (!ef_bytes_eq(got, ef_bytes_of(want)))
        fail_msg("got \"%.*s\", want \"%s\"", (int)got.n, got.p, want);
}

#endif
