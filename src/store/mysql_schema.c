/*
 * mysql_schema.c - the MySQL/MariaDB schema of the remote store (docs/storage.md, "MySQL and
 * MariaDB"): the SQLite store's tables (sq_tables) with MariaDB types, one step per SQLite schema
 * version (rdb.c's column kinds follow these types).
 *
 * Types: keys and ids VARCHAR(1000) ASCII with the binary collation (bytewise, as SQLite's BINARY:
 * the same order and uniqueness on every backend; keys are ASCII by validation); other text
 * LONGTEXT utf8mb4_bin; booleans BOOLEAN (TINYINT(1)); attachments and metadata JSON (kept as
 * written); timestamps BIGINT Unix nanoseconds (DATETIME(6) holds microseconds). No foreign keys:
 * InnoDB checks them at once and cannot defer them, while a change-log entry applies in its own
 * order with every cascaded change listed; the cache's SQLite schema enforces them. A released
 * step must never be edited: later changes are new steps.
 */
#include <string.h>

#include "store/mysql_int.h"

#define K "VARCHAR(1000) CHARACTER SET ascii COLLATE ascii_bin"
#define T "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
#define TS "`created_at` BIGINT NOT NULL, `updated_at` BIGINT NOT NULL"
#define ENGINE " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

static const char *const step1[] = {
    "CREATE TABLE IF NOT EXISTS namespaces(`key` " K " PRIMARY KEY, `name` " T " NOT NULL,"
    " `description` " T " NOT NULL DEFAULT '', `protected` BOOLEAN NOT NULL DEFAULT 0, " TS ")" ENGINE,
    "CREATE TABLE IF NOT EXISTS flags(`namespace_key` " K " NOT NULL, `key` " K " NOT NULL,"
    " `name` " T " NOT NULL, `description` " T " NOT NULL DEFAULT '',"
    " `enabled` BOOLEAN NOT NULL DEFAULT 0, `type` INTEGER NOT NULL DEFAULT 0,"
    " `default_variant_id` " K ", `metadata` JSON, " TS ", PRIMARY KEY(`namespace_key`, `key`),"
    " INDEX flags_created(`namespace_key`, `created_at`))" ENGINE,
    "CREATE TABLE IF NOT EXISTS variants(`id` " K " PRIMARY KEY, `namespace_key` " K " NOT NULL,"
    " `flag_key` " K " NOT NULL, `key` " K " NOT NULL, `name` " T " NOT NULL DEFAULT '',"
    " `description` " T " NOT NULL DEFAULT '', `attachment` JSON, " TS ","
    " UNIQUE(`namespace_key`, `flag_key`, `key`))" ENGINE,
    "CREATE TABLE IF NOT EXISTS segments(`namespace_key` " K " NOT NULL, `key` " K " NOT NULL,"
    " `name` " T " NOT NULL, `description` " T " NOT NULL DEFAULT '',"
    " `match_type` INTEGER NOT NULL DEFAULT 0, " TS ", PRIMARY KEY(`namespace_key`, `key`))" ENGINE,
    "CREATE TABLE IF NOT EXISTS constraints(`id` " K " PRIMARY KEY, `namespace_key` " K " NOT NULL,"
    " `segment_key` " K " NOT NULL, `type` INTEGER NOT NULL, `property` " T " NOT NULL,"
    " `operator` " T " NOT NULL, `value` " T " NOT NULL DEFAULT '',"
    " `description` " T " NOT NULL DEFAULT '', " TS ","
    " INDEX constraints_segment(`namespace_key`, `segment_key`))" ENGINE,
    "CREATE TABLE IF NOT EXISTS rules(`id` " K " PRIMARY KEY, `namespace_key` " K " NOT NULL,"
    " `flag_key` " K " NOT NULL, `rank` INTEGER NOT NULL,"
    " `segment_operator` INTEGER NOT NULL DEFAULT 0, " TS ","
    " INDEX rules_flag(`namespace_key`, `flag_key`))" ENGINE,
    "CREATE TABLE IF NOT EXISTS rule_segments(`rule_id` " K " NOT NULL,"
    " `namespace_key` " K " NOT NULL, `segment_key` " K " NOT NULL, `position` INTEGER NOT NULL,"
    " PRIMARY KEY(`rule_id`, `segment_key`))" ENGINE,
    "CREATE TABLE IF NOT EXISTS distributions(`id` " K " PRIMARY KEY, `rule_id` " K " NOT NULL,"
    " `variant_id` " K " NOT NULL, `rollout` DOUBLE NOT NULL DEFAULT 0, " TS ")" ENGINE,
    "CREATE TABLE IF NOT EXISTS rollouts(`id` " K " PRIMARY KEY, `namespace_key` " K " NOT NULL,"
    " `flag_key` " K " NOT NULL, `type` INTEGER NOT NULL, `rank` INTEGER NOT NULL,"
    " `description` " T " NOT NULL DEFAULT '', `percentage` DOUBLE NOT NULL DEFAULT 0,"
    " `value` BOOLEAN NOT NULL DEFAULT 0, `segment_operator` INTEGER NOT NULL DEFAULT 0, " TS ","
    " INDEX rollouts_flag(`namespace_key`, `flag_key`))" ENGINE,
    "CREATE TABLE IF NOT EXISTS rollout_segments(`rollout_id` " K " NOT NULL,"
    " `namespace_key` " K " NOT NULL, `segment_key` " K " NOT NULL, `position` INTEGER NOT NULL,"
    " PRIMARY KEY(`rollout_id`, `segment_key`))" ENGINE,
    "CREATE TABLE IF NOT EXISTS ef_state(`id` INTEGER PRIMARY KEY, `seq` BIGINT NOT NULL,"
    " `trimmed` BIGINT NOT NULL, CHECK (`id` = 1))" ENGINE,
    "INSERT IGNORE INTO ef_state VALUES (1, 0, 0)",
    "CREATE TABLE IF NOT EXISTS ns_versions(`namespace_key` " K " PRIMARY KEY,"
    " `version` BIGINT NOT NULL)" ENGINE,
    "CREATE TABLE IF NOT EXISTS changelog(`seq` BIGINT PRIMARY KEY, `time_ns` BIGINT NOT NULL,"
    " `entry` " T " NOT NULL, INDEX changelog_time(`time_ns`))" ENGINE,
    NULL};

static const char *const step2[] = {
    "CREATE TABLE IF NOT EXISTS tokens(`id` " K " PRIMARY KEY, `hashed_token` " K " NOT NULL UNIQUE,"
    " `name` " T " NOT NULL, `description` " T " NOT NULL, `namespace_key` " K ", `metadata` JSON,"
    " `expires_at` BIGINT, " TS ")" ENGINE,
    NULL};

static const char *const step3[] = {
    "CREATE TABLE IF NOT EXISTS ef_identity(`id` INTEGER PRIMARY KEY, `db_id` " K " NOT NULL,"
    " `history` " K " NOT NULL, `history_since` BIGINT NOT NULL, CHECK (`id` = 1))" ENGINE,
    "INSERT IGNORE INTO ef_identity VALUES (1, LOWER(HEX(RANDOM_BYTES(16))),"
    " LOWER(HEX(RANDOM_BYTES(16))), 0)",
    NULL};

/* SQLite's step 4 changes only the cache's ef_pending and triggers: the version is recorded */
static const char *const step4[] = {NULL};

/* SQLite's step 5 adds indexes for the cache's per-flag reads: the version is recorded */
static const char *const step5[] = {NULL};

/* SQLite's step 6 drops three of step 5's cache indexes: the version is recorded */
static const char *const step6[] = {NULL};

static const char *const *const steps[] = {step1, step2, step3, step4, step5, step6};
_Static_assert(sizeof(steps) / sizeof(steps[0]) == SQ_SCHEMA_VERSION,
               "a SQLite schema step without its MySQL step");

const char *const *my_migration_sql(int v)
{
    return v >= 1 && v <= SQ_SCHEMA_VERSION ? steps[v - 1] : NULL;
}

bool my_is_key(const char *col)
{
    size_t n = strlen(col);
    return !strcmp(col, "key") || !strcmp(col, "id") || !strcmp(col, "hashed_token") ||
           (n > 4 && !strcmp(col + n - 4, "_key")) || (n > 3 && !strcmp(col + n - 3, "_id"));
}
