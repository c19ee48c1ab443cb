/*
 * backup.h - whole-store copies of the embedded SQLite store: an online backup of a store a server
 * is running on, and a restore that starts a new history (docs/backup.md).
 *
 * The backup is one read transaction of SQLite's backup API on a connection of its own, so it is
 * exactly the state at one seq and never waits for nor blocks the server's writer. A restore holds
 * the database's process lock (the same flock `serve` takes), so it never replaces a file a
 * running server holds, and replaces the whole file in one SQLite transaction: the target is
 * either entirely the old store or entirely the restored one. These functions must never change
 * the file they back up, nor touch the target of a restore before the input has been checked.
 */
#ifndef EF_STORE_BACKUP_H
#define EF_STORE_BACKUP_H

#include <stdint.h>

#include "store/store.h"

/* What a backup holds (read from the copy itself, so it describes exactly what was copied). */
typedef struct ef_backup_info {
    uint64_t seq;          /* the change-log position the copy reflects */
    int64_t time_ns;       /* commit time of the entry at seq (0: the log no longer holds it) */
    int schema_version;
    ef_store_identity id;  /* db_id and history (after a restore: the new ones) */
    char from_history[EF_STORE_ID_MAX + 1]; /* restore: the history the backup was taken on */
    uint64_t bytes;        /* size of the copy */
} ef_backup_info;

/* Copies the store at db (a path or file: URI; it may be in use by a server) to the file out
 * (replaced atomically: written beside it, synced, renamed), as a self-contained SQLite file
 * (rollback journal mode, no -wal). Fails with EF_STORE_INVALID when db is not an edgeflag store. */
int ef_sqlite_backup(const char *db, const char *out, ef_backup_info *info, ef_store_err *err);

/* Checks that file is a complete edgeflag store this version can open (SQLite integrity check,
 * schema no newer than this code's, identity and state present) and fills info from it. */
int ef_sqlite_backup_check(const char *file, ef_backup_info *info, ef_store_err *err);

/* Replaces the store at db (a plain path; created when missing) with the backup in file, under a
 * new history and a new db_id, with an empty change log starting after the backup's seq, so
 * replicas that followed any other history reload from a dump instead of mixing histories.
 * Refused with EF_STORE_UNAVAILABLE (naming the pid) while another process holds db. */
int ef_sqlite_restore(const char *file, const char *db, ef_backup_info *info, ef_store_err *err);

/* Removes a SQLite file and its -wal, -shm and -journal (scratch copies; never a served store). */
void ef_sqlite_remove_files(const char *path);

#endif
