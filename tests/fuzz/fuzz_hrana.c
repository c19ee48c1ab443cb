/*
 * fuzz_hrana.c - libFuzzer target: the Hrana client's reading of a server's pipeline answer
 * (src/store/hrana.c), as the libSQL store reads it: the answer parsed for 1-3 requests, every
 * result and batch step looked up, every row walked and every cell decoded and typed as each
 * kind of column, plus the base_url check. A server is not trusted: this must never crash, leak,
 * read out of bounds or hit undefined behaviour on any answer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/hrana.h"

static const char *const decltypes[] = {"INTEGER", "BOOLEAN", "DATETIME", "REAL", "TEXT", ""};

static void walk_stmt(const ef_json *sr, ef_arena *a)
{
    ef_bytes dt[8];
    size_t ncols = ef_hrana_decltypes(sr, dt, 8);
    (void)ef_hrana_nrows(sr);
    (void)ef_hrana_cell(sr, 0, 0);
    (void)ef_hrana_cell(sr, 1, 2);
    (void)ef_hrana_decltype(sr, 3);
    ef_buf out;
    ef_buf_init(&out);
    size_t rows = 0;
    for (const ef_json *row = ef_hrana_first_row(sr); row && rows < 256; row = row->next, rows++) {
        size_t c = 0;
        for (const ef_json *cell = ef_hrana_first_cell(row); cell && c < 64; cell = cell->next, c++) {
            ef_hrana_value v;
            (void)ef_hrana_value_get(cell, a, &v);
            ef_buf_clear(&out);
            (void)ef_hrana_cell_json(&out, cell, c < ncols ? dt[c] : (ef_bytes){"", 0}, a);
            for (size_t k = 0; k < sizeof(decltypes) / sizeof(decltypes[0]); k++) {
                ef_buf_clear(&out);
                (void)ef_hrana_cell_json(&out, cell, ef_bytes_of(decltypes[k]), a);
            }
        }
    }
    ef_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    const ef_json *root = NULL, *results = NULL;
    ef_store_err err;
    int nreq = 0;
    for (int n = 1; n <= 3 && !results; n++)
        if (ef_hrana_parse_answer((const char *)data, size, n, &a, &root, &results, &err) == 0)
            nreq = n;
    for (int i = 0; results && i < nreq; i++) {
        const ef_json *res;
        if (ef_hrana_result(results, i, &res, &err)) continue;
        walk_stmt(res, &a);
        const ef_json *steps = ef_json_get(res, "step_results");
        size_t nsteps = steps && steps->type == EF_JSON_ARRAY ? steps->len : 0;
        for (size_t s = 0; s < nsteps + 1 && s < 64; s++) {
            const ef_json *sr;
            char code[32];
            if (ef_hrana_step_result(res, (int)s, &sr, code, sizeof(code), &err) == 0)
                walk_stmt(sr, &a);
        }
    }
    if (root) {
        const ef_json *bu = ef_json_get(root, "base_url");
        if (bu && bu->type == EF_JSON_STRING) {
            (void)ef_hrana_same_origin("http://127.0.0.1:8080", bu->str);
            (void)ef_hrana_same_origin("https://db.example.com/dev/x", bu->str);
        }
    }
    ef_arena_free(&a);
    return 0;
}
