/*
 * test_dir.c - the read-only directory backend: globbing, `.flipt.yml` include/exclude, the
 * default namespace, reload after an edit (watched, well under 1 s), keeping the last good state
 * on a bad edit, new subdirectories, and namespaces dropped when their file goes. Works only in
 * its own mkdtemp directory, which it removes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/clock.h"
#include "store/dir.h"
#include "rm_tree.h"

static char tmpdir[256];

static void put_file(const char *rel, const char *text)
{
    char path[512], tmp[600];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    /* Write then rename, as editors and deploy tools do, so no reader sees half a file. */
    snprintf(tmp, sizeof(tmp), "%s.tmp~", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ef_test_dir_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    assert_int_equal(rm_tree(tmpdir), 0);
    return 0;
}

static bool has_flag(ef_registry *reg, const char *ns, const char *flag)
{
    ef_registry_read_lock(reg);
    const ef_snapshot *s = ef_registry_get(reg, ef_bytes_of(ns));
    bool found = s && ef_snapshot_find_flag(s, ef_bytes_of(flag)) != NULL;
    ef_registry_read_unlock(reg);
    return found;
}

static bool has_ns(ef_registry *reg, const char *ns)
{
    ef_registry_read_lock(reg);
    bool found = ef_registry_get(reg, ef_bytes_of(ns)) != NULL;
    ef_registry_read_unlock(reg);
    return found;
}

typedef struct counter {
    atomic_uint calls;
} counter;

static void on_reload(const ef_dir_status *st, void *ctx)
{
    atomic_fetch_add(&((counter *)ctx)->calls, 1);
}

/* Waits up to 2 s for the generation (or failure count) to move; returns milliseconds taken. */
static long wait_change(ef_dir *d, uint64_t gen, uint64_t failures)
{
    int64_t t0 = ef_clock_mono_ns();
    for (;;) {
        ef_dir_status st;
        ef_dir_get_status(d, &st);
        long ms = (long)((ef_clock_mono_ns() - t0) / 1000000);
        if (st.generation != gen || st.failures != failures) return ms;
        if (ms > 2000) return ms;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
}

static void test_glob(void **state)
{
    assert_true(ef_dir_glob_match("**features.yml", "features.yml"));
    assert_true(ef_dir_glob_match("**features.yml", "a/b/features.yml"));
    assert_true(ef_dir_glob_match("**.features.yml", "x/prod.features.yml"));
    assert_false(ef_dir_glob_match("**features.yml", "features.yml.bak"));
    assert_true(ef_dir_glob_match("*.yml", "a.yml"));
    assert_false(ef_dir_glob_match("*.yml", "sub/a.yml"));
    assert_true(ef_dir_glob_match("sub/**/*.yaml", "sub/x/y/z.yaml"));
    assert_true(ef_dir_glob_match("?.yml", "a.yml"));
    assert_false(ef_dir_glob_match("?.yml", "ab.yml"));
    assert_true(ef_dir_glob_match("[a-c]*.yml", "b1.yml"));
    assert_false(ef_dir_glob_match("[!a-c]*.yml", "b1.yml"));
    assert_true(ef_dir_glob_match("{prod,staging}/*.yml", "staging/f.yml"));
    assert_false(ef_dir_glob_match("{prod,staging}/*.yml", "dev/f.yml"));
    assert_true(ef_dir_glob_match("a\\*b", "a*b"));
    assert_false(ef_dir_glob_match("a\\*b", "axb"));
}

static void test_load_defaults(void **state)
{
    put_file("features.yml", "namespace: default\nflags:\n  - {key: root-flag, name: R}\n");
    char sub[512];
    snprintf(sub, sizeof(sub), "%s/team", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    put_file("team/prod.features.yaml", "namespace: prod\nflags:\n  - {key: prod-flag, name: P}\n");
    put_file("team/notes.yml", "this: is not a features file\n");
    ef_registry *reg = ef_registry_new();
    ef_dir *d;
    ef_decl_error err;
    if (ef_dir_open(tmpdir, reg, &d, &err) != 0) fail_msg("%s:%u:%u: %s", err.file, err.line, err.column, err.message);
    assert_true(has_flag(reg, "default", "root-flag"));
    assert_true(has_flag(reg, "prod", "prod-flag"));
    ef_dir_status st;
    ef_dir_get_status(d, &st);
    assert_int_equal(st.generation, 1);
    assert_int_equal(st.files, 2);
    assert_int_equal(st.namespaces, 2);
    assert_false(st.failing);

    ef_dir_state *s = ef_dir_acquire(d);
    const ef_doc_namespace *ns = ef_dir_state_namespace(s, EF_BYTES_LIT("prod"));
    assert_non_null(ns);
    assert_int_equal(ns->nflags, 1);
    assert_null(ef_dir_state_namespace(s, EF_BYTES_LIT("nope")));
    assert_int_equal(ef_dir_state_doc(s)->nnamespaces, 2);
    ef_dir_close(d);
    /* An acquired state outlives the backend. */
    assert_int_equal(ef_dir_state_generation(s), 1);
    assert_int_equal(ns->nflags, 1);
    ef_dir_release(s);
    assert_false(has_ns(reg, "prod"));
    ef_registry_free(reg);
}

static void test_index_and_default_namespace(void **state)
{
    char sub[512];
    snprintf(sub, sizeof(sub), "%s/envs", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    put_file(".flipt.yml", "version: \"1.0\"\ninclude:\n  - \"envs/*.yml\"\nexclude:\n  - \"envs/skip*\"\n");
    put_file("features.yml", "namespace: ignored\n"); /* not included by the index */
    put_file("envs/a.yml", "namespace: a\nflags:\n  - {key: fa, name: A}\n");
    put_file("envs/skip-b.yml", "namespace: b\nflags:\n  - {key: fb, name: B}\n");
    ef_registry *reg = ef_registry_new();
    ef_dir *d;
    ef_decl_error err;
    if (ef_dir_open(tmpdir, reg, &d, &err) != 0) fail_msg("%s: %s", err.file, err.message);
    assert_true(has_flag(reg, "a", "fa"));
    assert_false(has_ns(reg, "b"));
    assert_false(has_ns(reg, "ignored"));
    assert_true(has_ns(reg, "default")); /* always exists */
    ef_dir_close(d);

    put_file(".flipt.yml", "version: \"1.0\"\ninclude: envs/*.yml\n");
    assert_int_equal(ef_dir_open(tmpdir, reg, &d, &err), -1);
    assert_non_null(strstr(err.file, ".flipt.yml"));
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.message, "list of globs"));

    /* deep nesting is refused where it passes the limit, before libyaml scans the rest (quadratic) */
    size_t n = 500000, lp = strlen("include: ");
    char *deep = malloc(lp + 2 * n + 2);
    assert_non_null(deep);
    memcpy(deep, "include: ", lp);
    memset(deep + lp, '[', n);
    memset(deep + lp + n, ']', n);
    memcpy(deep + lp + 2 * n, "\n", 2);
    put_file(".flipt.yml", deep);
    free(deep);
    assert_int_equal(ef_dir_open(tmpdir, reg, &d, &err), -1);
    assert_non_null(strstr(err.message, "nesting deeper than 8 levels"));
    assert_int_equal(err.line, 1);
    assert_int_equal(err.column, (unsigned)lp + 9); /* the 9th [ is depth 9 */
    ef_registry_free(reg);
}

static void test_open_invalid(void **state)
{
    put_file("features.yml", "flags:\n  - key: a\n    name: A\n    enabled: maybe\n");
    ef_registry *reg = ef_registry_new();
    ef_dir *d = (ef_dir *)1;
    ef_decl_error err;
    assert_int_equal(ef_dir_open(tmpdir, reg, &d, &err), -1);
    assert_null(d);
    assert_int_equal(err.line, 4);
    assert_int_equal(err.column, 14);
    assert_int_equal(ef_registry_count(reg), 0);
    assert_int_equal(ef_dir_open("/nonexistent/ef_dir", reg, &d, &err), -1);
    ef_registry_free(reg);
}

/* Each namespace in its own file; two files defining one namespace is an error. */
static void test_duplicate_namespace(void **state)
{
    put_file("a.features.yml", "namespace: x\n");
    put_file("b.features.yml", "namespace: x\n");
    ef_registry *reg = ef_registry_new();
    ef_dir *d;
    ef_decl_error err;
    assert_int_equal(ef_dir_open(tmpdir, reg, &d, &err), -1);
    assert_non_null(strstr(err.file, "b.features.yml"));
    assert_non_null(strstr(err.message, "already defined"));
    ef_registry_free(reg);
}

static void test_watch_reload(void **state)
{
    put_file("features.yml", "flags:\n  - {key: v1, name: One}\n");
    ef_registry *reg = ef_registry_new();
    ef_dir *d;
    ef_decl_error err;
    assert_int_equal(ef_dir_open(tmpdir, reg, &d, &err), 0);
    counter c = {0};
    ef_dir_set_callback(d, on_reload, &c);
    assert_int_equal(ef_dir_start_watch(d), 0);

    /* A good edit is live in well under a second. */
    put_file("features.yml", "flags:\n  - {key: v2, name: Two}\n");
    long ms = wait_change(d, 1, 0);
    print_message("reload after edit: %ld ms\n", ms);
    assert_true(ms < 1000);
    assert_true(has_flag(reg, "default", "v2"));
    assert_false(has_flag(reg, "default", "v1"));
    ef_dir_status st;
    ef_dir_get_status(d, &st);
    assert_int_equal(st.generation, 2);

    /* A bad edit: the error is reported, the last good state keeps serving. */
    put_file("features.yml", "flags:\n  - {key: v3, name: Three, enabled: perhaps}\n");
    ms = wait_change(d, 2, 0);
    assert_true(ms < 1000);
    ef_dir_get_status(d, &st);
    assert_true(st.failing);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.generation, 2);
    assert_non_null(strstr(st.error.file, "features.yml"));
    assert_int_equal(st.error.line, 2);
    assert_non_null(strstr(st.error.message, "must be true or false"));
    assert_true(has_flag(reg, "default", "v2"));
    assert_false(has_flag(reg, "default", "v3"));

    /* A new subdirectory (watched once it appears) with a new namespace, and the fix. */
    char sub[512];
    snprintf(sub, sizeof(sub), "%s/new", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    put_file("features.yml", "flags:\n  - {key: v4, name: Four}\n");
    ms = wait_change(d, 2, 1);
    assert_true(ms < 1000);
    struct timespec pause = {0, 50000000};
    nanosleep(&pause, NULL);
    ef_dir_get_status(d, &st);
    uint64_t gen = st.generation;
    put_file("new/team.features.yml", "namespace: team\nflags:\n  - {key: t, name: T}\n");
    ms = wait_change(d, gen, st.failures);
    assert_true(ms < 1000);
    ef_dir_get_status(d, &st);
    assert_false(st.failing);
    assert_true(has_flag(reg, "team", "t"));
    assert_true(has_flag(reg, "default", "v4"));

    /* Removing the file removes its namespace. */
    char path[600];
    snprintf(path, sizeof(path), "%s/new/team.features.yml", tmpdir);
    gen = st.generation;
    assert_int_equal(unlink(path), 0);
    ms = wait_change(d, gen, st.failures);
    assert_true(ms < 1000);
    assert_false(has_ns(reg, "team"));
    assert_true(atomic_load(&c.calls) >= 4);

    /* Explicit reloads work alongside the watcher. */
    assert_int_equal(ef_dir_reload(d), 0);
    ef_dir_close(d);
    ef_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test_setup_teardown(test_load_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_and_default_namespace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_namespace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_reload, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
