/*
 * rdb.c - value conversions shared by the SQL-database adapters of the remote store (rdb.h).
 * Must never guess: a cell that is not a value of its column's kind is refused, not coerced.
 */
#include "store/rdb.h"

#include "store/sqlite_int.h" /* sq_tables: the tables and columns a dump holds */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

rdb_kind rdb_col_kind(const char *table, const char *col)
{
    static const struct {
        const char *table, *col;
        rdb_kind kind;
    } special[] = {
        {"namespaces", "protected", RDB_BOOL}, {"flags", "enabled", RDB_BOOL},
        {"rollouts", "value", RDB_BOOL},       {"flags", "metadata", RDB_JSON},
        {"variants", "attachment", RDB_JSON},  {"tokens", "metadata", RDB_JSON},
        {"distributions", "rollout", RDB_REAL}, {"rollouts", "percentage", RDB_REAL},
    };
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (!strcmp(special[i].table, table) && !strcmp(special[i].col, col))
            return special[i].kind;
    static const char *const ints[] = {"created_at", "updated_at", "expires_at", "type",
                                       "match_type", "rank", "segment_operator", "position",
                                       "version"};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
        if (!strcmp(ints[i], col)) return RDB_INT;
    return RDB_TEXT;
}

int rdb_param(const ef_json *v, rdb_kind k, bool nul_ok, ef_arena *a, const char **out,
              size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!v || v->type == EF_JSON_NULL) return 0;
    if (v->type == EF_JSON_TRUE || v->type == EF_JSON_FALSE) {
        *out = v->type == EF_JSON_TRUE ? "1" : "0";
        *len = 1;
        return 0;
    }
    ef_bytes s;
    if (v->type == EF_JSON_NUMBER && k == RDB_BOOL)
        s = v->num != 0 ? (ef_bytes){"1", 1} : (ef_bytes){"0", 1};
    else if (v->type == EF_JSON_NUMBER || v->type == EF_JSON_STRING)
        s = v->str; /* a number's literal text, or the decoded string */
    else
        return -1;
    if (v->type == EF_JSON_STRING && !nul_ok && memchr(s.p, '\0', s.n)) return -2;
    char *c = ef_arena_alloc(a, s.n + 1);
    if (!c) return -1;
    memcpy(c, s.p, s.n);
    c[s.n] = '\0';
    *out = c;
    *len = s.n;
    return 0;
}

/* Exactly a JSON number (RFC 8259 grammar): what strtod/strtoll also accept (spaces, '+', hex,
 * "1.", ".5", inf, nan) is refused, so an accepted cell is always a JSON number. */
static bool json_number(const char *v, size_t n, bool integer)
{
    size_t i = 0;
    if (i < n && v[i] == '-') i++;
    if (i >= n || v[i] < '0' || v[i] > '9') return false;
    if (v[i] == '0')
        i++;
    else
        while (i < n && v[i] >= '0' && v[i] <= '9') i++;
    if (integer) return i == n;
    if (i < n && v[i] == '.') {
        i++;
        size_t d = i;
        while (i < n && v[i] >= '0' && v[i] <= '9') i++;
        if (i == d) return false;
    }
    if (i < n && (v[i] == 'e' || v[i] == 'E')) {
        i++;
        if (i < n && (v[i] == '+' || v[i] == '-')) i++;
        size_t d = i;
        while (i < n && v[i] >= '0' && v[i] <= '9') i++;
        if (i == d) return false;
    }
    return i == n;
}

static bool int_text(const char *v, size_t n)
{
    if (n == 0 || n > 20 || !json_number(v, n, true)) return false;
    char buf[24];
    memcpy(buf, v, n);
    buf[n] = '\0';
    char *end;
    errno = 0;
    (void)strtoll(buf, &end, 10);
    return !errno && *end == '\0';
}

int rdb_cell_json(ef_buf *b, const char *v, size_t n, rdb_kind k)
{
    if (!v) {
        ef_buf_puts(b, "null");
        return 0;
    }
    switch (k) {
    case RDB_BOOL:
        if (n != 1) return -1;
        if (v[0] == 't' || v[0] == '1')
            ef_buf_putc(b, '1');
        else if (v[0] == 'f' || v[0] == '0')
            ef_buf_putc(b, '0');
        else
            return -1;
        return 0;
    case RDB_INT:
        if (!int_text(v, n)) return -1;
        ef_buf_append(b, v, n);
        return 0;
    case RDB_REAL: {
        char buf[64];
        if (n == 0 || n >= sizeof(buf) || !json_number(v, n, false)) return -1;
        memcpy(buf, v, n);
        buf[n] = '\0';
        char *end;
        double d = strtod(buf, &end);
        /* NaN and infinities are no JSON numbers; "inf"/"nan" spellings fail the same way */
        if (*end || d != d || d > 1e308 || d < -1e308) return -1;
        ef_buf_append(b, v, n); /* the servers write the shortest exact form, a JSON number */
        return 0;
    }
    case RDB_TEXT:
    case RDB_JSON:
        ef_json_put_str(b, (ef_bytes){v, n});
        return 0;
    }
    return -1;
}

/* ---- the dump ---- */

/* A non-negative counter cell no larger than max (seq, a namespace version). */
static bool counter_cell(const char *v, size_t n, int64_t max, int64_t *out)
{
    if (!v || !int_text(v, n)) return false; /* n <= 20 */
    char buf[24];
    memcpy(buf, v, n);
    buf[n] = '\0';
    errno = 0;
    long long x = strtoll(buf, NULL, 10);
    if (errno || x < 0 || x > max) return false;
    *out = x;
    return true;
}

/* One table's rows as a JSON array, their number in *count. */
static int dump_table(const rdb_reader *rd, const sq_table *tb, ef_buf *sql, ef_buf *out,
                      size_t *count, ef_store_err *err)
{
    const char q = rd->quote;
    int ncols = 0;
    ef_buf_clear(sql);
    ef_buf_puts(sql, "SELECT ");
    for (; tb->cols[ncols]; ncols++)
        ef_buf_printf(sql, "%s%c%s%c", ncols ? ", " : "", q, tb->cols[ncols], q);
    ef_buf_printf(sql, " FROM %c%s%c ORDER BY ", q, tb->name, q);
    for (int c = 0; tb->pk[c]; c++) ef_buf_printf(sql, "%s%c%s%c", c ? ", " : "", q, tb->pk[c], q);
    ef_buf_putc(sql, '\0');
    if (!ef_buf_ok(sql)) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    if (rd->query(rd->db, sql->data, err)) return -1;
    const char *cells[12];
    size_t lens[12];
    size_t n = 0;
    int rc = 0;
    ef_buf_putc(out, '[');
    for (; rc == 0 && rd->row(rd->db, ncols, cells, lens); n++) {
        ef_buf_puts(out, n ? ",{" : "{");
        for (int c = 0; c < ncols; c++) {
            ef_buf_printf(out, "%s\"%s\":", c ? "," : "", tb->cols[c]);
            if (rdb_cell_json(out, cells[c], lens[c], rdb_col_kind(tb->name, tb->cols[c]))) {
                rc = ef_store_fail(err, EF_STORE_UNAVAILABLE, "%s %s: %s.%s holds a value edgeflag cannot read",
                                   rd->engine, rd->where, tb->name, tb->cols[c]);
                break;
            }
        }
        ef_buf_putc(out, '}');
    }
    ef_buf_putc(out, ']');
    rd->done(rd->db);
    *count = n;
    return rc;
}

int rdb_dump_write(const rdb_reader *rd, ef_buf *out, ef_store_err *err)
{
    const char *cells[2];
    size_t lens[2];
    int64_t seq = 0;
    if (rd->query(rd->db, "SELECT seq FROM ef_state WHERE id = 1", err)) return -1;
    bool ok = rd->row(rd->db, 1, cells, lens) && counter_cell(cells[0], lens[0], rd->max_counter, &seq);
    rd->done(rd->db);
    if (!ok) return ef_store_fail(err, EF_STORE_UNAVAILABLE, "%s %s: no readable seq", rd->engine, rd->where);
    ef_buf_printf(out, "{\"seq\":%lld,\"versions\":{", (long long)seq);
    if (rd->query(rd->db, "SELECT namespace_key, version FROM ns_versions ORDER BY namespace_key", err))
        return -1;
    for (size_t i = 0; rd->row(rd->db, 2, cells, lens); i++) {
        int64_t v;
        if (!cells[0] || !counter_cell(cells[1], lens[1], rd->max_counter, &v)) {
            rd->done(rd->db);
            return ef_store_fail(err, EF_STORE_UNAVAILABLE, "%s %s: unreadable ns_versions row",
                                 rd->engine, rd->where);
        }
        if (i) ef_buf_putc(out, ',');
        ef_json_put_str(out, (ef_bytes){cells[0], lens[0]});
        ef_buf_printf(out, ":%lld", (long long)v);
    }
    rd->done(rd->db);
    ef_buf sql, counts;
    ef_buf_init(&sql);
    ef_buf_init(&counts);
    int rc = 0;
    ef_buf_puts(out, "},\"tables\":{");
    for (size_t t = 0; rc == 0 && t < sq_ntables; t++) {
        size_t n = 0;
        ef_buf_printf(out, "%s\"%s\":", t ? "," : "", sq_tables[t].name);
        rc = dump_table(rd, &sq_tables[t], &sql, out, &n, err);
        ef_buf_printf(&counts, "%s\"%s\":%zu", t ? "," : "", sq_tables[t].name, n);
    }
    if (rc == 0) {
        ef_buf_puts(out, "},\"counts\":{");
        ef_buf_append(out, counts.data, counts.len);
        ef_buf_puts(out, "}}");
        if (!ef_buf_ok(out) || !ef_buf_ok(&counts)) rc = ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    }
    ef_buf_free(&sql);
    ef_buf_free(&counts);
    return rc;
}
