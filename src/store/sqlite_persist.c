/*
 * sqlite_persist.c - a follower's durability in batches, and knowing after a restart whether it
 * can have lost any of it.
 *
 * A replica's entries are already durable on its primary; what the replica's own file buys is a
 * fast restart. So a store opened with ef_sqlite_opts.sync_ms commits the entries it applies with
 * synchronous=NORMAL (in WAL mode: written to the WAL, not fsync'd, never corrupt) and publishes
 * them at once, and one thread here makes them durable every sync_ms with a single fdatasync of
 * the WAL, however many entries arrived meanwhile. A process crash loses nothing (the kernel holds
 * what was written); only a machine crash or power loss can take back what the last sync_ms applied.
 *
 * That last case must not go unnoticed: a replica that answered version 900 before the power went
 * and restarts at 880 must say so. The lock file ("<db>.lock", held for the store's life) records
 * the machine's boot id, whether batched durability was on, and "open" until a clean close sets
 * "clean". Opening a file left "open" by a batched run under another boot id therefore means
 * "may have lost entries", which the caller turns into a replica that reports itself recovering
 * until it has caught up (docs/replication.md). Same boot id: the process died but the machine did
 * not, and the page cache still held everything.
 *
 * Never: acknowledge a write of this store's own (not an applied entry) before it is on disk
 * (sq_persist_local does the fsync in the writer's path), or block the writer on the batch thread.
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

static int lock_write(sq *s, const char *state)
{
    char text[256];
    int len = snprintf(text, sizeof(text), "%ld\nboot=%s\nbatched=%d\nstate=%s\n", (long)getpid(),
                       s->opts.boot_id ? s->opts.boot_id : "", s->opts.sync_ms > 0, state);
    if (len < 0 || (size_t)len >= sizeof(text)) return -1;
    if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, text, (size_t)len, 0) != len) return -1;
    return fsync(s->lock_fd);
}

int sq_lock_record_open(sq *s)
{
    if (s->lock_fd < 0) return 0;
    char text[512];
    ssize_t got = pread(s->lock_fd, text, sizeof(text) - 1, 0);
    text[got > 0 ? got : 0] = '\0';
    char boot[128], batched[8], state[16];
    lock_field(text, "boot", boot, sizeof(boot));
    lock_field(text, "batched", batched, sizeof(batched));
    lock_field(text, "state", state, sizeof(state));
    /* A file from an older edgeflag (no record) was written with every commit durable. */
    s->may_have_lost = strcmp(state, "open") == 0 && strcmp(batched, "1") == 0 &&
                       s->opts.boot_id && strcmp(boot, s->opts.boot_id) != 0;
    if (s->opts.may_have_lost) *s->opts.may_have_lost = s->may_have_lost;
    /* The record must be on disk before anything is applied, or a crash right after could leave a
     * "clean" record over unsynced entries. Failing to write it is failing to open. */
    return lock_write(s, "open");
}

void sq_lock_record_clean(sq *s)
{
    if (s->lock_fd >= 0) (void)lock_write(s, "clean");
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
        uint64_t upto = s->persist_applied;
        pthread_mutex_unlock(&s->persist_mu);
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

void sq_persist_durable(sq *s, uint64_t *applied, uint64_t *durable)
{
    *applied = *durable = 0;
    if (!s->persist_started) return;
    pthread_mutex_lock(&s->persist_mu);
    *applied = s->persist_applied;
    *durable = s->persist_durable;
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
