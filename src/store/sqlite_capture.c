/*
 * sqlite_capture.c - change capture paused for a bulk write (an import of thousands of flags),
 * and left out of a follower's store.
 *
 * Every row change normally passes through a trigger that builds the row's JSON and inserts it
 * into ef_pending, which the commit reads back into the change-log entry and then empties: for an
 * import of 10,000 flags (70,000 rows) that was about half of the import's time. An import only
 * inserts rows (after the deletes of a replacing import, which stay captured), so it can drop the
 * triggers inside its transaction and, before COMMIT, read the rows it inserted straight from
 * their tables (rowid above each table's mark) into the entry, then recreate the triggers. DDL is
 * transactional in SQLite: a rollback or a crash brings the triggers back with everything else,
 * and no other connection ever sees a committed state without them.
 *
 * The entry lists each inserted row once, in its final state, tables in sq_tables order (parents
 * first); every applier defers foreign keys (replicas, libSQL, PostgreSQL) or has none (MySQL).
 *
 * A follower (a replica's store) logs each entry its upstream wrote, verbatim: the triggers would
 * build every applied row's JSON into ef_pending only for it to be emptied (a tenth of a one-flag
 * entry's apply, and one more page written). Its store is opened without them and takes no write
 * of its own; opened as anything else, the same file gets them back first (sq_capture_setup).
 *
 * Never: pause capture for a write that updates or deletes rows older than the pause (those
 * changes would be missing from the entry), COMMIT a write of the store's own with the triggers
 * dropped, or let a store without triggers log a write of its own (sq_wtx_commit refuses it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_int.h"

static int exec_buf(sq *s, ef_buf *b, ef_store_err *err)
{
    ef_buf_putc(b, '\0');
    if (!ef_buf_ok(b)) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    return sq_exec(s, b->data, err);
}

int sq_capture_setup(sq *s, ef_store_err *err)
{
    /* a reader (`edgeflag export` beside a running replica) changes nothing, triggers included */
    if (s->opts.no_lock) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND"
                           " name LIKE 'ef\\_cap\\_%' ESCAPE '\\'",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_db_err(s, err, "capture");
    int rc = sqlite3_step(st);
    int64_t have = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return sq_db_err(s, err, "capture");
    int64_t want = s->opts.follower ? 0 : 3 * (int64_t)sq_ntables; /* insert, update, delete */
    if (have == want) return 0;
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "BEGIN IMMEDIATE;");
    sq_capture_triggers_sql(&b, false);
    if (!s->opts.follower) sq_capture_triggers_sql(&b, true);
    ef_buf_puts(&b, "COMMIT;");
    rc = exec_buf(s, &b, err);
    ef_buf_free(&b);
    if (rc) sq_exec(s, "ROLLBACK", NULL);
    return rc;
}

int sq_capture_pause(sq *s, ef_store_err *err)
{
    if (!s->in_tx || s->applying)
        return ef_store_fail(err, EF_STORE_INTERNAL, "capture paused outside a write of ours");
    for (size_t t = 0; t < sq_ntables; t++) {
        char q[128];
        snprintf(q, sizeof(q), "SELECT COALESCE(MAX(rowid), 0) FROM \"%s\"", sq_tables[t].name);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK)
            return sq_db_err(s, err, "capture");
        int rc = sqlite3_step(st);
        s->capture_marks[t] = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW) return sq_db_err(s, err, "capture");
    }
    ef_buf b;
    ef_buf_init(&b);
    sq_capture_triggers_sql(&b, false);
    int rc = exec_buf(s, &b, err);
    ef_buf_free(&b);
    if (rc == 0) s->capture_paused = true;
    return rc;
}

size_t sq_real_whole_json(double x, char out[24])
{
    if (!(x > -1e15 && x < 1e15)) return 0; /* NaN too; %.15g writes an exponent from 1e15 on */
    long long i = (long long)x;
    if ((double)i != x) return 0;
    size_t n = ef_i64_dec(i, out); /* -0.0 gives "0.0", as SQLite writes it */
    out[n++] = '.';
    out[n++] = '0';
    return n;
}

/* One column value as JSON, as json_object() in the triggers writes it. A REAL is formatted by
 * SQLite itself (fq: "SELECT json_quote(?1)"), so the digits are the triggers' digits. */
static int put_value(sq *s, sqlite3_stmt *st, int i, sqlite3_stmt *fq, ef_buf *e, ef_store_err *err)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        ef_buf_puts(e, "null");
        return 0;
    case SQLITE_INTEGER: { /* by hand: ef_buf_printf costs ~1,000 instructions a call */
        char d[24];
        ef_buf_append(e, d, ef_i64_dec(sqlite3_column_int64(st, i), d));
        return 0;
    }
    case SQLITE_TEXT:
        ef_json_put_str(e, (ef_bytes){(const char *)sqlite3_column_text(st, i),
                                      (size_t)sqlite3_column_bytes(st, i)});
        return 0;
    case SQLITE_FLOAT: {
        char d[24];
        size_t n = sq_real_whole_json(sqlite3_column_double(st, i), d);
        if (n) { /* a rollout's percentage, as a rule: no statement to run */
            ef_buf_append(e, d, n);
            return 0;
        }
        sqlite3_reset(fq);
        sqlite3_bind_double(fq, 1, sqlite3_column_double(st, i));
        if (sqlite3_step(fq) != SQLITE_ROW) return sq_db_err(s, err, "capture");
        ef_buf_append(e, sqlite3_column_text(fq, 0), (size_t)sqlite3_column_bytes(fq, 0));
        return 0;
    }
    default: /* json_object() refuses a BLOB too: no table of ours holds one */
        return ef_store_fail(err, EF_STORE_INTERNAL, "capture: a BLOB in table %s",
                             sqlite3_column_name(st, i));
    }
}

/* The fixed text of one table's captured rows, written once per table rather than per column:
 * the change's head ({"table":"t","op":"upsert","pk":, text[0, off[0])) and before value k its
 * member's name (text[off[k], off[k + 1])), the primary key's columns first ({"id": ...), then
 * every column ({"namespace_key": ,"key": ...). */
typedef struct row_text {
    ef_buf text;
    size_t *off; /* ncols + 1 offsets: primary key's columns, then the row's, then the end */
} row_text;

static int row_text_init(row_text *r, const sq_table *tb, size_t npk, size_t ncols)
{
    ef_buf_init(&r->text);
    r->off = malloc((npk + ncols + 1) * sizeof(*r->off));
    if (!r->off) return -1;
    ef_buf_puts(&r->text, "{\"table\":\"");
    ef_buf_puts(&r->text, tb->name);
    ef_buf_puts(&r->text, "\",\"op\":\"upsert\",\"pk\":");
    for (size_t k = 0; k < npk + ncols; k++) {
        r->off[k] = r->text.len;
        ef_buf_puts(&r->text, k == 0 || k == npk ? "{\"" : ",\"");
        ef_buf_puts(&r->text, k < npk ? tb->pk[k] : tb->cols[k - npk]);
        ef_buf_puts(&r->text, "\":");
    }
    r->off[npk + ncols] = r->text.len;
    return ef_buf_ok(&r->text) ? 0 : -1;
}

static void row_text_free(row_text *r)
{
    ef_buf_free(&r->text);
    free(r->off);
}

/* {"c1":v1,...}: the members from..to-1 of r, their values in the statement's columns. */
static int put_object(sq *s, sqlite3_stmt *st, const row_text *r, size_t from, size_t to,
                      sqlite3_stmt *fq, ef_buf *e, ef_store_err *err)
{
    for (size_t k = from; k < to; k++) {
        ef_buf_append(e, r->text.data + r->off[k], r->off[k + 1] - r->off[k]);
        if (put_value(s, st, (int)k, fq, e, err)) return -1;
    }
    ef_buf_putc(e, '}');
    return 0;
}

/* Appends table t's rows above its mark as upserts. */
static int collect_table(sq *s, size_t t, sqlite3_stmt *fq, ef_buf *e, size_t *n,
                         ef_store_err *err)
{
    const sq_table *tb = &sq_tables[t];
    ef_buf q;
    ef_buf_init(&q);
    /* the primary key's columns, then every column: each object reads a run of columns */
    ef_buf_puts(&q, "SELECT ");
    size_t npk = 0, ncols = 0;
    for (; tb->pk[npk]; npk++) ef_buf_printf(&q, "\"%s\", ", tb->pk[npk]);
    for (; tb->cols[ncols]; ncols++) ef_buf_printf(&q, "%s\"%s\"", ncols ? ", " : "", tb->cols[ncols]);
    ef_buf_printf(&q, " FROM \"%s\" WHERE rowid > ? ORDER BY rowid", tb->name);
    ef_buf_putc(&q, '\0');
    sqlite3_stmt *st = NULL;
    int rc = ef_buf_ok(&q) ? sqlite3_prepare_v2(s->db, q.data, -1, &st, NULL) : SQLITE_NOMEM;
    ef_buf_free(&q);
    if (rc != SQLITE_OK) return sq_db_err(s, err, "capture");
    row_text r;
    if (row_text_init(&r, tb, npk, ncols)) {
        row_text_free(&r);
        sqlite3_finalize(st);
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    }
    sqlite3_bind_int64(st, 1, s->capture_marks[t]);
    int out = 0;
    while (out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* the format of the trigger-captured changes (sq_wtx_commit): an insert has no "old" */
        if ((*n)++) ef_buf_putc(e, ',');
        ef_buf_append(e, r.text.data, r.off[0]);
        out = put_object(s, st, &r, 0, npk, fq, e, err);
        ef_buf_puts(e, ",\"row\":");
        if (out == 0) out = put_object(s, st, &r, npk, npk + ncols, fq, e, err);
        ef_buf_putc(e, '}');
    }
    if (out == 0 && rc != SQLITE_DONE) out = sq_db_err(s, err, "capture");
    sqlite3_finalize(st);
    row_text_free(&r);
    if (out == 0 && !ef_buf_ok(e)) out = ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    return out;
}

int sq_capture_resume(sq *s, ef_buf *entry, size_t *n, ef_store_err *err)
{
    if (!s->capture_paused) return 0;
    sqlite3_stmt *fq;
    if (sqlite3_prepare_v2(s->db, "SELECT json_quote(?1)", -1, &fq, NULL) != SQLITE_OK)
        return sq_db_err(s, err, "capture");
    int crc = 0;
    for (size_t t = 0; crc == 0 && t < sq_ntables; t++) crc = collect_table(s, t, fq, entry, n, err);
    sqlite3_finalize(fq);
    if (crc) return -1;
    ef_buf b;
    ef_buf_init(&b);
    sq_capture_triggers_sql(&b, true);
    int rc = exec_buf(s, &b, err);
    ef_buf_free(&b);
    if (rc == 0) s->capture_paused = false;
    return rc;
}
