/*
 * mysql.c - the MySQL/MariaDB adapter of the remote-store core (remote.h, docs/storage.md): the
 * database of record is a MariaDB (or MySQL) database reached with libmariadb
 * (--db mysql://USER[:PASS]@HOST[:PORT]/DB). Its schema is mysql_schema.c.
 *
 * A write is one InnoDB transaction of prepared statements: START TRANSACTION, the ef_state row
 * read FOR UPDATE and compared with ours - 1 (another node's newer seq is a lost race), the row
 * upserts/deletes, namespace versions, the log entry, the seq, COMMIT. MariaDB cannot push, so the
 * core polls every --db-poll.
 *
 * This file must never report a write committed unless COMMIT succeeded, never wait on the server
 * without the client's read/write timeouts, never put a value into SQL text (values are bound to
 * prepared statements; table and column names come from sq_tables), and never log a password.
 */
#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/mysql_int.h"
#include "store/open.h"
#include "store/rdb.h"
#include "store/remote.h"

#define MY_MAX_COUNTER ((int64_t)1 << 53)
#define MY_MAX_PARAMS 16

typedef struct myad {
    char *host, *user, *pass, *db;
    unsigned port;
    char *where;   /* host:port/db, for messages */
    unsigned timeout_s;
    pthread_mutex_t mu; /* m is used by the writer and the pick-up thread */
    MYSQL *m;
} myad;

/* ---- connections ---- */

static int my_fail(myad *p, const char *what, ef_store_err *err)
{
    return ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: %s: %s", p->where, what,
                         p->m ? mysql_error(p->m) : "not connected");
}

static void my_drop(myad *p)
{
    if (p->m) mysql_close(p->m);
    p->m = NULL;
}

/* The connection, opened again when it broke. Under p->mu. */
static MYSQL *my_conn(myad *p, ef_store_err *err)
{
    if (p->m) return p->m;
    MYSQL *m = mysql_init(NULL);
    if (!m) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        return NULL;
    }
    unsigned t = p->timeout_s;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &t);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &t);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &t);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    /* strict: a value the column cannot hold is an error, never silently truncated */
    mysql_options(m, MYSQL_INIT_COMMAND,
                  "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,"
                  "NO_BACKSLASH_ESCAPES'");
    if (!mysql_real_connect(m, p->host, p->user, p->pass, p->db, p->port, NULL, 0)) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: cannot connect: %s", p->where,
                      mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    p->m = m;
    return m;
}

/* A statement without parameters or rows. Under p->mu. */
static int my_simple(myad *p, const char *sql, ef_store_err *err)
{
    if (!my_conn(p, err)) return -1;
    if (mysql_query(p->m, sql) == 0) {
        MYSQL_RES *r = mysql_store_result(p->m);
        if (r) mysql_free_result(r);
        return 0;
    }
    my_fail(p, "query", err);
    unsigned e = mysql_errno(p->m);
    if (e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST) my_drop(p);
    return -1;
}

/* A query without parameters; *out its rows (text protocol), to mysql_free_result. Under p->mu. */
static int my_rows(myad *p, const char *sql, MYSQL_RES **out, ef_store_err *err)
{
    *out = NULL;
    if (!my_conn(p, err)) return -1;
    if (mysql_query(p->m, sql) == 0 && (*out = mysql_store_result(p->m)) != NULL) return 0;
    my_fail(p, "query", err);
    unsigned e = mysql_errno(p->m);
    if (e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST) my_drop(p);
    return -1;
}

/* A prepared statement with text parameters (NULL: SQL NULL; lens NULL: C strings), run to
 * completion. Under p->mu. */
static int my_exec(myad *p, const char *sql, int n, const char *const *vals, const size_t *lens,
                   ef_store_err *err)
{
    if (!my_conn(p, err)) return -1;
    MYSQL_STMT *st = mysql_stmt_init(p->m);
    if (!st) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    MYSQL_BIND b[MY_MAX_PARAMS];
    unsigned long l[MY_MAX_PARAMS];
    my_bool isnull[MY_MAX_PARAMS];
    memset(b, 0, sizeof(b));
    for (int i = 0; i < n && i < MY_MAX_PARAMS; i++) {
        isnull[i] = vals[i] == NULL;
        l[i] = vals[i] ? (unsigned long)(lens ? lens[i] : strlen(vals[i])) : 0;
        b[i].buffer_type = MYSQL_TYPE_STRING;
        b[i].buffer = (void *)(vals[i] ? vals[i] : "");
        b[i].buffer_length = l[i];
        b[i].length = &l[i];
        b[i].is_null = &isnull[i];
    }
    int rc = 0;
    if (mysql_stmt_prepare(st, sql, strlen(sql)) || (n && mysql_stmt_bind_param(st, b)) ||
        mysql_stmt_execute(st) || mysql_stmt_store_result(st)) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: %s", p->where, mysql_stmt_error(st));
        unsigned e = mysql_stmt_errno(st);
        if (e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == ER_READ_ONLY_MODE ||
            e == ER_OPTION_PREVENTS_STATEMENT)
            rc = -2;
        else
            rc = -1;
    }
    mysql_stmt_close(st);
    if (rc == -2) {
        my_drop(p);
        rc = -1;
    }
    return rc;
}

static void my_abort(myad *p)
{
    ef_store_err ignore;
    if (p->m && my_simple(p, "ROLLBACK", &ignore)) my_drop(p);
}

static bool cell_i64(const char *v, int64_t *out)
{
    if (!v || !*v) return false;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    *out = x;
    return !errno && !*end;
}

/* ---- migrations ---- */

static int my_migrate(void *ad, ef_store_err *err)
{
    myad *p = ad;
    pthread_mutex_lock(&p->mu);
    int rc = -1;
    MYSQL_RES *r = NULL;
    bool locked = false;
    /* DDL commits implicitly in MariaDB: a named lock makes nodes starting together run each
     * step once, and every step is written so that running it again after a crash mid-step is
     * harmless (CREATE ... IF NOT EXISTS, INSERT IGNORE) */
    if (my_rows(p, "SELECT GET_LOCK('edgeflag_migrate', 30)", &r, err)) goto out;
    MYSQL_ROW row = mysql_fetch_row(r);
    locked = row && row[0] && !strcmp(row[0], "1");
    mysql_free_result(r);
    r = NULL;
    if (!locked) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: another node kept migrating", p->where);
        goto out;
    }
    if (my_simple(p, "CREATE TABLE IF NOT EXISTS schema_migrations(version INTEGER PRIMARY KEY,"
                     " applied_at BIGINT NOT NULL) ENGINE=InnoDB", err) ||
        my_rows(p, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &r, err))
        goto out;
    row = mysql_fetch_row(r);
    int64_t v = 0;
    bool ok = row && cell_i64(row[0], &v) && v >= 0;
    mysql_free_result(r);
    r = NULL;
    if (!ok) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: unreadable schema version", p->where);
        goto out;
    }
    if (v > SQ_SCHEMA_VERSION) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE,
                      "remote database schema version %d is newer than this edgeflag supports (%d)",
                      (int)v, SQ_SCHEMA_VERSION);
        goto out;
    }
    for (int step = (int)v + 1; step <= SQ_SCHEMA_VERSION; step++) {
        char sv[16], now[24];
        snprintf(sv, sizeof(sv), "%d", step);
        snprintf(now, sizeof(now), "%lld", (long long)ef_clock_wall_ns());
        const char *vals[2] = {sv, now};
        for (const char *const *s = my_migration_sql(step); s && *s; s++)
            if (my_simple(p, *s, err)) goto out;
        if (step == 1 && my_exec(p, "INSERT IGNORE INTO namespaces VALUES ('default', 'Default',"
                                    " 'Default namespace', 1, ?, ?)",
                                 2, (const char *[]){now, now}, NULL, err))
            goto out;
        if (my_exec(p, "INSERT INTO schema_migrations VALUES (?, ?)", 2, vals, NULL, err)) goto out;
        ef_log(EF_LOG_INFO, "mysql: schema migration applied", "server", p->where, "version", sv,
               NULL);
    }
    rc = 0;
out:
    if (r) mysql_free_result(r);
    if (locked) {
        ef_store_err ignore;
        if (my_rows(p, "SELECT RELEASE_LOCK('edgeflag_migrate')", &r, &ignore) == 0)
            mysql_free_result(r);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- reading ---- */

static int my_fetch(void *ad, uint64_t after, int64_t limit, ef_arena *a, ef_remote_page *out,
                    ef_store_err *err)
{
    myad *p = ad;
    pthread_mutex_lock(&p->mu);
    int rc = -1;
    MYSQL_RES *r = NULL;
    MYSQL_STMT *st = NULL;
    /* the state first: entries only grow, so the page covers at least up to this seq */
    if (my_rows(p, "SELECT seq, trimmed FROM ef_state WHERE id = 1", &r, err)) goto out;
    MYSQL_ROW row = mysql_fetch_row(r);
    int64_t seq = 0, trimmed = 0;
    if (!row || !cell_i64(row[0], &seq) || !cell_i64(row[1], &trimmed) || seq < 0 || trimmed < 0 ||
        seq > MY_MAX_COUNTER) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: unreadable ef_state", p->where);
        goto out;
    }
    out->seq = (uint64_t)seq;
    out->trimmed = (uint64_t)trimmed;
    out->n = 0;
    out->entries = NULL;
    if ((uint64_t)seq <= after) {
        rc = 0;
        goto out;
    }
    st = mysql_stmt_init(p->m);
    if (!st) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        goto out;
    }
    static const char q[] = "SELECT entry FROM changelog WHERE seq > ? ORDER BY seq LIMIT ?";
    unsigned long long pa = after, pl = (unsigned long long)limit;
    MYSQL_BIND in[2];
    memset(in, 0, sizeof(in));
    in[0].buffer_type = in[1].buffer_type = MYSQL_TYPE_LONGLONG;
    in[0].is_unsigned = in[1].is_unsigned = 1;
    in[0].buffer = &pa;
    in[1].buffer = &pl;
    unsigned long len = 0;
    my_bool isnull = 0;
    MYSQL_BIND res;
    memset(&res, 0, sizeof(res));
    res.buffer_type = MYSQL_TYPE_STRING;
    res.length = &len;
    res.is_null = &isnull;
    if (mysql_stmt_prepare(st, q, sizeof(q) - 1) || mysql_stmt_bind_param(st, in) ||
        mysql_stmt_execute(st) || mysql_stmt_store_result(st) || mysql_stmt_bind_result(st, &res)) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: %s", p->where, mysql_stmt_error(st));
        goto out;
    }
    size_t n = (size_t)mysql_stmt_num_rows(st);
    out->entries = n ? ef_arena_alloc(a, n * sizeof(ef_bytes)) : NULL;
    if (n && !out->entries) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        goto out;
    }
    int f;
    while (out->n < n && ((f = mysql_stmt_fetch(st)) == 0 || f == MYSQL_DATA_TRUNCATED)) {
        char *e = isnull ? NULL : ef_arena_alloc(a, len + 1);
        MYSQL_BIND one;
        memset(&one, 0, sizeof(one));
        one.buffer_type = MYSQL_TYPE_STRING;
        one.buffer = e;
        one.buffer_length = len + 1;
        if (!e || mysql_stmt_fetch_column(st, &one, 0, 0)) {
            ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: unreadable changelog entry",
                          p->where);
            goto out;
        }
        out->entries[out->n++] = (ef_bytes){e, len};
    }
    rc = 0;
out:
    if (st) mysql_stmt_close(st);
    if (r) mysql_free_result(r);
    if (rc && p->m && (mysql_errno(p->m) == CR_SERVER_GONE_ERROR ||
                       mysql_errno(p->m) == CR_SERVER_LOST))
        my_drop(p);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* rdb_dump_write's reader on a MariaDB connection: the current result. */
typedef struct my_cursor {
    myad *p;
    MYSQL_RES *r;
} my_cursor;

static int my_cursor_query(void *db, const char *sql, ef_store_err *err)
{
    my_cursor *c = db;
    return my_rows(c->p, sql, &c->r, err);
}

static bool my_cursor_row(void *db, int n, const char **cells, size_t *lens)
{
    my_cursor *c = db;
    MYSQL_ROW row = c->r && mysql_num_fields(c->r) >= (unsigned)n ? mysql_fetch_row(c->r) : NULL;
    if (!row) return false;
    unsigned long *len = mysql_fetch_lengths(c->r);
    for (int i = 0; i < n; i++) {
        cells[i] = row[i];
        lens[i] = len[i];
    }
    return true;
}

static void my_cursor_done(void *db)
{
    my_cursor *c = db;
    if (c->r) mysql_free_result(c->r);
    c->r = NULL;
}

static int my_dump(void *ad, ef_buf *out, ef_store_err *err)
{
    myad *p = ad;
    pthread_mutex_lock(&p->mu);
    int rc = -1;
    my_cursor cur = {.p = p};
    rdb_reader rd = {.engine = "mysql", .where = p->where, .quote = '`', .max_counter = MY_MAX_COUNTER,
                     .db = &cur, .query = my_cursor_query, .row = my_cursor_row, .done = my_cursor_done};
    if (my_simple(p, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", err)) goto out;
    if (rdb_dump_write(&rd, out, err) || my_simple(p, "COMMIT", err)) {
        my_cursor_done(&cur);
        ef_store_err keep = *err;
        my_abort(p);
        *err = keep;
        goto out;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- the write ---- */

static char *upsert_sql(const sq_table *t, bool del, ef_arena *a)
{
    ef_buf b;
    ef_buf_init(&b);
    if (del) {
        ef_buf_printf(&b, "DELETE FROM `%s` WHERE ", t->name);
        for (int i = 0; t->pk[i]; i++) ef_buf_printf(&b, "%s`%s` = ?", i ? " AND " : "", t->pk[i]);
    } else {
        ef_buf_printf(&b, "INSERT INTO `%s` (", t->name);
        for (int i = 0; t->cols[i]; i++) ef_buf_printf(&b, "%s`%s`", i ? ", " : "", t->cols[i]);
        ef_buf_puts(&b, ") VALUES (");
        for (int i = 0; t->cols[i]; i++) ef_buf_puts(&b, i ? ", ?" : "?");
        ef_buf_puts(&b, ") ON DUPLICATE KEY UPDATE ");
        for (int i = 0; t->cols[i]; i++)
            ef_buf_printf(&b, "%s`%s` = VALUES(`%s`)", i ? ", " : "", t->cols[i], t->cols[i]);
    }
    ef_buf_putc(&b, '\0');
    char *out = ef_buf_ok(&b) ? ef_arena_memdup(a, b.data, b.len) : NULL;
    ef_buf_free(&b);
    return out;
}

/* The statements after the guard; under p->mu inside the open transaction. */
static int write_rows(myad *p, const ef_remote_write *w, ef_arena *a, ef_store_err *err)
{
    for (const ef_json *c = w->changes->child; c; c = c->next) {
        const ef_json *tbl = ef_json_get(c, "table"), *op = ef_json_get(c, "op");
        const sq_table *t = tbl && tbl->type == EF_JSON_STRING ? sq_table_find(tbl->str) : NULL;
        bool del = op && op->type == EF_JSON_STRING && ef_bytes_eq(op->str, EF_BYTES_LIT("delete"));
        const ef_json *src = ef_json_get(c, del ? "pk" : "row");
        if (!t || !src || src->type != EF_JSON_OBJECT)
            return ef_store_fail(err, EF_STORE_INTERNAL, "mysql: malformed change in entry %llu",
                                 (unsigned long long)w->seq);
        const char *sql = upsert_sql(t, del, a);
        const char *vals[MY_MAX_PARAMS];
        size_t lens[MY_MAX_PARAMS];
        const char *const *cols = del ? t->pk : t->cols;
        int n = 0;
        for (; cols[n]; n++) {
            rdb_kind k = rdb_col_kind(t->name, cols[n]);
            if (rdb_param(ef_json_get(src, cols[n]), k, true, a, &vals[n], &lens[n]))
                return ef_store_fail(err, EF_STORE_INTERNAL, "mysql: unreadable %s.%s", t->name,
                                     cols[n]);
            if (k == RDB_TEXT && vals[n] && lens[n] > MY_KEY_MAX && my_is_key(cols[n]))
                return ef_store_fail(err, EF_STORE_INVALID,
                                     "invalid field %s: at most %d characters on MySQL/MariaDB",
                                     cols[n], MY_KEY_MAX);
        }
        if (!sql) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        if (my_exec(p, sql, n, vals, lens, err)) return -1;
    }
    for (const ef_json *ns = w->namespaces->child; ns; ns = ns->next) {
        const char *vals[2];
        size_t lens[2];
        if (rdb_param(ef_json_get(ns, "key"), RDB_TEXT, true, a, &vals[0], &lens[0]) ||
            rdb_param(ef_json_get(ns, "version"), RDB_INT, true, a, &vals[1], &lens[1]) ||
            !vals[0] || !vals[1])
            return ef_store_fail(err, EF_STORE_INTERNAL, "mysql: malformed namespace version");
        if (my_exec(p, "INSERT INTO ns_versions VALUES (?, ?) ON DUPLICATE KEY UPDATE"
                       " version = GREATEST(version, VALUES(version))",
                    2, vals, lens, err))
            return -1;
    }
    char cur[24];
    snprintf(cur, sizeof(cur), "%llu", (unsigned long long)w->seq);
    const char *lv[3] = {cur, NULL, w->entry.p};
    size_t ll[3] = {strlen(cur), 0, w->entry.n};
    if (rdb_param(w->time, RDB_INT, true, a, &lv[1], &ll[1]) || !lv[1])
        return ef_store_fail(err, EF_STORE_INTERNAL, "mysql: malformed change-log entry");
    if (my_exec(p, "INSERT INTO changelog VALUES (?, ?, ?)", 3, lv, ll, err) ||
        my_exec(p, "UPDATE ef_state SET seq = ? WHERE id = 1", 1, lv, ll, err))
        return -1;
    if (w->log_keep && w->seq > w->log_keep) {
        char keep[24];
        snprintf(keep, sizeof(keep), "%llu", (unsigned long long)(w->seq - w->log_keep));
        const char *kv[1] = {keep};
        if (my_exec(p, "DELETE FROM changelog WHERE seq <= ?", 1, kv, NULL, err) ||
            my_exec(p, "UPDATE ef_state SET trimmed = GREATEST(trimmed, ?) WHERE id = 1", 1, kv,
                    NULL, err))
            return -1;
    }
    return 0;
}

static int my_commit(void *ad, const ef_remote_write *w, bool *conflict, ef_store_err *err)
{
    myad *p = ad;
    ef_arena a;
    ef_arena_init(&a, 65536);
    pthread_mutex_lock(&p->mu);
    int rc = -1;
    MYSQL_RES *r = NULL;
    if (my_simple(p, "START TRANSACTION", err)) goto out;
    /* writers from several nodes queue on this row lock; a locking read sees the latest commit */
    if (my_rows(p, "SELECT seq FROM ef_state WHERE id = 1 FOR UPDATE", &r, err)) goto abort;
    MYSQL_ROW row = mysql_fetch_row(r);
    int64_t seq = -1;
    if (!row || !cell_i64(row[0], &seq)) {
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: unreadable ef_state", p->where);
        goto abort;
    }
    mysql_free_result(r);
    r = NULL;
    if ((uint64_t)seq != w->seq - 1) {
        *conflict = true;
        ef_store_fail(err, EF_STORE_UNAVAILABLE, "mysql %s: another node wrote first", p->where);
        goto abort;
    }
    if (write_rows(p, w, &a, err)) goto abort;
    if (!my_conn(p, err)) goto out;
    if (mysql_commit(p->m)) {
        /* the outcome is unknown: not acknowledged; a later pull finds it if it did commit */
        my_fail(p, "the write was not saved (COMMIT)", err);
        my_drop(p);
        goto out;
    }
    rc = 0;
    goto out;
abort : {
    char m[sizeof(err->message)];
    snprintf(m, sizeof(m), "%s", err->message);
    ef_store_code code = err->code;
    if (r) mysql_free_result(r);
    r = NULL;
    my_abort(p);
    if (*conflict || code == EF_STORE_INVALID)
        ef_store_fail(err, code, "%s", m);
    else
        ef_store_fail(err, code, "the write was not saved: %s", m);
}
out:
    if (r) mysql_free_result(r);
    pthread_mutex_unlock(&p->mu);
    ef_arena_free(&a);
    return rc;
}

static void my_close(void *ad)
{
    myad *p = ad;
    my_drop(p);
    pthread_mutex_destroy(&p->mu);
    free(p->host);
    free(p->user);
    free(p->pass);
    free(p->db);
    free(p->where);
    free(p);
}

static const ef_remote_ops my_ops = {
    .migrate = my_migrate,
    .fetch = my_fetch,
    .dump = my_dump,
    .commit = my_commit,
    .wait = NULL, /* MariaDB cannot push: the core polls every --db-poll */
    .close = my_close,
};

/* ---- opening ---- */

/* %XX-decoded copy of s[0..n) (malloc'd), or NULL when an escape is malformed. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        char hex[3] = {i + 1 < n ? s[i + 1] : 0, i + 2 < n ? s[i + 2] : 0, 0};
        char *end;
        long v = strtol(hex, &end, 16);
        if (!hex[0] || !hex[1] || *end || hex[0] == '-' || hex[0] == '+' || hex[0] == ' ' || v == 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)v;
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* mysql://USER[:PASS]@HOST[:PORT]/DB, nothing else (a parameter is refused, not ignored). */
static int parse_url(myad *p, const char *url, ef_store_err *err)
{
    const char *s = url + strlen("mysql://");
    const char *at = strchr(s, '@');
    const char *slash = strchr(at ? at : s, '/');
    if (!at || !slash || !slash[1] || strpbrk(slash + 1, "/?#"))
        return ef_store_fail(err, EF_STORE_INVALID,
                             "not a MySQL URL (want mysql://USER[:PASS]@HOST[:PORT]/DB, no "
                             "parameters)");
    const char *colon = memchr(s, ':', (size_t)(at - s));
    p->user = pct_decode(s, (size_t)((colon ? colon : at) - s));
    p->pass = colon ? pct_decode(colon + 1, (size_t)(at - colon - 1)) : NULL;
    const char *h = at + 1;
    const char *pc = memchr(h, ':', (size_t)(slash - h));
    p->host = strndup(h, (size_t)((pc ? pc : slash) - h));
    p->port = 3306;
    if (pc) {
        char *end;
        long v = strtol(pc + 1, &end, 10);
        if (end != slash || v <= 0 || v > 65535)
            return ef_store_fail(err, EF_STORE_INVALID, "MySQL URL: invalid port");
        p->port = (unsigned)v;
    }
    p->db = pct_decode(slash + 1, strlen(slash + 1));
    if (!p->user || (colon && !p->pass) || !p->host || !p->db)
        return ef_store_fail(err, EF_STORE_INVALID, "MySQL URL: invalid percent-encoding");
    if (!*p->host || !*p->db)
        return ef_store_fail(err, EF_STORE_INVALID, "MySQL URL without a host or a database");
    size_t n = strlen(p->host) + strlen(p->db) + 16;
    p->where = malloc(n);
    if (!p->where) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    snprintf(p->where, n, "%s:%u/%s", p->host, p->port, p->db);
    return 0;
}

ef_store *ef_mysql_open(const char *url, const ef_store_open_opts *o, ef_store_err *err)
{
    myad *p = calloc(1, sizeof(*p));
    if (!p) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    unsigned ms = o && o->timeout_ms ? o->timeout_ms : 5000;
    p->timeout_s = ms < 1000 ? 1 : (ms + 999) / 1000;
    if (parse_url(p, url, err)) {
        my_close(p);
        return NULL;
    }
    char *cache = ef_remote_default_cache("mysql", p->where);
    if (!cache) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        my_close(p);
        return NULL;
    }
    char *where = strdup(p->where);
    ef_store *st = where ? ef_remote_open("mysql", where, cache, &my_ops, p, o, err) : NULL;
    if (!where) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        my_close(p);
    }
    free(where);
    free(cache);
    return st;
}
