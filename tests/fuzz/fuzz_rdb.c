/*
 * fuzz_rdb.c - libFuzzer target: what the PostgreSQL and MariaDB adapters do with bytes a server
 * returns (src/store/rdb.c): every cell typed as each column kind, and a cell that is accepted must
 * produce JSON the change-log reader parses; the dump writer both adapters share
 * (rdb_dump_write) reading whole result sets from the input, whose dump, when it succeeds, must be
 * JSON; plus the database-URL redaction of logs (open.c). A database is not trusted: this must
 * never crash, read out of bounds or hit undefined behaviour.
 *
 * Result sets in the input: results are separated by 0x1d, rows by 0x1e, cells by 0x1f; a cell
 * that is the single byte 0x18 is SQL NULL, a missing cell too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/open.h"
#include "store/rdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A server made of the input: each query returns the next result set. */
typedef struct fake_db {
    const char *p, *end; /* what the remaining results are read from */
    const char *res, *res_end; /* the current result's rows */
    bool open;
} fake_db;

static int fake_query(void *db, const char *sql, ef_store_err *err)
{
    fake_db *f = db;
    if (!sql[0]) abort(); /* the writer never sends an empty query */
    if (f->open) abort(); /* nor one before freeing the last result */
    if (f->p >= f->end) return ef_store_fail(err, EF_STORE_UNAVAILABLE, "fake: no more results");
    const char *e = memchr(f->p, 0x1d, (size_t)(f->end - f->p));
    f->res = f->p;
    f->res_end = e ? e : f->end;
    f->p = e ? e + 1 : f->end;
    f->open = true;
    return 0;
}

static bool fake_row(void *db, int n, const char **cells, size_t *lens)
{
    fake_db *f = db;
    if (!f->open) abort();
    if (f->res >= f->res_end) return false;
    const char *e = memchr(f->res, 0x1e, (size_t)(f->res_end - f->res));
    const char *row_end = e ? e : f->res_end;
    const char *c = f->res;
    for (int i = 0; i < n; i++) {
        if (c > row_end) {
            cells[i] = NULL, lens[i] = 0;
            continue;
        }
        const char *ce = memchr(c, 0x1f, (size_t)(row_end - c));
        if (!ce) ce = row_end;
        bool null = ce - c == 1 && *c == 0x18;
        cells[i] = null ? NULL : c;
        lens[i] = null ? 0 : (size_t)(ce - c);
        c = ce + 1;
    }
    f->res = e ? e + 1 : f->res_end;
    return true;
}

static void fake_done(void *db)
{
    ((fake_db *)db)->open = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_buf out;
    ef_buf_init(&out);
    const char *v = (const char *)data;
    for (int k = RDB_TEXT; k <= RDB_JSON; k++) {
        ef_buf_clear(&out);
        if (rdb_cell_json(&out, v, size, (rdb_kind)k) == 0 && ef_buf_ok(&out)) {
            ef_json_error je;
            if (!ef_json_parse(out.data, out.len, &a, NULL, &je)) abort(); /* accepted: valid JSON */
        }
    }
    ef_buf_clear(&out);
    (void)rdb_cell_json(&out, NULL, 0, RDB_INT);
    /* the same bytes as a change-log value, bound as a parameter of every kind */
    ef_buf_clear(&out);
    ef_json_put_str(&out, (ef_bytes){v, size});
    ef_json_error je;
    const ef_json *j = ef_buf_ok(&out) ? ef_json_parse(out.data, out.len, &a, NULL, &je) : NULL;
    for (int k = RDB_TEXT; j && k <= RDB_JSON; k++) {
        const char *p;
        size_t n;
        (void)rdb_param(j, (rdb_kind)k, k % 2, &a, &p, &n);
    }
    /* the whole dump, read from result sets in the input */
    fake_db f = {.p = v, .end = v + size};
    rdb_reader rd = {.engine = "fake", .where = "fuzz", .quote = '"', .max_counter = (int64_t)1 << 53,
                     .db = &f, .query = fake_query, .row = fake_row, .done = fake_done};
    ef_store_err serr;
    ef_buf_clear(&out);
    if (rdb_dump_write(&rd, &out, &serr) == 0 && ef_buf_ok(&out) &&
        !ef_json_parse(out.data, out.len, &a, NULL, &je))
        abort(); /* a dump written is JSON */
    if (f.open) abort(); /* every result freed, on success and on failure */
    char *url = malloc(size + 1);
    if (url) {
        memcpy(url, data, size);
        url[size] = '\0';
        char shown[256];
        (void)ef_store_url_redact(url, shown, sizeof(shown));
        (void)ef_store_url_redact(url, shown, 1);
        free(url);
    }
    ef_buf_free(&out);
    ef_arena_free(&a);
    return 0;
}
