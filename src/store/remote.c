/*
 * remote.c - the remote-store core (remote.h): a local SQLite cache written through to a database
 * of record shared by several edgeflag nodes, over a per-database adapter (libsql.c, pg.c).
 *
 * Reads and evaluation use the cache only. A write runs in a local transaction as usual; the SQLite
 * backend's commit hook then hands the change-log entry to the adapter, which commits it remotely
 * in one guarded transaction (the remote seq must still be ours - 1), and the local COMMIT follows
 * only when the remote committed. A node that lost the race pulls the newer entries and runs the
 * operation again. A pick-up thread pulls other nodes' entries when the adapter says the database
 * changed, or every poll interval, and republishes the touched namespaces.
 *
 * This file must never acknowledge a write the adapter did not report committed, and never hold
 * the cache's writer while waiting for the pick-up lock (a pull takes sync_mu, then the cache).
 */
#include "store/remote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/sqlite_int.h"
#include "base/thread.h"

/* A write that keeps losing the race gives up after this many retries. A node whose peer has a
 * queue of writes can lose several times in a row (the peer commits again while this node pulls),
 * so the bound is generous and losers after the second wait a little, at random, to break the
 * lockstep. */
#define RQ_RETRIES 16
#define RQ_PULL_PAGE 256 /* change-log entries fetched per request */

typedef struct rq {
    ef_store *local; /* the SQLite cache; its handle is what callers' ops receive */
    ef_store_ops ops;
    ef_store store;
    const ef_remote_ops *ad_ops;
    void *ad;
    char *kind;  /* "libsql", "postgres": for messages */
    char *where; /* the server, for messages (no credentials) */
    uint64_t log_keep;
    unsigned poll_ms;
    pthread_mutex_t write_mu; /* one write at a time, so `conflict` belongs to it */
    pthread_mutex_t sync_mu;  /* one pull at a time */
    bool conflict;            /* set by the commit hook when another node wrote first */
    bool migrated;            /* the remote schema is known to be current (atomic) */
    bool bootstrapped;        /* the cache has been filled from the remote once */
    bool reachable;           /* last pick-up outcome, for logging changes only */
    int wake[2];              /* a byte on wake[1] stops the pick-up thread */
    bool poller_started;
    pthread_t poller;
} rq;

static bool starts_ci(const char *p, const char *word)
{
    while (*p == ' ' || *p == '\n' || *p == '\t') p++;
    return strncasecmp(p, word, strlen(word)) == 0;
}

static bool ends_with_ci(const char *start, const char *p, const char *word)
{
    size_t n = strlen(word);
    while (p > start && (p[-1] == ' ' || p[-1] == '\n')) p--;
    return (size_t)(p - start) >= n && strncasecmp(p - n, word, n) == 0;
}

size_t ef_remote_split_sql(const char *sql, ef_arena *a, char **out, size_t max)
{
    size_t n = 0;
    const char *start = sql;
    char quote = 0;
    bool dollar = false; /* inside a $$ ... $$ body (PostgreSQL functions) */
    for (const char *p = sql; *p; p++) {
        if (p[0] == '$' && p[1] == '$' && !quote) {
            dollar = !dollar;
            p++;
            continue;
        }
        if (dollar) continue;
        if (quote) {
            if (*p == quote) quote = 0;
            continue;
        }
        if (*p == '\'' || *p == '"') {
            quote = *p;
            continue;
        }
        if (*p != ';') continue;
        if (starts_ci(start, "CREATE TRIGGER") && !ends_with_ci(start, p, "END")) continue;
        while (*start == ' ' || *start == '\n') start++;
        if (p > start && n < max) {
            char *s = ef_arena_memdup(a, start, (size_t)(p - start) + 1);
            if (s) s[p - start] = '\0';
            out[n++] = s;
        }
        start = p + 1;
    }
    return n;
}

char *ef_remote_default_cache(const char *kind, const char *text)
{
    size_t n = strlen(text);
    char *out = malloc(n + strlen(kind) + 16);
    if (!out) return NULL;
    size_t o = (size_t)sprintf(out, "./data/%s-", kind);
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '-';
        out[o++] = plain ? c : '_';
    }
    strcpy(out + o, ".db");
    return out;
}

static int ensure_migrated(rq *q, ef_store_err *err)
{
    if (__atomic_load_n(&q->migrated, __ATOMIC_ACQUIRE)) return 0;
    if (q->ad_ops->migrate(q->ad, err)) return -1;
    __atomic_store_n(&q->migrated, true, __ATOMIC_RELEASE);
    return 0;
}

static int load_remote_dump(rq *q, ef_store_err *err)
{
    ef_log(EF_LOG_INFO, "remote store: loading a full dump (a new cache, or its position was trimmed)",
           "db", q->kind, "server", q->where, NULL);
    ef_buf d;
    ef_buf_init(&d);
    int rc = q->ad_ops->dump(q->ad, &d, err);
    if (rc == 0) rc = q->local->ops->load_dump(q->local->h, d.data, d.len, err);
    ef_buf_free(&d);
    return rc;
}

/* Brings the cache up to the remote: the entries after the local seq, or a dump when the remote
 * no longer holds them (or the cache is new). One round trip when nothing changed. */
static int pull(rq *q, ef_store_err *err)
{
    pthread_mutex_lock(&q->sync_mu);
    int rc = -1;
    if (ensure_migrated(q, err)) goto out;
    int64_t limit = RQ_PULL_PAGE; /* halved while the answer would pass the cap */
    for (;;) {
        uint64_t local, first;
        if (ef_store_seq(q->local, &local, &first, err)) goto out;
        if (local == 0 && !q->bootstrapped) {
            /* a new cache takes everything from the remote, the seeded default namespace
             * included, so every node shows identical rows */
            rc = load_remote_dump(q, err);
            if (rc == 0) q->bootstrapped = true;
            goto out;
        }
        q->bootstrapped = true;
        ef_arena a;
        ef_arena_init(&a, 65536);
        ef_remote_page pg = {0};
        int step = 0; /* 0: applied a page, 1: up to date, 2: needs a dump, -1: failed, 3: again */
        int got = q->ad_ops->fetch(q->ad, local, limit, &a, &pg, err);
        if (got == EF_REMOTE_TOO_LARGE) {
            /* fewer entries; one entry past the cap (a huge import) is skipped by a dump, which
             * reads rows, not the log */
            step = limit > 1 ? 3 : 2;
            limit = limit > 1 ? limit / 2 : 1;
            ef_log(EF_LOG_INFO, "remote store: change-log page past the answer cap; asking for less",
                   "server", q->where, "error", err->message, NULL);
        } else if (got) {
            step = -1;
        } else if (pg.seq == local) {
            step = 1;
        } else if (pg.seq < local) {
            step = -1;
            ef_store_fail(err, EF_STORE_UNAVAILABLE,
                          "%s %s: the remote database (seq %llu) is behind this node's cache (seq "
                          "%llu); is it another database? Remove the cache file to start from it",
                          q->kind, q->where, (unsigned long long)pg.seq,
                          (unsigned long long)local);
        } else if (pg.trimmed > local || pg.n == 0) {
            step = 2; /* trimmed, or seq moved with no entries to show for it */
        } else {
            for (size_t i = 0; i < pg.n; i++)
                if (q->local->ops->apply_changes(q->local->h, pg.entries[i].p, pg.entries[i].n,
                                                 err)) {
                    step = -1;
                    break;
                }
        }
        ef_arena_free(&a);
        if (step == -1) goto out;
        if (step == 1) break;
        if (step == 3) continue;
        if (step == 2) {
            rc = load_remote_dump(q, err);
            goto out;
        }
    }
    rc = 0;
out:
    pthread_mutex_unlock(&q->sync_mu);
    return rc;
}

/* Sleeps up to ms or until the wake pipe has a byte. */
static void sleep_or_wake(int fd, unsigned ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    (void)poll(&p, 1, (int)ms);
}

static bool woken(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

static void *poll_main(void *arg)
{
    ef_thread_name("ef-db-poll");
    rq *q = arg;
    while (!woken(q->wake[0])) {
        if (q->ad_ops->wait)
            q->ad_ops->wait(q->ad, q->wake[0], q->poll_ms);
        else
            sleep_or_wake(q->wake[0], q->poll_ms);
        if (woken(q->wake[0])) break;
        ef_store_err err = {0};
        bool ok = pull(q, &err) == 0;
        if (ok != q->reachable)
            ef_log(ok ? EF_LOG_INFO : EF_LOG_WARN,
                   ok ? "remote store: database reachable; cache up to date"
                      : "remote store: cannot refresh from the database; serving the cache",
                   "db", q->kind, "server", q->where, "error", ok ? "" : err.message, NULL);
        q->reachable = ok;
    }
    return NULL;
}

/* ---- the write path ---- */

/* The commit hook (ef_sqlite_opts.commit_hook): the entry goes to the remote in one transaction. */
static int commit_hook(void *ctx, uint64_t seq, const char *entry, size_t len, ef_store_err *err)
{
    rq *q = ctx;
    ef_arena a;
    ef_arena_init(&a, 65536);
    ef_json_error je;
    const ef_json *root = ef_json_parse(entry, len, &a, NULL, &je);
    ef_remote_write w = {.seq = seq,
                         .entry = {entry, len},
                         .changes = root ? ef_json_get(root, "changes") : NULL,
                         .namespaces = root ? ef_json_get(root, "namespaces") : NULL,
                         .time = root ? ef_json_get(root, "time") : NULL,
                         .log_keep = q->log_keep};
    int rc = -1;
    if (!w.changes || w.changes->type != EF_JSON_ARRAY || !w.namespaces ||
        w.namespaces->type != EF_JSON_ARRAY || !w.time) {
        ef_store_fail(err, EF_STORE_INTERNAL, "%s: malformed change-log entry", q->kind);
        goto done;
    }
    /* not under sync_mu: the writer holds the cache's lock here, and a pull takes sync_mu and
     * then that lock. Two threads migrating at once is harmless (each step is guarded). */
    if (ensure_migrated(q, err)) goto done;
    bool conflict = false;
    rc = q->ad_ops->commit(q->ad, &w, &conflict, err);
    if (rc && conflict) q->conflict = true;
done:
    ef_arena_free(&a);
    return rc;
}

/* Up to attempt ms, at random (the clock's low bits: no shared generator state). */
static void backoff(int attempt)
{
    long us = (long)((uint64_t)ef_clock_mono_ns() / 1000 % (uint64_t)(attempt * 1000));
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

static rq *rq_of(void *h)
{
    return ((sq *)h)->opts.commit_ctx;
}

/* Runs a wrapped write: on a lost race, pull the winner's entries and run it again. */
#define RQ_WRITE(name, params, args)                                                              \
    static int rq_##name params                                                                    \
    {                                                                                              \
        rq *q = rq_of(h);                                                                          \
        pthread_mutex_lock(&q->write_mu);                                                          \
        int rc = -1;                                                                               \
        for (int attempt = 0; attempt <= RQ_RETRIES; attempt++) {                                  \
            q->conflict = false;                                                                   \
            rc = q->local->ops->name args;                                                         \
            if (rc == 0 || !q->conflict) break;                                                    \
            ef_log(EF_LOG_INFO, "remote store: another node wrote first; pulling and retrying",   \
                   "op", #name, NULL);                                                             \
            if (attempt == RQ_RETRIES) {                                                           \
                ef_store_fail(err, EF_STORE_UNAVAILABLE,                                           \
                              "%s %s: other nodes kept writing first; the write was not saved",   \
                              q->kind, q->where);                                                  \
                break;                                                                             \
            }                                                                                      \
            if (attempt >= 2) backoff(attempt);                                                    \
            ef_store_err perr;                                                                     \
            if (pull(q, &perr)) {                                                                  \
                *err = perr;                                                                       \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
        pthread_mutex_unlock(&q->write_mu);                                                        \
        return rc;                                                                                 \
    }

#define P(...) (void *h, __VA_ARGS__, ef_store_err *err)
#define A(...) (h, __VA_ARGS__, err)
RQ_WRITE(ns_create, P(const ef_store_ns_in *in, ef_arena *a, ef_doc_namespace *out), A(in, a, out))
RQ_WRITE(ns_update, P(const ef_store_ns_in *in, ef_arena *a, ef_doc_namespace *out), A(in, a, out))
RQ_WRITE(ns_delete, P(ef_bytes key, bool force), A(key, force))
RQ_WRITE(flag_create, P(ef_bytes ns, const ef_store_flag_in *in, ef_arena *a, ef_doc_flag *out),
         A(ns, in, a, out))
RQ_WRITE(flag_update, P(ef_bytes ns, const ef_store_flag_in *in, ef_arena *a, ef_doc_flag *out),
         A(ns, in, a, out))
RQ_WRITE(flag_delete, P(ef_bytes ns, ef_bytes key), A(ns, key))
RQ_WRITE(variant_create,
         P(ef_bytes ns, ef_bytes f, const ef_store_variant_in *in, ef_arena *a, ef_doc_variant *out),
         A(ns, f, in, a, out))
RQ_WRITE(variant_update,
         P(ef_bytes ns, ef_bytes f, ef_bytes id, const ef_store_variant_in *in, ef_arena *a,
           ef_doc_variant *out),
         A(ns, f, id, in, a, out))
RQ_WRITE(variant_delete, P(ef_bytes ns, ef_bytes f, ef_bytes id), A(ns, f, id))
RQ_WRITE(segment_create,
         P(ef_bytes ns, const ef_store_segment_in *in, ef_arena *a, ef_doc_segment *out),
         A(ns, in, a, out))
RQ_WRITE(segment_update,
         P(ef_bytes ns, const ef_store_segment_in *in, ef_arena *a, ef_doc_segment *out),
         A(ns, in, a, out))
RQ_WRITE(segment_delete, P(ef_bytes ns, ef_bytes key), A(ns, key))
RQ_WRITE(constraint_create,
         P(ef_bytes ns, ef_bytes g, const ef_store_constraint_in *in, ef_arena *a,
           ef_doc_constraint *out),
         A(ns, g, in, a, out))
RQ_WRITE(constraint_update,
         P(ef_bytes ns, ef_bytes g, ef_bytes id, const ef_store_constraint_in *in, ef_arena *a,
           ef_doc_constraint *out),
         A(ns, g, id, in, a, out))
RQ_WRITE(constraint_delete, P(ef_bytes ns, ef_bytes g, ef_bytes id), A(ns, g, id))
RQ_WRITE(rule_create,
         P(ef_bytes ns, ef_bytes f, const ef_store_rule_in *in, ef_arena *a, ef_store_rule *out),
         A(ns, f, in, a, out))
RQ_WRITE(rule_update,
         P(ef_bytes ns, ef_bytes f, ef_bytes id, const ef_store_rule_in *in, ef_arena *a,
           ef_store_rule *out),
         A(ns, f, id, in, a, out))
RQ_WRITE(rule_delete, P(ef_bytes ns, ef_bytes f, ef_bytes id), A(ns, f, id))
RQ_WRITE(rule_order, P(ef_bytes ns, ef_bytes f, const ef_bytes *ids, size_t n), A(ns, f, ids, n))
RQ_WRITE(distribution_create,
         P(ef_bytes ns, ef_bytes f, ef_bytes rule, const ef_store_distribution_in *in, ef_arena *a,
           ef_doc_distribution *out),
         A(ns, f, rule, in, a, out))
RQ_WRITE(distribution_update,
         P(ef_bytes ns, ef_bytes f, ef_bytes rule, ef_bytes id, const ef_store_distribution_in *in,
           ef_arena *a, ef_doc_distribution *out),
         A(ns, f, rule, id, in, a, out))
RQ_WRITE(distribution_delete, P(ef_bytes ns, ef_bytes f, ef_bytes rule, ef_bytes id, ef_bytes v),
         A(ns, f, rule, id, v))
RQ_WRITE(rollout_create,
         P(ef_bytes ns, ef_bytes f, const ef_store_rollout_in *in, ef_arena *a,
           ef_store_rollout *out),
         A(ns, f, in, a, out))
RQ_WRITE(rollout_update,
         P(ef_bytes ns, ef_bytes f, ef_bytes id, const ef_store_rollout_in *in, ef_arena *a,
           ef_store_rollout *out),
         A(ns, f, id, in, a, out))
RQ_WRITE(rollout_delete, P(ef_bytes ns, ef_bytes f, ef_bytes id), A(ns, f, id))
RQ_WRITE(rollout_order, P(ef_bytes ns, ef_bytes f, const ef_bytes *ids, size_t n), A(ns, f, ids, n))
RQ_WRITE(token_create, P(const ef_store_token *in, ef_arena *a, ef_store_token *out), A(in, a, out))
RQ_WRITE(token_delete, P(ef_bytes id), A(id))
RQ_WRITE(token_expire, P(ef_bytes id, int64_t expires_ns), A(id, expires_ns))
RQ_WRITE(import_doc, P(const ef_doc *doc, const ef_store_import_opts *o), A(doc, o))
#undef P
#undef A

/* The cache follows the remote database only; a replication feed must not write into it. */
static int rq_apply_changes(void *h, const char *entry, size_t len, ef_store_err *err)
{
    (void)h, (void)entry, (void)len;
    return ef_store_fail(err, EF_STORE_READ_ONLY,
                   "a store on a remote database takes changes from its database, not from a feed");
}

static int rq_load_dump(void *h, const char *data, size_t len, ef_store_err *err)
{
    (void)h, (void)data, (void)len;
    return ef_store_fail(err, EF_STORE_READ_ONLY,
                   "a store on a remote database takes its state from its database, not from a dump");
}


static void rq_free(rq *q)
{
    if (q->poller_started) {
        char c = 1;
        while (write(q->wake[1], &c, 1) < 0 && errno == EINTR) {
        }
        pthread_join(q->poller, NULL);
    }
    if (q->local) ef_store_close(q->local);
    if (q->ad_ops && q->ad) q->ad_ops->close(q->ad);
    for (int i = 0; i < 2; i++)
        if (q->wake[i] >= 0) close(q->wake[i]);
    pthread_mutex_destroy(&q->write_mu);
    pthread_mutex_destroy(&q->sync_mu);
    free(q->kind);
    free(q->where);
    free(q);
}

static void rq_close(void *h)
{
    if (h) rq_free(rq_of(h));
}

ef_store *ef_remote_open(const char *kind, const char *where, const char *default_cache,
                         const ef_remote_ops *ops, void *ad, const ef_store_open_opts *o,
                         ef_store_err *err)
{
    rq *q = calloc(1, sizeof(*q));
    if (!q) {
        ops->close(ad);
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        return NULL;
    }
    q->ad_ops = ops;
    q->ad = ad;
    q->wake[0] = q->wake[1] = -1;
    pthread_mutex_init(&q->write_mu, NULL);
    pthread_mutex_init(&q->sync_mu, NULL);
    q->kind = strdup(kind);
    q->where = strdup(where);
    q->poll_ms = o && o->poll_ms ? o->poll_ms : 1000;
    q->log_keep = o ? o->log_keep_entries : 0;
    q->reachable = true;
    const char *cache = o && o->cache_path && *o->cache_path ? o->cache_path : default_cache;
    if (!q->kind || !q->where || pipe2(q->wake, O_CLOEXEC | O_NONBLOCK)) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        goto fail;
    }
    ef_sqlite_opts so = {.registry = o ? o->registry : NULL,
                         .log_keep_entries = o ? o->log_keep_entries : 0,
                         .log_max_age_ns = o ? o->log_max_age_ns : 0,
                         .commit_hook = commit_hook,
                         .commit_ctx = q};
    q->local = ef_sqlite_open(cache, &so, err);
    if (!q->local) goto fail;
    if (pull(q, err)) {
        uint64_t seq = 0, first;
        ef_store_err serr;
        bool have_cache = ef_store_seq(q->local, &seq, &first, &serr) == 0 && seq > 0;
        /* a cache with data keeps the node serving through a remote outage at start-up; a new
         * cache has nothing to serve, and a schema or content problem is not an outage */
        if (!have_cache || err->code != EF_STORE_UNAVAILABLE || strstr(err->message, "newer") ||
            strstr(err->message, "behind"))
            goto fail;
        ef_log(EF_LOG_WARN, "remote store: database unreachable; serving the local cache", "db",
               q->kind, "server", q->where, "error", err->message, NULL);
        q->reachable = false;
    }
    q->ops = *q->local->ops;
#define W(name) q->ops.name = rq_##name
    W(ns_create), W(ns_update), W(ns_delete), W(flag_create), W(flag_update), W(flag_delete);
    W(variant_create), W(variant_update), W(variant_delete);
    W(segment_create), W(segment_update), W(segment_delete);
    W(constraint_create), W(constraint_update), W(constraint_delete);
    W(rule_create), W(rule_update), W(rule_delete), W(rule_order);
    W(distribution_create), W(distribution_update), W(distribution_delete);
    W(rollout_create), W(rollout_update), W(rollout_delete), W(rollout_order);
    W(token_create), W(token_delete), W(token_expire), W(import_doc), W(apply_changes), W(load_dump);
#undef W
    q->ops.close = rq_close;
    q->store.ops = &q->ops;
    q->store.h = q->local->h; /* read ops are the cache's own */
    if (pthread_create(&q->poller, NULL, poll_main, q) != 0) {
        ef_store_fail(err, EF_STORE_INTERNAL, "cannot start the %s pick-up thread", kind);
        goto fail;
    }
    q->poller_started = true;
    return &q->store;
fail: {
    /* the cache was opened with q as its hook context: close it through its own ops */
    ef_store_err keep = *err;
    rq_free(q);
    *err = keep;
}
    return NULL;
}
