/*
 * libsql.c - the libSQL/Turso adapter of the remote-store core (remote.h, docs/libsql.md): the
 * database of record is a libSQL database (sqld, Turso) reached over Hrana/HTTP that holds the very
 * same schema as the SQLite store. Migrations, log pages and dumps are Hrana requests; a write is
 * ONE Hrana batch (BEGIN, a guard that the remote seq is still ours, the rows, the log entry,
 * versions, COMMIT, ROLLBACK on failure). libSQL cannot push, so the core polls.
 *
 * This file must never report a write committed unless the batch's COMMIT step succeeded, never
 * hold a remote transaction open across requests, and never build SQL from values: table and
 * column names come from the constant table descriptions, values travel as Hrana arguments.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/hrana.h"
#include "store/open.h"
#include "store/remote.h"
#include "store/sqlite_int.h"


typedef struct lq {
    ef_hrana *h;
    char *where;            /* the server, for messages (no token) */
    int64_t dump_page_rows; /* rows per table per dump request */
} lq;

/* ---- the remote schema ---- */

static int remote_schema_version(lq *q, int *v, ef_store_err *err)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_hrana_req r;
    ef_hrana_req_init(&r);
    ef_hrana_execute(&r, "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY,"
                         " applied_at INTEGER NOT NULL)");
    int i = ef_hrana_execute(&r, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    const ef_json *res, *out;
    ef_hrana_value val;
    int rc = -1;
    if (ef_hrana_send(q->h, &r, &a, &res, err) || ef_hrana_result(res, 0, &out, err) ||
        ef_hrana_result(res, i, &out, err))
        goto done;
    if (ef_hrana_value_get(ef_hrana_cell(out, 0, 0), &a, &val) || val.type != EF_HRANA_INTEGER ||
        val.i < 0 || val.i > 1000000) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: unreadable schema version", q->where);
        goto done;
    }
    *v = (int)val.i;
    rc = 0;
done:
    ef_hrana_req_free(&r);
    ef_arena_free(&a);
    return rc;
}

/* One migration step on the remote as one batch, guarded so that two nodes starting together
 * cannot both run it. Returns 1 when another node had already run it. */
static int remote_migration_step(lq *q, int v, ef_store_err *err)
{
    ef_arena a;
    ef_arena_init(&a, 65536);
    ef_hrana_req r;
    ef_hrana_req_init(&r);
    ef_buf sql;
    ef_buf_init(&sql);
    char c1[128], c2[128];
    int rc = -1;
    ef_hrana_batch(&r);
    int begin = ef_hrana_step(&r, NULL, "BEGIN IMMEDIATE");
    int last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), begin),
                             "SELECT CASE WHEN COALESCE(MAX(version), 0) = ?1 THEN 1"
                             " ELSE json('edgeflag: migration already applied') END"
                             " FROM schema_migrations");
    int guard = last;
    ef_hrana_arg_int(&r, v - 1);
    for (int part = 0; part < 2; part++) {
        ef_buf_clear(&sql);
        sq_migration_sql(v, part, &sql);
        ef_buf_putc(&sql, '\0');
        char *stmts[128];
        size_t n = ef_buf_ok(&sql) ? ef_remote_split_sql(sql.data, &a, stmts, 128) : 0;
        for (size_t i = 0; i < n; i++)
            if (stmts[i]) last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last), stmts[i]);
        if (part == 0 && v == 1) {
            last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last), SQ_SEED_SQL);
            ef_hrana_arg_int(&r, ef_clock_wall_ns());
        }
    }
    last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last),
                         "INSERT INTO schema_migrations VALUES (?, ?)");
    ef_hrana_arg_int(&r, v);
    ef_hrana_arg_int(&r, ef_clock_wall_ns());
    int commit = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last), "COMMIT");
    ef_hrana_step(&r, ef_hrana_cond_ok_not_ok(c2, sizeof(c2), begin, commit), "ROLLBACK");
    const ef_json *res, *batch, *sr;
    if (ef_hrana_send(q->h, &r, &a, &res, err) || ef_hrana_result(res, 0, &batch, err)) goto done;
    if (ef_hrana_step_result(batch, commit, &sr, NULL, 0, err) == 0) {
        rc = 0;
        goto done;
    }
    ef_store_err serr;
    if (ef_hrana_step_result(batch, guard, &sr, NULL, 0, &serr) < 0) {
        rc = 1;
        goto done;
    }
    /* the first failed step says why */
    for (int i = 0; i < commit; i++)
        if (ef_hrana_step_result(batch, i, &sr, NULL, 0, err) < 0) {
            char m[sizeof(err->message)];
            snprintf(m, sizeof(m), "remote migration %d: %s", v, err->message);
            ef_store_fail(err, err->code, "%s", m);
            goto done;
        }
    ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: remote migration %d did not commit", q->where, v);
done:
    ef_buf_free(&sql);
    ef_hrana_req_free(&r);
    ef_arena_free(&a);
    return rc;
}

static int remote_migrate(lq *q, ef_store_err *err)
{
    for (int round = 0; round < 2 * SQ_SCHEMA_VERSION + 2; round++) {
        int v;
        if (remote_schema_version(q, &v, err)) return -1;
        if (v > SQ_SCHEMA_VERSION)
            return ef_store_fail(err, EF_STORE_UNAVAILABLE,
                           "remote database schema version %d is newer than this edgeflag "
                           "supports (%d)",
                           v, SQ_SCHEMA_VERSION);
        if (v == SQ_SCHEMA_VERSION) return 0;
        if (remote_migration_step(q, v + 1, err) < 0) return -1;
    }
    return ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: remote migrations did not settle",
                   q->where);
}

/* ---- pulling the remote's state into the cache ---- */

/* ---- the paged dump ----
 *
 * A full dump of the remote, in the format ef_store_load_dump reads (with row counts), with every
 * cell typed by its column's decltype. It is read in pages so that no answer has to hold the
 * whole database (EF_HRANA_MAX_ANSWER): each request is one batch, one read transaction, that
 * reads the remote seq and the next page (by rowid) of every table not finished yet. Consistency
 * across requests is optimistic rather than a transaction held open on a stream (which a stream
 * expiry would silently end): every edgeflag write bumps ef_state.seq in its own transaction, so
 * pages read at one seq are pages of one state. When the seq moves mid-dump the dump starts again
 * with pages four times larger (fewer requests, more likely to fit between writes; in the end one
 * request for everything), a few times at most. */

#define LQ_DUMP_PAGE_ROWS 500 /* default rows per table per request */
/* seq and versions count writes; past 2^53 a value from the remote is not one (and a dump reader
 * holding numbers as doubles could not take it exactly) */
#define LQ_MAX_COUNTER ((int64_t)1 << 53)
#define LQ_DUMP_TRIES 8       /* dumps started again because the remote moved, at most */

typedef struct dump_src {
    const char *name;              /* the table */
    const char *const *cols;       /* its columns (NULL-terminated) */
    char *sql;                     /* the page query (in the dump's arena) */
    ef_buf rows;                   /* JSON rows so far ("k":v pairs for ns_versions) */
    size_t count;
    int64_t after; /* the last rowid read */
    bool started, done;
} dump_src;

static const char *const ns_version_cols[] = {"namespace_key", "version", NULL};

/* The query for one page of a table: rowid first, then the columns, after rowid ?1 (NULL: from
 * the start), at most ?2 rows. */
static char *page_sql(const char *table, const char *const *cols, ef_arena *a)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "SELECT rowid");
    for (int i = 0; cols[i]; i++) ef_buf_printf(&b, ", \"%s\"", cols[i]);
    ef_buf_printf(&b, " FROM \"%s\" WHERE ?1 IS NULL OR rowid > ?1 ORDER BY rowid LIMIT ?2",
                  table);
    ef_buf_putc(&b, '\0');
    char *out = ef_buf_ok(&b) ? ef_arena_memdup(a, b.data, b.len) : NULL;
    ef_buf_free(&b);
    return out;
}

/* Appends one page's rows to src (walking rows and cells once: linear in the answer). Returns the
 * number of rows, or -1. */
static long dump_src_add(lq *q, dump_src *src, bool versions, const ef_json *sr, ef_arena *a,
                         ef_store_err *err)
{
    ef_bytes dt[16];
    size_t ncols = 0;
    while (src->cols[ncols]) ncols++;
    ef_hrana_decltypes(sr, dt, ncols + 1);
    long n = 0;
    for (const ef_json *row = ef_hrana_first_row(sr); row; row = row->next, n++) {
        const ef_json *cell = ef_hrana_first_cell(row);
        ef_hrana_value rid;
        if (ef_hrana_value_get(cell, a, &rid) || rid.type != EF_HRANA_INTEGER ||
            (src->started && rid.i <= src->after))
            return ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: %s: bad rowid in a dump page",
                                 q->where, src->name);
        src->after = rid.i;
        src->started = true;
        cell = cell->next;
        if (versions) {
            ef_hrana_value k, ver;
            if (ef_hrana_value_get(cell, a, &k) || k.type != EF_HRANA_TEXT || !cell->next ||
                ef_hrana_value_get(cell->next, a, &ver) || ver.type != EF_HRANA_INTEGER ||
                ver.i < 0 || ver.i > LQ_MAX_COUNTER)
                return ef_store_fail(err, EF_STORE_UNAVAILABLE,
                                     "libsql %s: unreadable ns_versions row", q->where);
            if (src->count++) ef_buf_putc(&src->rows, ',');
            ef_json_put_str(&src->rows, k.s);
            ef_buf_printf(&src->rows, ":%lld", (long long)ver.i);
            continue;
        }
        ef_buf_puts(&src->rows, src->count++ ? ",{" : "{");
        for (size_t c = 0; c < ncols; c++, cell = cell ? cell->next : NULL) {
            ef_buf_printf(&src->rows, "%s\"%s\":", c ? "," : "", src->cols[c]);
            if (!cell || ef_hrana_cell_json(&src->rows, cell, dt[c + 1], a))
                return ef_store_fail(err, EF_STORE_UNAVAILABLE,
                                     "libsql %s: %s.%s holds a value that is not a %.*s", q->where,
                                     src->name, src->cols[c], (int)dt[c + 1].n, dt[c + 1].p);
        }
        ef_buf_putc(&src->rows, '}');
    }
    return n;
}

/* One request: the seq and the next page of every unfinished source. Returns 0, -1, or
 * EF_HRANA_TOO_LARGE (nothing was taken from the answer). */
static int dump_round(lq *q, dump_src *srcs, size_t nsrc, int64_t limit, int64_t *seq,
                      const ef_json **batch_out, ef_arena *a, ef_store_err *err)
{
    ef_hrana_req r;
    ef_hrana_req_init(&r);
    char c[128], c2[160];
    ef_hrana_batch(&r);
    int begin = ef_hrana_step(&r, NULL, "BEGIN");
    int first = ef_hrana_step(&r, ef_hrana_cond_ok(c, sizeof(c), begin),
                              "SELECT seq FROM ef_state WHERE id = 1");
    for (size_t i = 0; i < nsrc; i++) {
        if (srcs[i].done) continue;
        ef_hrana_step(&r, ef_hrana_cond_ok(c, sizeof(c), begin), srcs[i].sql);
        if (srcs[i].started)
            ef_hrana_arg_int(&r, srcs[i].after);
        else
            ef_hrana_arg_null(&r);
        ef_hrana_arg_int(&r, limit);
    }
    int end = ef_hrana_step(&r, ef_hrana_cond_ok(c, sizeof(c), begin), "COMMIT");
    ef_hrana_step(&r, ef_hrana_cond_ok_not_ok(c2, sizeof(c2), begin, end), "ROLLBACK");
    const ef_json *res, *batch, *sr;
    ef_hrana_value v;
    int rc = ef_hrana_send(q->h, &r, a, &res, err);
    ef_hrana_req_free(&r);
    if (rc) return rc;
    if (ef_hrana_result(res, 0, &batch, err)) return -1;
    if (ef_hrana_step_result(batch, first, &sr, NULL, 0, err) ||
        ef_hrana_value_get(ef_hrana_cell(sr, 0, 0), a, &v) || v.type != EF_HRANA_INTEGER ||
        v.i < 0 || v.i > LQ_MAX_COUNTER)
        return ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: no readable remote seq",
                             q->where);
    *seq = v.i;
    *batch_out = batch;
    return 0;
}

/* Takes the pages of a round's answer into the sources (after dump_round succeeded). */
static int dump_take(lq *q, dump_src *srcs, size_t nsrc, const ef_json *batch, int64_t limit,
                     ef_arena *a, ef_store_err *err)
{
    int step = 2; /* after BEGIN and the seq */
    for (size_t i = 0; i < nsrc; i++) {
        if (srcs[i].done) continue;
        const ef_json *sr;
        if (ef_hrana_step_result(batch, step++, &sr, NULL, 0, err)) {
            if (!err->message[0])
                ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: %s: page skipped", q->where,
                              srcs[i].name);
            return -1;
        }
        long n = dump_src_add(q, &srcs[i], i == 0, sr, a, err);
        if (n < 0) return -1;
        if (n < limit) srcs[i].done = true;
    }
    return 0;
}

static int remote_dump(lq *q, ef_buf *out, ef_store_err *err)
{
    ef_arena da, a; /* da: the page queries, for the whole dump; a: one round */
    ef_arena_init(&da, 4096);
    ef_arena_init(&a, 65536);
    size_t nsrc = sq_ntables + 1;
    dump_src srcs[SQ_NTABLES + 1];
    memset(srcs, 0, sizeof(srcs));
    srcs[0].name = "ns_versions";
    srcs[0].cols = ns_version_cols;
    for (size_t t = 0; t < sq_ntables; t++) {
        srcs[t + 1].name = sq_tables[t].name;
        srcs[t + 1].cols = sq_tables[t].cols;
    }
    int rc = -1;
    for (size_t i = 0; i < nsrc; i++) {
        ef_buf_init(&srcs[i].rows);
        srcs[i].sql = page_sql(srcs[i].name, srcs[i].cols, &da);
        if (!srcs[i].sql) {
            ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
            goto done;
        }
    }
    int64_t limit = q->dump_page_rows, seq0 = -1;
    int tries = 0;
    uint64_t rounds = 0;
    for (;;) {
        bool all_done = true;
        for (size_t i = 0; i < nsrc; i++) all_done = all_done && srcs[i].done;
        if (all_done) break;
        ef_arena_reset(&a);
        int64_t seq = -1;
        const ef_json *batch = NULL;
        int r = dump_round(q, srcs, nsrc, limit, &seq, &batch, &a, err);
        if (r == EF_HRANA_TOO_LARGE && limit > 1) { /* a read: ask again for less */
            limit = limit / 2;
            continue;
        }
        if (r) goto done;
        rounds++;
        if (seq0 >= 0 && seq != seq0) { /* the remote moved: these pages are of another state */
            if (++tries >= LQ_DUMP_TRIES) {
                ef_store_fail(err, EF_STORE_UNAVAILABLE,
                              "libsql %s: the remote kept changing during %d dumps; will retry",
                              q->where, tries);
                goto done;
            }
            ef_log(EF_LOG_INFO, "libsql: the remote changed during a dump; starting it again",
                   "server", q->where, NULL);
            for (size_t i = 0; i < nsrc; i++) {
                ef_buf_clear(&srcs[i].rows);
                srcs[i].count = 0;
                srcs[i].started = srcs[i].done = false;
            }
            seq0 = -1;
            if (limit < (1 << 24)) limit *= 4;
            continue;
        }
        seq0 = seq;
        if (dump_take(q, srcs, nsrc, batch, limit, &a, err)) goto done;
    }
    for (size_t i = 0; i < nsrc; i++)
        if (!ef_buf_ok(&srcs[i].rows)) {
            ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
            goto done;
        }
    ef_buf_printf(out, "{\"seq\":%lld,\"versions\":{", (long long)seq0);
    ef_buf_append(out, srcs[0].rows.data, srcs[0].rows.len);
    ef_buf_puts(out, "},\"tables\":{");
    for (size_t i = 1; i < nsrc; i++) {
        ef_buf_printf(out, "%s\"%s\":[", i > 1 ? "," : "", srcs[i].name);
        ef_buf_append(out, srcs[i].rows.data, srcs[i].rows.len);
        ef_buf_putc(out, ']');
    }
    ef_buf_puts(out, "},\"counts\":{");
    for (size_t i = 1; i < nsrc; i++)
        ef_buf_printf(out, "%s\"%s\":%zu", i > 1 ? "," : "", srcs[i].name, srcs[i].count);
    ef_buf_puts(out, "}}");
    rc = ef_buf_ok(out) ? 0 : ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    if (rc == 0) {
        char nreq[24], nrows[24];
        snprintf(nreq, sizeof(nreq), "%llu", (unsigned long long)rounds);
        snprintf(nrows, sizeof(nrows), "%lld", (long long)limit);
        ef_log(EF_LOG_INFO, "libsql: dump read", "server", q->where, "requests", nreq,
               "page_rows", nrows, NULL);
    }
done:
    for (size_t i = 0; i < nsrc; i++) ef_buf_free(&srcs[i].rows);
    ef_arena_free(&a);
    ef_arena_free(&da);
    return rc;
}

/* One page of the log after `after`, with the remote's seq and trimmed position (one request). */
static int lq_fetch(void *ad, uint64_t after, int64_t limit, ef_arena *a, ef_remote_page *out,
                    ef_store_err *err)
{
    lq *q = ad;
    ef_hrana_req r;
    ef_hrana_req_init(&r);
    ef_hrana_execute(&r, "SELECT seq, trimmed FROM ef_state WHERE id = 1");
    ef_hrana_execute(&r, "SELECT seq, entry FROM changelog WHERE seq > ? ORDER BY seq LIMIT ?");
    ef_hrana_arg_int(&r, (int64_t)after);
    ef_hrana_arg_int(&r, limit);
    const ef_json *res, *st, *log;
    ef_hrana_value seq, trimmed;
    int rc = ef_hrana_send(q->h, &r, a, &res, err);
    ef_hrana_req_free(&r);
    if (rc == EF_HRANA_TOO_LARGE) return EF_REMOTE_TOO_LARGE;
    if (rc || ef_hrana_result(res, 0, &st, err) || ef_hrana_result(res, 1, &log, err)) return -1;
    if (ef_hrana_value_get(ef_hrana_cell(st, 0, 0), a, &seq) ||
        ef_hrana_value_get(ef_hrana_cell(st, 0, 1), a, &trimmed) || seq.type != EF_HRANA_INTEGER ||
        trimmed.type != EF_HRANA_INTEGER || seq.i < 0 || trimmed.i < 0)
        return ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: unreadable ef_state", q->where);
    out->seq = (uint64_t)seq.i;
    out->trimmed = (uint64_t)trimmed.i;
    size_t n = ef_hrana_nrows(log);
    out->n = 0;
    out->entries = n ? ef_arena_alloc(a, n * sizeof(ef_bytes)) : NULL;
    if (n && !out->entries) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    for (const ef_json *row = ef_hrana_first_row(log); row && out->n < n; row = row->next) {
        ef_hrana_value e;
        const ef_json *cell = ef_hrana_first_cell(row);
        if (!cell || ef_hrana_value_get(cell->next, a, &e) || e.type != EF_HRANA_TEXT)
            return ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql: unreadable changelog entry");
        out->entries[out->n++] = e.s;
    }
    return 0;
}

/* ---- the write path ---- */

/* The write: the entry as one guarded batch. */
static int lq_commit(void *ad, const ef_remote_write *w, bool *conflict, ef_store_err *err)
{
    lq *q = ad;
    uint64_t seq = w->seq;
    const ef_json *jch = w->changes, *jns = w->namespaces, *jtime = w->time;
    ef_arena a;
    ef_arena_init(&a, 65536);
    ef_hrana_req r;
    ef_hrana_req_init(&r);
    ef_buf sql;
    ef_buf_init(&sql);
    char c1[128], c2[160];
    int rc = -1;
    ef_hrana_batch(&r);
    int begin = ef_hrana_step(&r, NULL, "BEGIN IMMEDIATE");
    /* Optimistic concurrency: the remote must still be at our seq - 1, inside the transaction
     * (json() of non-JSON text is the portable way to make a SELECT fail). */
    int guard = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), begin),
                              "SELECT CASE WHEN seq = ?1 THEN 1 ELSE json('edgeflag: another node"
                              " wrote first') END FROM ef_state WHERE id = 1");
    ef_hrana_arg_int(&r, (int64_t)seq - 1);
    int last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), guard),
                             "PRAGMA defer_foreign_keys = ON");
    for (const ef_json *c = jch->child; c; c = c->next) {
        const ef_json *tbl = ef_json_get(c, "table"), *op = ef_json_get(c, "op");
        const sq_table *t = tbl && tbl->type == EF_JSON_STRING ? sq_table_find(tbl->str) : NULL;
        bool del = op && op->type == EF_JSON_STRING && ef_bytes_eq(op->str, EF_BYTES_LIT("delete"));
        const ef_json *src = ef_json_get(c, del ? "pk" : "row");
        if (!t || !src || src->type != EF_JSON_OBJECT) {
            ef_store_fail(err, EF_STORE_INTERNAL, "libsql: malformed change in entry %llu",
                    (unsigned long long)seq);
            goto done;
        }
        ef_buf_clear(&sql);
        sq_apply_sql(&sql, t, del);
        ef_buf_putc(&sql, '\0');
        char *text = ef_buf_ok(&sql) ? ef_arena_memdup(&a, sql.data, sql.len) : NULL;
        if (!text) {
            ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
            goto done;
        }
        last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last), text);
        const char *const *cols = del ? t->pk : t->cols;
        for (int i = 0; cols[i]; i++) ef_hrana_arg_json(&r, ef_json_get(src, cols[i]));
    }
    for (const ef_json *n = jns->child; n; n = n->next) {
        last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last),
                             "INSERT INTO ns_versions VALUES (?1, ?2) ON CONFLICT(namespace_key)"
                             " DO UPDATE SET version = MAX(version, ?2)");
        ef_hrana_arg_json(&r, ef_json_get(n, "key"));
        ef_hrana_arg_json(&r, ef_json_get(n, "version"));
    }
    last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last),
                         "INSERT INTO changelog VALUES (?, ?, ?)");
    ef_hrana_arg_int(&r, (int64_t)seq);
    ef_hrana_arg_json(&r, jtime);
    ef_hrana_arg_text(&r, w->entry);
    last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last),
                         "UPDATE ef_state SET seq = ? WHERE id = 1");
    ef_hrana_arg_int(&r, (int64_t)seq);
    /* the remote's own capture triggers (kept so the file stays a valid edgeflag SQLite store)
     * filled ef_pending; it is emptied before COMMIT, as locally */
    last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last), "DELETE FROM ef_pending");
    if (w->log_keep && seq > w->log_keep) {
        last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last),
                             "DELETE FROM changelog WHERE seq <= ?");
        ef_hrana_arg_int(&r, (int64_t)(seq - w->log_keep));
        last = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last),
                             "UPDATE ef_state SET trimmed = MAX(trimmed, ?) WHERE id = 1");
        ef_hrana_arg_int(&r, (int64_t)(seq - w->log_keep));
    }
    int commit = ef_hrana_step(&r, ef_hrana_cond_ok(c1, sizeof(c1), last), "COMMIT");
    ef_hrana_step(&r, ef_hrana_cond_ok_not_ok(c2, sizeof(c2), begin, commit), "ROLLBACK");
    const ef_json *res, *batch, *sr;
    if (ef_hrana_send(q->h, &r, &a, &res, err)) {
        char m[sizeof(err->message)];
        snprintf(m, sizeof(m), "the write was not saved: %s", err->message);
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "%s", m);
        goto done;
    }
    if (ef_hrana_result(res, 0, &batch, err)) goto done;
    if (ef_hrana_step_result(batch, commit, &sr, NULL, 0, err) == 0) {
        rc = 0;
        goto done;
    }
    ef_store_err gerr;
    if (ef_hrana_step_result(batch, begin, &sr, NULL, 0, err) < 0) goto done;
    if (ef_hrana_step_result(batch, guard, &sr, NULL, 0, &gerr) < 0) {
        *conflict = true;
        ef_store_fail(err, EF_STORE_UNAVAILABLE,
                "libsql %s: other nodes kept writing first; the write was not saved", q->where);
        goto done;
    }
    for (int i = guard + 1; i < commit; i++)
        if (ef_hrana_step_result(batch, i, &sr, NULL, 0, err) < 0) goto done;
    ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: the remote did not commit", q->where);
done:
    ef_buf_free(&sql);
    ef_hrana_req_free(&r);
    ef_arena_free(&a);
    return rc;
}

static int lq_migrate(void *ad, ef_store_err *err)
{
    return remote_migrate(ad, err);
}

static int lq_dump(void *ad, ef_buf *out, ef_store_err *err)
{
    return remote_dump(ad, out, err);
}

static void lq_close(void *ad)
{
    lq *q = ad;
    ef_hrana_close(q->h);
    free(q->where);
    free(q);
}

static const ef_remote_ops lq_ops = {
    .migrate = lq_migrate,
    .fetch = lq_fetch,
    .dump = lq_dump,
    .commit = lq_commit,
    .wait = NULL, /* libSQL cannot push: the core polls */
    .close = lq_close,
};

/* ---- opening ---- */

/* libsql://HOST[:PORT][/path][?authToken=T&tls=0] or http(s)://... into a base URL (no query) and a
 * token; unknown parameters are refused rather than ignored. */
static int parse_url(const char *url, char **base, char **token, ef_store_err *err)
{
    *base = *token = NULL;
    bool tls = true;
    const char *rest;
    const char *scheme;
    if (!strncmp(url, "libsql://", 9)) {
        rest = url + 9;
        scheme = NULL;
    } else if (!strncmp(url, "https://", 8)) {
        rest = url + 8;
        scheme = "https";
    } else if (!strncmp(url, "http://", 7)) {
        rest = url + 7;
        scheme = "http";
    } else {
        return ef_store_fail(err, EF_STORE_INVALID, "not a libSQL URL: %s", url);
    }
    size_t hostlen = strcspn(rest, "?#");
    if (hostlen == 0 || rest[0] == '/')
        return ef_store_fail(err, EF_STORE_INVALID, "libSQL URL without a host: %s", url);
    const char *q = rest[hostlen] == '?' ? rest + hostlen + 1 : NULL;
    while (q && *q && *q != '#') {
        size_t n = strcspn(q, "&#");
        if (!strncmp(q, "authToken=", 10)) {
            free(*token);
            *token = strndup(q + 10, n - 10);
        } else if (!strncmp(q, "tls=", 4) && n == 5 && (q[4] == '0' || q[4] == '1')) {
            tls = q[4] == '1';
        } else {
            free(*token);
            *token = NULL;
            return ef_store_fail(err, EF_STORE_INVALID, "libSQL URL: unknown parameter '%.*s'",
                           (int)n, q);
        }
        q += n;
        if (*q == '&') q++;
    }
    if (!scheme) scheme = tls ? "https" : "http";
    size_t n = strlen(scheme) + 3 + hostlen + 1;
    *base = malloc(n);
    if (!*base) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    snprintf(*base, n, "%s://%.*s", scheme, (int)hostlen, rest);
    return 0;
}

ef_store *ef_libsql_open(const char *url, const ef_store_open_opts *o, ef_store_err *err)
{
    char *base = NULL, *token = NULL, *cache = NULL;
    if (parse_url(url, &base, &token, err)) return NULL;
    lq *q = calloc(1, sizeof(*q));
    ef_store *st = NULL;
    if (!q) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        goto done;
    }
    q->where = strdup(base);
    q->dump_page_rows = o && o->dump_page_rows ? o->dump_page_rows : LQ_DUMP_PAGE_ROWS;
    /* an explicit --db-token wins over one in the URL */
    const char *tok = o && o->token && *o->token ? o->token : token;
    q->h = ef_hrana_open_ca(base, tok, o && o->timeout_ms ? (int)o->timeout_ms : 5000,
                            o ? o->ca_file : NULL, err);
    const char *host = strstr(base, "://");
    cache = ef_remote_default_cache("libsql", host ? host + 3 : base);
    if (!q->where || !q->h || !cache) {
        if (q->h) ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        if (q->h) ef_hrana_close(q->h);
        free(q->where);
        free(q);
        goto done;
    }
    if (o && o->max_answer) ef_hrana_set_max_answer(q->h, o->max_answer);
    st = ef_remote_open("libsql", q->where, cache, &lq_ops, q, o, err);
done:
    free(base);
    free(token);
    free(cache);
    return st;
}
