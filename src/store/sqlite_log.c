/*
 * sqlite_log.c - write transactions, namespace versions, the global sequence and the change log:
 * reading it, trimming it, dumping the whole store at a known seq, loading such a dump and applying
 * another store's entries (what a replica does).
 *
 * A write is acknowledged only after COMMIT returned: the entry, the new seq and the versions are
 * in the same transaction as the rows, so a crash either keeps all of them or none. This file must
 * never acknowledge before the commit, and never let a seq be skipped or reused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "eval/eval.h"
#include "store/sqlite_int.h"

static void reset_all(sq *s);

int64_t sq_now(sq *s)
{
    int64_t t = ef_clock_wall_ns();
    /* strictly increasing, so created_at orders rows created in one transaction as written */
    if (t <= s->last_ts) t = s->last_ts + 1;
    s->last_ts = t;
    return t;
}

/* Row ids are UUIDv7 (RFC 9562: the time first, then random bits): consecutive rows land next to
 * each other in every id-keyed table and index, where random v4 ids scattered an import's inserts
 * over the whole b-tree (10,000 flags: about a quarter of the import's CPU). Clients see an opaque
 * UUID string either way; the time it carries is the row's createdAt, which the API shows too. */
void sq_new_id(ef_arena *a, ef_bytes *out)
{
    char id[EF_UUID_LEN + 1];
    ef_uuid_v7(id, ef_clock_wall_ns());
    char *c = ef_arena_memdup(a, id, EF_UUID_LEN);
    *out = c ? (ef_bytes){c, EF_UUID_LEN} : (ef_bytes){"", 0};
}

void sq_lock(sq *s)
{
    pthread_mutex_lock(&s->mu);
}

void sq_reset_stmts(sq *s)
{
    reset_all(s);
}

void sq_tx_rollback(sq *s)
{
    reset_all(s);
    sqlite3_stmt *st = sq_stmt(s, SL_TX_ROLLBACK, "ROLLBACK", NULL);
    if (st) sqlite3_step(st);
    reset_all(s);
}

void sq_unlock(sq *s)
{
    reset_all(s);
    pthread_mutex_unlock(&s->mu);
}

static void reset_all(sq *s)
{
    /* A stepped but unreset statement keeps a read transaction open, which would pin the WAL;
     * every operation ends by resetting every statement handed out since the last time (sq_stmt
     * marks them): a replica's entry used to reset all of the cache, a hundred statements, twice. */
    for (int w = 0; w < (SQ_MAX_STMTS + 63) / 64; w++) {
        for (uint64_t m = s->stmts_used[w]; m; m &= m - 1) {
            sqlite3_stmt *st = s->stmts[w * 64 + __builtin_ctzll(m)];
            if (st) sqlite3_reset(st);
        }
        s->stmts_used[w] = 0;
    }
}

static void touched_clear(sq *s)
{
    for (size_t i = 0; i < s->ntouched; i++) free(s->touched[i]);
    s->ntouched = 0;
    s->touched_all = false;
    s->capture_paused = false; /* a rollback restored the triggers; a commit recreated them */
}

/* Foreign keys back on after a bulk transaction ended (caller holds mu, no transaction open:
 * SQLite ignores the pragma inside one). It expires the cached statements, which SQLite prepares
 * again at their next step. Should it fail (out of memory), fk_off stays set and the next write
 * tries again in wtx_begin before it may begin. */
static int fk_restore(sq *s, ef_store_err *err)
{
    if (!s->fk_off) return 0;
    if (sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK)
        return sq_db_err(s, err, "foreign keys");
    s->fk_off = false;
    return 0;
}

static int wtx_begin(sq *s, bool bulk, ef_store_err *err)
{
    pthread_mutex_lock(&s->mu);
    touched_clear(s);
    if (sq_batch_commit(s, err)) { /* a transaction of its own: the open batch goes first */
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (fk_restore(s, err)) {
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (bulk) {
        s->fk_off = true; /* before the pragma: a failed one is retried ON, not left unknown */
        if (sqlite3_exec(s->db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL) != SQLITE_OK) {
            sq_db_err(s, err, "foreign keys");
            fk_restore(s, NULL);
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
    }
    sqlite3_stmt *st = sq_stmt(s, SL_TX_BEGIN, "BEGIN IMMEDIATE", err);
    if (!st || sqlite3_step(st) != SQLITE_DONE) {
        if (st) sq_db_err(s, err, "begin");
        reset_all(s);
        fk_restore(s, NULL);
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    s->in_tx = true;
    return 0;
}

int sq_wtx_begin(sq *s, ef_store_err *err)
{
    return wtx_begin(s, false, err);
}

int sq_wtx_begin_bulk(sq *s, ef_store_err *err)
{
    return wtx_begin(s, true, err);
}

int sq_wtx_touch(sq *s, ef_bytes ns, ef_store_err *err)
{
    ns = sq_ns(ns);
    for (size_t i = 0; i < s->ntouched; i++)
        if (strlen(s->touched[i]) == ns.n && memcmp(s->touched[i], ns.p, ns.n) == 0) return 0;
    if (s->ntouched == SQ_MAX_TOUCHED)
        return ef_store_fail(err, EF_STORE_INVALID, "a transaction may touch at most %d namespaces",
                          SQ_MAX_TOUCHED);
    char *c = malloc(ns.n + 1);
    if (!c) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    memcpy(c, ns.p, ns.n);
    c[ns.n] = '\0';
    s->touched[s->ntouched++] = c;
    return 0;
}

void sq_wtx_rollback(sq *s)
{
    sq_incr_discard(s);
    reset_all(s);
    if (s->in_entry) {
        sq_batch_entry_undo(s); /* the entry alone: the batch keeps what it held before */
    } else if (s->in_tx) {
        sq_tx_rollback(s);
    }
    s->in_tx = false;
    s->applying = false;
    touched_clear(s);
    fk_restore(s, NULL);
    pthread_mutex_unlock(&s->mu);
}

uint64_t sq_state_seq(sq *s)
{
    uint64_t v = 0;
    return sq_state_seq_get(s, &v, NULL) == 0 ? v : 0;
}

int sq_state_seq_get(sq *s, uint64_t *seq, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_STATE_GET, "SELECT seq, trimmed FROM ef_state WHERE id = 1",
                               err);
    if (!st) return -1;
    /* a failed read must never pass for seq 0: the next commit would reuse seq 1 */
    if (sqlite3_step(st) != SQLITE_ROW) return sq_db_err(s, err, "state");
    *seq = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return 0;
}

static int state_trimmed(sq *s, uint64_t *trimmed, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_STATE_GET, "SELECT seq, trimmed FROM ef_state WHERE id = 1",
                               err);
    if (!st) return -1;
    if (sqlite3_step(st) != SQLITE_ROW) return sq_db_err(s, err, "state");
    *trimmed = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return 0;
}

/* Drops entries by count and age, then records the highest seq no longer held. */
static int trim_tx(sq *s, uint64_t keep, int64_t max_age, ef_store_err *err)
{
    uint64_t seq = sq_state_seq(s);
    if (keep && seq > keep) {
        sqlite3_stmt *st = sq_stmt(s, SL_LOG_TRIM, "DELETE FROM changelog WHERE seq <= ?", err);
        if (!st) return -1;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)(seq - keep));
        if (sq_step_done(s, st, "trim", err)) return -1;
    }
    if (max_age > 0) {
        sqlite3_stmt *st =
            sq_stmt(s, SL_LOG_TRIM_AGE, "DELETE FROM changelog WHERE time_ns < ?", err);
        if (!st) return -1;
        sqlite3_bind_int64(st, 1, ef_clock_wall_ns() - max_age);
        if (sq_step_done(s, st, "trim", err)) return -1;
    }
    sqlite3_stmt *st = sq_stmt(s, SL_STATE_TRIMMED,
                               "UPDATE ef_state SET trimmed = MAX(trimmed, COALESCE("
                               "(SELECT MIN(seq) - 1 FROM changelog), seq)) WHERE id = 1",
                               err);
    if (!st) return -1;
    if (sq_step_done(s, st, "trim", err)) return -1;
    return 0;
}

static int publish_touched(sq *s, ef_store_err *err)
{
    if (!s->opts.registry) return 0;
    /* a touched namespace that is gone is removed from the registry by sq_ns_publish */
    for (size_t i = 0; i < s->ntouched; i++)
        if (sq_ns_publish(s, ef_bytes_of(s->touched[i]), err)) return -1;
    return s->touched_all ? sq_publish_all(s, err) : 0;
}

/* A dump load touches every namespace: list the current ones (the old ones are listed already)
 * so they can be compiled one by one. Returns 1 when there are too many to list; the dump's
 * namespaces are then compiled after the commit, as a whole. */
static int touch_current(sq *s, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_NS_ALL, "SELECT key FROM namespaces", err);
    if (!st) return -1;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (s->ntouched == SQ_MAX_TOUCHED) return 1;
        ef_bytes k = {(const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0)};
        if (sq_wtx_touch(s, k, err)) return -1;
    }
    return r == SQLITE_DONE ? 0 : sq_db_err(s, err, "namespaces");
}

/* The pre-commit compile of every write, applied entry and loaded dump (issue 19 item 8: a write
 * whose result the compiler refuses is rolled back with a 400 instead of being committed and then
 * never reaching evaluation; an entry or dump a replica receives is refused whole, so the replica
 * keeps a state it can evaluate). Only what the entry changed is recompiled (sqlite_incr.c);
 * entry (parsed) NULL recompiles every touched namespace. On failure the caller rolls back. */
static int precompile(sq *s, const ef_json *entry, ef_store_err *err)
{
    if (!s->opts.registry) return 0;
    if (s->touched_all) {
        int t = touch_current(s, err);
        reset_all(s);
        if (t < 0) return -1;
        if (t > 0) return 0; /* too many: compiled after the commit */
        s->touched_all = false;
        entry = NULL;
    }
    int rc = sq_incr_prepare(s, entry, err);
    reset_all(s);
    return rc;
}

/* precompile for an entry known as text (a write of this store's): parsed here, only when used. */
static int precompile_text(sq *s, const char *entry, size_t len, ef_store_err *err)
{
    if (!s->opts.registry) return 0;
    ef_arena a;
    ef_arena_init(&a, 16384);
    ef_json_error je;
    const ef_json *root =
        len <= SQ_INCR_MAX_ENTRY ? ef_json_parse(entry, len, &a, NULL, &je) : NULL;
    int rc = precompile(s, root, err);
    ef_arena_free(&a);
    return rc;
}

/* COMMIT, then publish the touched namespaces' snapshots (compiled before the commit when the
 * write was ours), then release the writer. */
/* entry: the change-log entry this transaction logged (a write of this store), else NULL. */
static int finish_commit(sq *s, uint64_t seq, const ef_store_change *entry, ef_store_err *err)
{
    reset_all(s);
    bool applied = s->applying;
    if (s->in_entry) {
        /* into the open batch, which sqlite_persist.c commits within sync_ms */
        if (sq_batch_entry_end(s, seq, err)) {
            sq_wtx_rollback(s);
            return -1;
        }
    } else {
        sqlite3_stmt *st = sq_stmt(s, SL_TX_COMMIT, "COMMIT", err);
        if (!st || sqlite3_step(st) != SQLITE_DONE) {
            if (st) sq_db_err(s, err, "commit");
            sq_wtx_rollback(s);
            return -1;
        }
    }
    s->in_tx = false;
    s->applying = false;
    int rc = 0;
    /* With batched durability an applied entry is committed and synced later by
     * sqlite_persist.c; a write of our own is synced here, before anyone is told it happened. */
    if (applied)
        sq_persist_applied(s, seq);
    else if (sq_persist_local(s, seq, err))
        rc = -1;
    /* Durable now: the feed may send it while this thread still republishes (issue 11). */
    if (entry && s->commit_fn && rc == 0) s->commit_fn(s->commit_fn_ctx, entry);
    int prc = 0;
    /* hold 0: nothing to hold back (a dump sets it so, and an empty store's dump is seq 0) */
    if (applied && s->republish_hold && seq <= s->republish_hold) {
        sq_incr_discard(s); /* applied again after a lost batch: published already (persist.c) */
    } else {
        /* the transaction's namespaces are announced together, once all are visible */
        if (s->opts.registry) ef_registry_hold(s->opts.registry);
        prc = sq_incr_is_prepared(s) ? sq_incr_publish(s, err) : publish_touched(s, err);
        if (s->opts.registry) ef_registry_release(s->opts.registry);
    }
    if (prc && rc == 0) {
        /* The write is durable; only the in-memory snapshot is stale. Say both. */
        char m[sizeof(err->message)];
        snprintf(m, sizeof(m), "committed as seq %llu, but the snapshot was not rebuilt: %s",
                 (unsigned long long)seq, err->message);
        ef_store_fail(err, EF_STORE_INTERNAL, "%s", m);
        rc = -1;
    }
    reset_all(s);
    touched_clear(s);
    fk_restore(s, NULL);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sq_wtx_end(sq *s, int failed, ef_store_err *err)
{
    if (failed) {
        sq_wtx_rollback(s);
        return -1;
    }
    return sq_wtx_commit(s, err);
}

/* Column i of st's row (text) appended to e. */
static void put_col(ef_buf *e, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i); /* before its length, as SQLite asks */
    ef_buf_append(e, t, (size_t)sqlite3_column_bytes(st, i));
}

int sq_wtx_commit(sq *s, ef_store_err *err)
{
    ef_buf e;
    ef_buf_init(&e);
    uint64_t seq = 0;
    if (s->opts.follower) { /* no triggers captured the write (sqlite_capture.c): never log it */
        ef_store_fail(err, EF_STORE_INTERNAL,
                      "this store follows an upstream and takes no writes of its own");
        goto fail;
    }
    if (sq_state_seq_get(s, &seq, err)) goto fail;
    seq++;
    int64_t now = ef_clock_wall_ns();
    ef_buf_printf(&e, "{\"seq\":%llu,\"time\":%lld,\"namespaces\":[", (unsigned long long)seq,
                  (long long)now);
    for (size_t i = 0; i < s->ntouched; i++) {
        sqlite3_stmt *st = sq_stmt(s, SL_VER_BUMP,
                                   "INSERT INTO ns_versions VALUES (?, 1) ON CONFLICT(namespace_key)"
                                   " DO UPDATE SET version = version + 1 RETURNING version",
                                   err);
        if (!st) goto fail;
        sqlite3_bind_text(st, 1, s->touched[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            sq_db_err(s, err, "version");
            goto fail;
        }
        ef_buf_printf(&e, "%s{\"key\":", i ? "," : "");
        ef_json_put_cstr(&e, s->touched[i]);
        ef_buf_printf(&e, ",\"version\":%lld}", (long long)sqlite3_column_int64(st, 0));
        sqlite3_reset(st);
    }
    ef_buf_puts(&e, "],\"changes\":[");
    sqlite3_stmt *st =
        sq_stmt(s, SL_PENDING_READ, "SELECT tbl, op, pk, row, old FROM ef_pending ORDER BY id", err);
    if (!st) goto fail;
    size_t nchanges = 0;
    int rc;
    /* appended, not printf'd: each row's JSON is copied once, not run through vfprintf */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ef_buf_puts(&e, nchanges++ ? ",{\"table\":\"" : "{\"table\":\"");
        put_col(&e, st, 0);
        ef_buf_puts(&e, "\",\"op\":\"");
        put_col(&e, st, 1);
        ef_buf_puts(&e, "\",\"pk\":");
        put_col(&e, st, 2);
        if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
            ef_buf_puts(&e, ",\"row\":");
            put_col(&e, st, 3);
        }
        /* the row before an update or delete (schema 4): what the history API diffs against */
        if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
            ef_buf_puts(&e, ",\"old\":");
            put_col(&e, st, 4);
        }
        ef_buf_putc(&e, '}');
    }
    if (rc != SQLITE_DONE) {
        sq_db_err(s, err, "change log");
        goto fail;
    }
    /* a bulk write's inserted rows, read from their tables, and the triggers back */
    if (sq_capture_resume(s, &e, &nchanges, err)) goto fail;
    ef_buf_putc(&e, ']');
    ef_store_attribution_json(&e); /* who asked for this write (api/attribution.c) */
    ef_buf_putc(&e, '}');
    if (!ef_buf_ok(&e)) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        goto fail;
    }
    if (nchanges == 0 && s->ntouched == 0) {
        /* nothing changed: no transaction to log */
        ef_buf_free(&e);
        return finish_commit(s, seq - 1, NULL, err);
    }
    st = sq_stmt(s, SL_LOG_INSERT, "INSERT INTO changelog VALUES (?, ?, ?)", err);
    if (!st) goto fail;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_text(st, 3, e.data, (int)e.len, SQLITE_STATIC);
    if (sq_step_done(s, st, "change log", err)) goto fail;
    st = sq_stmt(s, SL_STATE_SEQ, "UPDATE ef_state SET seq = ? WHERE id = 1", err);
    if (!st) goto fail;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    if (sq_step_done(s, st, "seq", err)) goto fail;
    st = sq_stmt(s, SL_PENDING_CLEAR, "DELETE FROM ef_pending", err);
    if (!st || sqlite3_step(st) != SQLITE_DONE) {
        if (st) sq_db_err(s, err, "pending");
        goto fail;
    }
    if ((s->opts.log_keep_entries || s->opts.log_max_age_ns) &&
        trim_tx(s, s->opts.log_keep_entries, s->opts.log_max_age_ns, err))
        goto fail;
    /* Before anything leaves this process: a write the compiler would refuse is refused here. */
    if (precompile_text(s, e.data, e.len, err)) goto fail;
    /* Last step before COMMIT: a remote database (libSQL) must accept the entry first, so the
     * local cache never holds a write the database of record refused. */
    if (s->opts.commit_hook && s->opts.commit_hook(s->opts.commit_ctx, seq, e.data, e.len, err))
        goto fail;
    ef_store_change c = {seq, now, {e.data, e.len}};
    int crc = finish_commit(s, seq, &c, err);
    ef_buf_free(&e);
    return crc;
fail:
    ef_buf_free(&e);
    sq_wtx_rollback(s);
    return -1;
}

/* ---- reading ---- */

static int log_seq(void *h, uint64_t *seq, uint64_t *first, ef_store_err *err)
{
    sq *s = h;
    pthread_mutex_lock(&s->mu);
    uint64_t trimmed = 0;
    int rc = state_trimmed(s, &trimmed, err);
    *seq = sq_state_seq(s);
    if (first) *first = trimmed + 1;
    reset_all(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int ns_version(void *h, ef_bytes ns, uint64_t *version, ef_store_err *err)
{
    sq *s = h;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = sq_stmt(
        s, SL_VER_GET, "SELECT version FROM ns_versions WHERE namespace_key = ?", err);
    int rc = -1;
    if (st) {
        sq_bind_bytes(st, 1, sq_ns(ns));
        int r = sqlite3_step(st);
        *version = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
        rc = r == SQLITE_ROW || r == SQLITE_DONE ? 0 : sq_db_err(s, err, "version");
    }
    reset_all(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int log_changes(void *h, uint64_t after, size_t max, ef_store_change_fn fn, void *ctx,
                       ef_store_err *err)
{
    sq *s = h;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    uint64_t trimmed = 0;
    if (state_trimmed(s, &trimmed, err)) {
        rc = -1;
        goto out;
    }
    if (after < trimmed) {
        rc = ef_store_fail(err, EF_STORE_TRIMMED,
                        "change log position %llu is no longer available (oldest entry is %llu)",
                        (unsigned long long)after, (unsigned long long)trimmed + 1);
        goto out;
    }
    sqlite3_stmt *st = sq_stmt(
        s, SL_LOG_READ, "SELECT seq, time_ns, entry FROM changelog WHERE seq > ? ORDER BY seq LIMIT ?",
        err);
    if (!st) {
        rc = -1;
        goto out;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
    sqlite3_bind_int64(st, 2, max ? (sqlite3_int64)max : -1);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        ef_store_change c = {(uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                             {(const char *)sqlite3_column_text(st, 2),
                              (size_t)sqlite3_column_bytes(st, 2)}};
        if ((rc = fn(ctx, &c)) != 0) goto out;
    }
    if (r != SQLITE_DONE) rc = sq_db_err(s, err, "change log");
out:
    reset_all(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int log_trim(void *h, uint64_t keep, int64_t max_age, ef_store_err *err)
{
    sq *s = h;
    if (sq_wtx_begin(s, err)) return -1;
    if (trim_tx(s, keep, max_age, err)) {
        sq_wtx_rollback(s);
        return -1;
    }
    return finish_commit(s, 0, NULL, err);
}

/* ---- dump ---- */

static int dump(void *h, ef_buf *out, uint64_t *seq_out, ef_store_err *err)
{
    sq *s = h;
    sqlite3 *db = NULL;
    /* A reader connection of its own: the dump is one read transaction that never blocks the
     * writer (WAL), and it sees exactly the state at the seq it reports. */
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "dump: cannot open %s", s->path);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, s->opts.busy_timeout_ms);
    int rc = -1;
    sqlite3_stmt *st = NULL;
    ef_buf sql;
    ef_buf_init(&sql);
    size_t counts[SQ_NTABLES] = {0};
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) goto dberr;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM ef_state WHERE id = 1", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto dberr;
    uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    ef_buf_printf(out, "{\"seq\":%llu,\"history\":", (unsigned long long)seq);
    int r;
    if (sqlite3_prepare_v2(db, "SELECT history FROM ef_identity WHERE id = 1", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        goto dberr;
    ef_json_put_str(out, (ef_bytes){(const char *)sqlite3_column_text(st, 0),
                                    (size_t)sqlite3_column_bytes(st, 0)});
    sqlite3_finalize(st);
    st = NULL;
    /* The entry at seq, verbatim, when the log holds it and it is not a bulk one: the loading
     * replica keeps it as its log's only entry, so it can show which entry its position is (the
     * stream's at=, docs/replication.md "Histories") before it has applied one of its own. */
    if (sqlite3_prepare_v2(db, "SELECT time_ns, entry FROM changelog WHERE seq = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        goto dberr;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    r = sqlite3_step(st);
    if (r == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 1) <= SQ_DUMP_LAST_MAX) {
        ef_buf_printf(out, ",\"last\":{\"time\":%lld,\"entry\":", (long long)sqlite3_column_int64(st, 0));
        ef_json_put_str(out, (ef_bytes){(const char *)sqlite3_column_text(st, 1),
                                        (size_t)sqlite3_column_bytes(st, 1)});
        ef_buf_putc(out, '}');
    } else if (r != SQLITE_ROW && r != SQLITE_DONE) {
        goto dberr;
    }
    sqlite3_finalize(st);
    st = NULL;
    ef_buf_puts(out, ",\"versions\":{");
    if (sqlite3_prepare_v2(db, "SELECT namespace_key, version FROM ns_versions ORDER BY 1", -1, &st,
                           NULL) != SQLITE_OK)
        goto dberr;
    for (int i = 0; (r = sqlite3_step(st)) == SQLITE_ROW; i++) {
        if (i) ef_buf_putc(out, ',');
        ef_json_put_str(out, (ef_bytes){(const char *)sqlite3_column_text(st, 0),
                                        (size_t)sqlite3_column_bytes(st, 0)});
        ef_buf_printf(out, ":%lld", (long long)sqlite3_column_int64(st, 1));
    }
    /* Only SQLITE_DONE ends a table: any other result (I/O error, corruption, a row the JSON
     * functions refuse) fails the whole dump, which a replica would otherwise load as the
     * complete state (issue 19, item 6). */
    if (r != SQLITE_DONE) goto dberr;
    sqlite3_finalize(st);
    st = NULL;
    ef_buf_puts(out, "},\"tables\":{");
    for (size_t t = 0; t < sq_ntables; t++) {
        ef_buf_clear(&sql);
        ef_buf_puts(&sql, "SELECT ");
        sq_row_json_sql(&sql, &sq_tables[t], "", false);
        ef_buf_printf(&sql, " FROM \"%s\" ORDER BY rowid", sq_tables[t].name);
        ef_buf_putc(&sql, '\0');
        if (!ef_buf_ok(&sql) || sqlite3_prepare_v2(db, sql.data, -1, &st, NULL) != SQLITE_OK)
            goto dberr;
        ef_buf_printf(out, "%s\"%s\":[", t ? "," : "", sq_tables[t].name);
        size_t i = 0;
        for (; (r = sqlite3_step(st)) == SQLITE_ROW; i++) {
            if (i) ef_buf_putc(out, ',');
            ef_buf_append(out, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
        }
        if (r != SQLITE_DONE) goto dberr;
        ef_buf_putc(out, ']');
        counts[t] = i;
        sqlite3_finalize(st);
        st = NULL;
    }
    /* Row counts per table, checked by load_dump: a dump cut short by any producer is refused
     * rather than loaded as the whole state. */
    ef_buf_puts(out, "},\"counts\":{");
    for (size_t t = 0; t < sq_ntables; t++)
        ef_buf_printf(out, "%s\"%s\":%zu", t ? "," : "", sq_tables[t].name, counts[t]);
    ef_buf_puts(out, "}}");
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (!ef_buf_ok(out)) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        goto out;
    }
    if (seq_out) *seq_out = seq;
    rc = 0;
    goto out;
dberr:
    ef_store_fail(err, EF_STORE_UNAVAILABLE, "dump: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    ef_buf_free(&sql);
    sqlite3_close(db);
    return rc;
}

/* ---- identity ---- */

static bool sq_history_valid(const ef_json *h)
{
    if (h->type != EF_JSON_STRING || h->str.n == 0 || h->str.n > EF_STORE_ID_MAX) return false;
    for (size_t i = 0; i < h->str.n; i++) {
        char c = h->str.p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

static int identity(void *h, ef_store_identity *out, ef_store_err *err)
{
    sq *s = h;
    out->db_id[0] = out->history[0] = '\0';
    pthread_mutex_lock(&s->mu);
    int rc = -1;
    sqlite3_stmt *st =
        sq_stmt(s, SL_ID_GET, "SELECT db_id, history FROM ef_identity WHERE id = 1", err);
    if (st) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(out->db_id, sizeof(out->db_id), "%s", (const char *)sqlite3_column_text(st, 0));
            snprintf(out->history, sizeof(out->history), "%s",
                     (const char *)sqlite3_column_text(st, 1));
            rc = 0;
        } else {
            rc = sq_db_err(s, err, "identity");
        }
    }
    reset_all(s);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- applying rows (replica side) ---- */

static bool is_pk(const sq_table *t, const char *col)
{
    for (int i = 0; t->pk[i]; i++)
        if (strcmp(t->pk[i], col) == 0) return true;
    return false;
}

void sq_apply_sql(ef_buf *b, const sq_table *t, bool del)
{
    if (del) {
        ef_buf_printf(b, "DELETE FROM \"%s\" WHERE ", t->name);
        for (int i = 0; t->pk[i]; i++) ef_buf_printf(b, "%s\"%s\" = ?", i ? " AND " : "", t->pk[i]);
    } else {
        ef_buf_printf(b, "INSERT INTO \"%s\" VALUES (", t->name);
        for (int i = 0; t->cols[i]; i++) ef_buf_puts(b, i ? ", ?" : "?");
        ef_buf_puts(b, ") ON CONFLICT(");
        for (int i = 0; t->pk[i]; i++) ef_buf_printf(b, "%s\"%s\"", i ? ", " : "", t->pk[i]);
        /* The primary key's columns are left out of the SET list: equal by the conflict itself,
         * and named there they would make SQLite treat every update of a parent row (a flag, a
         * variant, a rule) as a change of the key its children reference, and look each child
         * table up (a third of a replica's one-flag apply), and rewrite the key's index. */
        int n = 0;
        for (int i = 0; t->cols[i]; i++)
            if (!is_pk(t, t->cols[i]))
                ef_buf_printf(b, "%s\"%s\" = excluded.\"%s\"", n++ ? ", " : ") DO UPDATE SET ",
                              t->cols[i], t->cols[i]);
        if (n == 0) ef_buf_puts(b, ") DO NOTHING");
    }
}

static sqlite3_stmt *apply_stmt(sq *s, size_t ti, bool del, ef_store_err *err)
{
    sqlite3_stmt **slot = del ? &s->apply_delete[ti] : &s->apply_upsert[ti];
    if (*slot) {
        sqlite3_reset(*slot);
        sqlite3_clear_bindings(*slot);
        return *slot;
    }
    ef_buf b;
    ef_buf_init(&b);
    sq_apply_sql(&b, &sq_tables[ti], del);
    ef_buf_putc(&b, '\0');
    int rc = ef_buf_ok(&b) ? sqlite3_prepare_v3(s->db, b.data, -1, SQLITE_PREPARE_PERSISTENT, slot,
                                                NULL)
                           : SQLITE_NOMEM;
    ef_buf_free(&b);
    if (rc != SQLITE_OK) {
        sq_db_err(s, err, "apply");
        return NULL;
    }
    return *slot;
}

/* Binds a value of a change or a dump row. Returns false, binding nothing, for a number out of
 * a double's range (1e999 parses as infinity): SQLite would store it as a REAL and write it into
 * the next dump as Inf, which is not JSON, so the store's own dump would be refused (found by
 * fuzz_replication). No node writes such a value; only a peer that lies sends one. */
static bool bind_json(sqlite3_stmt *st, int i, const ef_json *v)
{
    if (v && v->type == EF_JSON_NUMBER && !isfinite(v->num)) return false;
    if (!v || v->type == EF_JSON_NULL) {
        sqlite3_bind_null(st, i);
    } else if (v->type == EF_JSON_TRUE || v->type == EF_JSON_FALSE) {
        sqlite3_bind_int(st, i, v->type == EF_JSON_TRUE);
    } else if (v->type == EF_JSON_NUMBER) {
        /* an integer past int64 is stored as SQLite stores such a literal: a REAL */
        int64_t x;
        if (ef_json_i64(v, &x))
            sqlite3_bind_int64(st, i, x);
        else
            sqlite3_bind_double(st, i, v->num);
    } else if (v->type == EF_JSON_STRING) {
        sqlite3_bind_text(st, i, v->str.n ? v->str.p : "", (int)v->str.n, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, i);
    }
    return true;
}

/* Binds src's members cols (in order) to st's parameters 1..; refuses a value bind_json does not
 * take, naming the table and column. */
static int bind_cols(sqlite3_stmt *st, const char *const *cols, const ef_json *src, const char *table,
                     ef_store_err *err)
{
    for (int i = 0; cols[i]; i++)
        if (!bind_json(st, i + 1, ef_json_get(src, cols[i]))) {
            sqlite3_clear_bindings(st);
            return ef_store_fail(err, EF_STORE_INVALID, "%s.%s is not a finite number", table, cols[i]);
        }
    return 0;
}

/* The namespace column of t ("key" for namespaces; NULL for distributions, which have none). */
static const char *ns_column(const sq_table *t)
{
    if (strcmp(t->name, "namespaces") == 0) return "key";
    for (int i = 0; t->cols[i]; i++)
        if (strcmp(t->cols[i], "namespace_key") == 0) return "namespace_key";
    return NULL;
}

/* One {table, op, pk, row} change. */
/* Marks the namespace of the row with src's primary key as touched (if the row exists), so a
 * change is republished whatever the entry's own namespace list says: an entry that left one out
 * would otherwise leave evaluation serving the old state there (found by fuzz_replication). */
static int touch_row_ns(sq *s, const sq_table *t, const ef_json *src, ef_store_err *err)
{
    size_t ti = (size_t)(t - sq_tables);
    sqlite3_stmt *st = s->touch_ns[ti]; /* prepared once per table: every applied row asks twice */
    if (!st) {
        ef_buf q;
        ef_buf_init(&q);
        const char *col = ns_column(t); /* none: a distribution's, through its rule */
        ef_buf_printf(&q, "SELECT %s FROM \"%s\" WHERE ",
                      col ? col : "(SELECT namespace_key FROM rules r WHERE r.id = rule_id)", t->name);
        for (int i = 0; t->pk[i]; i++) ef_buf_printf(&q, "%s\"%s\" = ?", i ? " AND " : "", t->pk[i]);
        int rc = ef_buf_ok(&q) ? sqlite3_prepare_v2(s->db, q.data, (int)q.len, &st, NULL) : SQLITE_NOMEM;
        ef_buf_free(&q);
        if (rc != SQLITE_OK) return sq_db_err(s, err, "apply");
        s->touch_ns[ti] = st;
    }
    if (bind_cols(st, t->pk, src, t->name, err)) return -1;
    int rc = sqlite3_step(st);
    int out = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT)
        out = sq_wtx_touch(s, (ef_bytes){(const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0)}, err);
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = sq_db_err(s, err, "apply");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return out;
}

/* The namespace src names in t's namespace column, when it holds one as a string. */
static const ef_json *src_ns(const sq_table *t, const ef_json *src)
{
    const char *col = ns_column(t);
    const ef_json *v = col ? ef_json_get(src, col) : NULL;
    return v && v->type == EF_JSON_STRING ? v : NULL;
}

static int apply_one(sq *s, const ef_json *c, ef_store_err *err)
{
    const ef_json *tbl = ef_json_get(c, "table"), *op = ef_json_get(c, "op");
    const ef_json *pk = ef_json_get(c, "pk"), *row = ef_json_get(c, "row");
    if (!tbl || tbl->type != EF_JSON_STRING || !op || op->type != EF_JSON_STRING)
        return ef_store_fail(err, EF_STORE_INVALID, "change without table or op");
    const sq_table *t = sq_table_find(tbl->str);
    if (!t)
        return ef_store_fail(err, EF_STORE_INVALID, "change to unknown table \"%.*s\"",
                          (int)tbl->str.n, tbl->str.p);
    size_t ti = (size_t)(t - sq_tables);
    bool del = ef_bytes_eq(op->str, EF_BYTES_LIT("delete"));
    if (!del && !ef_bytes_eq(op->str, EF_BYTES_LIT("upsert")))
        return ef_store_fail(err, EF_STORE_INVALID, "change with unknown op \"%.*s\"",
                          (int)op->str.n, op->str.p);
    const ef_json *src = del ? pk : row;
    if (!src || src->type != EF_JSON_OBJECT)
        return ef_store_fail(err, EF_STORE_INVALID, "change to %s without %s", t->name,
                          del ? "pk" : "row");
    sqlite3_stmt *st = apply_stmt(s, ti, del, err);
    if (!st) return -1;
    const char *const *cols = del ? t->pk : t->cols;
    /* The namespaces the row was and is in. Where the namespace is part of the primary key (a
     * flag, a segment, a namespace), src names both; elsewhere the row as it was is looked up,
     * and the row as it is now names it (except a distribution's: looked up through its rule). */
    const ef_json *ns = src_ns(t, src);
    bool keyed = ns && is_pk(t, ns_column(t));
    if (keyed ? sq_wtx_touch(s, ns->str, err) : touch_row_ns(s, t, src, err)) return -1;
    if (bind_cols(st, cols, src, t->name, err)) return -1;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) s->apply_fk_failed = true;
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "apply");
    if (del || keyed) return 0;
    return ns ? sq_wtx_touch(s, ns->str, err) : touch_row_ns(s, t, src, err);
}

static int exec_step(sq *s, const char *sql, ef_store_err *err)
{
    return sq_exec(s, sql, err);
}

/* Begins what one applied entry is written in. With batched durability (sync_ms: a replica's
 * store) that is a savepoint of the open batch, so the entry costs no commit of its own and is
 * served before it is written out (sqlite_persist.c); an entry whose foreign keys wait for its
 * COMMIT (batched false) gets a transaction of its own, after the batch is committed. */
static int entry_begin(sq *s, bool batched, ef_store_err *err)
{
    if (!batched) return sq_wtx_begin(s, err);
    pthread_mutex_lock(&s->mu);
    touched_clear(s);
    if (fk_restore(s, err) || sq_batch_entry_begin(s, err)) {
        reset_all(s);
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    s->in_tx = true;
    return 0;
}

/* One entry in one transaction. defer: foreign keys are checked at COMMIT (see apply_changes). */
static int apply_entry(sq *s, const char *entry, size_t len, bool defer, ef_store_err *err)
{
    ef_arena a;
    ef_arena_init(&a, 16384);
    ef_json_error jerr;
    ef_json *root = ef_json_parse(entry, len, &a, NULL, &jerr);
    if (!root || root->type != EF_JSON_OBJECT) {
        ef_arena_free(&a);
        return ef_store_fail(err, EF_STORE_INVALID, "change-log entry is not a JSON object");
    }
    const ef_json *jseq = ef_json_get(root, "seq"), *jtime = ef_json_get(root, "time");
    const ef_json *jns = ef_json_get(root, "namespaces"), *jch = ef_json_get(root, "changes");
    uint64_t seq;
    int64_t when = 0;
    if (!ef_json_u64(jseq, &seq) || seq > INT64_MAX || !jns || jns->type != EF_JSON_ARRAY || !jch ||
        jch->type != EF_JSON_ARRAY || (jtime && !ef_json_i64(jtime, &when))) {
        ef_arena_free(&a);
        return ef_store_fail(err, EF_STORE_INVALID,
                             "change-log entry lacks seq, namespaces or changes (or one is not an integer)");
    }
    if (entry_begin(s, !defer && s->opts.sync_ms > 0, err)) {
        ef_arena_free(&a);
        return -1;
    }
    s->applying = true;
    uint64_t have = 0;
    if (sq_state_seq_get(s, &have, err)) goto fail;
    if (seq != have + 1) {
        ef_store_fail(err, EF_STORE_OUT_OF_ORDER, "entry seq %llu does not follow local seq %llu",
                   (unsigned long long)seq, (unsigned long long)have);
        goto fail;
    }
    if (defer && exec_step(s, "PRAGMA defer_foreign_keys = ON", err)) goto fail;
    for (const ef_json *c = jch->child; c; c = c->next)
        if (c->type != EF_JSON_OBJECT || apply_one(s, c, err)) {
            if (c->type != EF_JSON_OBJECT) ef_store_fail(err, EF_STORE_INVALID, "change is not an object");
            goto fail;
        }
    for (const ef_json *n = jns->child; n; n = n->next) {
        const ef_json *k = ef_json_get(n, "key"), *v = ef_json_get(n, "version");
        int64_t ver;
        if (!k || k->type != EF_JSON_STRING || !ef_json_i64(v, &ver) || ver < 0) {
            ef_store_fail(err, EF_STORE_INVALID, "bad namespace version in entry");
            goto fail;
        }
        sqlite3_stmt *st = sq_stmt(s, SL_VER_SET,
                                   "INSERT INTO ns_versions VALUES (?1, ?2) ON CONFLICT(namespace_key)"
                                   " DO UPDATE SET version = MAX(version, ?2)",
                                   err);
        if (!st) goto fail;
        sq_bind_bytes(st, 1, k->str);
        sqlite3_bind_int64(st, 2, ver);
        if (sq_step_done(s, st, "version", err)) goto fail;
        if (sq_wtx_touch(s, k->str, err)) goto fail;
    }
    /* The entry is logged verbatim under the same seq, so this store can feed replicas of its own
     * that see exactly what the primary wrote. */
    sqlite3_stmt *st = sq_stmt(s, SL_LOG_INSERT, "INSERT INTO changelog VALUES (?, ?, ?)", err);
    if (!st) goto fail;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    sqlite3_bind_int64(st, 2, jtime ? when : ef_clock_wall_ns());
    sqlite3_bind_text(st, 3, entry, (int)len, SQLITE_STATIC);
    if (sq_step_done(s, st, "change log", err)) goto fail;
    st = sq_stmt(s, SL_STATE_SEQ, "UPDATE ef_state SET seq = ? WHERE id = 1", err);
    if (!st) goto fail;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
    if (sq_step_done(s, st, "seq", err)) goto fail;
    /* What the capture triggers captured of the applied rows (prepared once, as writes do); a
     * follower's store has no triggers (sqlite_capture.c), so nothing to empty there */
    if (!s->opts.follower) {
        st = sq_stmt(s, SL_PENDING_CLEAR, "DELETE FROM ef_pending", err);
        if (!st || sq_step_done(s, st, "pending", err)) goto fail;
    }
    if ((s->opts.log_keep_entries || s->opts.log_max_age_ns) &&
        trim_tx(s, s->opts.log_keep_entries, s->opts.log_max_age_ns, err))
        goto fail;
    /* the entry parsed above: recompiling needs its rows too */
    if (precompile(s, len <= SQ_INCR_MAX_ENTRY ? root : NULL, err)) goto fail;
    ef_arena_free(&a);
    return finish_commit(s, seq, NULL, err);
fail:
    ef_arena_free(&a);
    sq_wtx_rollback(s);
    return -1;
}

/* Rows arrive in the primary's order, which its own immediate foreign keys accepted statement by
 * statement; an entry whose rows refer to ones written later in it (an import's flags name their
 * default variants, sqlite_capture.c) needs the checks deferred to COMMIT. PRAGMA
 * defer_foreign_keys expires every prepared statement of the connection (SQLite re-prepares each
 * on its next step: 75% of a one-flag entry's apply), so an entry is applied with immediate
 * checks first and again, deferred, only when a foreign key refused a row. Both accept the same
 * entries: deferring changes when constraints are checked, never what the actions do. */
static int apply_changes(void *h, const char *entry, size_t len, ef_store_err *err)
{
    sq *s = h;
    s->apply_fk_failed = false;
    int rc = apply_entry(s, entry, len, false, err);
    if (rc && s->apply_fk_failed) rc = apply_entry(s, entry, len, true, err);
    return rc;
}

/* A dump's "last": {"time": ns, "entry": the upstream's entry at the dump's seq, as text}. The
 * entry is stored, never applied (the dump's tables already hold its rows), and it travels on to
 * this node's own followers verbatim: it must be a JSON object whose seq is the dump's. */
static int dump_last(const ef_json *jlast, uint64_t dump_seq, ef_arena *a, ef_bytes *entry,
                     int64_t *time_ns, ef_store_err *err)
{
    const ef_json *jt = ef_json_get(jlast, "time"), *je = ef_json_get(jlast, "entry");
    if (dump_seq == 0 || jlast->type != EF_JSON_OBJECT || !ef_json_i64(jt, time_ns) || *time_ns < 0 || !je ||
        je->type != EF_JSON_STRING || je->str.n == 0 || je->str.n > SQ_DUMP_LAST_MAX)
        return ef_store_fail(err, EF_STORE_INVALID,
                             "dump's last is not {\"time\": ns, \"entry\": text of at most %u bytes}",
                             SQ_DUMP_LAST_MAX);
    ef_json_error jerr;
    ef_json_opts jo = {.max_depth = 64};
    const ef_json *e = ef_json_parse(je->str.p, je->str.n, a, &jo, &jerr);
    uint64_t seq;
    if (!e || e->type != EF_JSON_OBJECT || !ef_json_u64(ef_json_get(e, "seq"), &seq) || seq != dump_seq)
        return ef_store_fail(err, EF_STORE_INVALID,
                             "dump's last entry is not a change-log entry at the dump's seq %llu",
                             (unsigned long long)dump_seq);
    *entry = je->str;
    return 0;
}

/* Every reference the loaded rows make holds (PRAGMA foreign_key_check finds no row), or the
 * first that does not, as an error: a dump from a peer that lies must not leave a state the
 * schema forbids. */
static int dump_refs_hold(sq *s, ef_store_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
        return sq_db_err(s, err, "load dump");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) /* table, rowid, parent table, index of the key */
        ef_store_fail(err, EF_STORE_INVALID,
                      "dump breaks a reference: a row of table %s refers to a missing row of %s",
                      (const char *)sqlite3_column_text(st, 0),
                      (const char *)sqlite3_column_text(st, 2));
    else if (rc != SQLITE_DONE)
        sq_db_err(s, err, "load dump");
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int load_dump(void *h, const char *data, size_t len, ef_store_err *err)
{
    sq *s = h;
    ef_arena a;
    ef_arena_init(&a, 65536);
    ef_json_error jerr;
    ef_json_opts jo = {.max_depth = 16};
    ef_json *root = ef_json_parse(data, len, &a, &jo, &jerr);
    const ef_json *jseq = root ? ef_json_get(root, "seq") : NULL;
    const ef_json *jver = root ? ef_json_get(root, "versions") : NULL;
    const ef_json *jtab = root ? ef_json_get(root, "tables") : NULL;
    const ef_json *jcounts = root ? ef_json_get(root, "counts") : NULL;
    if (jcounts && jcounts->type != EF_JSON_OBJECT) jcounts = NULL;
    /* a dump without a history (an older node, a libSQL remote's) leaves ours as it is */
    const ef_json *jhist = root ? ef_json_get(root, "history") : NULL;
    if (jhist && !sq_history_valid(jhist)) {
        ef_arena_free(&a);
        return ef_store_fail(err, EF_STORE_INVALID, "dump history is not 1 to %d hex digits",
                             EF_STORE_ID_MAX);
    }
    uint64_t dump_seq;
    if (!ef_json_u64(jseq, &dump_seq) || dump_seq > INT64_MAX || !jver || jver->type != EF_JSON_OBJECT ||
        !jtab || jtab->type != EF_JSON_OBJECT) {
        ef_arena_free(&a);
        return ef_store_fail(err, EF_STORE_INVALID, "dump lacks seq (an integer), versions or tables");
    }
    /* the upstream's entry at seq (optional): kept as the log's only entry */
    ef_bytes last = {NULL, 0};
    int64_t last_time = 0;
    const ef_json *jlast = root ? ef_json_get(root, "last") : NULL;
    if (jlast && dump_last(jlast, dump_seq, &a, &last, &last_time, err)) {
        ef_arena_free(&a);
        return -1;
    }
    /* The foreign keys are off while the rows go in, and checked once before COMMIT: enforced row
     * by row, each insert is a statement that may abort, so SQLite copied every page it touched
     * into a statement journal first, a temporary file (a 100,000-flag dump: 9.4 s of rows, 3.8 s
     * without). */
    if (sq_wtx_begin_bulk(s, err)) {
        ef_arena_free(&a);
        return -1;
    }
    sq_cache_bulk(s); /* the whole state in one transaction */
    s->applying = true;
    s->touched_all = true;
    /* Old namespaces must leave the registry too: remember them before deleting. */
    {
        sqlite3_stmt *st = sq_stmt(s, SL_NS_ALL, "SELECT key FROM namespaces", err);
        if (!st) goto fail;
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW) {
            ef_bytes k = {(const char *)sqlite3_column_text(st, 0),
                          (size_t)sqlite3_column_bytes(st, 0)};
            if (sq_wtx_touch(s, k, err)) goto fail;
        }
        if (r != SQLITE_DONE) {
            sq_db_err(s, err, "load dump");
            goto fail;
        }
        sqlite3_reset(st);
    }
    /* children first: segment references RESTRICT deletes and are not deferred */
    for (size_t i = sq_ntables; i-- > 0;) {
        char sql[96];
        snprintf(sql, sizeof(sql), "DELETE FROM \"%s\"", sq_tables[i].name);
        if (exec_step(s, sql, err)) goto fail;
    }
    if (exec_step(s, "DELETE FROM ns_versions; DELETE FROM changelog;", err)) goto fail;
    if (last.p) {
        sqlite3_stmt *st = sq_stmt(s, SL_LOG_DUMP_LAST,
                                   "INSERT INTO changelog(seq, time_ns, entry) VALUES (?1, ?2, ?3)", err);
        if (!st) goto fail;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)dump_seq);
        sqlite3_bind_int64(st, 2, last_time);
        sq_bind_bytes(st, 3, last);
        if (sq_step_done(s, st, "load dump", err)) goto fail;
    }
    for (size_t t = 0; t < sq_ntables; t++) {
        const ef_json *rows = ef_json_get(jtab, sq_tables[t].name);
        const ef_json *count = jcounts ? ef_json_get(jcounts, sq_tables[t].name) : NULL;
        if (!rows) continue;
        if (rows->type != EF_JSON_ARRAY) {
            ef_store_fail(err, EF_STORE_INVALID, "dump table %s is not an array", sq_tables[t].name);
            goto fail;
        }
        /* A dump that says how many rows it holds must hold them all: never replace the whole
         * state with a partial one (issue 19, item 6). */
        if (jcounts && (!count || count->type != EF_JSON_NUMBER || count->num != (double)rows->len)) {
            ef_store_fail(err, EF_STORE_INVALID,
                          "dump is incomplete: table %s has %zu rows, the dump announced %.0f",
                          sq_tables[t].name, (size_t)rows->len,
                          count && count->type == EF_JSON_NUMBER ? count->num : -1.0);
            goto fail;
        }
        for (const ef_json *r = rows->child; r; r = r->next) {
            sqlite3_stmt *st = apply_stmt(s, t, false, err);
            if (!st) goto fail;
            if (r->type != EF_JSON_OBJECT) {
                ef_store_fail(err, EF_STORE_INVALID, "dump row is not an object");
                goto fail;
            }
            if (bind_cols(st, sq_tables[t].cols, r, sq_tables[t].name, err)) goto fail;
            int rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE) {
                sq_db_err(s, err, "load dump");
                goto fail;
            }
        }
    }
    for (const ef_json *v = jver->child; v; v = v->next) {
        sqlite3_stmt *st = sq_stmt(s, SL_VER_SET,
                                   "INSERT INTO ns_versions VALUES (?1, ?2) ON CONFLICT(namespace_key)"
                                   " DO UPDATE SET version = MAX(version, ?2)",
                                   err);
        int64_t ver;
        if (!st || !ef_json_i64(v, &ver) || ver < 0) {
            if (st) ef_store_fail(err, EF_STORE_INVALID, "bad version in dump");
            goto fail;
        }
        sq_bind_bytes(st, 1, v->key);
        sqlite3_bind_int64(st, 2, ver);
        if (sq_step_done(s, st, "version", err)) goto fail;
    }
    {
        /* the log starts after the dump's seq, or at it when it holds the dump's last entry */
        sqlite3_stmt *st = sq_stmt(s, SL_LOG_MAXTRIM,
                                   "UPDATE ef_state SET seq = ?1, trimmed = ?2 WHERE id = 1", err);
        if (!st) goto fail;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)dump_seq);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)(last.p ? dump_seq - 1 : dump_seq));
        if (sq_step_done(s, st, "seq", err)) goto fail;
    }
    if (jhist) {
        /* the state is now the upstream's, and so is its history */
        sqlite3_stmt *st = sq_stmt(s, SL_ID_SET,
                                   "UPDATE ef_identity SET history = ?1, history_since = ?2"
                                   " WHERE id = 1",
                                   err);
        if (!st) goto fail;
        sq_bind_bytes(st, 1, jhist->str);
        sqlite3_bind_int64(st, 2, ef_clock_wall_ns());
        if (sq_step_done(s, st, "history", err)) goto fail;
    }
    if (exec_step(s, "DELETE FROM ef_pending", err)) goto fail;
    /* The rows are in: their parse (about three times the dump's text) goes before the compile
     * builds the whole state, so the two never add up (a replica loading 100,000 flags peaked at
     * 1.1 GB). */
    ef_arena_free(&a);
    if (dump_refs_hold(s, err) || precompile(s, NULL, err)) goto fail;
    s->republish_hold = 0; /* the dump replaces everything, and is published whole */
    int rc = finish_commit(s, dump_seq, NULL, err); /* releases the writer */
    sq_bulk_done(s); /* a replica of 100,000 flags otherwise kept the parse of its 140 MB dump */
    return rc;
fail:
    ef_arena_free(&a);
    sq_wtx_rollback(s);
    sq_bulk_done(s);
    return -1;
}

static void on_commit(void *h, ef_store_change_fn fn, void *ctx)
{
    sq *s = h;
    pthread_mutex_lock(&s->mu);
    s->commit_fn = fn;
    s->commit_fn_ctx = ctx;
    pthread_mutex_unlock(&s->mu);
}

void sq_fill_ops_log(ef_store_ops *o)
{
    o->on_commit = on_commit;
    o->ns_version = ns_version;
    o->seq = log_seq;
    o->changes = log_changes;
    o->trim = log_trim;
    o->dump = dump;
    o->load_dump = load_dump;
    o->apply_changes = apply_changes;
    o->identity = identity;
}
