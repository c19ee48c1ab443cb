/*
 * rdb.h - what the SQL-database adapters of the remote store (pg.c, mysql.c) share: how each
 * change-log column is typed on a server database, and the exact conversions between the change
 * log's JSON values and the text those servers take as parameters and return as cells.
 *
 * Never included outside src/store/. Nothing here talks to a server or builds SQL from values.
 */
#ifndef EF_STORE_RDB_H
#define EF_STORE_RDB_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"

/* How a change-log column is stored remotely, so values convert both ways exactly. */
typedef enum rdb_kind {
    RDB_TEXT, /* text with a bytewise collation */
    RDB_INT,  /* integers (timestamps: Unix ns) */
    RDB_REAL, /* double precision */
    RDB_BOOL, /* BOOLEAN (PostgreSQL: t/f) or TINYINT(1) (MariaDB: 0/1); 0/1 in the change log */
    RDB_JSON, /* JSON text kept as written; a string in the change log */
} rdb_kind;

rdb_kind rdb_col_kind(const char *table, const char *col);

/* A change-log value as a NUL-terminated text parameter of a column of kind k, in the arena
 * (*out NULL: SQL NULL; *len its length, a string may hold NUL bytes). Returns 0, -1 when the
 * value is not a scalar or memory ran out, -2 when a string holds a NUL byte and nul_ok is false. */
int rdb_param(const ef_json *v, rdb_kind k, bool nul_ok, ef_arena *a, const char **out,
              size_t *len);

/* A server's text cell (v NULL: SQL NULL) as the change log's JSON: 0/1 booleans, integers,
 * finite numbers, strings. Returns -1 when the text is not a value of its kind. */
int rdb_cell_json(ef_buf *b, const char *v, size_t n, rdb_kind k);

#endif
