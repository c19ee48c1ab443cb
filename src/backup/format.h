/*
 * format.h - what continuous backup writes to an object store, and the readers of it
 * (docs/backup.md, "Bucket layout"): object names, log batches and snapshot manifests.
 *
 * Everything read back from a bucket is untrusted input: each reader bounds every length, checks
 * every number and the SHA-256 the writer recorded, and refuses rather than guesses (a corrupt
 * object is an error naming the object, never a partial restore). The readers are fuzzed
 * (tests/fuzz/fuzz_backup.c). Nothing here does I/O.
 */
#ifndef EF_BACKUP_FORMAT_H
#define EF_BACKUP_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/bytes.h"

#define EF_BK_BATCH_MAGIC "edgeflag-backup-batch/1"
#define EF_BK_MANIFEST_FORMAT "edgeflag-backup-snapshot/1"
#define EF_BK_HISTORY_MAX 64
#define EF_BK_ENTRY_MAX ((size_t)256 << 20) /* as a replication entry (EF_SYNC_MAX_ENTRY_DEFAULT) */

/* ---- object names, below the prefix: {history}/snap/{seq}-{time}.db|.json and
 *      {history}/log/{first}-{last}-{lasttime}.batch, numbers as 20 zero-padded digits so that
 *      names sort as numbers ---- */
typedef enum ef_bk_kind { EF_BK_NONE, EF_BK_SNAP_DB, EF_BK_SNAP_MANIFEST, EF_BK_BATCH } ef_bk_kind;

typedef struct ef_bk_name {
    ef_bk_kind kind;
    char history[EF_BK_HISTORY_MAX + 1];
    uint64_t seq;     /* snapshot: its seq; batch: first */
    uint64_t last;    /* batch: last seq */
    int64_t time_ns;  /* snapshot: commit time of the entry at seq (0: unknown); batch: of last */
} ef_bk_name;

/* The name relative to the prefix ("" when it does not fit). */
void ef_bk_name_format(const ef_bk_name *n, char *out, size_t cap);
/* Parses a name relative to the prefix; kind EF_BK_NONE (and false) for anything else. */
bool ef_bk_name_parse(ef_bytes rel, ef_bk_name *out);

/* ---- log batches ---- */
typedef struct ef_bk_entry {
    uint64_t seq;
    int64_t time_ns;
    ef_bytes entry; /* the change-log entry text, verbatim */
} ef_bk_entry;

/* Appends a batch: the header line `edgeflag-backup-batch/1 history=H first=A last=B count=N
 * sha256=HEX` then, per entry, `SEQ TIME LEN\n` + LEN bytes + `\n`. Entries must be consecutive. */
void ef_bk_batch_write(ef_buf *out, const char *history, const ef_bk_entry *e, size_t n);

typedef int (*ef_bk_entry_fn)(void *ctx, const ef_bk_entry *e);
typedef struct ef_bk_batch_head {
    char history[EF_BK_HISTORY_MAX + 1];
    uint64_t first, last, count;
} ef_bk_batch_head;
/* Checks a whole batch (header, SHA-256 of the body, lengths, consecutive seqs first..last, count)
 * before calling fn for any entry; then calls fn per entry in order (a non-zero return stops and
 * is returned). Returns 0, or -1 with a reason in err. */
int ef_bk_batch_read(const char *data, size_t len, ef_bk_batch_head *head, ef_bk_entry_fn fn,
                     void *ctx, char *err, size_t errlen);

/* ---- snapshot manifests: one JSON object ---- */
typedef struct ef_bk_manifest {
    char history[EF_BK_HISTORY_MAX + 1];
    char db_id[EF_BK_HISTORY_MAX + 1];
    uint64_t seq;
    int64_t time_ns;
    uint64_t bytes;
    int schema;
    uint8_t sha256[32];
} ef_bk_manifest;

void ef_bk_manifest_write(ef_buf *out, const ef_bk_manifest *m);
int ef_bk_manifest_read(const char *data, size_t len, ef_bk_manifest *m, char *err, size_t errlen);

/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void ef_bk_hex(const uint8_t *in, size_t n, char *out);
/* A history id as the store makes them: 1 to 64 lower-case hex digits. */
bool ef_bk_history_valid(ef_bytes h);

#endif
