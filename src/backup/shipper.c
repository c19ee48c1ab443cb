/*
 * shipper.c - the continuous backup thread (shipper.h, docs/backup.md).
 *
 * One round: look at the store's history (a new one starts a new series of objects, with a
 * snapshot first), take a snapshot when one is due, then read the committed change log after the
 * last shipped seq and PUT it as one batch (also when a periodic snapshot was refused: that one
 * is retried on its own backoff, never ahead of the log). A failed PUT is retried with backoff
 * (100 ms doubling to 30 s, each delay between half and all of the step) and nothing is marked
 * shipped until the
 * bucket answered 2xx, so after an outage everything owed is sent, in order. The store is only
 * ever read (a read of the change log holds its mutex for one SELECT; a snapshot is a separate
 * read-only connection), so a slow or dead bucket never delays a write.
 */
#include "backup/shipper.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backup/format.h"
#include "base/arena.h"
#include "base/clock.h"
#include "base/file.h"
#include "base/log.h"
#include "base/sha256.h"
#include "store/backup.h"
#include "base/thread.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define SNAPSHOT_MAX ((size_t)1 << 30)
/* A periodic snapshot that fails is retried on its own backoff, up to this: each attempt may
 * take a whole request timeout, during which no batch is shipped. */
#define SNAP_BACKOFF_MAX_MS 300000

struct ef_shipper {
    ef_store *store;
    ef_s3 *s3;
    char *db_path;
    char *snap_tmp;
    ef_shipper_config cfg;
    pthread_t th;
    bool started;
    unsigned seed;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    bool stopping;
    int64_t stop_deadline_ns; /* monotonic */
    char history[EF_STORE_ID_MAX + 1];
    bool synced;              /* the bucket's state for history was read */
    bool need_snapshot;
    uint64_t shipped_seq;     /* everything up to here is in the bucket (batch or snapshot) */
    uint64_t store_seq;
    uint64_t snap_seq;
    int64_t snap_mono_ns;
    int64_t oldest_unshipped_ns; /* wall time of the first entry not yet shipped, 0: none known */
    int64_t last_success_ns;  /* wall */
    uint64_t failures, consecutive, batches, snapshots, entries;
    bool failing;
    char last_error[700];
    uint64_t repair_last; /* ship exactly up to here next (rewrites a torn batch), 0: none */
    bool snap_failing; /* the last periodic snapshot was refused: reported while batches go on */
    unsigned snap_backoff_ms;
    int64_t snap_retry_mono_ns; /* no periodic snapshot attempt before this */
    int64_t last_warn_mono_ns;
};

/* The bucket's requests give up once the stop's grace period is over (ef_shipper_stop): a
 * bucket that is slow, silent or lists without end must not hold the server's shutdown for a
 * request timeout, or for 100000 listing pages. */
static bool past_stop_deadline(void *ctx)
{
    ef_shipper *s = ctx;
    pthread_mutex_lock(&s->mu);
    bool past = s->stopping && ef_clock_mono_ns() >= s->stop_deadline_ns;
    pthread_mutex_unlock(&s->mu);
    return past;
}

ef_shipper *ef_shipper_new(ef_store *store, const ef_shipper_config *cfg, char *err, size_t errlen)
{
    if (!store || !cfg->db_path) {
        snprintf(err, errlen, "--backup needs the embedded SQLite store (--db PATH)");
        return NULL;
    }
    ef_shipper *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (!s->cfg.batch_ms) s->cfg.batch_ms = 200;
    if (!s->cfg.batch_max_entries) s->cfg.batch_max_entries = 1000;
    if (!s->cfg.snapshot_every) s->cfg.snapshot_every = 10000;
    if (!s->cfg.snapshot_interval_s) s->cfg.snapshot_interval_s = 3600;
    ef_s3_err se;
    s->store = store;
    s->s3 = ef_s3_new(&cfg->s3, &se);
    s->db_path = strdup(cfg->db_path);
    size_t n = strlen(cfg->db_path) + 32;
    s->snap_tmp = malloc(n);
    if (!s->s3 || !s->db_path || !s->snap_tmp) {
        snprintf(err, errlen, "%s", s->s3 ? "out of memory" : se.message);
        ef_shipper_free(s);
        return NULL;
    }
    /* the copy never goes where the store's own files are matched (no "-wal" suffix) */
    snprintf(s->snap_tmp, n, "%s.backup-snapshot", cfg->db_path);
    s->cfg.s3.url = NULL; /* the strings were the caller's; ef_s3 holds its own copies */
    s->cfg.db_path = NULL;
    s->seed = (unsigned)ef_clock_mono_ns();
    pthread_mutex_init(&s->mu, NULL);
    ef_cond_init_monotonic(&s->cv); /* wait_ms's deadlines */
    ef_s3_set_cancel(s->s3, past_stop_deadline, s);
    return s;
}

/* ---- status updates ---- */

static void note_success(ef_shipper *s)
{
    pthread_mutex_lock(&s->mu);
    bool was = s->failing;
    s->last_success_ns = ef_clock_wall_ns();
    if (s->snap_failing) { /* batches are accepted, snapshots still refused: still failing */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->failing = false;
    s->consecutive = 0;
    pthread_mutex_unlock(&s->mu);
    if (was) ef_log(EF_LOG_INFO, "backup: the bucket answers again", "target", ef_s3_url(s->s3), NULL);
}

static void note_failure(ef_shipper *s, const char *msg)
{
    int64_t now = ef_clock_mono_ns();
    pthread_mutex_lock(&s->mu);
    bool first = !s->failing;
    s->failing = true;
    s->failures++;
    s->consecutive++;
    snprintf(s->last_error, sizeof(s->last_error), "%s", msg);
    uint64_t owed = s->store_seq > s->shipped_seq ? s->store_seq - s->shipped_seq : 0;
    bool warn = first || now - s->last_warn_mono_ns > 30 * (int64_t)1000000000;
    if (warn) s->last_warn_mono_ns = now;
    uint64_t k = s->consecutive;
    pthread_mutex_unlock(&s->mu);
    if (warn) {
        char o[32], f[32];
        snprintf(o, sizeof(o), "%" PRIu64, owed);
        snprintf(f, sizeof(f), "%" PRIu64, k);
        ef_log(EF_LOG_WARN, "backup: cannot ship to the bucket; retrying with backoff", "target",
               ef_s3_url(s->s3), "owed_entries", o, "attempts", f, "error", msg, NULL);
    }
}

/* ---- the bucket's state for a history ---- */

typedef struct scan {
    const char *history;
    uint64_t batch_last;
    ef_bk_name newest; /* the batch with the highest last seq */
    uint64_t snap_seq; /* a snapshot counts once its manifest exists */
    bool has_snap;
} scan;

static int on_scan(void *ctx, ef_bytes rel, uint64_t size)
{
    (void)size;
    scan *sc = ctx;
    ef_bk_name n;
    if (!ef_bk_name_parse(rel, &n) || strcmp(n.history, sc->history) != 0) return 0;
    if (n.kind == EF_BK_BATCH && n.last > sc->batch_last) {
        sc->batch_last = n.last;
        sc->newest = n;
    }
    if (n.kind == EF_BK_SNAP_MANIFEST && (!sc->has_snap || n.seq > sc->snap_seq)) {
        sc->snap_seq = n.seq;
        sc->has_snap = true;
    }
    return 0;
}

static int resync(ef_shipper *s, const char *history, uint64_t store_seq, char *err, size_t errlen)
{
    scan sc = {.history = history};
    char under[EF_STORE_ID_MAX + 2];
    snprintf(under, sizeof(under), "%s/", history);
    ef_s3_err se;
    if (ef_s3_list(s->s3, under, on_scan, &sc, &se)) {
        snprintf(err, errlen, "%s", se.message);
        return -1;
    }
    /* Batches are shipped one after the other, each only once the one before was accepted, so
     * only the newest can be incomplete: a server that keeps a partial object when the uploader
     * dies during its PUT (s3rver does; S3 does not) leaves it torn. It is read back, and when
     * it does not check out (or is not the range its name says), the same range is shipped
     * again under the same name. */
    s->repair_last = 0;
    if (sc.batch_last > sc.snap_seq) {
        char key[256], berr[200];
        ef_bk_name_format(&sc.newest, key, sizeof(key));
        ef_buf b;
        ef_buf_init(&b);
        ef_bk_batch_head bh;
        int g = ef_s3_get(s->s3, key, (size_t)1 << 30, &b, &se);
        bool torn = g == 0 && ef_bk_batch_read(b.data ? b.data : "", b.len, &bh, NULL, NULL, berr,
                                               sizeof(berr)) != 0;
        /* A body that checks out on its own but is another batch (another range or history,
         * as a bucket that mixed up two objects hands out) is no more the batch than a torn one:
         * restore refuses it ("its header does not match its name"), so it is shipped again. */
        if (g == 0 && !torn && (bh.first != sc.newest.seq || bh.last != sc.newest.last ||
                                strcmp(bh.history, sc.newest.history) != 0)) {
            torn = true;
            snprintf(berr, sizeof(berr), "it holds seq %" PRIu64 "-%" PRIu64 " of history %s",
                     bh.first, bh.last, bh.history);
        }
        ef_buf_free(&b);
        if (g != 0) {
            snprintf(err, errlen, "%s", se.message);
            return -1;
        }
        if (torn) {
            ef_log(EF_LOG_WARN, "backup: the newest batch in the bucket is incomplete; shipping it again",
                   "object", key, "error", berr, NULL);
            sc.batch_last = sc.newest.seq - 1;
            s->repair_last = sc.newest.last;
        }
    }
    uint64_t shipped = sc.batch_last > sc.snap_seq ? sc.batch_last : sc.snap_seq;
    if (shipped > store_seq) {
        snprintf(err, errlen,
                 "the bucket holds seq %" PRIu64 " of history %s but the store is at %" PRIu64
                 " on it: the store went back on its own history; restore it into a new history "
                 "(edgeflag restore) or back up under another prefix",
                 shipped, history, store_seq);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    s->shipped_seq = shipped;
    s->oldest_unshipped_ns = 0;
    s->snap_seq = sc.snap_seq;
    s->need_snapshot = !sc.has_snap;
    s->snap_mono_ns = ef_clock_mono_ns();
    s->synced = true;
    pthread_mutex_unlock(&s->mu);
    char a[32], b[32];
    snprintf(a, sizeof(a), "%" PRIu64, shipped);
    snprintf(b, sizeof(b), "%" PRIu64, store_seq);
    ef_log(EF_LOG_INFO, "backup: shipping", "target", ef_s3_url(s->s3), "history", history,
           "bucket_seq", a, "store_seq", b, "snapshot", sc.has_snap ? "present" : "due", NULL);
    return 0;
}

/* ---- snapshots ---- */

/* covers: the snapshot stands in for log entries the bucket lacks (a new history in the bucket, or
 * a change log trimmed before they were shipped), so shipping resumes after it. A periodic one
 * does not: the batches go on from where they were, so every point stays restorable. */
static int take_snapshot(ef_shipper *s, const char *history, bool covers, char *err, size_t errlen)
{
    ef_backup_info info;
    ef_store_err e;
    int64_t started = ef_clock_wall_ns();
    if (ef_sqlite_backup(s->db_path, s->snap_tmp, &info, &e)) {
        snprintf(err, errlen, "snapshot: %s", e.message);
        return -1;
    }
    /* The log no longer holds the entry at seq (a store just restored, or trimmed by age): then
     * no write happened between `started` and the copy, so the copy is the state at `started`. */
    if (!info.time_ns) info.time_ns = started;
    if (strcmp(info.id.history, history) != 0) { /* moved on meanwhile: the next round resyncs */
        unlink(s->snap_tmp);
        pthread_mutex_lock(&s->mu);
        s->synced = false;
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    char *data = NULL;
    size_t len = 0;
    int r = ef_file_read(s->snap_tmp, SNAPSHOT_MAX, &data, &len);
    unlink(s->snap_tmp);
    if (r != 0) { /* ef_file_read holds it to SNAPSHOT_MAX */
        snprintf(err, errlen, "snapshot: cannot read the copy %s: %s", s->snap_tmp, ef_file_strerror(r));
        return -1;
    }
    ef_bk_manifest m = {.seq = info.seq, .time_ns = info.time_ns, .bytes = len,
                        .schema = info.schema_version};
    snprintf(m.history, sizeof(m.history), "%s", history);
    snprintf(m.db_id, sizeof(m.db_id), "%s", info.id.db_id);
    ef_sha256(data, len, m.sha256);
    ef_bk_name n = {.kind = EF_BK_SNAP_DB, .seq = info.seq, .time_ns = info.time_ns};
    snprintf(n.history, sizeof(n.history), "%s", history);
    char key[256];
    ef_bk_name_format(&n, key, sizeof(key));
    ef_s3_err se;
    int rc = ef_s3_put(s->s3, key, data, len, &se);
    free(data);
    if (rc == 0) {
        /* the manifest last: a snapshot exists for restore only once it is complete */
        ef_buf mb;
        ef_buf_init(&mb);
        ef_bk_manifest_write(&mb, &m);
        n.kind = EF_BK_SNAP_MANIFEST;
        ef_bk_name_format(&n, key, sizeof(key));
        rc = ef_buf_ok(&mb) ? ef_s3_put(s->s3, key, mb.data, mb.len, &se) : -1;
        ef_buf_free(&mb);
    }
    if (rc) {
        snprintf(err, errlen, "snapshot: %s", se.message);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    s->snap_seq = info.seq;
    s->snap_mono_ns = ef_clock_mono_ns();
    s->need_snapshot = false;
    if (covers && info.seq > s->shipped_seq) {
        s->shipped_seq = info.seq;
        s->oldest_unshipped_ns = 0;
    }
    s->snapshots++;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* ---- batches ---- */

typedef struct collect {
    ef_arena *a;
    ef_bk_entry *e;
    size_t n, cap;
} collect;

static int on_change(void *ctx, const ef_store_change *c)
{
    collect *k = ctx;
    if (k->n == k->cap) return 1;
    char *copy = ef_arena_memdup(k->a, c->entry.p, c->entry.n);
    if (!copy && c->entry.n) return -1;
    k->e[k->n++] = (ef_bk_entry){c->seq, c->time_ns, {copy ? copy : "", c->entry.n}};
    return 0;
}

static int on_first(void *ctx, const ef_store_change *c)
{
    *(int64_t *)ctx = c->time_ns;
    return 1;
}

/* The commit time of the first entry the bucket lacks, for edgeflag_backup_lag_seconds, also while
 * nothing can be shipped (a bucket down since start-up). */
static void note_oldest(ef_shipper *s, uint64_t seq)
{
    pthread_mutex_lock(&s->mu);
    uint64_t shipped = s->shipped_seq;
    bool known = s->oldest_unshipped_ns != 0 || seq <= shipped;
    pthread_mutex_unlock(&s->mu);
    if (known) return;
    int64_t t = 0;
    ef_store_err e;
    if (ef_store_changes(s->store, shipped, 1, on_first, &t, &e) < 0 || !t) return;
    pthread_mutex_lock(&s->mu);
    if (!s->oldest_unshipped_ns && s->shipped_seq == shipped) s->oldest_unshipped_ns = t;
    pthread_mutex_unlock(&s->mu);
}

void ef_shipper_committed(ef_shipper *s, uint64_t seq, int64_t time_ns)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    if (seq > s->store_seq) {
        /* the first entry the bucket lacks is this one when everything before it was shipped */
        if (!s->oldest_unshipped_ns && seq == s->shipped_seq + 1) s->oldest_unshipped_ns = time_ns;
        s->store_seq = seq;
    }
    pthread_mutex_unlock(&s->mu);
}

/* One round. Returns 1 when there was nothing to do, 0 after progress, -1 with err. */
static int round_once(ef_shipper *s, char *err, size_t errlen)
{
    ef_store_identity id;
    ef_store_err e;
    uint64_t seq, first;
    if (ef_store_get_identity(s->store, &id, &e) || ef_store_seq(s->store, &seq, &first, &e)) {
        snprintf(err, errlen, "store: %s", e.message);
        return -1;
    }
    note_oldest(s, seq);
    pthread_mutex_lock(&s->mu);
    bool new_history = strcmp(id.history, s->history) != 0;
    /* a commit heard since the read above (ef_shipper_committed) may be ahead of it */
    if (new_history || seq > s->store_seq) s->store_seq = seq;
    if (new_history) {
        memcpy(s->history, id.history, sizeof(s->history));
        s->synced = false;
    }
    bool synced = s->synced;
    pthread_mutex_unlock(&s->mu);
    if (!synced) return resync(s, id.history, seq, err, errlen) ? -1 : 0;

    pthread_mutex_lock(&s->mu);
    bool covers = s->need_snapshot;
    int64_t now = ef_clock_mono_ns();
    bool due = s->need_snapshot || seq - s->snap_seq >= s->cfg.snapshot_every ||
               (seq > s->snap_seq &&
                now - s->snap_mono_ns >= (int64_t)s->cfg.snapshot_interval_s * 1000000000);
    if (!covers && now < s->snap_retry_mono_ns) due = false; /* a refused one waits its backoff */
    pthread_mutex_unlock(&s->mu);
    if (due) {
        int sr = take_snapshot(s, id.history, covers, err, errlen);
        pthread_mutex_lock(&s->mu);
        if (sr == 0) {
            s->snap_failing = false;
            s->snap_backoff_ms = 0;
            s->snap_retry_mono_ns = 0;
        }
        pthread_mutex_unlock(&s->mu);
        /* A covering snapshot stands in for entries the bucket cannot get otherwise: nothing is
         * shipped before it. */
        if (sr == 0 || covers) return sr ? -1 : 0;
        /* A periodic one only shortens a future restore; the batches are what keeps every
         * write restorable, so they must not wait behind it. Had they (as they did), a snapshot
         * the bucket refuses, or one grown too big to upload within a request's timeout,
         * stopped all shipping: every write after it was missing from the bucket. Report it,
         * retry it on its own backoff, and ship the log meanwhile. */
        note_failure(s, err);
        pthread_mutex_lock(&s->mu);
        unsigned b = s->snap_backoff_ms;
        b = b ? (b * 2 > SNAP_BACKOFF_MAX_MS ? SNAP_BACKOFF_MAX_MS : b * 2) : BACKOFF_MIN_MS;
        s->snap_backoff_ms = b;
        unsigned d = b / 2 + (unsigned)(rand_r(&s->seed) % (b / 2 + 1));
        s->snap_retry_mono_ns = ef_clock_mono_ns() + (int64_t)d * 1000000;
        s->snap_failing = true;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    uint64_t shipped = s->shipped_seq;
    pthread_mutex_unlock(&s->mu);
    if (seq <= shipped) {
        pthread_mutex_lock(&s->mu);
        s->oldest_unshipped_ns = 0;
        pthread_mutex_unlock(&s->mu);
        return 1;
    }

    ef_arena a;
    ef_arena_init(&a, 1 << 16);
    size_t cap = s->cfg.batch_max_entries;
    pthread_mutex_lock(&s->mu);
    if (s->repair_last > shipped && s->repair_last - shipped < cap) cap = (size_t)(s->repair_last - shipped);
    pthread_mutex_unlock(&s->mu);
    collect k = {&a, ef_arena_alloc(&a, s->cfg.batch_max_entries * sizeof(ef_bk_entry)), 0, cap};
    int rc = -1;
    if (!k.e) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    int cr = ef_store_changes(s->store, shipped, k.cap, on_change, &k, &e);
    if (cr < 0 && e.code == EF_STORE_TRIMMED) {
        /* the log no longer holds what is owed: a snapshot covers it */
        pthread_mutex_lock(&s->mu);
        s->need_snapshot = true;
        pthread_mutex_unlock(&s->mu);
        rc = 0;
        goto out;
    }
    if (cr < 0) {
        snprintf(err, errlen, "store: %s", cr == -1 ? e.message : "out of memory");
        goto out;
    }
    ef_store_identity id2;
    if (ef_store_get_identity(s->store, &id2, &e) || strcmp(id2.history, id.history) != 0 ||
        k.n == 0 || k.e[0].seq != shipped + 1) {
        rc = 0; /* the store moved to another history meanwhile: start over */
        pthread_mutex_lock(&s->mu);
        s->synced = false;
        pthread_mutex_unlock(&s->mu);
        goto out;
    }
    pthread_mutex_lock(&s->mu);
    s->oldest_unshipped_ns = k.e[0].time_ns;
    pthread_mutex_unlock(&s->mu);
    ef_buf b;
    ef_buf_init(&b);
    ef_bk_batch_write(&b, id.history, k.e, k.n);
    ef_bk_name n = {.kind = EF_BK_BATCH, .seq = k.e[0].seq, .last = k.e[k.n - 1].seq,
                    .time_ns = k.e[k.n - 1].time_ns};
    snprintf(n.history, sizeof(n.history), "%s", id.history);
    char key[256];
    ef_bk_name_format(&n, key, sizeof(key));
    ef_s3_err se;
    if (!ef_buf_ok(&b)) {
        snprintf(err, errlen, "out of memory");
    } else if (ef_s3_put(s->s3, key, b.data, b.len, &se)) {
        snprintf(err, errlen, "%s", se.message);
        /* the bucket refuses batches too (down, bad keys): a refused snapshot said nothing about
         * snapshots, so it is tried first again as soon as the bucket is back, rather than
         * leaving the state failing until its own backoff is over */
        pthread_mutex_lock(&s->mu);
        s->snap_backoff_ms = 0;
        s->snap_retry_mono_ns = 0;
        pthread_mutex_unlock(&s->mu);
    } else {
        pthread_mutex_lock(&s->mu);
        s->shipped_seq = n.last;
        if (s->repair_last && n.last >= s->repair_last) s->repair_last = 0;
        s->batches++;
        s->entries += k.n;
        s->oldest_unshipped_ns = 0;
        pthread_mutex_unlock(&s->mu);
        rc = 0;
    }
    ef_buf_free(&b);
out:
    ef_arena_free(&a);
    return rc;
}

/* Waits ms or until stop is asked; returns true when stopping. On the monotonic clock (cv is
 * made for it): a deadline on the wall clock, taken just before the clock stepped back, held the
 * next batch for as long as the step, and every write meanwhile stayed out of the bucket. */
static bool wait_ms(ef_shipper *s, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&s->mu);
    if (!s->stopping) pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    bool st = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return st;
}

static void *run(void *arg)
{
    ef_thread_name("ef-backup");
    ef_shipper *s = arg;
    unsigned backoff = 0;
    char err[700];
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stopping = s->stopping;
        bool past = stopping && ef_clock_mono_ns() >= s->stop_deadline_ns;
        bool owed = s->store_seq > s->shipped_seq || !s->synced;
        pthread_mutex_unlock(&s->mu);
        if (past || (stopping && backoff)) break; /* stopping: no more retries */
        int r = round_once(s, err, sizeof(err));
        if (past_stop_deadline(s)) break; /* cut short by the deadline: not a failure */
        if (r < 0) {
            note_failure(s, err);
            backoff = backoff ? (backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2)
                              : BACKOFF_MIN_MS;
            unsigned d = backoff / 2 + (unsigned)(rand_r(&s->seed) % (backoff / 2 + 1));
            if (wait_ms(s, d) && !owed) break;
            continue;
        }
        if (r == 0 || backoff) note_success(s);
        backoff = 0;
        if (r == 1) {
            if (stopping) break; /* nothing owed */
            wait_ms(s, s->cfg.batch_ms);
        }
    }
    return NULL;
}

int ef_shipper_start(ef_shipper *s, char *err, size_t errlen)
{
    if (pthread_create(&s->th, NULL, run, s) != 0) {
        snprintf(err, errlen, "cannot start the backup thread");
        return -1;
    }
    s->started = true;
    return 0;
}

void ef_shipper_stop(ef_shipper *s, unsigned grace_ms)
{
    if (!s || !s->started) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    s->stop_deadline_ns = ef_clock_mono_ns() + (int64_t)grace_ms * 1000000;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    s->started = false;
}

void ef_shipper_free(ef_shipper *s)
{
    if (!s) return;
    ef_shipper_stop(s, 0);
    ef_s3_free(s->s3);
    free(s->db_path);
    free(s->snap_tmp);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ---- status ---- */

static void put_time(ef_buf *out, int64_t ns)
{
    if (!ns) {
        ef_buf_puts(out, "null");
        return;
    }
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[64];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    ef_buf_printf(out, "\"%s.%03dZ\"", b, (int)(ns / 1000000 % 1000));
}

typedef struct snap_status {
    char history[EF_STORE_ID_MAX + 1], error[700];
    bool synced, failing;
    uint64_t shipped, store, snap, failures, consecutive, batches, snapshots, entries;
    int64_t last_success, oldest;
} snap_status;

static void status_read(ef_shipper *s, snap_status *st)
{
    pthread_mutex_lock(&s->mu);
    memcpy(st->history, s->history, sizeof(st->history));
    memcpy(st->error, s->last_error, sizeof(st->error));
    st->synced = s->synced;
    st->failing = s->failing;
    st->shipped = s->shipped_seq;
    st->store = s->store_seq;
    st->snap = s->snap_seq;
    st->failures = s->failures;
    st->consecutive = s->consecutive;
    st->batches = s->batches;
    st->snapshots = s->snapshots;
    st->entries = s->entries;
    st->last_success = s->last_success_ns;
    st->oldest = s->oldest_unshipped_ns;
    pthread_mutex_unlock(&s->mu);
}

static double lag_seconds(const snap_status *st)
{
    if (st->store <= st->shipped || !st->oldest) return 0;
    double d = (double)(ef_clock_wall_ns() - st->oldest) / 1e9;
    return d > 0 ? d : 0;
}

void ef_shipper_ready_json(ef_shipper *s, ef_buf *out, bool *degraded)
{
    snap_status st;
    status_read(s, &st);
    ef_buf_puts(out, "\"backup\":{\"target\":");
    ef_json_put_cstr(out, ef_s3_url(s->s3));
    ef_buf_printf(out, ",\"state\":\"%s\",\"history\":",
                  st.failing ? "failing" : st.synced ? "ok" : "starting");
    ef_json_put_cstr(out, st.history);
    uint64_t lag = st.store > st.shipped ? st.store - st.shipped : 0;
    ef_buf_printf(out, ",\"shippedSeq\":%" PRIu64 ",\"storeSeq\":%" PRIu64 ",\"lagSeq\":%" PRIu64
                       ",\"snapshotSeq\":%" PRIu64 ",\"lagSeconds\":%.3f,\"lastSuccess\":",
                  st.shipped, st.store, lag, st.snap, lag_seconds(&st));
    put_time(out, st.last_success);
    ef_buf_printf(out, ",\"failures\":%" PRIu64 ",\"consecutiveFailures\":%" PRIu64, st.failures,
                  st.consecutive);
    if (st.failing) {
        ef_buf_puts(out, ",\"lastError\":");
        ef_json_put_cstr(out, st.error);
    }
    ef_buf_putc(out, '}');
    if (st.failing) *degraded = true;
}

static void collect_metrics(ef_buf *out, void *ctx)
{
    ef_shipper *s = ctx;
    snap_status st;
    status_read(s, &st);
    ef_buf_printf(out,
                  "# HELP edgeflag_backup_shipped_seq Change-log position the backup bucket holds.\n"
                  "# TYPE edgeflag_backup_shipped_seq gauge\n"
                  "edgeflag_backup_shipped_seq %" PRIu64 "\n"
                  "# HELP edgeflag_backup_lag_seq Committed entries not yet in the backup bucket.\n"
                  "# TYPE edgeflag_backup_lag_seq gauge\n"
                  "edgeflag_backup_lag_seq %" PRIu64 "\n"
                  "# HELP edgeflag_backup_lag_seconds Age of the oldest committed entry not yet in the bucket.\n"
                  "# TYPE edgeflag_backup_lag_seconds gauge\n"
                  "edgeflag_backup_lag_seconds %.6f\n"
                  "# HELP edgeflag_backup_last_success_timestamp_seconds When the bucket last accepted a write (0: never).\n"
                  "# TYPE edgeflag_backup_last_success_timestamp_seconds gauge\n"
                  "edgeflag_backup_last_success_timestamp_seconds %.3f\n"
                  "# HELP edgeflag_backup_up Whether the last attempt to ship succeeded.\n"
                  "# TYPE edgeflag_backup_up gauge\n"
                  "edgeflag_backup_up %d\n"
                  "# HELP edgeflag_backup_failures_total Attempts to ship that failed.\n"
                  "# TYPE edgeflag_backup_failures_total counter\n"
                  "edgeflag_backup_failures_total %" PRIu64 "\n"
                  "# HELP edgeflag_backup_batches_total Log batches shipped.\n"
                  "# TYPE edgeflag_backup_batches_total counter\n"
                  "edgeflag_backup_batches_total %" PRIu64 "\n"
                  "# HELP edgeflag_backup_entries_total Change-log entries shipped in batches.\n"
                  "# TYPE edgeflag_backup_entries_total counter\n"
                  "edgeflag_backup_entries_total %" PRIu64 "\n"
                  "# HELP edgeflag_backup_snapshots_total Full snapshots shipped.\n"
                  "# TYPE edgeflag_backup_snapshots_total counter\n"
                  "edgeflag_backup_snapshots_total %" PRIu64 "\n",
                  st.shipped, st.store > st.shipped ? st.store - st.shipped : 0, lag_seconds(&st),
                  (double)st.last_success / 1e9, st.failing ? 0 : 1, st.failures, st.batches,
                  st.entries, st.snapshots);
}

int ef_shipper_metrics(ef_shipper *s, ef_metrics *m)
{
    return ef_metrics_add_collector(m, collect_metrics, s);
}
