/*
 * restore.h - rebuilds a store from what continuous backup wrote to a bucket (docs/backup.md):
 * the latest snapshot at or before the point asked for, then the log batches after it, applied
 * entry by entry up to that point, then installed like `edgeflag restore FILE` (store/backup.h):
 * under a new history, never over a store a running server holds.
 *
 * Everything read from the bucket is checked before it is used (manifest, SHA-256 of the snapshot,
 * each batch's own checksum and framing, no gap between snapshot and batches); any failure is an
 * error naming the object and leaves the target untouched.
 */
#ifndef EF_BACKUP_RESTORE_H
#define EF_BACKUP_RESTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "backup/s3.h"
#include "store/backup.h"

typedef struct ef_bk_restore_opts {
    const char *db;      /* target path */
    const char *history; /* NULL: the history written to most recently */
    bool has_seq;        /* --at SEQ: the state right after the entry at seq */
    uint64_t at_seq;
    bool has_time;       /* --at TIME: the last state committed at or before it */
    int64_t at_time_ns;
} ef_bk_restore_opts;

typedef struct ef_bk_restore_result {
    ef_backup_info info;     /* the restored store (new history), as ef_sqlite_restore reports */
    char source_history[65]; /* the history read from the bucket */
    uint64_t snapshot_seq;   /* the snapshot it started from */
    uint64_t batches, entries; /* what was applied on top of it */
} ef_bk_restore_result;

/* Returns 0, or -1 with err (2 = the input or the request was refused, 1 = could not write). */
int ef_bk_restore(ef_s3 *s3, const ef_bk_restore_opts *o, ef_bk_restore_result *res, int *status,
                  char *err, size_t errlen);

#endif
