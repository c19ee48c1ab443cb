/*
 * mysql_int.h - internals of the MySQL/MariaDB adapter (mysql.c, mysql_schema.c; never included
 * elsewhere): its schema steps and the limits its key columns have.
 */
#ifndef EF_STORE_MYSQL_INT_H
#define EF_STORE_MYSQL_INT_H

#include <stdbool.h>

#include "store/sqlite_int.h"

/* Keys and ids are VARCHAR(MY_KEY_MAX) ASCII: InnoDB indexes at most 3072 bytes, and a unique
 * index spans three keys (variants: namespace, flag, key). Longer values are refused with 400. */
#define MY_KEY_MAX 1000

/* The statements of schema step v (1..SQ_SCHEMA_VERSION), NULL-terminated; NULL past it. Each
 * can run again after a crash mid-step (DDL commits implicitly in MariaDB). */
const char *const *my_migration_sql(int v);
/* Whether a column holds a key or an id (VARCHAR(MY_KEY_MAX) ASCII, bytewise). */
bool my_is_key(const char *col);

#endif
