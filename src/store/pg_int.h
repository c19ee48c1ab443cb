/*
 * pg_int.h - internals of the PostgreSQL adapter (pg.c, pg_schema.c; never included elsewhere):
 * its schema steps and the type of each change-log column on PostgreSQL.
 */
#ifndef EF_STORE_PG_INT_H
#define EF_STORE_PG_INT_H

#include "store/sqlite_int.h"

/* How a change-log column is stored remotely, so values convert both ways exactly. */
typedef enum pg_kind {
    PG_TEXT, /* TEXT COLLATE "C" */
    PG_INT,  /* INTEGER/BIGINT (timestamps: Unix ns) */
    PG_REAL, /* DOUBLE PRECISION */
    PG_BOOL, /* BOOLEAN; 0/1 in the change log */
    PG_JSON, /* JSON text kept as written; a string in the change log */
} pg_kind;

pg_kind pg_col_kind(const char *table, const char *col);
/* The DDL of PostgreSQL schema step v (1..SQ_SCHEMA_VERSION), several statements; NULL past it. */
const char *pg_migration_sql(int v);

#endif
