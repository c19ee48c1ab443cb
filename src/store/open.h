/*
 * open.h - opening a store from what the user typed after --db: a path or a `file:` URL is the
 * embedded SQLite store; further schemes (libsql://, http(s):// for libSQL/Turso, postgres(ql)://
 * and cockroach:// for PostgreSQL, mysql:// for MariaDB/MySQL) are dispatched
 * here to their backends, so commands never name a backend.
 */
#ifndef EF_STORE_OPEN_H
#define EF_STORE_OPEN_H

#include "store/store.h"

typedef struct ef_store_open_opts {
    ef_registry *registry;    /* where compiled namespaces are published (NULL: none) */
    const char *token;        /* credentials for remote stores (--db-token), or NULL */
    uint64_t log_keep_entries; /* change-log retention (0: keep everything) */
    int64_t log_max_age_ns;
    /* Remote databases (libSQL/Turso, PostgreSQL, MariaDB): the local SQLite cache file (NULL: a file under
     * ./data/ named after the server), how often to look for other nodes' writes (0: 1000 ms),
     * and the timeout of every request to the server (0: 5000 ms). */
    const char *cache_path;
    unsigned poll_ms;
    unsigned timeout_ms;
    unsigned dump_page_rows; /* libSQL: rows per table per dump request (0: 500; tests lower it) */
    size_t max_answer;       /* libSQL: the largest answer read (0: 64 MiB; tests lower it) */
    bool reader; /* only reads (export): a SQLite file served by another process may be opened */
    /* SQLite: batched durability for a replica's store, that it follows an upstream, the boot id
     * and the "may have lost" answer (ef_sqlite_opts says what they mean). */
    unsigned sync_ms;
    bool follower;
    const char *boot_id;
    bool *may_have_lost;
    const char *ca_file; /* libSQL over https: PEM CA certificates to verify it by (NULL: the system's) */
} ef_store_open_opts;

/* The libSQL/Turso backend (src/store/libsql.c, docs/libsql.md): a local SQLite cache written
 * through to a remote libSQL database over Hrana/HTTP. */
ef_store *ef_libsql_open(const char *url, const ef_store_open_opts *opts, ef_store_err *err);

/* The PostgreSQL backend (src/store/pg.c, docs/storage.md): the same local cache written through
 * to a PostgreSQL database with libpq; postgres://, postgresql:// and cockroach:// URLs. */
ef_store *ef_pg_open(const char *url, const ef_store_open_opts *opts, ef_store_err *err);

/* The MySQL/MariaDB backend (src/store/mysql.c, docs/storage.md): the same local cache written
 * through to a MariaDB or MySQL database with libmariadb; mysql://USER[:PASS]@HOST[:PORT]/DB. */
ef_store *ef_mysql_open(const char *url, const ef_store_open_opts *opts, ef_store_err *err);

/* url with its secrets replaced by "***" (the password of scheme://user:password@host, the value
 * of an authToken or password parameter), for logs and messages; into out (always terminated). */
const char *ef_store_url_redact(const char *url, char *out, size_t n);

/* PostgreSQL: the TLS settings edgeflag adds when neither the URL nor PGSSLMODE names any, so that
 * a database on another host is verified like every other outbound connection: sslmode=verify-full
 * (certificate chain and host name) with the system's CA bundle as sslrootcert (unless the URL or
 * PGSSLROOTCERT gives one). Nothing for unix sockets and loopback hosts. Fills keys/vals and
 * returns how many pairs (0 to 2); the URL still wins over them. */
int ef_pg_tls_defaults(const char *url, const char *keys[2], const char *vals[2]);

/* Returns NULL with *err filled when the URL names no known backend or the store cannot open. */
ef_store *ef_store_open(const char *url, const ef_store_open_opts *opts, ef_store_err *err);

#endif
