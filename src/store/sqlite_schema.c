/*
 * sqlite_schema.c - opening the SQLite store: pragmas, versioned schema migrations, the change
 * capture triggers, the prepared-statement cache and small helpers shared by the backend.
 *
 * Migrations are ordered steps recorded in schema_migrations; a database whose recorded version is
 * newer than this code is refused rather than written with a schema we do not understand. A step
 * must never be edited once released: later changes are new steps.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "store/sqlite_int.h"

const sq_table sq_tables[SQ_NTABLES] = {
    {"namespaces", {"key"}, {"key", "name", "description", "protected", "created_at", "updated_at"}},
    {"flags",
     {"namespace_key", "key"},
     {"namespace_key", "key", "name", "description", "enabled", "type", "default_variant_id",
      "metadata", "created_at", "updated_at"}},
    {"variants",
     {"id"},
     {"id", "namespace_key", "flag_key", "key", "name", "description", "attachment", "created_at",
      "updated_at"}},
    {"segments",
     {"namespace_key", "key"},
     {"namespace_key", "key", "name", "description", "match_type", "created_at", "updated_at"}},
    {"constraints",
     {"id"},
     {"id", "namespace_key", "segment_key", "type", "property", "operator", "value", "description",
      "created_at", "updated_at"}},
    {"rules",
     {"id"},
     {"id", "namespace_key", "flag_key", "rank", "segment_operator", "created_at", "updated_at"}},
    {"rule_segments",
     {"rule_id", "segment_key"},
     {"rule_id", "namespace_key", "segment_key", "position"}},
    {"distributions",
     {"id"},
     {"id", "rule_id", "variant_id", "rollout", "created_at", "updated_at"}},
    {"rollouts",
     {"id"},
     {"id", "namespace_key", "flag_key", "type", "rank", "description", "percentage", "value",
      "segment_operator", "created_at", "updated_at"}},
    {"rollout_segments",
     {"rollout_id", "segment_key"},
     {"rollout_id", "namespace_key", "segment_key", "position"}},
    {"tokens",
     {"id"},
     {"id", "hashed_token", "name", "description", "namespace_key", "metadata", "expires_at",
      "created_at", "updated_at"}},
};
const size_t sq_ntables = sizeof(sq_tables) / sizeof(sq_tables[0]);
/* An initializer with more entries than SQ_NTABLES does not compile; one with fewer leaves a
 * zeroed last entry, which ef_sqlite_open refuses at once (every loop trusts sq_ntables). */
/* Tables created by migration 1 (their triggers too) come first in sq_tables; later tables come
 * with their own migration, which creates their triggers. */
#define SQ_TABLES_V1 10

/* Version 1: Flipt's data model (timestamps as Unix nanoseconds, enums as Flipt's integers), the
 * store's own bookkeeping (state, namespace versions, change log) and the pending-change table the
 * triggers fill during a write transaction (always emptied before COMMIT). Segment references from
 * rules and rollouts RESTRICT deletes, as Flipt v1.61's schema does, so a rule never silently loses
 * a segment. */
static const char MIGRATION_1[] =
    "CREATE TABLE namespaces(key TEXT PRIMARY KEY, name TEXT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '', protected INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE flags(namespace_key TEXT NOT NULL REFERENCES namespaces(key) ON DELETE CASCADE,"
    " key TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
    " enabled INTEGER NOT NULL DEFAULT 0, type INTEGER NOT NULL DEFAULT 0,"
    " default_variant_id TEXT REFERENCES variants(id) ON DELETE SET NULL, metadata TEXT,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY(namespace_key, key));"
    "CREATE INDEX flags_created ON flags(namespace_key, created_at);"
    "CREATE TABLE variants(id TEXT PRIMARY KEY, namespace_key TEXT NOT NULL, flag_key TEXT NOT NULL,"
    " key TEXT NOT NULL, name TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',"
    " attachment TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " UNIQUE(namespace_key, flag_key, key),"
    " FOREIGN KEY(namespace_key, flag_key) REFERENCES flags(namespace_key, key) ON DELETE CASCADE);"
    "CREATE TABLE segments(namespace_key TEXT NOT NULL REFERENCES namespaces(key) ON DELETE CASCADE,"
    " key TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
    " match_type INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL, PRIMARY KEY(namespace_key, key));"
    "CREATE INDEX segments_created ON segments(namespace_key, created_at);"
    "CREATE TABLE constraints(id TEXT PRIMARY KEY, namespace_key TEXT NOT NULL,"
    " segment_key TEXT NOT NULL, type INTEGER NOT NULL, property TEXT NOT NULL,"
    " operator TEXT NOT NULL, value TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " FOREIGN KEY(namespace_key, segment_key) REFERENCES segments(namespace_key, key)"
    " ON DELETE CASCADE);"
    "CREATE INDEX constraints_segment ON constraints(namespace_key, segment_key, created_at);"
    "CREATE TABLE rules(id TEXT PRIMARY KEY, namespace_key TEXT NOT NULL, flag_key TEXT NOT NULL,"
    " rank INTEGER NOT NULL, segment_operator INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " FOREIGN KEY(namespace_key, flag_key) REFERENCES flags(namespace_key, key) ON DELETE CASCADE);"
    "CREATE INDEX rules_flag ON rules(namespace_key, flag_key, rank);"
    "CREATE TABLE rule_segments(rule_id TEXT NOT NULL REFERENCES rules(id) ON DELETE CASCADE,"
    " namespace_key TEXT NOT NULL, segment_key TEXT NOT NULL, position INTEGER NOT NULL,"
    " PRIMARY KEY(rule_id, segment_key),"
    " FOREIGN KEY(namespace_key, segment_key) REFERENCES segments(namespace_key, key)"
    " ON DELETE RESTRICT);"
    "CREATE INDEX rule_segments_segment ON rule_segments(namespace_key, segment_key);"
    "CREATE TABLE distributions(id TEXT PRIMARY KEY,"
    " rule_id TEXT NOT NULL REFERENCES rules(id) ON DELETE CASCADE,"
    " variant_id TEXT NOT NULL REFERENCES variants(id) ON DELETE CASCADE,"
    " rollout REAL NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX distributions_rule ON distributions(rule_id, created_at);"
    "CREATE INDEX distributions_variant ON distributions(variant_id);"
    "CREATE TABLE rollouts(id TEXT PRIMARY KEY, namespace_key TEXT NOT NULL,"
    " flag_key TEXT NOT NULL, type INTEGER NOT NULL, rank INTEGER NOT NULL,"
    " description TEXT NOT NULL DEFAULT '', percentage REAL NOT NULL DEFAULT 0,"
    " value INTEGER NOT NULL DEFAULT 0, segment_operator INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " FOREIGN KEY(namespace_key, flag_key) REFERENCES flags(namespace_key, key) ON DELETE CASCADE);"
    "CREATE INDEX rollouts_flag ON rollouts(namespace_key, flag_key, rank);"
    "CREATE TABLE rollout_segments(rollout_id TEXT NOT NULL REFERENCES rollouts(id)"
    " ON DELETE CASCADE, namespace_key TEXT NOT NULL, segment_key TEXT NOT NULL,"
    " position INTEGER NOT NULL, PRIMARY KEY(rollout_id, segment_key),"
    " FOREIGN KEY(namespace_key, segment_key) REFERENCES segments(namespace_key, key)"
    " ON DELETE RESTRICT);"
    "CREATE INDEX rollout_segments_segment ON rollout_segments(namespace_key, segment_key);"
    "CREATE TABLE ef_state(id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,"
    " trimmed INTEGER NOT NULL);"
    "INSERT INTO ef_state VALUES (1, 0, 0);"
    /* Versions outlive their namespace so a deleted and re-created namespace never goes back. */
    "CREATE TABLE ns_versions(namespace_key TEXT PRIMARY KEY, version INTEGER NOT NULL);"
    "CREATE TABLE changelog(seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, entry TEXT NOT NULL);"
    "CREATE INDEX changelog_time ON changelog(time_ns);"
    "CREATE TABLE ef_pending(id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, op TEXT NOT NULL,"
    " pk TEXT NOT NULL, row TEXT);";

void sq_row_json_sql(ef_buf *b, const sq_table *t, const char *prefix, bool pk_only)
{
    const char *const *cols = pk_only ? t->pk : t->cols;
    ef_buf_puts(b, "json_object(");
    for (size_t i = 0; cols[i]; i++)
        ef_buf_printf(b, "%s'%s', %s\"%s\"", i ? ", " : "", cols[i], prefix, cols[i]);
    ef_buf_putc(b, ')');
}

/* The change-capture triggers: every row change, including those made by ON DELETE CASCADE and
 * ON DELETE SET NULL, lands in ef_pending inside the same transaction. Built from sq_tables, whose
 * names are constants of this file (never user input). */
/* with_old (migration 4 on): updates and deletes also record the whole row as it was, in the
 * entry's "old", so a history can show before and after without another read. */
static void triggers_sql(ef_buf *b, size_t from, size_t to, bool with_old)
{
    static const char *const kinds[3] = {"INSERT", "UPDATE", "DELETE"};
    for (size_t i = from; i < to; i++) {
        const sq_table *t = &sq_tables[i];
        for (int k = 0; k < 3; k++) {
            bool del = k == 2;
            ef_buf_printf(b, "CREATE TRIGGER ef_cap_%s_%d AFTER %s ON \"%s\" BEGIN "
                          "INSERT INTO ef_pending(tbl, op, pk, row%s) VALUES ('%s', '%s', ",
                          t->name, k, kinds[k], t->name, with_old ? ", old" : "", t->name,
                          del ? "delete" : "upsert");
            sq_row_json_sql(b, t, del ? "OLD." : "NEW.", true);
            ef_buf_puts(b, ", ");
            if (del)
                ef_buf_puts(b, "NULL");
            else
                sq_row_json_sql(b, t, "NEW.", false);
            if (with_old) {
                ef_buf_puts(b, ", ");
                if (k == 0)
                    ef_buf_puts(b, "NULL");
                else
                    sq_row_json_sql(b, t, "OLD.", false);
            }
            ef_buf_puts(b, "); END;");
        }
    }
}

static void triggers_drop_sql(ef_buf *b)
{
    for (size_t i = 0; i < sq_ntables; i++)
        for (int k = 0; k < 3; k++)
            ef_buf_printf(b, "DROP TRIGGER IF EXISTS ef_cap_%s_%d;", sq_tables[i].name, k);
}

/* Migration 4's DDL: the column for the old rows, and the triggers it replaces. */
static void migration_4_sql(ef_buf *b)
{
    ef_buf_puts(b, "ALTER TABLE ef_pending ADD COLUMN old TEXT;");
    triggers_drop_sql(b);
}

/* The current schema's triggers are migration 4's: a migration that changes them must change
 * this too (sqlite_capture.c drops and recreates them around a bulk write). */
void sq_capture_triggers_sql(ef_buf *b, bool create)
{
    if (create)
        triggers_sql(b, 0, sq_ntables, true);
    else
        triggers_drop_sql(b);
}

int ef_sqlite_schema_version(void)
{
    return SQ_SCHEMA_VERSION;
}

int sq_db_err(sq *s, ef_store_err *err, const char *what)
{
    int rc = sqlite3_extended_errcode(s->db);
    int prim = rc & 0xff;
    ef_store_code code = EF_STORE_INTERNAL;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED || prim == SQLITE_IOERR ||
        prim == SQLITE_FULL || prim == SQLITE_CANTOPEN || prim == SQLITE_READONLY)
        code = EF_STORE_UNAVAILABLE;
    return ef_store_fail(err, code, "%s: %s", what, sqlite3_errmsg(s->db));
}

int sq_step_done(sq *s, sqlite3_stmt *st, const char *what, ef_store_err *err)
{
    return sqlite3_step(st) == SQLITE_DONE ? 0 : sq_db_err(s, err, what);
}

sqlite3_stmt *sq_stmt(sq *s, int slot, const char *sql, ef_store_err *err)
{
    sqlite3_stmt *st = s->stmts[slot];
    s->stmts_used[slot / 64] |= 1ull << (slot % 64); /* reset_all resets what was handed out */
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        sq_db_err(s, err, "prepare");
        return NULL;
    }
    s->stmts[slot] = st;
    return st;
}

/* SQLITE_STATIC: SQLite reads the caller's bytes instead of copying them (a malloc, a copy and a
 * free per parameter were 8 % of an import). Every call site binds and steps in one scope, and a
 * cached statement is rebound (sq_stmt clears its bindings) before it is stepped again. */
void sq_bind_bytes(sqlite3_stmt *st, int i, ef_bytes b)
{
    sqlite3_bind_text(st, i, b.n ? b.p : "", (int)b.n, SQLITE_STATIC);
}

void sq_bind_opt(sqlite3_stmt *st, int i, ef_bytes b)
{
    if (b.n)
        sqlite3_bind_text(st, i, b.p, (int)b.n, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

ef_bytes sq_col_bytes(sqlite3_stmt *st, int i, ef_arena *a)
{
    const unsigned char *p = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!p) return (ef_bytes){"", 0};
    char *c = ef_arena_memdup(a, p, n);
    return c ? (ef_bytes){c, n} : (ef_bytes){"", 0};
}

int sq_exec(sq *s, const char *sql, ef_store_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int code = (sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_BUSY ? EF_STORE_UNAVAILABLE
                                                                            : EF_STORE_INTERNAL;
        ef_store_fail(err, code, "sqlite: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

const sq_table *sq_table_find(ef_bytes name)
{
    for (size_t i = 0; i < sq_ntables; i++)
        if (ef_bytes_eq(name, ef_bytes_of(sq_tables[i].name))) return &sq_tables[i];
    return NULL;
}

/* The file's schema version into *v; false when it cannot be read (no schema_migrations table
 * yet, or an error: sqlite3_errmsg says which). */
static bool schema_version_read(sq *s, int *v)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1,
                           &st, NULL) != SQLITE_OK)
        return false;
    int r = sqlite3_step(st);
    *v = r == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return r == SQLITE_ROW;
}

static int schema_version(sq *s, int *v, ef_store_err *err)
{
    if (sq_exec(s, "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY,"
                   " applied_at INTEGER NOT NULL)",
                err))
        return -1;
    /* an unreadable version must not pass for 0 (that would re-run every migration) */
    return schema_version_read(s, v) ? 0 : sq_db_err(s, err, "schema version");
}

static int record_version(sq *s, int v, ef_store_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO schema_migrations VALUES (?, ?)", -1, &st, NULL) !=
        SQLITE_OK)
        return sq_db_err(s, err, "schema_migrations");
    sqlite3_bind_int(st, 1, v);
    sqlite3_bind_int64(st, 2, ef_clock_wall_ns());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "schema_migrations");
}

/* The default namespace is seeded before the triggers exist: it is part of every store's initial
 * state (seq 0), on primaries and replicas alike, so it is not a logged change. */
static int seed_default(sq *s, ef_store_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, SQ_SEED_SQL, -1, &st, NULL) != SQLITE_OK)
        return sq_db_err(s, err, "seed");
    sqlite3_bind_int64(st, 1, ef_clock_wall_ns());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "seed");
}

/* Version 2: client tokens (Flipt's static-token authentication), stored as SHA-256 hashes only.
 * They travel through the change log like everything else, so every replica accepts them. */
static const char MIGRATION_2[] =
    "CREATE TABLE tokens(id TEXT PRIMARY KEY, hashed_token TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL, description TEXT NOT NULL, namespace_key TEXT, metadata TEXT,"
    " expires_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);";

/* Version 3: identity (issue 19, item 5). db_id names this database file for ever; history names
 * the history its rows and change log belong to: created with the database, replaced by the
 * upstream's when a replica loads a dump. Followers send theirs, so a feed never streams entries of
 * one history on top of another. Random at creation (existing databases get theirs here). */
static const char MIGRATION_3[] =
    "CREATE TABLE ef_identity(id INTEGER PRIMARY KEY CHECK (id = 1), db_id TEXT NOT NULL,"
    " history TEXT NOT NULL, history_since INTEGER NOT NULL);"
    "INSERT INTO ef_identity VALUES (1, lower(hex(randomblob(16))), lower(hex(randomblob(16))),"
    " 0);";

/* Version 4: the change log records the row before every update and delete ("old"), for the
 * history API's before/after (issue 17) and audit events; every trigger is recreated with it. */

/* Version 5: indexes in the order a flag's rows are read (variants by creation, rules and rollouts
 * by rank then creation, a rule's or rollout's segments by position), so those reads, which every
 * write and every replica's apply makes to recompile the flag, need no temporary sort b-tree
 * (three per one-flag write: about 7 % of a replica's apply). The rowid that ends each ORDER BY
 * is in every index already. */
static const char MIGRATION_5[] =
    "DROP INDEX IF EXISTS rules_flag;"
    "CREATE INDEX rules_flag ON rules(namespace_key, flag_key, rank, created_at);"
    "DROP INDEX IF EXISTS rollouts_flag;"
    "CREATE INDEX rollouts_flag ON rollouts(namespace_key, flag_key, rank, created_at);"
    "CREATE INDEX IF NOT EXISTS variants_flag ON variants(namespace_key, flag_key, created_at);"
    "CREATE INDEX IF NOT EXISTS rule_segments_rule ON rule_segments(rule_id, position);"
    "CREATE INDEX IF NOT EXISTS rollout_segments_rollout ON rollout_segments(rollout_id, "
    "position);";

/* Version 6: step 5's three indexes that only gave a flag's variants and a rule's or rollout's
 * segments their order go again. Their rows are read through the keys every insert maintains
 * anyway (the variant's unique key, the reference's primary key) and put in order in C
 * (sq_order_children), so the per-flag reads stay free of sorts, and an import no longer writes
 * three b-trees more than it needs (8 % of its instructions). */
static const char MIGRATION_6[] =
    "DROP INDEX IF EXISTS variants_flag;"
    "DROP INDEX IF EXISTS rule_segments_rule;"
    "DROP INDEX IF EXISTS rollout_segments_rollout;";

void sq_migration_sql(int v, int part, ef_buf *b)
{
    if (part == 0) {
        if (v == 4)
            migration_4_sql(b);
        else
            ef_buf_puts(b, v == 1   ? MIGRATION_1
                           : v == 2 ? MIGRATION_2
                           : v == 3 ? MIGRATION_3
                           : v == 5 ? MIGRATION_5
                                    : MIGRATION_6);
        return;
    }
    if (v == 1)
        triggers_sql(b, 0, SQ_TABLES_V1, false);
    else if (v == 2)
        triggers_sql(b, SQ_TABLES_V1, sq_ntables, false);
    else if (v == 4)
        triggers_sql(b, 0, sq_ntables, true);
    /* v3 adds no logged table: identity never travels as rows */
}

/* Runs migration step v on the local database: DDL, the seed (step 1), then the triggers, so the
 * seeded default namespace is initial state rather than a logged change. */
static int migration_run(sq *s, int v, ef_store_err *err)
{
    ef_buf b;
    ef_buf_init(&b);
    int rc = -1;
    for (int part = 0; part < 2; part++) {
        ef_buf_clear(&b);
        sq_migration_sql(v, part, &b);
        ef_buf_putc(&b, '\0');
        if (!ef_buf_ok(&b)) {
            ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
            goto out;
        }
        if (sq_exec(s, b.data, err)) goto out;
        if (part == 0 && v == 1 && seed_default(s, err)) goto out;
    }
    rc = 0;
out:
    ef_buf_free(&b);
    return rc;
}


int sq_migrate(sq *s, ef_store_err *err)
{
    /* Most opens find the schema current: they need no write lock, which a reader (`edgeflag
     * export`) beside an import in rollback-journal mode could only wait for (sqlite_doc.c). */
    int now;
    if (schema_version_read(s, &now) && now == SQ_SCHEMA_VERSION) return 0;
    if (sq_exec(s, "BEGIN IMMEDIATE", err)) return -1;
    int v = 0;
    if (schema_version(s, &v, err)) goto fail;
    if (v > SQ_SCHEMA_VERSION) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE,
                   "database schema version %d is newer than this edgeflag supports (%d)", v,
                   SQ_SCHEMA_VERSION);
        goto fail;
    }
    for (int i = v; i < SQ_SCHEMA_VERSION; i++)
        if (migration_run(s, i + 1, err) || record_version(s, i + 1, err)) goto fail;
    if (sq_exec(s, "COMMIT", err)) goto fail;
    return 0;
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* The file path inside a `file:` URI (up to '?'), or NULL for in-memory databases. */
static char *uri_path(const char *u)
{
    const char *p = u;
    if (strncmp(p, "file:", 5) == 0) {
        p += 5;
        if (strncmp(p, "///", 3) == 0)
            p += 2;
        else if (strncmp(p, "//localhost/", 12) == 0)
            p += 11;
        if (strstr(u, "mode=memory")) return NULL;
    }
    size_t n = strcspn(p, "?#");
    if (n == 0 || (n == 8 && strncmp(p, ":memory:", 8) == 0)) return NULL;
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, p, n);
    r[n] = '\0';
    return r;
}

bool sq_is_file(const char *target)
{
    char *path = uri_path(target);
    bool file = path != NULL;
    free(path);
    return file;
}

void sq_cache_bulk(sq *s)
{
    sqlite3_exec(s->db, "PRAGMA cache_size = -131072", NULL, NULL, NULL); /* 128 MiB at most */
}

void sq_bulk_done(sq *s)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_exec(s->db, "PRAGMA cache_size = -2000", NULL, NULL, NULL);
    sqlite3_db_release_memory(s->db);
    pthread_mutex_unlock(&s->mu);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* mkdir -p of the directory holding the database file. */
static int make_parent_dirs(const char *target, ef_store_err *err)
{
    char *path = uri_path(target);
    if (!path) return 0;
    char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        *slash = '\0';
        for (char *p = path + 1; *p; p++) {
            if (*p != '/') continue;
            *p = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) break;
            *p = '/';
        }
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot create directory %s: %s", path,
                       strerror(errno));
            free(path);
            return -1;
        }
    }
    free(path);
    return 0;
}

/* Takes the process lock of a database file: an exclusive flock on "<file>.lock", held until
 * close (the kernel drops it when the process dies, so a crash never leaves a stale lock). A
 * sidecar file rather than SQLite's own exclusive locking mode, so that readers (the dump
 * connection, `edgeflag export`, backups) keep working, and so the refusal can name the holder. */
static int lock_take(sq *s, const char *target, ef_store_err *err)
{
    s->lock_fd = -1;
    char *path = uri_path(target);
    if (!path) return 0; /* in-memory: nobody else can open it */
    size_t n = strlen(path) + sizeof(".lock");
    char *lp = malloc(n);
    if (!lp) {
        free(path);
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    }
    snprintf(lp, n, "%s.lock", path);
    int rc = -1;
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot open lock file %s: %s", lp,
                      strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t got = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[got > 0 ? got : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            ef_store_fail(err, EF_STORE_UNAVAILABLE,
                          "database %s is in use by another process (pid %s, lock %s): two "
                          "processes on one file would each serve only their own writes; stop it "
                          "or use another file",
                          path, pid[0] ? pid : "unknown", lp);
        else
            ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot lock %s: %s", lp, strerror(e));
        goto out;
    }
    s->lock_fd = fd;
    /* the pid (for a refused process's message) and the durability record (sqlite_persist.c) */
    if (sq_lock_record_open(s) != 0) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot write the lock file %s: %s", lp,
                      strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(lp);
    free(path);
    return rc;
}

static const char *sq_file_path(void *h)
{
    sq *s = h;
    const char *f = sqlite3_db_filename(s->db, "main"); /* absolute; "" in memory */
    return f && f[0] ? f : NULL;
}

void ef_store_process_init(void)
{
    /* SQLITE_MISUSE if SQLite was already initialized: the default then stays, harmlessly */
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void sq_close(void *h)
{
    sq *s = h;
    if (!s) return;
    sq_checkpoint_stop(s); /* first: its thread may hold the store's mutex for a last pass */
    pthread_mutex_lock(&s->mu);
    int written = sq_batch_commit(s, NULL); /* what the last interval applied (sqlite_persist.c) */
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < SQ_MAX_STMTS; i++) sqlite3_finalize(s->stmts[i]);
    for (size_t i = 0; s->apply_upsert && i < sq_ntables; i++) {
        sqlite3_finalize(s->apply_upsert[i]);
        sqlite3_finalize(s->apply_delete[i]);
    }
    free(s->apply_upsert);
    free(s->apply_delete);
    for (size_t i = 0; i < s->ntouched; i++) free(s->touched[i]);
    sq_incr_free(s);
    for (size_t i = 0; s->touch_ns && i < sq_ntables; i++) sqlite3_finalize(s->touch_ns[i]);
    free(s->touch_ns);
    int synced = sq_persist_stop(s);
    if (sqlite3_close_v2(s->db) == SQLITE_OK && synced == 0 && written == 0) sq_lock_record_clean(s);
    if (s->lock_fd >= 0) close(s->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

ef_store *ef_sqlite_open(const char *target, const ef_sqlite_opts *opts, ef_store_err *err)
{
    if (!target || !*target) target = EF_SQLITE_DEFAULT_PATH;
    if (!sq_tables[SQ_NTABLES - 1].name) {
        ef_store_fail(err, EF_STORE_INTERNAL, "sq_tables has fewer entries than SQ_NTABLES");
        return NULL;
    }
    sq *s = calloc(1, sizeof(*s));
    if (!s) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        return NULL;
    }
    if (opts) s->opts = *opts;
    if (s->opts.busy_timeout_ms <= 0) s->opts.busy_timeout_ms = 5000;
    pthread_mutex_init(&s->mu, NULL);
    s->lock_fd = -1;
    s->path = strdup(target);
    s->apply_upsert = calloc(sq_ntables, sizeof(sqlite3_stmt *));
    s->apply_delete = calloc(sq_ntables, sizeof(sqlite3_stmt *));
    s->touch_ns = calloc(sq_ntables, sizeof(sqlite3_stmt *));
    s->wal_fd = -1;
    if (!s->path || !s->apply_upsert || !s->apply_delete || !s->touch_ns) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        goto fail;
    }
    if (!s->opts.no_create_dirs && make_parent_dirs(target, err)) goto fail;
    if (!s->opts.no_lock && lock_take(s, target, err)) goto fail;
    if (sqlite3_open_v2(target, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot open database %s: %s", target,
                   s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, s->opts.busy_timeout_ms);
    /* WAL: readers never block the writer. synchronous=FULL: a COMMIT that returned is on disk, so
     * an acknowledged write survives power loss, not only a process crash. A reader leaves the
     * mode as it finds it: setting it needs the file to itself, which an import holds in
     * rollback-journal mode (sqlite_doc.c), and SQLite would refuse the reader at once rather
     * than wait (a reader that wants to write while a writer waits for it could deadlock). */
    if ((!s->opts.no_lock && sq_exec(s, "PRAGMA journal_mode=WAL", err)) ||
        sq_exec(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err))
        goto fail;
    /* A follower's applied entries are durable on its primary already: synchronous=NORMAL keeps
     * them safe from a process crash, and sqlite_persist.c syncs them in batches. */
    if (s->opts.sync_ms && sq_exec(s, "PRAGMA synchronous=NORMAL", err)) goto fail;
    if (sq_migrate(s, err) || sq_capture_setup(s, err)) goto fail;
    if (sq_persist_start(s, err) || sq_checkpoint_start(s, err)) goto fail;
    sq_fill_ops_ns(&s->ops);
    sq_fill_ops_flags(&s->ops);
    sq_fill_ops_segments(&s->ops);
    sq_fill_ops_rules(&s->ops);
    sq_fill_ops_log(&s->ops);
    sq_fill_ops_tokens(&s->ops);
    sq_fill_ops_doc(&s->ops);
    s->ops.close = sq_close;
    s->ops.file_path = sq_file_path;
    s->ops.batches = sq_persist_batches;
    s->store.ops = &s->ops;
    s->store.h = s;
    if (s->opts.registry) {
        pthread_mutex_lock(&s->mu);
        int rc = sq_publish_all(s, err);
        pthread_mutex_unlock(&s->mu);
        if (rc) goto fail;
    }
    return &s->store;
fail:
    sq_close(s);
    return NULL;
}
