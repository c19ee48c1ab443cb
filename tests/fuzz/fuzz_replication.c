/*
 * fuzz_replication.c - libFuzzer target: what a follower applies from its upstream, which it does
 * not trust: change-log entries (the `txn` events) and full dumps (the `reset` events), applied to
 * a real SQLite store exactly as src/sync/follower.c applies them (ef_store_apply_changes,
 * ef_store_load_dump) to a replica's store: a follower's, with batches (each entry a savepoint of
 * one open transaction, src/store/sqlite_persist.c). The batch is committed after every operation
 * here, as the durability thread would within replica-sync ms, so the checks read the file.
 *
 * Input: up to 8 operations separated by "\n~~\n", each a letter then its payload: 'T' an entry
 * to apply, 'D' a dump to load. Every input starts from the same base state, the dump in
 * tests/fuzz/replication_base.json (tests/fixtures/decl/valid/v1_4_full.yml imported); the seed
 * corpus holds the entries that follow it (stream.yml, v1_2.yml imported, then v1_4_full.yml with
 * drop), from `FUZZ_WRITE_SEEDS=DIR fuzz_replication -runs=1`, which writes both.
 *
 * Checked after every operation (a violation aborts):
 *   - a refused operation committed nothing (SQLite's data_version, from a second connection);
 *   - an accepted one leaves SQLite's integrity and foreign-key checks passing, one published
 *     snapshot per namespace the store holds (none left over from before a dump), and the store's own
 *     dump of it loads back to the same dump, at the latest after one reload that normalises
 *     REAL/INTEGER column types (a replica can feed replicas of its own).
 * Must never crash or leak on any input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "store/sqlite_int.h"
#include "eval/registry.h"
#include "store/doc.h"
#include "store/open.h"

#define SEP "\n~~\n"

typedef struct fz_repl {
    ef_store *src, *dst;
    ef_registry *src_reg, *dst_reg;
    sqlite3 *check;
    ef_buf base;
    char src_path[256], dst_path[256];
} fz_repl;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_replication: %s: %s\n", what, detail ? detail : "");
    abort();
}

/* The database files go when the process ends (libFuzzer exits through exit()). */
static char db_paths[2][256];
static void unlink_dbs(void)
{
    static const char *const sfx[] = {"", "-wal", "-shm", ".lock"};
    char p[300];
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 4 && db_paths[d][0]; i++) {
            snprintf(p, sizeof(p), "%s%s", db_paths[d], sfx[i]);
            unlink(p);
        }
}

static ef_store *open_store(char *path, size_t cap, const char *tag, ef_registry *reg, bool follower)
{
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    snprintf(path, cap, "%s/edgeflag-fuzz-repl-%s-%d.db", tmp, tag, (int)getpid());
    unlink(path);
    if (!db_paths[0][0]) atexit(unlink_dbs);
    snprintf(db_paths[db_paths[0][0] ? 1 : 0], sizeof(db_paths[0]), "%s", path);
    /* the follower's batches stay open until flush() commits them: the thread waits an hour */
    ef_store_open_opts so = {.registry = reg, .follower = follower, .sync_ms = follower ? 3600000 : 0};
    ef_store_err err;
    ef_store *s = ef_store_open(path, &so, &err);
    if (!s) die("open", err.message);
    return s;
}

static void import_file(ef_store *s, const char *name, bool drop)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/fixtures/decl/valid/%s", EF_FUZZ_SOURCE_DIR, name);
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_doc doc;
    ef_decl_error de;
    if (ef_decl_parse_file(path, &a, &doc, &de) != 0) die("fixture", de.message);
    ef_store_import_opts io = {.drop = drop};
    ef_store_err err;
    if (ef_store_import(s, &doc, &io, &err) != 0) die("import", err.message);
    ef_arena_free(&a);
}

static void dump(ef_store *s, ef_buf *out)
{
    uint64_t seq;
    ef_store_err err;
    ef_buf_clear(out);
    if (ef_store_dump(s, out, &seq, &err) != 0 || !ef_buf_ok(out)) die("dump", err.message);
}

static void check_integrity(fz_repl *z)
{
    const char *sql[] = {"PRAGMA quick_check", "PRAGMA foreign_key_check"};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(z->check, sql[i], -1, &st, NULL) != SQLITE_OK) die("check", sqlite3_errmsg(z->check));
        int rc = sqlite3_step(st);
        if (i == 0 && (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0))
            die("PRAGMA quick_check", rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "no row");
        if (i == 1 && rc == SQLITE_ROW) die("PRAGMA foreign_key_check", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
}

/* What evaluation serves is what the store holds: one published snapshot per namespace row (a
 * namespace the last dump no longer has must not stay published). */
static void check_published(fz_repl *z, const char *when)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(z->check, "SELECT count(*) FROM namespaces", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        die("namespaces", sqlite3_errmsg(z->check));
    unsigned rows = (unsigned)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    unsigned published = ef_registry_count(z->dst_reg);
    if (rows != published) {
        fprintf(stderr, "fuzz_replication: %s: %u namespaces in the store, %u published\n", when, rows, published);
        abort();
    }
}

static int64_t data_version(fz_repl *z)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(z->check, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        die("data_version", sqlite3_errmsg(z->check));
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

typedef struct entries {
    ef_buf *all; /* "T<entry>" parts joined by SEP */
    unsigned n;
} entries;

static int collect(void *ctx, const ef_store_change *c)
{
    entries *e = ctx;
    if (e->n++) ef_buf_puts(e->all, SEP);
    ef_buf_putc(e->all, 'T');
    ef_buf_append(e->all, c->entry.p, c->entry.n);
    return 0;
}

static void write_seed(const char *dir, const char *name, const char *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) die("seed", path);
}

static fz_repl *setup(void)
{
    static fz_repl z;
    ef_log_set_level(EF_LOG_ERROR);
    z.src_reg = ef_registry_new();
    z.dst_reg = ef_registry_new();
    if (!z.src_reg || !z.dst_reg) die("registry", "out of memory");
    z.dst = open_store(z.dst_path, sizeof(z.dst_path), "dst", z.dst_reg, true);
    ef_buf_init(&z.base);
    ef_store_err err;
    const char *seeds = getenv("FUZZ_WRITE_SEEDS");
    if (seeds) { /* a base state and the upstream's next transactions: every kind of row change */
        z.src = open_store(z.src_path, sizeof(z.src_path), "src", z.src_reg, false);
        import_file(z.src, "v1_4_full.yml", false);
        dump(z.src, &z.base);
        uint64_t base_seq, first;
        if (ef_store_seq(z.src, &base_seq, &first, &err) != 0) die("seq", err.message);
        import_file(z.src, "stream.yml", false);
        import_file(z.src, "v1_2.yml", false);
        import_file(z.src, "v1_4_full.yml", true);
        write_seed(seeds, "base.json", z.base.data, z.base.len);
        ef_buf all, one;
        ef_buf_init(&all);
        ef_buf_init(&one);
        entries e = {&all, 0};
        if (ef_store_changes(z.src, base_seq, 100, collect, &e, &err) != 0) die("changes", err.message);
        write_seed(seeds, "entries", all.data, all.len);
        for (uint64_t k = 0; k < 3; k++) {
            entries e1 = {&one, 0};
            ef_buf_clear(&one);
            if (ef_store_changes(z.src, base_seq + k, 1, collect, &e1, &err) != 0) die("changes", err.message);
            char name[32];
            snprintf(name, sizeof(name), "entry-%llu", (unsigned long long)(base_seq + k + 1));
            write_seed(seeds, name, one.data, one.len);
        }
        ef_buf_clear(&one);
        ef_buf_putc(&one, 'D');
        dump(z.src, &all);
        ef_buf_append(&one, all.data, all.len);
        write_seed(seeds, "dump", one.data, one.len);
        ef_buf_free(&all);
        ef_buf_free(&one);
        printf("seeds written to %s\n", seeds);
        _exit(0); /* not exit(): libFuzzer reports an exit as a crash */
    }
    /* the base is a committed file, so the seed entries (generated against it) apply every run */
    char path[512], *data;
    size_t len;
    snprintf(path, sizeof(path), "%s/tests/fuzz/replication_base.json", EF_FUZZ_SOURCE_DIR);
    if (ef_file_read(path, EF_FILE_MAX_ANY, &data, &len) != 0) die("base", path);
    if (ef_store_load_dump(z.dst, data, len, &err) != 0) die("base", err.message);
    free(data);
    dump(z.dst, &z.base);
    if (sqlite3_open_v2(z.dst_path, &z.check, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) die("check db", z.dst_path);
    sqlite3_busy_timeout(z.check, 5000);
    return &z;
}

/* Commits the follower's open batch, as its durability thread does every replica-sync ms. */
static void flush(fz_repl *z)
{
    sq *s = z->dst->h;
    ef_store_err err;
    pthread_mutex_lock(&s->mu);
    int rc = sq_batch_commit(s, &err);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) die("batch commit", err.message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fz_repl *z;
    if (!z) z = setup();
    if (size > (1u << 20)) return 0;
    ef_buf before, after;
    ef_buf_init(&before);
    ef_buf_init(&after);
    ef_buf_append(&before, z->base.data, z->base.len);
    bool changed = false;
    const char *p = (const char *)data, *end = p + size;
    for (int op = 0; op < 8 && p < end; op++) {
        const char *sep = memmem(p, (size_t)(end - p), SEP, sizeof(SEP) - 1);
        const char *stop = sep ? sep : end;
        char kind = *p;
        const char *payload = p + 1;
        size_t n = (size_t)(stop - payload);
        p = sep ? sep + sizeof(SEP) - 1 : end;
        if (kind != 'T' && kind != 'D') continue;
        ef_store_err err;
        int64_t v0 = data_version(z);
        int rc = kind == 'T' ? ef_store_apply_changes(z->dst, payload, n, &err)
                             : ef_store_load_dump(z->dst, payload, n, &err);
        flush(z);
        if (rc != 0) {
            /* nothing committed: SQLite's data_version, seen from another connection, moves on
             * every commit of the store's (a full dump here would cost most of the input) */
            if (data_version(z) != v0) {
                fprintf(stderr, "fuzz_replication: a refused %s (%s) committed something\n",
                        kind == 'T' ? "entry" : "dump", err.message);
                abort();
            }
            continue;
        }
        if (data_version(z) == v0) die("harness", "data_version did not move on a commit");
        dump(z->dst, &after);
        changed = true;
        check_integrity(z);
        check_published(z, kind == 'T' ? "after an entry" : "after a dump");
        ef_buf tmp = before;
        before = after;
        after = tmp;
    }
    /* the store's own dump of what it accepted must load back to itself (once per input: a
     * load is the costly part) */
    if (changed) {
        ef_store_err err;
        if (ef_store_load_dump(z->dst, before.data, before.len, &err) != 0) {
            fprintf(stderr, "fuzz_replication: the store refused its own dump: %s\n", err.message);
            abort();
        }
        dump(z->dst, &after);
        /* A number the entry sent as 1.0 in an integer column is stored as REAL and dumped as
         * 1.0, which a dump load binds as the integer 1: one reload may normalise such types
         * (known, harmless), but the second dump must be the first's fixed point. */
        if (after.len != before.len || memcmp(after.data, before.data, after.len) != 0) {
            if (ef_store_load_dump(z->dst, after.data, after.len, &err) != 0) {
                fprintf(stderr, "fuzz_replication: the store refused its own reloaded dump: %s\n", err.message);
                abort();
            }
            dump(z->dst, &before);
            if (after.len != before.len || memcmp(after.data, before.data, after.len) != 0) {
                fprintf(stderr, "fuzz_replication: reloading the store's own dump keeps changing it\n");
                abort();
            }
        }
    }
    if (changed) {
        ef_store_err err;
        if (ef_store_load_dump(z->dst, z->base.data, z->base.len, &err) != 0) die("restore", err.message);
        check_published(z, "after loading the base dump again");
    }
    ef_buf_free(&before);
    ef_buf_free(&after);
    return 0;
}
