/*
 * pg_schema.c - the PostgreSQL schema of the remote store (docs/storage.md, "PostgreSQL and
 * MariaDB"): the SQLite store's tables (sq_tables) with PostgreSQL types, one step per SQLite
 * schema version so both histories stay in step (rdb.c's column kinds follow these types).
 *
 * Types: keys and other text are TEXT COLLATE "C" (bytewise, as SQLite's BINARY: the same order
 * and the same uniqueness on every backend); booleans BOOLEAN; JSON attachments and metadata JSON
 * (kept as written, so exports stay byte-identical; JSONB would reorder keys); timestamps BIGINT
 * Unix nanoseconds (PostgreSQL's timestamp holds microseconds, and Flipt returns nanoseconds).
 * Foreign keys are DEFERRABLE INITIALLY DEFERRED so a change-log entry applies in its own order.
 * A released step must never be edited: later changes are new steps.
 */
#include "store/pg_int.h"

#define CT "TEXT COLLATE \"C\""
#define DEF " DEFERRABLE INITIALLY DEFERRED"

static const char PG_MIGRATION_1[] =
    "CREATE TABLE namespaces(key " CT " PRIMARY KEY, name " CT " NOT NULL,"
    " description " CT " NOT NULL DEFAULT '', protected BOOLEAN NOT NULL DEFAULT false,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE TABLE flags(namespace_key " CT " NOT NULL REFERENCES namespaces(key) ON DELETE CASCADE" DEF
    ", key " CT " NOT NULL, name " CT " NOT NULL, description " CT " NOT NULL DEFAULT '',"
    " enabled BOOLEAN NOT NULL DEFAULT false, type INTEGER NOT NULL DEFAULT 0,"
    " default_variant_id " CT ", metadata JSON,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY(namespace_key, key));"
    "CREATE INDEX flags_created ON flags(namespace_key, created_at);"
    "CREATE TABLE variants(id " CT " PRIMARY KEY, namespace_key " CT " NOT NULL,"
    " flag_key " CT " NOT NULL, key " CT " NOT NULL, name " CT " NOT NULL DEFAULT '',"
    " description " CT " NOT NULL DEFAULT '', attachment JSON, created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL, UNIQUE(namespace_key, flag_key, key),"
    " FOREIGN KEY(namespace_key, flag_key) REFERENCES flags(namespace_key, key) ON DELETE CASCADE" DEF
    ");"
    "ALTER TABLE flags ADD FOREIGN KEY(default_variant_id) REFERENCES variants(id)"
    " ON DELETE SET NULL" DEF ";"
    "CREATE TABLE segments(namespace_key " CT " NOT NULL REFERENCES namespaces(key)"
    " ON DELETE CASCADE" DEF ", key " CT " NOT NULL, name " CT " NOT NULL,"
    " description " CT " NOT NULL DEFAULT '', match_type INTEGER NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY(namespace_key, key));"
    "CREATE INDEX segments_created ON segments(namespace_key, created_at);"
    "CREATE TABLE constraints(id " CT " PRIMARY KEY, namespace_key " CT " NOT NULL,"
    " segment_key " CT " NOT NULL, type INTEGER NOT NULL, property " CT " NOT NULL,"
    " operator " CT " NOT NULL, value " CT " NOT NULL DEFAULT '',"
    " description " CT " NOT NULL DEFAULT '', created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL, FOREIGN KEY(namespace_key, segment_key)"
    " REFERENCES segments(namespace_key, key) ON DELETE CASCADE" DEF ");"
    "CREATE INDEX constraints_segment ON constraints(namespace_key, segment_key, created_at);"
    "CREATE TABLE rules(id " CT " PRIMARY KEY, namespace_key " CT " NOT NULL,"
    " flag_key " CT " NOT NULL, rank INTEGER NOT NULL, segment_operator INTEGER NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " FOREIGN KEY(namespace_key, flag_key) REFERENCES flags(namespace_key, key)"
    " ON DELETE CASCADE" DEF ");"
    "CREATE INDEX rules_flag ON rules(namespace_key, flag_key, rank);"
    /* SQLite's RESTRICT is checked at once; PostgreSQL cannot defer RESTRICT, so NO ACTION
     * (checked at COMMIT): the cache already refused deleting a segment in use */
    "CREATE TABLE rule_segments(rule_id " CT " NOT NULL REFERENCES rules(id) ON DELETE CASCADE" DEF
    ", namespace_key " CT " NOT NULL, segment_key " CT " NOT NULL, position INTEGER NOT NULL,"
    " PRIMARY KEY(rule_id, segment_key), FOREIGN KEY(namespace_key, segment_key)"
    " REFERENCES segments(namespace_key, key) ON DELETE NO ACTION" DEF ");"
    "CREATE INDEX rule_segments_segment ON rule_segments(namespace_key, segment_key);"
    "CREATE TABLE distributions(id " CT " PRIMARY KEY,"
    " rule_id " CT " NOT NULL REFERENCES rules(id) ON DELETE CASCADE" DEF ","
    " variant_id " CT " NOT NULL REFERENCES variants(id) ON DELETE CASCADE" DEF ","
    " rollout DOUBLE PRECISION NOT NULL DEFAULT 0, created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL);"
    "CREATE INDEX distributions_rule ON distributions(rule_id, created_at);"
    "CREATE INDEX distributions_variant ON distributions(variant_id);"
    "CREATE TABLE rollouts(id " CT " PRIMARY KEY, namespace_key " CT " NOT NULL,"
    " flag_key " CT " NOT NULL, type INTEGER NOT NULL, rank INTEGER NOT NULL,"
    " description " CT " NOT NULL DEFAULT '', percentage DOUBLE PRECISION NOT NULL DEFAULT 0,"
    " value BOOLEAN NOT NULL DEFAULT false, segment_operator INTEGER NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " FOREIGN KEY(namespace_key, flag_key) REFERENCES flags(namespace_key, key)"
    " ON DELETE CASCADE" DEF ");"
    "CREATE INDEX rollouts_flag ON rollouts(namespace_key, flag_key, rank);"
    "CREATE TABLE rollout_segments(rollout_id " CT " NOT NULL REFERENCES rollouts(id)"
    " ON DELETE CASCADE" DEF ", namespace_key " CT " NOT NULL, segment_key " CT " NOT NULL,"
    " position INTEGER NOT NULL, PRIMARY KEY(rollout_id, segment_key),"
    " FOREIGN KEY(namespace_key, segment_key) REFERENCES segments(namespace_key, key)"
    " ON DELETE NO ACTION" DEF ");"
    "CREATE INDEX rollout_segments_segment ON rollout_segments(namespace_key, segment_key);"
    "CREATE TABLE ef_state(id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL,"
    " trimmed BIGINT NOT NULL);"
    "INSERT INTO ef_state VALUES (1, 0, 0);"
    "CREATE TABLE ns_versions(namespace_key " CT " PRIMARY KEY, version BIGINT NOT NULL);"
    "CREATE TABLE changelog(seq BIGINT PRIMARY KEY, time_ns BIGINT NOT NULL, entry TEXT NOT NULL);"
    "CREATE INDEX changelog_time ON changelog(time_ns);";

static const char PG_MIGRATION_2[] =
    "CREATE TABLE tokens(id " CT " PRIMARY KEY, hashed_token " CT " NOT NULL UNIQUE,"
    " name " CT " NOT NULL, description " CT " NOT NULL, namespace_key " CT ", metadata JSON,"
    " expires_at BIGINT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);";

static const char PG_MIGRATION_3[] =
    "CREATE TABLE ef_identity(id INTEGER PRIMARY KEY CHECK (id = 1), db_id " CT " NOT NULL,"
    " history " CT " NOT NULL, history_since BIGINT NOT NULL);"
    "INSERT INTO ef_identity VALUES (1, replace(gen_random_uuid()::text, '-', ''),"
    " replace(gen_random_uuid()::text, '-', ''), 0);";

/* SQLite's step 4 adds the old rows to ef_pending and recreates the capture triggers: both live in
 * the cache only (the change-log entry carries the old rows as text), so PostgreSQL only records
 * the version. */
static const char PG_MIGRATION_4[] = "SELECT 1";

/* SQLite's step 5 adds indexes for the cache's per-flag reads; PostgreSQL's database of record is
 * read by sequence (the cache compiles), so it only records the version. */
static const char PG_MIGRATION_5[] = "SELECT 1";

/* SQLite's step 6 drops three of step 5's cache indexes: the version is recorded */
static const char PG_MIGRATION_6[] = "SELECT 1";

static const char *const pg_steps[] = {PG_MIGRATION_1, PG_MIGRATION_2, PG_MIGRATION_3,
                                       PG_MIGRATION_4, PG_MIGRATION_5, PG_MIGRATION_6};
/* every SQLite schema version has its PostgreSQL step */
_Static_assert(sizeof(pg_steps) / sizeof(pg_steps[0]) == SQ_SCHEMA_VERSION,
               "a SQLite schema step without its PostgreSQL step");

const char *pg_migration_sql(int v)
{
    return v >= 1 && v <= SQ_SCHEMA_VERSION ? pg_steps[v - 1] : NULL;
}
