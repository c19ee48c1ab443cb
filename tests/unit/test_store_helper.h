/*
 * test_store_helper.h - helpers for the store tests: a fresh database in a mkdtemp directory, and
 * assertions on store errors. Tests use real files, never an in-memory database, so WAL, dumps and
 * reopening behave as in production.
 *
 * The same tests run on every backend (tests/unit/store.cmake registers them once per backend):
 * with EF_TEST_LIBSQL_URL set (a Hrana test peer started by tests/libsql/with-peer.sh), stores are
 * opened as libSQL stores on a database of their own on that peer (sqld's /dev/{name} routing),
 * with the local cache at the path a SQLite test would use; EF_TEST_LIBSQL_DIR is where the peer
 * keeps its files, so a test can reach the database of record directly. With EF_TEST_PG_URL set (a
 * throwaway PostgreSQL started by tests/pg/with-postgres.sh), each store gets a PostgreSQL database
 * of its own, created here, with the local cache at the same path; with EF_TEST_MYSQL_URL (a
 * throwaway MariaDB started by tests/mysql/with-mariadb.sh), a MariaDB database the same way.
 */
#ifndef EF_TEST_STORE_HELPER_H
#define EF_TEST_STORE_HELPER_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <libpq-fe.h>

#include <sqlite3.h>

#include "store/open.h"
#include "store/store.h"

#include "rm_tree.h"

#define B(s) ef_bytes_of(s)
#define NONE ((ef_bytes){"", 0})

typedef struct tstore {
    char dir[64];
    char path[128];
    ef_store *s;
    ef_registry *reg;
    ef_arena a;
} tstore;

/* The libSQL test peer's URL, or NULL when the tests run on the SQLite backend. */
static inline const char *tstore_libsql(void)
{
    const char *u = getenv("EF_TEST_LIBSQL_URL");
    return u && *u ? u : NULL;
}

/* The throwaway PostgreSQL server's URL (no database), or NULL. */
static inline const char *tstore_pg(void)
{
    const char *u = getenv("EF_TEST_PG_URL");
    return u && *u ? u : NULL;
}

/* Runs sql on PostgreSQL database db of the test server; returns 0 when it succeeded. */
static inline int tstore_pg_exec(const char *db, const char *sql)
{
    char url[512];
    snprintf(url, sizeof(url), "%s/%s", tstore_pg(), db);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int rc = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
                 ? 0
                 : -1;
    if (rc) print_error("postgres %s: %s: %s\n", db, sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* The throwaway MariaDB server's URL (no database), or NULL. */
static inline const char *tstore_mysql(void)
{
    const char *u = getenv("EF_TEST_MYSQL_URL");
    return u && *u ? u : NULL;
}

/* Runs sql on MariaDB database db ("" for none) of the test server with the mariadb client;
 * returns 0 when it succeeded. db and sql come from the tests (no quote characters in db). */
static inline int tstore_mysql_exec(const char *db, const char *sql)
{
    const char *port = strrchr(tstore_mysql(), ':');
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "mariadb --no-defaults -uroot -h127.0.0.1 -P%s %s -e \"%s\"",
             port ? port + 1 : "3306", db, sql);
    return system(cmd) == 0 ? 0 : -1;
}

/* The peer's database name for a store at dir/name (its files are DIR/<that>.db). */
static inline void tstore_remote_name(const tstore *t, const char *name, char *out, size_t n)
{
    const char *base = strrchr(t->dir, '/');
    snprintf(out, n, "%s_%s", base ? base + 1 : t->dir, name);
    for (char *p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '_';
}

/* Opens dir/name on this run's backend (local: always SQLite, for a replica's side). */
static inline ef_store *tstore_try_open(tstore *t, const char *name, bool registry, bool local,
                                        uint64_t log_keep, ef_store_err *err)
{
    snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
    if (registry && !t->reg) t->reg = ef_registry_new();
    if (!local && tstore_pg()) {
        char rname[160], url[512], sql[256];
        tstore_remote_name(t, name, rname, sizeof(rname));
        for (char *p = rname; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        /* a database per store; it exists already when a test opens the store again */
        snprintf(sql, sizeof(sql), "SELECT 1 FROM pg_database WHERE datname = '%s'", rname);
        char url0[512];
        snprintf(url0, sizeof(url0), "%s/postgres", tstore_pg());
        PGconn *c = PQconnectdb(url0);
        PGresult *r = PQexec(c, sql);
        bool exists = r && PQntuples(r) == 1;
        PQclear(r);
        PQfinish(c);
        snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", rname);
        if (!exists && tstore_pg_exec("postgres", sql)) fail_msg("cannot create database %s", rname);
        snprintf(url, sizeof(url), "%s/%s", tstore_pg(), rname);
        ef_store_open_opts o = {.registry = registry ? t->reg : NULL, .cache_path = t->path,
                                .log_keep_entries = log_keep, .poll_ms = 200};
        return ef_store_open(url, &o, err);
    }
    if (!local && tstore_mysql()) {
        char rname[160], url[512], sql[256];
        tstore_remote_name(t, name, rname, sizeof(rname));
        snprintf(sql, sizeof(sql), "CREATE DATABASE IF NOT EXISTS %s", rname);
        if (tstore_mysql_exec("", sql)) fail_msg("cannot create database %s", rname);
        snprintf(url, sizeof(url), "%s/%s", tstore_mysql(), rname);
        ef_store_open_opts o = {.registry = registry ? t->reg : NULL, .cache_path = t->path,
                                .log_keep_entries = log_keep, .poll_ms = 200};
        return ef_store_open(url, &o, err);
    }
    if (local || !tstore_libsql()) {
        ef_sqlite_opts o = {.registry = registry ? t->reg : NULL, .log_keep_entries = log_keep};
        return ef_sqlite_open(t->path, &o, err);
    }
    char rname[160], url[512];
    tstore_remote_name(t, name, rname, sizeof(rname));
    snprintf(url, sizeof(url), "%s/dev/%s", tstore_libsql(), rname);
    ef_store_open_opts o = {.registry = registry ? t->reg : NULL, .cache_path = t->path,
                            .log_keep_entries = log_keep, .poll_ms = 200};
    return ef_store_open(url, &o, err);
}

/* The file holding the database of record of dir/name: the SQLite file, or the peer's file. */
static inline void tstore_record_path(const tstore *t, const char *name, char *out, size_t n)
{
    if (!tstore_libsql()) {
        snprintf(out, n, "%s/%s", t->dir, name);
        return;
    }
    char rname[160];
    tstore_remote_name(t, name, rname, sizeof(rname));
    const char *d = getenv("EF_TEST_LIBSQL_DIR");
    snprintf(out, n, "%s/%s.db", d ? d : ".", rname);
}

/* Runs sql on the database of record of dir/name (SQLite file, peer file or PostgreSQL database);
 * returns 0 when it succeeded. */
static inline int tstore_record_exec(const tstore *t, const char *name, const char *sql)
{
    if (tstore_pg()) {
        char rname[160];
        tstore_remote_name(t, name, rname, sizeof(rname));
        for (char *p = rname; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        return tstore_pg_exec(rname, sql);
    }
    if (tstore_mysql()) {
        char rname[160];
        tstore_remote_name(t, name, rname, sizeof(rname));
        return tstore_mysql_exec(rname, sql);
    }
    char record[256];
    tstore_record_path(t, name, record, sizeof(record));
    sqlite3 *db;
    int rc = sqlite3_open(record, &db) == SQLITE_OK &&
                     sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK
                 ? 0
                 : -1;
    sqlite3_close(db);
    return rc;
}

static inline void tstore_open_at(tstore *t, const char *name, bool registry)
{
    ef_store_err err;
    t->s = tstore_try_open(t, name, registry, false, 0, &err);
    if (!t->s) fail_msg("open %s: %s", t->path, err.message);
}

static inline tstore *tstore_new_at(bool registry, bool local)
{
    tstore *t = calloc(1, sizeof(*t));
    /* TMPDIR, as mkstemp(3)'s callers honour it: a test that only compares states may run on
     * tmpfs (store.cmake), where thousands of durable commits cost no disk flush */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    if ((size_t)snprintf(t->dir, sizeof(t->dir), "%s/ef_store_XXXXXX", tmp) >= sizeof(t->dir))
        fail_msg("TMPDIR too long: %s", tmp);
    if (!mkdtemp(t->dir)) fail_msg("mkdtemp %s: %s", t->dir, strerror(errno));
    ef_arena_init(&t->a, 65536);
    ef_store_err err;
    t->s = tstore_try_open(t, "sub/dir/edgeflag.db", registry, local, 0, &err);
    if (!t->s) fail_msg("open %s: %s", t->path, err.message);
    return t;
}

/* A store on this run's backend. */
static inline tstore *tstore_new(bool registry)
{
    return tstore_new_at(registry, false);
}

/* A plain SQLite store whatever the backend (a replica fed by ef_store_apply_changes). */
static inline tstore *tstore_new_local(bool registry)
{
    return tstore_new_at(registry, true);
}

static inline void tstore_free(tstore *t)
{
    ef_store_close(t->s);
    if (t->reg) ef_registry_free(t->reg);
    ef_arena_free(&t->a);
    if (rm_tree(t->dir) != 0)
        fail_msg("cleanup of %s failed: %s", t->dir, strerror(errno));
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
