/*
 * remote.h - the remote-store core: edgeflag's SQLite store used as a local, write-through cache of
 * a database of record that other edgeflag nodes share (libSQL/Turso over Hrana, PostgreSQL over
 * libpq). The core owns everything that does not depend on the database: the cache, the guarded
 * write (the SQLite commit hook hands each change-log entry to the adapter before the local
 * COMMIT), retrying a write that lost the race, pulling other nodes' entries (or a dump) into the
 * cache, the pick-up thread and the behaviour while the database is down. An adapter (one small
 * file per database) only speaks its database: migrations, one page of the change log, a full
 * dump, one guarded commit, and optionally a wait that returns early when the database says
 * something changed (PostgreSQL's LISTEN/NOTIFY).
 *
 * The core must never acknowledge a write the adapter did not report committed, and never let a
 * feed or a dump write into the cache (the database of record is its only source).
 */
#ifndef EF_STORE_REMOTE_H
#define EF_STORE_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"
#include "store/open.h"
#include "store/store.h"

/* fetch's answer would pass the adapter's size cap: nothing was taken, ask for fewer entries */
#define EF_REMOTE_TOO_LARGE (-2)

/* One page of the remote change log: the remote's seq and trimmed position, and the entries after
 * the asked position (in the caller's arena, in seq order). */
typedef struct ef_remote_page {
    uint64_t seq, trimmed;
    size_t n;
    ef_bytes *entries;
} ef_remote_page;

/* A write on its way to the database: the local seq it gets and its change-log entry, parsed. */
typedef struct ef_remote_write {
    uint64_t seq;
    ef_bytes entry;
    const ef_json *changes;    /* [{table, op, pk, row}] */
    const ef_json *namespaces; /* [{key, version}] */
    const ef_json *time;       /* commit time, Unix ns */
    uint64_t log_keep;         /* trim the remote log to this many entries (0: keep all) */
} ef_remote_write;

typedef struct ef_remote_ops {
    /* Brings the remote schema to the cache's version (SQ_SCHEMA_VERSION), guarded so nodes
     * starting together run each step once; refuses a newer remote schema ("... newer ..."). */
    int (*migrate)(void *ad, ef_store_err *err);
    /* The remote seq and trimmed position and up to limit entries after `after`. May return
     * EF_REMOTE_TOO_LARGE. */
    int (*fetch)(void *ad, uint64_t after, int64_t limit, ef_arena *a, ef_remote_page *out,
                 ef_store_err *err);
    /* A consistent full dump in the format ef_store_load_dump reads (with counts). */
    int (*dump)(void *ad, ef_buf *out, ef_store_err *err);
    /* In one remote transaction: fail unless the remote seq is w->seq - 1 (then *conflict), apply
     * the changes, namespace versions, the log entry and the seq, trim, commit. 0 only when the
     * database committed. */
    int (*commit)(void *ad, const ef_remote_write *w, bool *conflict, ef_store_err *err);
    /* Waits up to ms for a sign that other nodes wrote, or until wake_fd is readable (closing).
     * NULL: the core sleeps the poll interval. */
    void (*wait)(void *ad, int wake_fd, unsigned ms);
    void (*close)(void *ad);
} ef_remote_ops;

/* Opens the core over an adapter (which it owns from here on, closed on failure too).
 * kind names the database in messages ("libsql", "postgres"); where names the server without
 * credentials; default_cache is the cache file used when o->cache_path is empty. */
ef_store *ef_remote_open(const char *kind, const char *where, const char *default_cache,
                         const ef_remote_ops *ops, void *ad, const ef_store_open_opts *o,
                         ef_store_err *err);

/* ./data/<kind>-<text with anything unusual as '_'>.db (malloc'd; NULL when out of memory). */
char *ef_remote_default_cache(const char *kind, const char *text);

/* Splits a migration script into statements: at ';' outside quotes, except inside a CREATE
 * TRIGGER body (up to "END;") or inside a $$-quoted body. Copies into the arena. */
size_t ef_remote_split_sql(const char *sql, ef_arena *a, char **out, size_t max);

#endif
