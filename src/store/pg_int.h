/*
 * pg_int.h - internals of the PostgreSQL adapter (pg.c, pg_schema.c; never included elsewhere):
 * its schema steps (column kinds and conversions are rdb.h's).
 */
#ifndef EF_STORE_PG_INT_H
#define EF_STORE_PG_INT_H

#include "store/sqlite_int.h"

/* The DDL of PostgreSQL schema step v (1..SQ_SCHEMA_VERSION), several statements; NULL past it. */
const char *pg_migration_sql(int v);

#endif
