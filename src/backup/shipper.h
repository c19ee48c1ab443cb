/*
 * shipper.h - continuous backup of a store to an S3-compatible bucket (`serve --backup s3://…`,
 * docs/backup.md): every committed change-log entry in small batches, plus periodic full snapshots
 * (a consistent SQLite backup, store/backup.h).
 *
 * The store never waits on the bucket: the shipper runs on its own thread and reads the committed
 * change log like a replica would. An unreachable or refusing bucket is retried with backoff and
 * reported (status for /ready, metrics, the log); what it still owes is shipped when the bucket
 * returns, or, when the change log no longer holds it, covered by a new snapshot. It never
 * deletes an object and never writes an object under another history than the store's.
 */
#ifndef EF_BACKUP_SHIPPER_H
#define EF_BACKUP_SHIPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup/s3.h"
#include "base/buf.h"
#include "http/metrics.h"
#include "store/store.h"

typedef struct ef_shipper_config {
    ef_s3_config s3;
    const char *db_path;          /* the SQLite store's file (ef_store_file_path), for snapshots */
    unsigned batch_ms;            /* wait for more entries this long before shipping (0: 200) */
    size_t batch_max_entries;     /* 0: 1000 */
    uint64_t snapshot_every;      /* a snapshot after this many entries (0: 10000) */
    unsigned snapshot_interval_s; /* and at least this often when there were writes (0: 3600) */
} ef_shipper_config;

typedef struct ef_shipper ef_shipper;

/* Checks the configuration (no request yet). NULL with a message in err. */
ef_shipper *ef_shipper_new(ef_store *store, const ef_shipper_config *cfg, char *err, size_t errlen);
int ef_shipper_start(ef_shipper *s, char *err, size_t errlen);
/* Ships what is committed (for at most grace_ms more), then stops the thread; a request to the
 * bucket still in flight at the deadline is abandoned (ef_s3_set_cancel). */
void ef_shipper_stop(ef_shipper *s, unsigned grace_ms);
void ef_shipper_free(ef_shipper *s);

/* Tells the shipper that the store committed seq at time_ns (wall), from the store's commit
 * listener: the lag it reports (/ready, metrics) counts the entry at once rather than when its
 * thread next looks (every batch_ms). Never blocks on the bucket or the store; NULL s: nothing. A
 * store whose writes arrive otherwise (a replica's applied entries) is seen when the thread looks. */
void ef_shipper_committed(ef_shipper *s, uint64_t seq, int64_t time_ns);

/* Appends `"backup":{…}` (target, state, shipped and store seq, lag, last success, failures, last
 * error) for /ready; *degraded is set when the bucket is failing. Never blocks on the bucket. */
void ef_shipper_ready_json(ef_shipper *s, ef_buf *out, bool *degraded);
/* Registers edgeflag_backup_* metrics (a collector over the shipper's state). */
int ef_shipper_metrics(ef_shipper *s, ef_metrics *m);

#endif
