/*
 * rdb.h - what the SQL-database adapters of the remote store (pg.c, mysql.c) share: how each
 * change-log column is typed on a server database, and the exact conversions between the change
 * log's JSON values and the text those servers take as parameters and return as cells.
 *
 * It also holds the one dump writer both adapters use: it reads through a small reader the adapter
 * gives it, so PostgreSQL and MariaDB dumps cannot drift apart.
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
#include "store/store.h"

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

/* How the dump writer reads a server through its adapter. `query` runs one SELECT whose result
 * becomes the current one (0, or -1 with err filled); `row` gives the current result's next row
 * as its first n text cells (NULL: SQL NULL) and their lengths, false after the last row; `done`
 * frees the current result (also when `row` was not read to the end). */
typedef struct rdb_reader {
    const char *engine; /* "postgres", "mysql": how the reader's messages start */
    const char *where;  /* the database, as messages name it */
    char quote;         /* the server's identifier quote: '"' or '`' */
    int64_t max_counter; /* the largest seq or version the adapter can hold exactly */
    void *db;
    int (*query)(void *db, const char *sql, ef_store_err *err);
    bool (*row)(void *db, int n, const char **cells, size_t *lens);
    void (*done)(void *db);
} rdb_reader;

/* Writes the store's dump (docs/storage.md: seq, namespace versions, every table's rows in
 * primary-key order, their counts) as read through rd, inside the read-only transaction the
 * caller opened and commits. Returns 0, or -1 with err filled (the caller rolls back). A cell
 * that is not a value of its column's kind is refused, naming the table and column. */
int rdb_dump_write(const rdb_reader *rd, ef_buf *out, ef_store_err *err);

#endif
