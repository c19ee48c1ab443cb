/*
 * fuzz_rdb.c - libFuzzer target: what the PostgreSQL and MariaDB adapters do with bytes a server
 * returns (src/store/rdb.c): every cell typed as each column kind, and a cell that is accepted must
 * produce JSON the change-log reader parses; plus the database-URL redaction of logs (open.c). A
 * database is not trusted: this must never crash, read out of bounds or hit undefined behaviour.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/open.h"
#include "store/rdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
