/*
 * pg.c - the PostgreSQL adapter of the remote-store core (remote.h, docs/storage.md): the database
 * of record is a PostgreSQL database reached with libpq (--db postgres://…, postgresql://…;
 * cockroach://… is passed to libpq as PostgreSQL wire, untested). Its schema is pg_schema.c.
 *
 * A write is one transaction sent as a libpq pipeline (one round trip for a small write): BEGIN,
 * lock ef_state, a guard that fails unless the remote seq is ours - 1, the row upserts/deletes,
 * namespace versions, the log entry, the seq, a NOTIFY, COMMIT. Other nodes LISTEN on a second
 * connection and pull as soon as the notification arrives (the poll interval stays as a fallback).
 * libpq's multi-host URLs with target_session_attrs=read-write move a node to a promoted standby:
 * a broken connection is simply opened again on the next request.
 *
 * This file must never report a write committed unless PostgreSQL answered COMMIT to its COMMIT,
 * never wait on the server without a deadline, never put a value into SQL text (values are libpq
 * parameters; table and column names come from sq_tables), and never log a password.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/open.h"
#include "store/pg_int.h"
#include "store/rdb.h"
#include "store/remote.h"

#define PG_CHANNEL "edgeflag_changes"
/* Debian's bundle of the system's trusted CAs (package ca-certificates): what libcurl trusts too */
#define EF_SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define PG_CHUNK 200           /* statements per pipeline sync: bounds what is in flight */
#define PG_MAX_COUNTER ((int64_t)1 << 53)
#define PG_MIGRATION_LOCK "6504761257" /* pg_advisory_xact_lock key of migrations */

typedef struct pgad {
    char *url;       /* the connection URL as libpq takes it (credentials included: never logged) */
    char *where;     /* host:port/db, for messages */
    int timeout_ms;  /* every request's deadline */
    bool notify;     /* NOTIFY/LISTEN (not on cockroach://) */
    pthread_mutex_t mu; /* c is used by the writer and the pick-up thread */
    PGconn *c;
    PGconn *lc; /* the LISTEN connection (pick-up thread only) */
} pgad;

/* ---- connections and deadlines ---- */

static bool host_is_local(const char *h, size_t n)
{
    return n == 0 || h[0] == '/' || (n == 9 && !strncmp(h, "localhost", 9)) ||
           (n >= 4 && !strncmp(h, "127.", 4)) || (n == 3 && !strncmp(h, "::1", 3));
}

int ef_pg_tls_defaults(const char *url, const char *keys[2], const char *vals[2])
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    PQfreemem(msg);
    if (!opts) return 0; /* libpq will say what is wrong with it */
    const char *mode = NULL, *root = NULL, *hosts = NULL, *addrs = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val) continue;
        if (!strcmp(o->keyword, "sslmode")) mode = o->val;
        if (!strcmp(o->keyword, "sslrootcert")) root = o->val;
        if (!strcmp(o->keyword, "host")) hosts = o->val;
        if (!strcmp(o->keyword, "hostaddr")) addrs = o->val;
    }
    bool remote = false; /* any host of a multi-host URL that is not this machine */
    for (const char *list = hosts ? hosts : addrs; list && *list && !remote;) {
        size_t n = strcspn(list, ",");
        remote = !host_is_local(list, n);
        list += n + (list[n] == ',');
    }
    if (!hosts && addrs) /* hostaddr without host: every address counts */
        for (const char *list = addrs; *list && !remote;) {
            size_t n = strcspn(list, ",");
            remote = !host_is_local(list, n);
            list += n + (list[n] == ',');
        }
    int k = 0;
    if (remote && !mode && !getenv("PGSSLMODE")) {
        keys[k] = "sslmode", vals[k++] = "verify-full";
        if (!root && !getenv("PGSSLROOTCERT")) keys[k] = "sslrootcert", vals[k++] = EF_SYSTEM_CA_BUNDLE;
    }
    PQconninfoFree(opts);
    return k;
}

static PGconn *pg_connect(pgad *p, ef_store_err *err)
{
    char tmo[16];
    snprintf(tmo, sizeof(tmo), "%d", p->timeout_ms < 2000 ? 2 : (p->timeout_ms + 999) / 1000);
    /* the URL comes last so that what it says wins over these defaults */
    const char *keys[6] = {"connect_timeout", "fallback_application_name"};
    const char *vals[6] = {tmo, "edgeflag"};
    int n = 2 + ef_pg_tls_defaults(p->url, keys + 2, vals + 2);
    keys[n] = "dbname", vals[n++] = p->url;
    keys[n] = NULL, vals[n] = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        const char *m = c ? PQerrorMessage(c) : "out of memory";
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "postgres %s: cannot connect: %.*s", p->where,
                      (int)strcspn(m, "\n"), m);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* The main connection, opened again when it broke (the next host of a multi-host URL may
 * answer). Under p->mu. */
static PGconn *pg_conn(pgad *p, ef_store_err *err)
{
    if (p->c && PQstatus(p->c) == CONNECTION_OK) return p->c;
    PQfinish(p->c);
    p->c = pg_connect(p, err);
    return p->c;
}

static void pg_drop(pgad *p)
{
    PQfinish(p->c);
    p->c = NULL;
}

/* Waits until a result can be read without blocking, up to the deadline (monotonic ns). */
static int pg_wait_input(PGconn *c, int64_t deadline)
{
    while (PQisBusy(c)) {
        int64_t left = (deadline - ef_clock_mono_ns()) / 1000000;
        if (left <= 0) return -1;
        struct pollfd pf = {.fd = PQsocket(c), .events = POLLIN};
        int r = poll(&pf, 1, (int)left);
        if (r < 0 && errno != EINTR) return -1;
        if (r > 0 && !PQconsumeInput(c)) return -1;
    }
    return 0;
}

/* The next result, or NULL at the end of a query's results; *broken when the connection failed
 * or the deadline passed (the connection must then be dropped). */
static PGresult *pg_next(PGconn *c, int64_t deadline, bool *broken)
{
    if (pg_wait_input(c, deadline)) {
        *broken = true;
        return NULL;
    }
    return PQgetResult(c);
}

static int pg_fail_res(pgad *p, const PGresult *r, const char *what, ef_store_err *err)
{
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!m && p->c) m = PQerrorMessage(p->c);
    return ef_store_fail(err, EF_STORE_UNAVAILABLE, "postgres %s: %s: %.*s", p->where, what,
                         (int)strcspn(m ? m : "error", "\n"), m ? m : "error");
}

/* One statement with text parameters; *out is its (last) result, to PQclear. Under p->mu. */
static int pg_exec(pgad *p, const char *sql, int n, const char *const *vals, PGresult **out,
                   ef_store_err *err)
{
    *out = NULL;
    PGconn *c = pg_conn(p, err);
    if (!c) return -1;
    int64_t deadline = ef_clock_mono_ns() + (int64_t)p->timeout_ms * 1000000;
    /* without parameters, the simple protocol: a migration step is several statements */
    if (!(n ? PQsendQueryParams(c, sql, n, NULL, vals, NULL, NULL, 0) : PQsendQuery(c, sql))) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "postgres %s: %.*s", p->where,
                      (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
        pg_drop(p);
        return -1;
    }
    bool broken = false;
    PGresult *r, *last = NULL;
    while ((r = pg_next(c, deadline, &broken))) {
        PQclear(last);
        last = r;
    }
    if (broken) {
        PQclear(last);
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "postgres %s: no answer within %d ms", p->where,
                      p->timeout_ms);
        pg_drop(p);
        return -1;
    }
    ExecStatusType st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pg_fail_res(p, last, "query", err);
        PQclear(last);
        if (PQstatus(c) != CONNECTION_OK) pg_drop(p);
        return -1;
    }
    *out = last;
    return 0;
}

static int pg_simple(pgad *p, const char *sql, ef_store_err *err)
{
    PGresult *r;
    int rc = pg_exec(p, sql, 0, NULL, &r, err);
    PQclear(r);
    return rc;
}

/* After a failed transaction on c: end it so the connection can be used again (or drop it). */
static void pg_abort(pgad *p)
{
    if (!p->c) return;
    PGTransactionStatusType ts = PQtransactionStatus(p->c);
    if (ts == PQTRANS_IDLE) return;
    ef_store_err ignore;
    if (ts == PQTRANS_UNKNOWN || ts == PQTRANS_ACTIVE || pg_simple(p, "ROLLBACK", &ignore))
        pg_drop(p);
}

static int64_t cell_i64(const PGresult *r, int row, int col, bool *ok)
{
    if (PQgetisnull(r, row, col)) {
        *ok = false;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(PQgetvalue(r, row, col), &end, 10);
    if (errno || *end || end == PQgetvalue(r, row, col)) *ok = false;
    return v;
}

/* ---- migrations ---- */

static int pg_migrate(void *ad, ef_store_err *err)
{
    pgad *p = ad;
    pthread_mutex_lock(&p->mu);
    int rc = -1;
    PGresult *r = NULL;
    /* one transaction for all steps; the advisory lock makes nodes starting together wait for
     * each other instead of racing on CREATE TABLE */
    if (pg_simple(p, "BEGIN", err)) goto out;
    if (pg_simple(p, "SELECT pg_advisory_xact_lock(" PG_MIGRATION_LOCK ")", err) ||
        pg_simple(p, "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY,"
                     " applied_at BIGINT NOT NULL)", err) ||
        pg_exec(p, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0, NULL, &r, err))
        goto abort;
    bool ok = PQntuples(r) == 1;
    int64_t v = ok ? cell_i64(r, 0, 0, &ok) : 0;
    PQclear(r);
    r = NULL;
    if (!ok || v < 0) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "postgres %s: unreadable schema version", p->where);
        goto abort;
    }
    if (v > SQ_SCHEMA_VERSION) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE,
                      "remote database schema version %d is newer than this edgeflag supports (%d)",
                      (int)v, SQ_SCHEMA_VERSION);
        goto abort;
    }
    for (int step = (int)v + 1; step <= SQ_SCHEMA_VERSION; step++) {
        char sv[16], now[24];
        snprintf(sv, sizeof(sv), "%d", step);
        snprintf(now, sizeof(now), "%lld", (long long)ef_clock_wall_ns());
        const char *vals[2] = {sv, now};
        if (pg_simple(p, pg_migration_sql(step), err)) goto abort;
        /* the default namespace is initial state (seq 0) on every backend */
        if (step == 1 &&
            (pg_exec(p, "INSERT INTO namespaces VALUES ('default', 'Default', 'Default namespace',"
                        " true, $1, $1)", 1, vals + 1, &r, err)))
            goto abort;
        PQclear(r);
        r = NULL;
        if (pg_exec(p, "INSERT INTO schema_migrations VALUES ($1, $2)", 2, vals, &r, err))
            goto abort;
        PQclear(r);
        r = NULL;
        ef_log(EF_LOG_INFO, "postgres: schema migration applied", "server", p->where, "version",
               sv, NULL);
    }
    if (pg_simple(p, "COMMIT", err)) goto abort;
    rc = 0;
    goto out;
abort:
    {
        char m[sizeof(err->message)];
        snprintf(m, sizeof(m), "%s", err->message);
        pg_abort(p);
        ef_store_fail(err, err->code ? err->code : EF_STORE_UNAVAILABLE, "%s", m);
    }
out:
    PQclear(r);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- reading: log pages and dumps ---- */

static int pg_fetch(void *ad, uint64_t after, int64_t limit, ef_arena *a, ef_remote_page *out,
                    ef_store_err *err)
{
    pgad *p = ad;
    char sa[24], sl[24];
    snprintf(sa, sizeof(sa), "%llu", (unsigned long long)after);
    snprintf(sl, sizeof(sl), "%lld", (long long)limit);
    const char *vals[2] = {sa, sl};
    PGresult *r;
    pthread_mutex_lock(&p->mu);
    /* the state and the page in one statement: one snapshot, one round trip */
    int rc = pg_exec(p,
                     "SELECT s.seq, s.trimmed, c.entry FROM ef_state s LEFT JOIN LATERAL"
                     " (SELECT seq, entry FROM changelog WHERE seq > $1 ORDER BY seq LIMIT $2) c"
                     " ON true WHERE s.id = 1 ORDER BY c.seq",
                     2, vals, &r, err);
    pthread_mutex_unlock(&p->mu);
    if (rc) return -1;
    int n = PQntuples(r);
    bool ok = n >= 1;
    int64_t seq = ok ? cell_i64(r, 0, 0, &ok) : 0, trimmed = ok ? cell_i64(r, 0, 1, &ok) : 0;
    if (!ok || seq < 0 || trimmed < 0 || seq > PG_MAX_COUNTER) {
        PQclear(r);
        return ef_store_fail(err, EF_STORE_UNAVAILABLE, "postgres %s: unreadable ef_state",
                             p->where);
    }
    out->seq = (uint64_t)seq;
    out->trimmed = (uint64_t)trimmed;
    out->n = 0;
    out->entries = ef_arena_alloc(a, (size_t)n * sizeof(ef_bytes));
    for (int i = 0; out->entries && i < n; i++) {
        if (PQgetisnull(r, i, 2)) continue; /* no entries: one row of state only */
        size_t len = (size_t)PQgetlength(r, i, 2);
        char *e = ef_arena_memdup(a, PQgetvalue(r, i, 2), len);
        if (!e) break;
        out->entries[out->n++] = (ef_bytes){e, len};
    }
    bool oom = !out->entries || (out->n < (size_t)n && !PQgetisnull(r, out->n, 2));
    PQclear(r);
    return oom ? ef_store_fail(err, EF_STORE_INTERNAL, "out of memory") : 0;
}

/* rdb_dump_write's reader on a PostgreSQL connection: the current result and its next row. */
typedef struct pg_cursor {
    pgad *p;
    PGresult *r;
    int row;
} pg_cursor;

static int pg_cursor_query(void *db, const char *sql, ef_store_err *err)
{
    pg_cursor *c = db;
    c->row = 0;
    return pg_exec(c->p, sql, 0, NULL, &c->r, err);
}

static bool pg_cursor_row(void *db, int n, const char **cells, size_t *lens)
{
    pg_cursor *c = db;
    if (!c->r || c->row >= PQntuples(c->r) || PQnfields(c->r) < n) return false;
    for (int i = 0; i < n; i++) {
        cells[i] = PQgetisnull(c->r, c->row, i) ? NULL : PQgetvalue(c->r, c->row, i);
        lens[i] = (size_t)PQgetlength(c->r, c->row, i);
    }
    c->row++;
    return true;
}

static void pg_cursor_done(void *db)
{
    pg_cursor *c = db;
    PQclear(c->r);
    c->r = NULL;
}

static int pg_dump(void *ad, ef_buf *out, ef_store_err *err)
{
    pgad *p = ad;
    pthread_mutex_lock(&p->mu);
    int rc = -1;
    pg_cursor cur = {.p = p};
    rdb_reader rd = {.engine = "postgres", .where = p->where, .quote = '"', .max_counter = PG_MAX_COUNTER,
                     .db = &cur, .query = pg_cursor_query, .row = pg_cursor_row, .done = pg_cursor_done};
    if (pg_simple(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err)) goto out;
    if (rdb_dump_write(&rd, out, err) || pg_simple(p, "COMMIT", err)) {
        pg_cursor_done(&cur);
        ef_store_err keep = *err;
        pg_abort(p);
        *err = keep;
        goto out;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- the write ---- */

/* One statement of a write, with its parameters as NUL-terminated text (in the arena). */
typedef struct pg_stmt {
    const char *sql;
    int n;
    const char *vals[16];
} pg_stmt;

/* A change-log value as a text parameter (PostgreSQL text holds no NUL). */
static int param_of(const ef_json *v, rdb_kind k, ef_arena *a, const char **out)
{
    size_t len;
    return rdb_param(v, k, false, a, out, &len);
}

static char *upsert_sql(const sq_table *t, bool del, ef_arena *a)
{
    ef_buf b;
    ef_buf_init(&b);
    if (del) {
        ef_buf_printf(&b, "DELETE FROM \"%s\" WHERE ", t->name);
        for (int i = 0; t->pk[i]; i++)
            ef_buf_printf(&b, "%s\"%s\" = $%d", i ? " AND " : "", t->pk[i], i + 1);
    } else {
        ef_buf_printf(&b, "INSERT INTO \"%s\" (", t->name);
        for (int i = 0; t->cols[i]; i++) ef_buf_printf(&b, "%s\"%s\"", i ? ", " : "", t->cols[i]);
        ef_buf_puts(&b, ") VALUES (");
        for (int i = 0; t->cols[i]; i++) ef_buf_printf(&b, "%s$%d", i ? ", " : "", i + 1);
        ef_buf_puts(&b, ") ON CONFLICT (");
        for (int i = 0; t->pk[i]; i++) ef_buf_printf(&b, "%s\"%s\"", i ? ", " : "", t->pk[i]);
        ef_buf_puts(&b, ") DO UPDATE SET ");
        for (int i = 0; t->cols[i]; i++)
            ef_buf_printf(&b, "%s\"%s\" = EXCLUDED.\"%s\"", i ? ", " : "", t->cols[i], t->cols[i]);
    }
    ef_buf_putc(&b, '\0');
    char *out = ef_buf_ok(&b) ? ef_arena_memdup(a, b.data, b.len) : NULL;
    ef_buf_free(&b);
    return out;
}

#define GUARD_MSG "edgeflag: another node wrote first"

/* The statements of a write, in order. Returns the count, or -1 with *err. */
static int write_stmts(pgad *p, const ef_remote_write *w, ef_arena *a, pg_stmt **out,
                       int *guard_at, int *commit_at, ef_store_err *err)
{
    size_t max = 16 + 2 * (size_t)(w->changes->len + w->namespaces->len);
    pg_stmt *s = ef_arena_alloc(a, max * sizeof(*s));
    if (!s) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    memset(s, 0, max * sizeof(*s));
    int n = 0;
    char *prev = ef_arena_alloc(a, 24), *cur = ef_arena_alloc(a, 24);
    if (!prev || !cur) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    snprintf(prev, 24, "%llu", (unsigned long long)(w->seq - 1));
    snprintf(cur, 24, "%llu", (unsigned long long)w->seq);
    s[n++] = (pg_stmt){"BEGIN", 0, {0}};
    s[n++] = (pg_stmt){"SELECT seq FROM ef_state WHERE id = 1 FOR UPDATE", 0, {0}};
    /* after the lock this statement sees the latest commit: a newer seq fails the cast */
    *guard_at = n;
    s[n++] = (pg_stmt){"SELECT (CASE WHEN seq = $1 THEN '1' ELSE '" GUARD_MSG " (seq ' || seq"
                       " || ')' END)::int FROM ef_state WHERE id = 1",
                       1, {prev}};
    for (const ef_json *c = w->changes->child; c; c = c->next) {
        const ef_json *tbl = ef_json_get(c, "table"), *op = ef_json_get(c, "op");
        const sq_table *t = tbl && tbl->type == EF_JSON_STRING ? sq_table_find(tbl->str) : NULL;
        bool del = op && op->type == EF_JSON_STRING && ef_bytes_eq(op->str, EF_BYTES_LIT("delete"));
        const ef_json *src = ef_json_get(c, del ? "pk" : "row");
        if (!t || !src || src->type != EF_JSON_OBJECT)
            return ef_store_fail(err, EF_STORE_INTERNAL, "postgres: malformed change in entry %llu",
                                 (unsigned long long)w->seq);
        pg_stmt *st = &s[n++];
        st->sql = upsert_sql(t, del, a);
        if (!st->sql) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        const char *const *cols = del ? t->pk : t->cols;
        for (int i = 0; cols[i]; i++) {
            int pr = param_of(ef_json_get(src, cols[i]), rdb_col_kind(t->name, cols[i]), a,
                              &st->vals[i]);
            if (pr == -2)
                return ef_store_fail(err, EF_STORE_INVALID,
                                     "invalid field %s: PostgreSQL text cannot hold a NUL character",
                                     cols[i]);
            if (pr) return ef_store_fail(err, EF_STORE_INTERNAL, "postgres: unreadable %s.%s",
                                         t->name, cols[i]);
            st->n = i + 1;
        }
    }
    for (const ef_json *ns = w->namespaces->child; ns; ns = ns->next) {
        pg_stmt *st = &s[n++];
        st->sql = "INSERT INTO ns_versions VALUES ($1, $2) ON CONFLICT (namespace_key)"
                  " DO UPDATE SET version = GREATEST(ns_versions.version, EXCLUDED.version)";
        st->n = 2;
        if (param_of(ef_json_get(ns, "key"), RDB_TEXT, a, &st->vals[0]) ||
            param_of(ef_json_get(ns, "version"), RDB_INT, a, &st->vals[1]) || !st->vals[0] ||
            !st->vals[1])
            return ef_store_fail(err, EF_STORE_INTERNAL, "postgres: malformed namespace version");
    }
    pg_stmt *lg = &s[n++];
    *lg = (pg_stmt){"INSERT INTO changelog VALUES ($1, $2, $3)", 3, {cur}};
    char *entry = ef_arena_alloc(a, w->entry.n + 1);
    if (!entry || param_of(w->time, RDB_INT, a, &lg->vals[1]) || !lg->vals[1])
        return ef_store_fail(err, EF_STORE_INTERNAL, "postgres: malformed change-log entry");
    memcpy(entry, w->entry.p, w->entry.n);
    entry[w->entry.n] = '\0';
    lg->vals[2] = entry;
    s[n++] = (pg_stmt){"UPDATE ef_state SET seq = $1 WHERE id = 1", 1, {cur}};
    if (w->log_keep && w->seq > w->log_keep) {
        char *keep = ef_arena_alloc(a, 24);
        if (!keep) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        snprintf(keep, 24, "%llu", (unsigned long long)(w->seq - w->log_keep));
        s[n++] = (pg_stmt){"DELETE FROM changelog WHERE seq <= $1", 1, {keep}};
        s[n++] = (pg_stmt){"UPDATE ef_state SET trimmed = GREATEST(trimmed, $1) WHERE id = 1", 1,
                           {keep}};
    }
    /* delivered to listeners only when the transaction commits */
    if (p->notify) s[n++] = (pg_stmt){"SELECT pg_notify('" PG_CHANNEL "', $1)", 1, {cur}};
    *commit_at = n;
    s[n++] = (pg_stmt){"COMMIT", 0, {0}};
    *out = s;
    return n;
}

static int pg_commit(void *ad, const ef_remote_write *w, bool *conflict, ef_store_err *err)
{
    pgad *p = ad;
    ef_arena a;
    ef_arena_init(&a, 65536);
    pg_stmt *s = NULL;
    int guard_at = 0, commit_at = 0;
    int n = write_stmts(p, w, &a, &s, &guard_at, &commit_at, err);
    if (n < 0) {
        ef_arena_free(&a);
        return -1;
    }
    pthread_mutex_lock(&p->mu);
    int rc = -1;
    bool committed = false, broken = false, failed = false;
    PGconn *c = pg_conn(p, err);
    if (!c) goto out;
    int64_t deadline = ef_clock_mono_ns() + (int64_t)p->timeout_ms * 1000000;
    if (!PQenterPipelineMode(c)) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "postgres %s: cannot start a pipeline", p->where);
        goto out;
    }
    /* chunks of PG_CHUNK statements, each followed by a sync: a large import never has more
     * than a chunk's answers waiting (a pipeline that only writes could fill both socket buffers) */
    for (int from = 0; from < n && !failed && !broken; from += PG_CHUNK) {
        int to = from + PG_CHUNK < n ? from + PG_CHUNK : n;
        for (int i = from; i < to; i++)
            if (!PQsendQueryParams(c, s[i].sql, s[i].n, NULL, s[i].vals, NULL, NULL, 0)) {
                broken = true;
                break;
            }
        if (broken || !PQpipelineSync(c)) {
            broken = true;
            break;
        }
        for (int i = from; i < to && !broken; i++) {
            PGresult *r, *last = NULL;
            while ((r = pg_next(c, deadline, &broken))) {
                PQclear(last);
                last = r;
            }
            if (broken) {
                PQclear(last);
                break;
            }
            ExecStatusType st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
            if (st == PGRES_PIPELINE_ABORTED) {
                PQclear(last);
                continue; /* after the failure already recorded */
            }
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                const char *m = last ? PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY) : NULL;
                if (!failed) {
                    if (i == guard_at && m && strstr(m, GUARD_MSG)) {
                        *conflict = true;
                        ef_store_fail(err, EF_STORE_UNAVAILABLE,
                                      "postgres %s: another node wrote first", p->where);
                    } else {
                        char what[64];
                        snprintf(what, sizeof(what), "the write was not saved (step %d)", i);
                        pg_fail_res(p, last, what, err);
                    }
                }
                failed = true;
            } else if (i == commit_at) {
                committed = strcmp(PQcmdStatus(last), "COMMIT") == 0;
                if (!committed) {
                    failed = true;
                    ef_store_fail(err, EF_STORE_UNAVAILABLE,
                                  "postgres %s: the database did not commit (%s)", p->where,
                                  PQcmdStatus(last));
                }
            }
            PQclear(last);
        }
        if (broken) break;
        /* the chunk's sync */
        PGresult *r = pg_next(c, deadline, &broken);
        if (!broken && (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC)) broken = true;
        PQclear(r);
    }
    if (!broken && !PQexitPipelineMode(c)) broken = true;
    if (broken) {
        /* the outcome is unknown: not acknowledged; a later pull finds it if it did commit */
        ef_store_fail(err, EF_STORE_UNAVAILABLE,
                      "postgres %s: the connection failed during the write; the write was not "
                      "saved",
                      p->where);
        pg_drop(p);
        goto out;
    }
    if (failed) {
        pg_abort(p);
        goto out;
    }
    rc = committed ? 0 : ef_store_fail(err, EF_STORE_UNAVAILABLE, "postgres %s: no COMMIT answer",
                                       p->where);
out:
    /* a read-only server (a demoted primary, a standby) is not where writes go: reconnect, so
     * target_session_attrs=read-write picks the primary */
    if (rc && !*conflict && strstr(err->message, "read-only transaction")) pg_drop(p);
    pthread_mutex_unlock(&p->mu);
    ef_arena_free(&a);
    return rc;
}

/* ---- pick-up: LISTEN ---- */

static void pg_wait(void *ad, int wake_fd, unsigned ms)
{
    pgad *p = ad;
    if (!p->notify) {
        struct pollfd pf = {.fd = wake_fd, .events = POLLIN};
        (void)poll(&pf, 1, (int)ms);
        return;
    }
    if (!p->lc || PQstatus(p->lc) != CONNECTION_OK) {
        PQfinish(p->lc);
        ef_store_err err;
        p->lc = pg_connect(p, &err);
        PGresult *r = p->lc ? PQexec(p->lc, "LISTEN " PG_CHANNEL) : NULL;
        bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            PQfinish(p->lc);
            p->lc = NULL;
            struct pollfd pf = {.fd = wake_fd, .events = POLLIN};
            (void)poll(&pf, 1, (int)ms);
        }
        return; /* (re)listening: pull once for what was missed meanwhile */
    }
    struct pollfd pf[2] = {{.fd = wake_fd, .events = POLLIN}, {.fd = PQsocket(p->lc), .events = POLLIN}};
    if (poll(pf, 2, (int)ms) <= 0 || (pf[0].revents & POLLIN)) return;
    if (!PQconsumeInput(p->lc)) return; /* broken: reconnected next time */
    PGnotify *nt;
    while ((nt = PQnotifies(p->lc))) PQfreemem(nt);
}

static void pg_close(void *ad)
{
    pgad *p = ad;
    PQfinish(p->c);
    PQfinish(p->lc);
    pthread_mutex_destroy(&p->mu);
    free(p->url);
    free(p->where);
    free(p);
}

static const ef_remote_ops pg_ops = {
    .migrate = pg_migrate,
    .fetch = pg_fetch,
    .dump = pg_dump,
    .commit = pg_commit,
    .wait = pg_wait,
    .close = pg_close,
};

/* ---- opening ---- */

/* host:port/dbname from the URL (no user, no password), for messages and the cache's name. */
static char *url_where(const char *url, ef_store_err *err)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    if (!opts) {
        ef_store_fail(err, EF_STORE_INVALID, "not a PostgreSQL URL: %.*s",
                      msg ? (int)strcspn(msg, "\n") : 5, msg ? msg : "error");
        PQfreemem(msg);
        return NULL;
    }
    const char *host = "", *port = "", *db = "";
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val) continue;
        if (!strcmp(o->keyword, "host")) host = o->val;
        if (!strcmp(o->keyword, "port")) port = o->val;
        if (!strcmp(o->keyword, "dbname")) db = o->val;
    }
    size_t n = strlen(host) + strlen(port) + strlen(db) + 8;
    char *out = malloc(n);
    if (out) snprintf(out, n, "%s%s%s/%s", *host ? host : "localhost", *port ? ":" : "", port, db);
    PQconninfoFree(opts);
    if (!out) ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    return out;
}

ef_store *ef_pg_open(const char *url, const ef_store_open_opts *o, ef_store_err *err)
{
    pgad *p = calloc(1, sizeof(*p));
    if (!p) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->timeout_ms = o && o->timeout_ms ? (int)o->timeout_ms : 5000;
    /* CockroachDB speaks the PostgreSQL wire protocol but has no LISTEN/NOTIFY: it polls */
    bool crdb = !strncmp(url, "cockroach://", 12);
    p->notify = !crdb;
    if (crdb) {
        size_t n = strlen(url) + 8;
        p->url = malloc(n);
        if (p->url) snprintf(p->url, n, "postgresql://%s", url + 12);
    } else {
        p->url = strdup(url);
    }
    char *cache = NULL;
    if (!p->url) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        pg_close(p);
        return NULL;
    }
    p->where = url_where(p->url, err);
    if (p->where) cache = ef_remote_default_cache("postgres", p->where);
    if (!p->where || !cache) {
        if (p->where) ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        pg_close(p);
        free(cache);
        return NULL;
    }
    char *where = strdup(p->where);
    ef_store *st = where ? ef_remote_open("postgres", where, cache, &pg_ops, p, o, err) : NULL;
    if (!where) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        pg_close(p);
    }
    free(where);
    free(cache);
    return st;
}
