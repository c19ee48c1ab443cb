/*
 * sqlite_checkpoint.c - a follower's WAL checkpoints on a thread of their own, off the path from
 * an entry's arrival to its being served.
 *
 * SQLite checkpoints a WAL database from the connection that commits: the commit that takes the
 * WAL past 1,000 pages copies them into the database file and, with synchronous NORMAL or FULL,
 * fsyncs the WAL and then the file before it returns. On a replica that commit is an entry about
 * to be published, so one entry in a hundred waited for two fsyncs and a few MiB of copying: a
 * replica's apply p99 0.8-2.8 ms against 0.55 ms with this file (bench_store --apply 200, three
 * interleaved runs each). Here the writer connection's WAL hook, which replaces the automatic
 * checkpoint, only signals this thread, which runs PASSIVE checkpoints on a connection of its own:
 * they copy what no reader still needs and never block the writer. Starting the WAL over needs
 * one short pass by the writer itself, after a commit (ckpt_main says why). A primary keeps
 * SQLite's own checkpoint (sq_checkpoint_start says why).
 *
 * Durability is unchanged: a checkpoint moves committed pages from the WAL into the database
 * file, syncing the WAL before and the file after, exactly as the automatic one did
 * (sqlite_persist.c relies on that: the WAL is never reused before the file holds its pages).
 *
 * Never: block or fail a commit because of a checkpoint. If the thread falls far behind (it cannot
 * open its connection, or a checkpoint fails over and over), the WAL hook checkpoints inline past
 * SQ_CKPT_INLINE_FRAMES, as SQLite would have, so the WAL stays bounded.
 */
#include <stdio.h>
#include <stdlib.h>

#include "store/sqlite_int.h"
#include "base/log.h"
#include "base/thread.h"

/* Frames (pages) written since the last pass that start another copying pass: SQLite's own
 * automatic threshold (SQLITE_DEFAULT_WAL_AUTOCHECKPOINT). */
#define SQ_CKPT_FRAMES 1000
/* WAL size at which it is started over, which holds the writer off for a moment (below): about
 * 16 MiB of 4 KiB pages, so that moment comes once in some 400 one-flag writes rather than 100. */
#define SQ_CKPT_RESTART_FRAMES 4000
/* Past this the writer checkpoints itself: the thread is not keeping up. */
#define SQ_CKPT_INLINE_FRAMES 10000

/* Runs on the writer's thread after every commit, under the store's mutex; frames is the WAL's
 * size in pages. Must stay cheap: it is on every write's path. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    sq *s = arg;
    pthread_mutex_lock(&s->ckpt_mu);
    bool finish = s->ckpt_finish || frames >= SQ_CKPT_INLINE_FRAMES;
    s->ckpt_finish = false;
    if (finish) {
        pthread_mutex_unlock(&s->ckpt_mu);
        /* The same call SQLite's own hook makes; a busy checkpointer (ours) is not an error.
         * After the thread's bulk pass only the frames written since are left to copy; then
         * the next transaction starts the WAL over. */
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (frames < s->ckpt_copied) s->ckpt_copied = 0; /* the WAL was started over */
    if (frames >= SQ_CKPT_RESTART_FRAMES)
        s->ckpt_want = SQ_CKPT_RESTART;
    else if (frames - s->ckpt_copied >= SQ_CKPT_FRAMES && s->ckpt_want == SQ_CKPT_NONE)
        s->ckpt_want = SQ_CKPT_COPY;
    if (s->ckpt_want != SQ_CKPT_NONE && s->ckpt_idle) pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->ckpt_mu);
    return SQLITE_OK;
}

/* A connection sees the WAL only once it has read the database: until then a checkpoint on it
 * does nothing and says the file is not in WAL mode. NULL when it cannot be opened. */
static sqlite3 *ckpt_open(const sq *s)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                        NULL) == SQLITE_OK &&
        sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL) == SQLITE_OK)
        return db;
    sqlite3_close(db);
    return NULL;
}

static void *ckpt_main(void *arg)
{
    ef_thread_name("ef-checkpoint");
    sq *s = arg;
    sqlite3 *db = NULL; /* opened on first use: most stores never reach a checkpoint */
    bool warned = false;
    pthread_mutex_lock(&s->ckpt_mu);
    for (;;) {
        s->ckpt_idle = true;
        while (!s->ckpt_stop && s->ckpt_want == SQ_CKPT_NONE)
            pthread_cond_wait(&s->ckpt_cv, &s->ckpt_mu);
        s->ckpt_idle = false;
        if (s->ckpt_stop) break;
        int want = s->ckpt_want;
        s->ckpt_want = SQ_CKPT_NONE;
        pthread_mutex_unlock(&s->ckpt_mu);
        if (!db) db = ckpt_open(s);
        /* The bulk, beside the writer: copies and syncs all it can while writes go on. */
        int copied = 0;
        int rc = db ? sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, &copied)
                    : SQLITE_CANTOPEN;
        /* SQLite starts the WAL over at a writer's next transaction once every frame in it was
         * copied, which a pass beside a steady stream of writes never achieves (a transaction
         * that began before the pass ended keeps it from restarting). So the few frames left are
         * copied by the writer itself, in its WAL hook right after its next commit: its next
         * transaction then starts the WAL over. That short pass can delay the next write, never
         * a commit already made. (This thread once took the store's mutex for it instead, and
         * a writer committing back to back could keep it from ever getting the mutex: the WAL
         * then grew to the inline limit, test_wal_checkpointed_in_background 1 run in 8.) */
        if (rc == SQLITE_OK && want == SQ_CKPT_RESTART) {
            pthread_mutex_lock(&s->ckpt_mu);
            s->ckpt_finish = true;
            pthread_mutex_unlock(&s->ckpt_mu);
        }
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && !warned) {
            /* Once: the writer's inline checkpoint keeps the WAL bounded meanwhile. */
            ef_log(EF_LOG_WARN, "sqlite: a background checkpoint failed", "database", s->path,
                   "error", db ? sqlite3_errmsg(db) : "cannot open a second connection", NULL);
            warned = true;
        }
        pthread_mutex_lock(&s->ckpt_mu);
        if (rc == SQLITE_OK && copied > s->ckpt_copied) s->ckpt_copied = copied;
    }
    pthread_mutex_unlock(&s->ckpt_mu);
    sqlite3_close(db);
    return NULL;
}

int sq_checkpoint_start(sq *s, ef_store_err *err)
{
    /* Only a follower's store (batched durability): there the commit is the only wait on an
     * entry's way to being served. A primary's write waits for its own fsync anyway, and a
     * checkpoint syncing the database file beside it slowed every write instead (one-flag update
     * p50 +10 % in bench_store, three interleaved runs), for a p99 that did not clearly move. */
    if (!s->opts.sync_ms || !sq_is_file(s->path)) return 0; /* in memory: no WAL */
    if (pthread_mutex_init(&s->ckpt_mu, NULL) != 0)
        return ef_store_fail(err, EF_STORE_INTERNAL, "cannot create the checkpoint thread's lock");
    if (pthread_cond_init(&s->ckpt_cv, NULL) != 0) {
        pthread_mutex_destroy(&s->ckpt_mu);
        return ef_store_fail(err, EF_STORE_INTERNAL, "cannot create the checkpoint thread's lock");
    }
    if (pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) != 0) {
        pthread_cond_destroy(&s->ckpt_cv);
        pthread_mutex_destroy(&s->ckpt_mu);
        return ef_store_fail(err, EF_STORE_INTERNAL, "cannot start the checkpoint thread");
    }
    s->ckpt_started = true;
    /* Replaces SQLite's automatic checkpoint on this connection (sqlite3_wal_hook's contract). */
    sqlite3_wal_hook(s->db, wal_hook, s);
    return 0;
}

void sq_checkpoint_stop(sq *s)
{
    if (!s->ckpt_started) return;
    sqlite3_wal_hook(s->db, NULL, NULL);
    pthread_mutex_lock(&s->ckpt_mu);
    s->ckpt_stop = true;
    pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->ckpt_mu);
    pthread_join(s->ckpt_thread, NULL);
    pthread_cond_destroy(&s->ckpt_cv);
    pthread_mutex_destroy(&s->ckpt_mu);
    s->ckpt_started = false;
}
