/*
 * sqlite_backup.c - online backup and restore of the embedded SQLite store (see backup.h).
 *
 * Both directions go through SQLite's backup API, never a file copy: a copy of a live WAL database
 * made with cp can miss committed pages that are still in the -wal file, and a file replaced under
 * a connection corrupts it. This file must never write to the store it backs up, and never touch a
 * restore's target before the backup has passed its checks and the target's lock is held.
 */
#include "store/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "store/sqlite_int.h"

/* Copies every page of src's main database into dst's in one step (one read transaction of src,
 * one write transaction of dst). A source busy with a checkpoint is retried for up to 5 s. */
static int copy_pages(sqlite3 *src, sqlite3 *dst, const char *what, ef_store_err *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) return ef_store_fail(err, EF_STORE_UNAVAILABLE, "%s: %s", what, sqlite3_errmsg(dst));
    int rc;
    for (int tries = 0;; tries++) {
        rc = sqlite3_backup_step(b, -1);
        if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) || tries >= 500) break;
        sqlite3_sleep(10);
    }
    int frc = sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE)
        return ef_store_fail(err, rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? EF_STORE_UNAVAILABLE
                                                                            : EF_STORE_INTERNAL,
                             "%s: %s%s", what, sqlite3_errstr(rc),
                             rc == SQLITE_READONLY ? " (the page sizes of the two files differ)" : "");
    if (frc != SQLITE_OK)
        return ef_store_fail(err, EF_STORE_INTERNAL, "%s: %s", what, sqlite3_errmsg(dst));
    return 0;
}

static int query_i64(sqlite3 *db, const char *sql, int64_t bind, bool has_bind, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    if (has_bind) sqlite3_bind_int64(st, 1, bind);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return r == SQLITE_ROW ? 0 : r == SQLITE_DONE ? 1 : -1;
}

/* Fills info from an open copy: an edgeflag store has its state, identity and migrations. */
static int read_info(sqlite3 *db, const char *name, ef_backup_info *info, ef_store_err *err)
{
    memset(info, 0, sizeof(*info));
    int64_t n = 0;
    if (query_i64(db,
                  "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                  "('ef_state', 'ef_identity', 'changelog', 'schema_migrations')",
                  0, false, &n) != 0)
        return ef_store_fail(err, EF_STORE_INVALID, "%s is not a usable SQLite database: %s", name,
                             sqlite3_errmsg(db));
    if (n != 4)
        return ef_store_fail(err, EF_STORE_INVALID,
                             "%s is not an edgeflag store (it lacks the ef_state, ef_identity, "
                             "changelog or schema_migrations table)",
                             name);
    int64_t seq = 0, schema = 0, t = 0, pages = 0, psize = 0;
    if (query_i64(db, "SELECT seq FROM ef_state WHERE id = 1", 0, false, &seq) != 0 || seq < 0 ||
        query_i64(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0, false,
                  &schema) != 0 ||
        query_i64(db, "PRAGMA page_count", 0, false, &pages) != 0 ||
        query_i64(db, "PRAGMA page_size", 0, false, &psize) != 0)
        return ef_store_fail(err, EF_STORE_INVALID, "%s: cannot read its state: %s", name,
                             sqlite3_errmsg(db));
    if (query_i64(db, "SELECT time_ns FROM changelog WHERE seq = ?", seq, true, &t) < 0)
        return ef_store_fail(err, EF_STORE_INVALID, "%s: cannot read its change log: %s", name,
                             sqlite3_errmsg(db));
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(db, "SELECT db_id, history FROM ef_identity WHERE id = 1", -1, &st,
                               NULL);
    if (r == SQLITE_OK) r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        sqlite3_finalize(st);
        return ef_store_fail(err, EF_STORE_INVALID, "%s: it has no identity row", name);
    }
    snprintf(info->id.db_id, sizeof(info->id.db_id), "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(info->id.history, sizeof(info->id.history), "%s",
             (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    info->seq = (uint64_t)seq;
    info->time_ns = t;
    info->schema_version = (int)schema;
    info->bytes = (uint64_t)(pages * psize);
    return 0;
}

void ef_sqlite_remove_files(const char *path)
{
    char p[4096];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-journal", path);
    unlink(p);
}

static int fsync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == path)
        snprintf(out, cap, "/");
    else
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

int ef_sqlite_backup(const char *db, const char *out, ef_backup_info *info, ef_store_err *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", out, (long)getpid()) >= (int)sizeof(tmp))
        return ef_store_fail(err, EF_STORE_INVALID, "output path is too long");
    sqlite3 *src = NULL, *dst = NULL;
    int rc = -1;
    if (sqlite3_open_v2(db, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot open database %s: %s", db,
                      src ? sqlite3_errmsg(src) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    ef_sqlite_remove_files(tmp);
    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot create %s: %s", tmp,
                      dst ? sqlite3_errmsg(dst) : "out of memory");
        goto out;
    }
    char what[4200];
    snprintf(what, sizeof(what), "backup of %s", db);
    if (copy_pages(src, dst, what, err)) goto out;
    /* the copy is described by what it holds, not by what the source holds by now */
    if (read_info(dst, db, info, err)) goto out;
    /* one self-contained file: the copy keeps no -wal beside it */
    if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        ef_store_fail(err, EF_STORE_INTERNAL, "%s: %s", tmp, sqlite3_errmsg(dst));
        goto out;
    }
    if (sqlite3_close(dst) != SQLITE_OK) {
        ef_store_fail(err, EF_STORE_INTERNAL, "cannot close %s", tmp);
        goto out;
    }
    dst = NULL;
    char dir[4096];
    dir_of(out, dir, sizeof(dir));
    if (fsync_path(tmp, false) != 0 || rename(tmp, out) != 0 || fsync_path(dir, true) != 0) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot write %s: %s", out, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    sqlite3_close(dst);
    sqlite3_close(src);
    if (rc) ef_sqlite_remove_files(tmp);
    return rc;
}

int ef_sqlite_backup_check(const char *file, ef_backup_info *info, ef_store_err *err)
{
    struct stat stt;
    if (stat(file, &stt) != 0)
        return ef_store_fail(err, EF_STORE_INVALID, "cannot read backup %s: %s", file,
                             strerror(errno));
    if (!S_ISREG(stt.st_mode))
        return ef_store_fail(err, EF_STORE_INVALID, "backup %s is not a regular file", file);
    sqlite3 *db = NULL;
    int rc = -1;
    if (sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        ef_store_fail(err, EF_STORE_INVALID, "cannot open backup %s: %s", file,
                      db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(db, "PRAGMA integrity_check(1)", -1, &st, NULL);
    if (r == SQLITE_OK) r = sqlite3_step(st);
    if (r != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
        ef_store_fail(err, EF_STORE_INVALID, "backup %s is damaged or not a database: %s", file,
                      r == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0)
                                      : sqlite3_errmsg(db));
        sqlite3_finalize(st);
        goto out;
    }
    sqlite3_finalize(st);
    char name[4200];
    snprintf(name, sizeof(name), "backup %s", file);
    if (read_info(db, name, info, err)) goto out;
    if (info->schema_version > ef_sqlite_schema_version()) {
        ef_store_fail(err, EF_STORE_INVALID,
                      "backup %s was written by a newer edgeflag (schema %d; this one knows %d)",
                      file, info->schema_version, ef_sqlite_schema_version());
        goto out;
    }
    rc = 0;
out:
    sqlite3_close(db);
    return rc;
}

/* Turns the copy at tmp into a new history: migrated to this code's schema, new db_id and
 * history, an empty change log whose first entry will be seq + 1. */
static int new_history(const char *tmp, ef_store_err *err)
{
    ef_sqlite_opts o = {.no_lock = true, .no_create_dirs = true};
    ef_store *st = ef_sqlite_open(tmp, &o, err); /* runs the pending migrations */
    if (!st) return -1;
    sq *s = st->h;
    char sql[512];
    snprintf(sql, sizeof(sql),
             "BEGIN IMMEDIATE;"
             "UPDATE ef_identity SET db_id = lower(hex(randomblob(16))),"
             " history = lower(hex(randomblob(16))), history_since = %lld WHERE id = 1;"
             "DELETE FROM changelog; DELETE FROM ef_pending;"
             "UPDATE ef_state SET trimmed = seq WHERE id = 1;"
             "COMMIT;",
             (long long)ef_clock_wall_ns());
    int rc = sq_exec(s, sql, err);
    if (rc) sq_exec(s, "ROLLBACK", NULL);
    ef_store_close(st);
    return rc;
}

int ef_sqlite_restore(const char *file, const char *db, ef_backup_info *info, ef_store_err *err)
{
    ef_backup_info from;
    if (strncmp(db, "file:", 5) == 0 || strstr(db, "://"))
        return ef_store_fail(err, EF_STORE_INVALID, "restore needs a plain file path for --db, not %s",
                             db);
    if (ef_sqlite_backup_check(file, &from, err)) return -1;
    /* the target's lock first: a served store is refused before anything is written */
    ef_store *dest = ef_sqlite_open(db, NULL, err);
    if (!dest) return -1;
    char tmp[4096];
    int rc = -1;
    sqlite3 *src = NULL, *t = NULL;
    if (snprintf(tmp, sizeof(tmp), "%s.restore-%ld", db, (long)getpid()) >= (int)sizeof(tmp)) {
        ef_store_fail(err, EF_STORE_INVALID, "database path is too long");
        goto out;
    }
    ef_sqlite_remove_files(tmp);
    if (sqlite3_open_v2(file, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open_v2(tmp, &t, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot open %s or %s", file, tmp);
        goto out;
    }
    if (copy_pages(src, t, "copying the backup", err)) goto out;
    sqlite3_close(t);
    t = NULL;
    sqlite3_close(src);
    src = NULL;
    if (new_history(tmp, err)) goto out;
    if (sqlite3_open_v2(tmp, &t, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot reopen %s", tmp);
        goto out;
    }
    sq *d = dest->h;
    /* one write transaction of the target: it is the old store or the restored one, never a mix */
    if (copy_pages(t, d->db, "restoring into the database", err)) goto out;
    if (read_info(d->db, db, info, err)) goto out;
    snprintf(info->from_history, sizeof(info->from_history), "%s", from.id.history);
    info->time_ns = from.time_ns; /* the state's time: the new log holds no entry yet */
    rc = 0;
out:
    sqlite3_close(t);
    sqlite3_close(src);
    ef_sqlite_remove_files(tmp);
    ef_store_close(dest);
    return rc;
}
