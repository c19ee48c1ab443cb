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

/* A request block in one of a few rotating buffers: a test holds at most a handful at once. */
static inline ef_eval_request req_of_bytes(ef_bytes flag, ef_bytes entity, const ef_kv *ctx, size_t n)
{
    static _Alignas(8) char bufs[8][4096];
    static unsigned next;
    char *mem = bufs[next++ % 8];
    size_t text = flag.n + entity.n;
    for (size_t i = 0; i < n; i++) text += ctx[i].key.n + ctx[i].value.n;
    if (ef_request_size(n, text) > sizeof(bufs[0])) fail_msg("test request too large");
    ef_eval_request r;
    ef_context *c = ef_request_init(&r, mem, n, text, flag, entity);
    for (size_t i = 0; i < n; i++) ef_request_add_context(c, ctx[i].key, ctx[i].value);
    return r;
}

static inline ef_eval_request req_of(const char *flag, const char *entity, const ef_kv *ctx, size_t n)
{
    return req_of_bytes(ef_bytes_of(flag), ef_bytes_of(entity), ctx, n);
}

static inline void assert_bytes(ef_bytes got, const char *want)
{
    if (!ef_bytes_eq(got, ef_bytes_of(want)))
        fail_msg("got \"%.*s\", want \"%s\"", (int)got.n, got.p, want);
}

#endif
