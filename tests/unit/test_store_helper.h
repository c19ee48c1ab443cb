/*
 * test_store_helper.h - helpers for the SQLite store tests: a fresh database in a mkdtemp
 * directory, and assertions on store errors. Tests use real files, never an in-memory database,
 * so WAL, dumps and reopening behave as in production.
 */
#ifndef EF_TEST_STORE_HELPER_H
#define EF_TEST_STORE_HELPER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/store.h"

#define B(s) ef_bytes_of(s)
#define NONE ((ef_bytes){"", 0})

typedef struct tstore {
    char dir[64];
    char path[128];
    ef_store *s;
    ef_registry *reg;
    ef_arena a;
} tstore;

static inline void tstore_open_at(tstore *t, const char *name, bool registry)
{
    snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
    ef_sqlite_opts o = {0};
    if (registry) {
        if (!t->reg) t->reg = ef_registry_new();
        o.registry = t->reg;
    }
    ef_store_err err;
    t->s = ef_sqlite_open(t->path, &o, &err);
    if (!t->s) fail_msg("open %s: %s", t->path, err.message);
}

static inline tstore *tstore_new(bool registry)
{
    tstore *t = calloc(1, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/ef_store_XXXXXX");
    if (!mkdtemp(t->dir)) fail_msg("mkdtemp");
    ef_arena_init(&t->a, 65536);
    tstore_open_at(t, "sub/dir/edgeflag.db", registry);
    return t;
}

static inline void tstore_free(tstore *t)
{
    ef_store_close(t->s);
    if (t->reg) ef_registry_free(t->reg);
    ef_arena_free(&t->a);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0) fail_msg("cleanup of %s failed", t->dir);
    free(t);
}

/* Asserts a call failed with code and exactly message. */
#define assert_store_err(call, err, want_code, want_msg)                                          \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ == 0) fail_msg("expected error \"%s\", call succeeded", (want_msg));               \
        if ((err).code != (want_code) || strcmp((err).message, (want_msg)) != 0)                   \
            fail_msg("want %d \"%s\", got %d \"%s\"", (int)(want_code), (want_msg),             \
                     (int)(err).code, (err).message);                                              \
    } while (0)

#define assert_ok(call, err)                                                                       \
    do {                                                                                           \
        if ((call) != 0) fail_msg("%s failed: %s", #call, (err).message);                          \
    } while (0)

static inline void assert_bytes(ef_bytes got, const char *want)
{
    if (!ef_bytes_eq(got, ef_bytes_of(want)))
        fail_msg("got \"%.*s\", want \"%s\"", (int)got.n, got.p, want);
}

#endif
