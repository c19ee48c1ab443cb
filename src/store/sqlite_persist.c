/*
 * sqlite_persist.c - a follower's writes in batches, their durability, and knowing after a restart
 * whether it can have lost any of them.
 *
 * A replica's entries are already durable on its primary; what the replica's own file buys is a
 * fast restart. So a store opened with ef_sqlite_opts.sync_ms applies each entry as a savepoint of
 * one open write transaction (the batch) and publishes it at once: the entry costs no COMMIT of its
 * own, and is served before it is written out. One thread here commits the batch every sync_ms
 * (synchronous=NORMAL in WAL mode: written, never corrupt) and makes it durable with a single
 * fdatasync of the WAL, however many entries arrived meanwhile. Everything else on the writer
 * connection sees the batch (management reads, the change log a chained replica reads); a
 * transaction of another kind (a dump load, an entry whose foreign keys wait for COMMIT) commits
 * the batch first. Readers on connections of their own (dumps, backups, `edgeflag export`) see
 * what was committed.
 *
 * So a replica can lose what the last sync_ms applied: all of it on a process crash (the batch was
 * never committed), and what was committed but not synced on a machine crash or power loss. That
 * must not go unnoticed: a replica that answered version 900 before the crash and restarts at 880
 * must say so. The lock file ("<db>.lock", held for the store's life) records the machine's boot
 * id, whether entries were held in batches ("unwritten=1") and a state: "open" while a batch may
 * hold entries not yet written (set before its first entry is served), "written" after its COMMIT,
 * "clean" after a clean close synced everything. Opening a file left "open" on the same boot, or
 * not "clean" under another boot id, therefore means "may have lost entries", which the caller
 * turns into a replica that reports itself recovering until it has caught up
 * (docs/replication.md). A file left by a run that committed every entry (older edgeflag:
 * "batched=1" without "unwritten") lost something only if the machine restarted (another boot id).
 *
 * A batch that cannot be committed (disk full, I/O error) is rolled back: its entries were
 * published, but are gone from the file. batch_lost() drops the incremental states (rebuilt from
 * the file when next used) and holds publishing back until entries applied again pass the highest
 * one published, so versions never go back; the follower's next entry no longer follows the file's
 * seq and it resumes from there. The entries are the upstream's, verbatim, so applying them again
 * ends at the state that was published.
 *
 * Never: acknowledge a write of this store's own (not an applied entry) before it is on disk
 * (sq_persist_local does the fsync in the writer's path), or block the writer on the batch thread
 * for more than one COMMIT.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/sqlite_int.h"
#include "base/log.h"
#include "base/thread.h"

/* ---- the lock file's record ---- */

/* Reads "key=value" from the lock file's text into out ("" when absent). */
static void lock_field(const char *text, const char *key, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) != 0 || p[kl] != '=') continue;
        const char *v = p + kl + 1;
        size_t n = strcspn(v, "\n");
        if (n >= outlen) n = outlen - 1;
        memcpy(out, v, n);
        out[n] = '\0';
        return;
    }
}

/* Rewrites the record with state. sync: fsync'd too (a record that must survive the machine); the
 * marks a batch sets and clears need only survive the process, which the page cache does. */
#define LOCK_RECORD 256

static int lock_write(sq *s, const char *state, bool sync)
{
    char text[LOCK_RECORD];
    int len = snprintf(text, sizeof(text), "%ld\nboot=%.100s\nbatched=%d\nunwritten=%d\nstate=%s\n",
                       (long)getpid(), s->opts.boot_id ? s->opts.boot_id : "", s->opts.sync_ms > 0,
                       s->opts.sync_ms > 0, state);
    if (len < 0 || (size_t)len >= LOCK_RECORD) return -1;
    /* One size for every record (padded with empty lines), so a mark is one pwrite over the last
     * record and never a truncation: ext4 journals a truncation, and a batch makes two marks. */
    memset(text + len, '\n', LOCK_RECORD - (size_t)len);
    if (sync && ftruncate(s->lock_fd, LOCK_RECORD) != 0) return -1; /* an older, longer record */
    if (pwrite(s->lock_fd, text, LOCK_RECORD, 0) != LOCK_RECORD) return -1;
    s->lock_open = strcmp(state, "open") == 0;
    return sync ? fsync(s->lock_fd) : 0;
}

int sq_lock_record_open(sq *s)
{
    if (s->lock_fd < 0) return 0;
    char text[512];
    ssize_t got = pread(s->lock_fd, text, sizeof(text) - 1, 0);
    text[got > 0 ? got : 0] = '\0';
    char boot[128], batched[8], unwritten[8], state[16];
    lock_field(text, "boot", boot, sizeof(boot));
    lock_field(text, "batched", batched, sizeof(batched));
    lock_field(text, "unwritten", unwritten, sizeof(unwritten));
    lock_field(text, "state", state, sizeof(state));
    /* States: "open" (a run with batches: one may hold entries not written to the file; an older
     * edgeflag's run: entries written, maybe not synced), "written" (every applied entry is in the
     * file, maybe not synced), "clean" (closed, everything synced). A file from an older edgeflag
     * without a record was written with every commit durable. After a restart of the machine
     * anything not clean may have lost what was not synced; after the process alone, only an open
     * batch is lost (the page cache keeps what was written). */
    bool rebooted = s->opts.boot_id && strncmp(boot, s->opts.boot_id, 100) != 0; /* as recorded */
    bool batches = strcmp(batched, "1") == 0;
    s->may_have_lost = batches && strcmp(state, "clean") != 0 && *state &&
                       (rebooted || (strcmp(unwritten, "1") == 0 && strcmp(state, "open") == 0));
    if (s->opts.may_have_lost) *s->opts.may_have_lost = s->may_have_lost;
    /* The record must be on disk before anything is applied, or a crash right after could leave a
     * "clean" record over unsynced entries. Failing to write it is failing to open. Nothing is
     * applied yet: a batch marks it open when it begins. */
    return lock_write(s, s->opts.sync_ms > 0 ? "written" : "open", true);
}

void sq_lock_record_clean(sq *s)
{
    if (s->lock_fd >= 0) (void)lock_write(s, "clean", true);
}

/* ---- the open batch (every function here: the caller holds mu) ---- */

/* What the batch held is gone from the file (see the top of this file). */
static void batch_lost(sq *s, const char *why)
{
    if (!sqlite3_get_autocommit(s->db)) sq_tx_rollback(s);
    sq_reset_stmts(s);
    s->batch_open = s->in_entry = false;
    __atomic_add_fetch(&s->batch_lost, 1, __ATOMIC_RELAXED); /* read without mu: /metrics */
    if (s->batch_last > s->republish_hold) s->republish_hold = s->batch_last;
    sq_incr_free(s); /* they describe what was published, not what the file holds */
    uint64_t file_seq = sq_state_seq(s);
    if (s->persist_started) {
        pthread_mutex_lock(&s->persist_mu);
        if (s->persist_applied > file_seq) s->persist_applied = file_seq;
        pthread_mutex_unlock(&s->persist_mu);
    }
    char from[24], to[24];
    snprintf(from, sizeof(from), "%llu", (unsigned long long)file_seq + 1);
    snprintf(to, sizeof(to), "%llu", (unsigned long long)s->republish_hold);
    ef_log(EF_LOG_ERROR, "sqlite: applied entries could not be written to the file; they are applied again",
           "database", s->path, "error", why, "from_seq", from, "published_to_seq", to, NULL);
}

int sq_batch_entry_begin(sq *s, ef_store_err *err)
{
    if (!s->batch_open) {
        /* before anything the batch holds can be served: a kill from here on loses it */
        if (s->lock_fd >= 0 && !s->lock_open && lock_write(s, "open", false) != 0)
            return ef_store_fail(err, EF_STORE_UNAVAILABLE, "cannot mark the lock file: %s",
                                 strerror(errno));
        sqlite3_stmt *st = sq_stmt(s, SL_TX_BEGIN, "BEGIN IMMEDIATE", err);
        if (!st) return -1;
        if (sqlite3_step(st) != SQLITE_DONE) return sq_db_err(s, err, "begin");
        s->batch_open = true;
        s->batch_entries = 0;
    }
    sqlite3_stmt *st = sq_stmt(s, SL_BATCH_SAVE, "SAVEPOINT ef_entry", err);
    if (!st) return -1;
    if (sqlite3_step(st) != SQLITE_DONE) return sq_db_err(s, err, "savepoint");
    s->in_entry = true;
    return 0;
}

int sq_batch_entry_end(sq *s, uint64_t seq, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_BATCH_RELEASE, "RELEASE ef_entry", err);
    if (!st) return -1;
    if (sqlite3_step(st) != SQLITE_DONE) return sq_db_err(s, err, "release");
    s->in_entry = false;
    s->batch_last = seq;
    s->batch_entries++;
    return 0;
}

void sq_batch_entry_undo(sq *s)
{
    s->in_entry = false;
    /* Some errors (SQLITE_FULL, IOERR, NOMEM) roll the whole transaction back by themselves. */
    if (sqlite3_get_autocommit(s->db)) {
        batch_lost(s, sqlite3_errmsg(s->db));
        return;
    }
    if (sq_exec(s, "ROLLBACK TO ef_entry; RELEASE ef_entry", NULL) != 0)
        batch_lost(s, sqlite3_errmsg(s->db));
}

/* The batch ended with everything it applied in the file: the record says so. A failed mark
 * leaves "open": a kill then reads as a loss, which is only cautious. */
static void batch_closed(sq *s)
{
    s->batch_open = false;
    if (s->lock_fd >= 0 && s->lock_open) (void)lock_write(s, "written", false);
}

int sq_batch_commit(sq *s, ef_store_err *err)
{
    if (!s->batch_open) return 0;
    sq_reset_stmts(s);
    if (s->batch_entries == 0) {
        /* only refused entries, each rolled back to its savepoint: nothing to write (a COMMIT
         * would write their pages back as they were) */
        sq_tx_rollback(s);
        if (sqlite3_get_autocommit(s->db)) {
            batch_closed(s);
            return 0;
        }
    }
    sqlite3_stmt *st = sq_stmt(s, SL_TX_COMMIT, "COMMIT", err);
    if (st && sqlite3_step(st) == SQLITE_DONE) {
        sqlite3_reset(st);
        __atomic_add_fetch(&s->batch_commits, 1, __ATOMIC_RELAXED);
        batch_closed(s);
        return 0;
    }
    char why[200];
    snprintf(why, sizeof(why), "%s", st ? sqlite3_errmsg(s->db) : "cannot prepare COMMIT");
    batch_lost(s, why);
    return ef_store_fail(err, EF_STORE_UNAVAILABLE,
                         "the entries applied since the last batch could not be written to the"
                         " database file (%s); they are applied again from the upstream", why);
}

/* ---- the batch thread ---- */

/* fdatasync of the WAL file as it is now: every commit that returned before this call is then on
 * disk (a checkpoint in synchronous=NORMAL syncs the database file before the WAL is reused). */
static int wal_sync(sq *s)
{
    const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->db, "main"));
    if (!wal || !*wal) return 0; /* in-memory */
    struct stat now, held;
    if (s->wal_fd >= 0 && (stat(wal, &now) != 0 || fstat(s->wal_fd, &held) != 0 ||
                           now.st_ino != held.st_ino || now.st_dev != held.st_dev)) {
        close(s->wal_fd); /* the WAL was removed or replaced: sync the one that exists */
        s->wal_fd = -1;
    }
    if (s->wal_fd < 0) {
        s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
        if (s->wal_fd < 0) return errno == ENOENT ? 0 : -1; /* no WAL: everything is in the file */
    }
    return fdatasync(s->wal_fd);
}

static void *persist_main(void *arg)
{
    ef_thread_name("ef-persist");
    sq *s = arg;
    pthread_mutex_lock(&s->persist_mu);
    for (;;) {
        s->persist_idle = true;
        while (!s->persist_stop && s->persist_applied <= s->persist_durable)
            pthread_cond_wait(&s->persist_cv, &s->persist_mu);
        s->persist_idle = false;
        if (s->persist_stop) break;
        /* Let a batch gather: everything applied in the next sync_ms rides on one fdatasync. */
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)(s->opts.sync_ms % 1000) * 1000000L;
        until.tv_sec += s->opts.sync_ms / 1000 + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!s->persist_stop &&
               pthread_cond_timedwait(&s->persist_cv, &s->persist_mu, &until) != ETIMEDOUT) {
        }
        pthread_mutex_unlock(&s->persist_mu);
        /* The batch's COMMIT holds off the next entry for as long as it takes, once per sync_ms. A
         * batch lost here is logged and applied again (batch_lost). */
        pthread_mutex_lock(&s->mu);
        (void)sq_batch_commit(s, NULL);
        pthread_mutex_lock(&s->persist_mu);
        uint64_t upto = s->persist_applied; /* all committed: the writer is held off */
        pthread_mutex_unlock(&s->persist_mu);
        pthread_mutex_unlock(&s->mu);
        int rc = wal_sync(s);
        pthread_mutex_lock(&s->persist_mu);
        if (rc == 0) {
            if (upto > s->persist_durable) s->persist_durable = upto;
        } else {
            s->persist_failures++;
            /* try again after the next interval; the entries stay applied and published */
            struct timespec back;
            clock_gettime(CLOCK_MONOTONIC, &back);
            back.tv_sec += 1;
            while (!s->persist_stop &&
                   pthread_cond_timedwait(&s->persist_cv, &s->persist_mu, &back) != ETIMEDOUT) {
            }
        }
    }
    pthread_mutex_unlock(&s->persist_mu);
    return NULL;
}

int sq_persist_start(sq *s, ef_store_err *err)
{
    s->wal_fd = -1;
    if (s->opts.sync_ms == 0) return 0;
    /* what the file holds at open is what survived: the counters start there */
    s->persist_applied = s->persist_durable = sq_state_seq(s);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&s->persist_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0 || pthread_mutex_init(&s->persist_mu, NULL) != 0)
        return ef_store_fail(err, EF_STORE_INTERNAL, "cannot create the durability thread's lock");
    if (pthread_create(&s->persist_thread, NULL, persist_main, s) != 0) {
        pthread_cond_destroy(&s->persist_cv);
        pthread_mutex_destroy(&s->persist_mu);
        return ef_store_fail(err, EF_STORE_INTERNAL, "cannot start the durability thread");
    }
    s->persist_started = true;
    return 0;
}

void sq_persist_applied(sq *s, uint64_t seq)
{
    if (!s->persist_started) return;
    pthread_mutex_lock(&s->persist_mu);
    if (seq > s->persist_applied) s->persist_applied = seq;
    /* Only an idle thread needs waking: one gathering a batch syncs up to persist_applied when its
     * interval ends, and a signal per entry would cost a context switch per entry. */
    if (s->persist_idle) pthread_cond_signal(&s->persist_cv);
    pthread_mutex_unlock(&s->persist_mu);
}

int sq_persist_local(sq *s, uint64_t seq, ef_store_err *err)
{
    if (!s->persist_started) return 0;
    if (wal_sync(s) != 0)
        return ef_store_fail(err, EF_STORE_UNAVAILABLE,
                             "committed as seq %llu but could not make it durable: %s",
                             (unsigned long long)seq, strerror(errno));
    pthread_mutex_lock(&s->persist_mu);
    if (seq > s->persist_applied) s->persist_applied = seq;
    if (seq > s->persist_durable) s->persist_durable = seq;
    pthread_mutex_unlock(&s->persist_mu);
    return 0;
}

void sq_persist_batches(void *h, ef_store_batches *out)
{
    sq *s = h;
    *out = (ef_store_batches){0};
    if (!s->persist_started) return;
    /* not under mu, which a long dump load can hold for seconds: a scrape never waits for it */
    out->commits = __atomic_load_n(&s->batch_commits, __ATOMIC_RELAXED);
    out->lost = __atomic_load_n(&s->batch_lost, __ATOMIC_RELAXED);
    pthread_mutex_lock(&s->persist_mu);
    out->applied_seq = s->persist_applied;
    out->durable_seq = s->persist_durable;
    out->sync_failures = s->persist_failures;
    pthread_mutex_unlock(&s->persist_mu);
}

int sq_persist_stop(sq *s)
{
    int rc = 0;
    if (s->persist_started) {
        pthread_mutex_lock(&s->persist_mu);
        s->persist_stop = true;
        pthread_cond_signal(&s->persist_cv);
        pthread_mutex_unlock(&s->persist_mu);
        pthread_join(s->persist_thread, NULL);
        pthread_cond_destroy(&s->persist_cv);
        pthread_mutex_destroy(&s->persist_mu);
        s->persist_started = false;
        if (s->db) rc = wal_sync(s); /* what the last interval had not synced yet */
    }
    if (s->wal_fd >= 0) close(s->wal_fd);
    s->wal_fd = -1;
    return rc;
}
