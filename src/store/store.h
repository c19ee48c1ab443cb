/*
 * store.h - the flag store interface: Flipt's management operations, the change log that
 * replication follows, and the compilation of namespaces into published snapshots.
 *
 * A backend (SQLite today; PostgreSQL or libSQL over HTTP later) fills an ef_store_ops table and
 * hands out an ef_store; everything above the store (api/, sync/, cli/) calls the ef_store_*
 * wrappers below and never sees SQL. Every write is one durable transaction that bumps the
 * namespace version and the store sequence and appends one change-log entry; it returns only after
 * the commit (DESIGN.md principles 3 and 4).
 *
 * Results are allocated in the caller's arena (one owner: the caller frees the arena). Errors are a
 * code the HTTP layer maps to Flipt's status plus Flipt's message text. This header must never
 * expose a backend type (no sqlite3 here) and its wrappers must never do more than dispatch.
 */
#ifndef EF_STORE_STORE_H
#define EF_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/bytes.h"
#include "eval/registry.h"
#include "store/doc.h"

/* Error codes and the HTTP status the API layer answers with (reference/flipt-v1.md 4.1). */
typedef enum ef_store_code {
    EF_STORE_OK = 0,
    EF_STORE_INVALID,      /* 400, gRPC InvalidArgument: "invalid field key: must not be empty" */
    EF_STORE_NOT_FOUND,    /* 404, gRPC NotFound: `flag "default/foo" not found` */
    EF_STORE_NOT_UNIQUE,   /* 400 like Flipt's SQL store: `flag "default/foo" is not unique` */
    EF_STORE_READ_ONLY,    /* 500 Internal, as Flipt answers writes to read-only storage */
    EF_STORE_UNAVAILABLE,  /* 503: database locked past busy_timeout, disk gone, store closed */
    EF_STORE_INTERNAL,     /* 500: anything unexpected (the message says what) */
    EF_STORE_TRIMMED,      /* 410-like: the change log no longer holds that position; re-dump */
    EF_STORE_OUT_OF_ORDER, /* 409: applying an entry whose seq is not local seq + 1 */
} ef_store_code;

typedef struct ef_store_err {
    ef_store_code code;
    char message[512];
} ef_store_err;

/* Fills *err (when err is not NULL) and returns -1, so backends can `return ef_store_fail(...)`. */
int ef_store_fail(ef_store_err *err, ef_store_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes in as Go's %q writes it (Flipt quotes values that way in its messages), NUL-terminated,
 * truncated to fit cap. */
void ef_store_go_quote(ef_bytes in, char *out, size_t cap);

/* Pagination as Flipt's SQL backends: limit 0 means all rows; offset is deprecated; page_token is
 * base64 of {"key":..,"offset":n} and wins over offset. */
typedef struct ef_store_page {
    int32_t limit;
    int32_t offset;
    ef_bytes page_token;
} ef_store_page;

typedef struct ef_store_page_out {
    ef_bytes next_page_token; /* empty on the last page; in the result arena */
    uint64_t total_count;     /* all rows of the listed kind in the namespace/flag */
} ef_store_page_out;

/* ---- write inputs (strings borrowed for the call only) ---- */

typedef struct ef_store_ns_in {
    ef_bytes key, name, description;
} ef_store_ns_in;

typedef struct ef_store_flag_in {
    ef_bytes key, name, description;
    bool enabled;
    ef_doc_flag_type type;       /* create only: the type never changes */
    ef_bytes metadata;           /* JSON object text; n == 0 means none */
    ef_bytes default_variant_id; /* update only: "" clears the default variant */
} ef_store_flag_in;

typedef struct ef_store_variant_in {
    ef_bytes key, name, description;
    ef_bytes attachment; /* JSON text; stored compacted; n == 0 means none */
} ef_store_variant_in;

typedef struct ef_store_segment_in {
    ef_bytes key, name, description;
    ef_doc_match_type match_type;
} ef_store_segment_in;

typedef struct ef_store_constraint_in {
    ef_doc_ctype type;
    ef_bytes property, op, value, description;
} ef_store_constraint_in;

typedef struct ef_store_rule_in {
    ef_bytes segment_key;          /* deprecated single form; exactly one of the two forms */
    const ef_bytes *segment_keys;  /* duplicates are removed */
    size_t nsegment_keys;
    ef_doc_seg_op op;              /* forced to OR with one segment */
    int32_t rank;                  /* create only, >= 1 */
} ef_store_rule_in;

typedef struct ef_store_distribution_in {
    ef_bytes variant_id;
    float rollout;
} ef_store_distribution_in;

typedef struct ef_store_rollout_in {
    int32_t rank;             /* create only, unique per flag */
    ef_bytes description;
    ef_doc_rollout_type type; /* create only */
    float percentage;         /* THRESHOLD */
    bool value;
    ef_bytes segment_key; /* SEGMENT: exactly one of the two forms */
    const ef_bytes *segment_keys;
    size_t nsegment_keys;
    ef_doc_seg_op op;
} ef_store_rollout_in;

/* ---- read results: the document model plus what the management API shows besides ---- */

typedef struct ef_store_rule {
    ef_doc_rule rule; /* segment keys in their stored order; distributions by created_at */
    int32_t rank;
} ef_store_rule;

typedef struct ef_store_rollout {
    ef_doc_rollout rollout;
    int32_t rank;
} ef_store_rollout;

/* A client token (Flipt's static-token authentication). Only its SHA-256 is ever stored. */
typedef struct ef_store_token {
    ef_bytes id;
    ef_bytes hashed;        /* base64url(SHA-256(token)), unpadded */
    ef_bytes name, description;
    ef_bytes namespace_key; /* "" = every namespace */
    ef_bytes metadata;      /* JSON object text or "" */
    int64_t expires_ns;     /* 0 = never */
    int64_t created_ns, updated_ns;
} ef_store_token;

/* Who a store is and which history its state belongs to (docs/replication.md, "Histories").
 * db_id never changes; history is replaced by the upstream's when a dump is loaded. Lower-case hex,
 * "" when the backend has none. */
#define EF_STORE_ID_MAX 64
typedef struct ef_store_identity {
    char db_id[EF_STORE_ID_MAX + 1];
    char history[EF_STORE_ID_MAX + 1];
} ef_store_identity;

/* One change-log entry, handed to ef_store_changes callbacks (valid during the call only). */
typedef struct ef_store_change {
    uint64_t seq;
    int64_t time_ns;
    ef_bytes entry; /* the JSON entry text documented in docs/storage.md */
} ef_store_change;
typedef int (*ef_store_change_fn)(void *ctx, const ef_store_change *c);

/* A fingerprint of one change-log entry (FNV-1a, 64 bits). Entries travel verbatim along a chain,
 * so two stores hold the same entry at a seq exactly when the fingerprints agree: the replication
 * handshake uses it to tell a follower that shares this history from one that diverged from it. */
static inline uint64_t ef_store_entry_hash(ef_bytes entry)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < entry.n; i++) h = (h ^ (unsigned char)entry.p[i]) * 0x100000001b3ull;
    return h;
}

/* Who made a write and what it was, recorded in the write's change-log entry (its "audit" object,
 * docs/storage.md) so it replicates with the entry, feeds the history API and audit events. Strings
 * are borrowed for the write only. The API layer derives it from the request (src/api/attribution.c);
 * the store copies it into the entry and never interprets it. */
/* The header a replica adds to a write it forwards (src/sync/forwarder.c): the names of the
 * forwarding nodes, nearest the caller first, comma-separated. The primary records it as "via"
 * below and never as identity; a longer or non-printable one than EF_FORWARDED_BY_MAX is "?". */
#define EF_FORWARDED_BY_HEADER "X-Edgeflag-Forwarded-By"
#define EF_FORWARDED_BY_MAX 256

typedef struct ef_store_attribution {
    ef_bytes method; /* "token", "jwt", "oidc", "none" */
    ef_bytes id;     /* token id, JWT/OIDC subject; "" */
    ef_bytes name;   /* token or person name; "anonymous" without authentication */
    ef_bytes email;  /* "" when unknown */
    ef_bytes ip;     /* the caller's address as the receiving node saw it */
    ef_bytes via;    /* the replicas that forwarded the write, as they said (never an identity) */
    ef_bytes type;   /* Flipt's audit type: "flag", "variant", "segment", ... */
    ef_bytes action; /* Flipt's audit action: "created", "updated", "deleted" */
    ef_bytes ns;     /* the namespace the request named ("" when none) */
    ef_bytes flag;   /* the flag the request named in its path ("" when none) */
} ef_store_attribution;

/* Attributes the calling thread's following writes (to any store) to *a, until called again
 * (NULL: unattributed, the entry then has no "audit" object). Per thread because a write runs
 * start to finish on the thread of the request that asked for it; the HTTP layer sets it before a
 * write route's handler and clears it after (cmd_serve.c). *a must outlive the writes. */
void ef_store_attribute(const ef_store_attribution *a);
const ef_store_attribution *ef_store_attribution_current(void);
/* Appends `,"audit":{...}` for the current attribution (nothing when there is none): every backend
 * writes the same object, so entries read the same whichever store made them. */
void ef_store_attribution_json(ef_buf *out);

typedef struct ef_store_import_opts {
    bool drop;          /* delete every existing flag, segment and namespace first (same tx) */
    bool skip_existing; /* leave flags/segments that already exist untouched */
} ef_store_import_opts;

typedef struct ef_store ef_store;

/* A follower store's batches (src/store/sqlite_persist.c): what it has applied, written to its
 * file and made durable, and how its batches went. All zero for a store that keeps none. */
typedef struct ef_store_batches {
    uint64_t applied_seq;  /* the last entry applied (and published) */
    uint64_t durable_seq;  /* the last entry synced to disk */
    uint64_t commits;      /* batches committed */
    uint64_t lost;         /* batches whose COMMIT failed (their entries were applied again) */
    uint64_t sync_failures; /* fdatasync calls that failed (retried) */
} ef_store_batches;

/* The backend's operations. `h` is the backend's opaque handle. ns is a namespace key; an empty
 * one means "default". Every function returns 0, or -1 with *err filled. */
typedef struct ef_store_ops {
    void (*close)(void *h);

    int (*ns_create)(void *h, const ef_store_ns_in *in, ef_arena *a, ef_doc_namespace *out,
                     ef_store_err *err);
    int (*ns_get)(void *h, ef_bytes key, ef_arena *a, ef_doc_namespace *out, ef_store_err *err);
    int (*ns_list)(void *h, const ef_store_page *p, ef_arena *a, ef_doc_namespace **out, size_t *n,
                   ef_store_page_out *po, ef_store_err *err);
    int (*ns_update)(void *h, const ef_store_ns_in *in, ef_arena *a, ef_doc_namespace *out,
                     ef_store_err *err);
    /* force: also deletes the namespace's flags and segments (Flipt's DeleteNamespace force=true);
     * a protected namespace is never deleted */
    int (*ns_delete)(void *h, ef_bytes key, bool force, ef_store_err *err);

    int (*flag_create)(void *h, ef_bytes ns, const ef_store_flag_in *in, ef_arena *a,
                       ef_doc_flag *out, ef_store_err *err);
    int (*flag_get)(void *h, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_flag *out,
                    ef_store_err *err);
    int (*flag_list)(void *h, ef_bytes ns, const ef_store_page *p, ef_arena *a, ef_doc_flag **out,
                     size_t *n, ef_store_page_out *po, ef_store_err *err);
    int (*flag_update)(void *h, ef_bytes ns, const ef_store_flag_in *in, ef_arena *a,
                       ef_doc_flag *out, ef_store_err *err);
    int (*flag_delete)(void *h, ef_bytes ns, ef_bytes key, ef_store_err *err);

    int (*variant_create)(void *h, ef_bytes ns, ef_bytes flag_key, const ef_store_variant_in *in,
                          ef_arena *a, ef_doc_variant *out, ef_store_err *err);
    int (*variant_update)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                          const ef_store_variant_in *in, ef_arena *a, ef_doc_variant *out,
                          ef_store_err *err);
    int (*variant_delete)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id, ef_store_err *err);

    int (*segment_create)(void *h, ef_bytes ns, const ef_store_segment_in *in, ef_arena *a,
                          ef_doc_segment *out, ef_store_err *err);
    int (*segment_get)(void *h, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_segment *out,
                       ef_store_err *err);
    int (*segment_list)(void *h, ef_bytes ns, const ef_store_page *p, ef_arena *a,
                        ef_doc_segment **out, size_t *n, ef_store_page_out *po, ef_store_err *err);
    int (*segment_update)(void *h, ef_bytes ns, const ef_store_segment_in *in, ef_arena *a,
                          ef_doc_segment *out, ef_store_err *err);
    int (*segment_delete)(void *h, ef_bytes ns, ef_bytes key, ef_store_err *err);

    int (*constraint_create)(void *h, ef_bytes ns, ef_bytes segment_key,
                             const ef_store_constraint_in *in, ef_arena *a, ef_doc_constraint *out,
                             ef_store_err *err);
    int (*constraint_update)(void *h, ef_bytes ns, ef_bytes segment_key, ef_bytes id,
                             const ef_store_constraint_in *in, ef_arena *a, ef_doc_constraint *out,
                             ef_store_err *err);
    int (*constraint_delete)(void *h, ef_bytes ns, ef_bytes segment_key, ef_bytes id,
                             ef_store_err *err);

    int (*rule_create)(void *h, ef_bytes ns, ef_bytes flag_key, const ef_store_rule_in *in,
                       ef_arena *a, ef_store_rule *out, ef_store_err *err);
    int (*rule_get)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id, ef_arena *a,
                    ef_store_rule *out, ef_store_err *err);
    int (*rule_list)(void *h, ef_bytes ns, ef_bytes flag_key, const ef_store_page *p, ef_arena *a,
                     ef_store_rule **out, size_t *n, ef_store_page_out *po, ef_store_err *err);
    int (*rule_update)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                       const ef_store_rule_in *in, ef_arena *a, ef_store_rule *out,
                       ef_store_err *err);
    int (*rule_delete)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id, ef_store_err *err);
    int (*rule_order)(void *h, ef_bytes ns, ef_bytes flag_key, const ef_bytes *ids, size_t n,
                      ef_store_err *err);

    int (*distribution_create)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes rule_id,
                               const ef_store_distribution_in *in, ef_arena *a,
                               ef_doc_distribution *out, ef_store_err *err);
    int (*distribution_update)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes rule_id,
                               ef_bytes id, const ef_store_distribution_in *in, ef_arena *a,
                               ef_doc_distribution *out, ef_store_err *err);
    int (*distribution_delete)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes rule_id,
                               ef_bytes id, ef_bytes variant_id, ef_store_err *err);

    int (*rollout_create)(void *h, ef_bytes ns, ef_bytes flag_key, const ef_store_rollout_in *in,
                          ef_arena *a, ef_store_rollout *out, ef_store_err *err);
    int (*rollout_get)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id, ef_arena *a,
                       ef_store_rollout *out, ef_store_err *err);
    int (*rollout_list)(void *h, ef_bytes ns, ef_bytes flag_key, const ef_store_page *p,
                        ef_arena *a, ef_store_rollout **out, size_t *n, ef_store_page_out *po,
                        ef_store_err *err);
    int (*rollout_update)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                          const ef_store_rollout_in *in, ef_arena *a, ef_store_rollout *out,
                          ef_store_err *err);
    int (*rollout_delete)(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id, ef_store_err *err);
    int (*rollout_order)(void *h, ef_bytes ns, ef_bytes flag_key, const ef_bytes *ids, size_t n,
                         ef_store_err *err);

    /* Client tokens: create (in->id and timestamps are filled), list (all, newest last), delete. */
    int (*token_create)(void *h, const ef_store_token *in, ef_arena *a, ef_store_token *out,
                        ef_store_err *err);
    int (*token_list)(void *h, const ef_store_page *p, ef_arena *a, ef_store_token **out,
                      size_t *n, ef_store_page_out *po, ef_store_err *err);
    int (*token_delete)(void *h, ef_bytes id, ef_store_err *err);
    /* Sets a token's expiry (Flipt's ExpireAuthenticationByID); NOT_FOUND if there is no such id. */
    int (*token_expire)(void *h, ef_bytes id, int64_t expires_ns, ef_store_err *err);

    /* Whole namespaces as documents (ids and timestamps filled), for export and snapshots. */
    int (*export_doc)(void *h, ef_bytes ns_or_empty_for_all, ef_arena *a, ef_doc *out,
                      ef_store_err *err);
    int (*import_doc)(void *h, const ef_doc *doc, const ef_store_import_opts *o, ef_store_err *err);
    /* Flipt's client snapshot document of one namespace, with the namespace version (ETag). */
    int (*snapshot_doc)(void *h, ef_bytes ns, const ef_snapdoc_opts *o, ef_buf *out,
                        uint64_t *version, ef_store_err *err);

    /* Versions and the change log. */
    int (*ns_version)(void *h, ef_bytes ns, uint64_t *version, ef_store_err *err);
    int (*seq)(void *h, uint64_t *seq, uint64_t *first_available, ef_store_err *err);
    int (*changes)(void *h, uint64_t after, size_t max, ef_store_change_fn fn, void *ctx,
                   ef_store_err *err);
    int (*trim)(void *h, uint64_t keep_entries, int64_t max_age_ns, ef_store_err *err);
    int (*dump)(void *h, ef_buf *out, uint64_t *seq, ef_store_err *err);
    int (*load_dump)(void *h, const char *data, size_t len, ef_store_err *err);
    int (*apply_changes)(void *h, const char *entry, size_t len, ef_store_err *err);
    int (*identity)(void *h, ef_store_identity *out, ef_store_err *err); /* NULL: none */
    /* Sets (fn NULL: clears) the one commit listener; NULL op: the backend has no change log. */
    void (*on_commit)(void *h, ef_store_change_fn fn, void *ctx);
    /* The database file's absolute path; NULL op or NULL: not a file on this machine. */
    const char *(*file_path)(void *h);
    /* A follower's batches (ef_sqlite_opts.sync_ms); NULL op: the store keeps none. */
    void (*batches)(void *h, ef_store_batches *out);
} ef_store_ops;

struct ef_store {
    const ef_store_ops *ops;
    void *h;
};

/* ---- the SQLite backend ---- */

typedef struct ef_sqlite_opts {
    ef_registry *registry;     /* where compiled namespaces are published; NULL: no compiling */
    int busy_timeout_ms;       /* 0 means 5000 */
    uint64_t log_keep_entries; /* change-log retention after each write; 0 keeps everything */
    int64_t log_max_age_ns;    /* also drop entries older than this; 0 keeps everything */
    bool no_create_dirs;       /* do not create the database file's directory */
    /* Do not take the file's process lock (see ef_sqlite_open): for a use that only reads, like
     * `edgeflag export` next to a running server. Every writer must leave this false. */
    bool no_lock;
    /* Called by every logged write after its change-log entry is built and before the local
     * COMMIT (never for apply_changes/load_dump). Returning -1 (with *err) rolls the write back.
     * The libSQL backend sends the entry to the remote database here. */
    int (*commit_hook)(void *ctx, uint64_t seq, const char *entry, size_t len, ef_store_err *err);
    void *commit_ctx;
    /* Batched writes for a follower (a replica's store; src/store/sqlite_persist.c): entries
     * applied with apply_changes are published at once, held in one open transaction and committed
     * and made durable together every sync_ms (one COMMIT, one fdatasync); writes of the store's
     * own and dump loads commit that batch first and stay durable before they return. 0: every
     * commit is durable before it returns (a primary). */
    unsigned sync_ms;
    /* The store of a replica (src/store/sqlite_capture.c): it takes the entries its upstream logged
     * (apply_changes, load_dump) and no writes of its own, so it keeps no change-capture triggers
     * (they built each applied row's JSON only to throw it away) and refuses an own write. Opened
     * without it, the store has its triggers back before it takes any write. */
    bool follower;
    /* This boot of the machine (Linux: /proc/sys/kernel/random/boot_id), recorded in the lock
     * file; NULL: unknown, never "may have lost". */
    const char *boot_id;
    /* Set by ef_sqlite_open: the previous process using the file ran with sync_ms and did not
     * close it (or an older edgeflag did, and the machine has restarted since), so entries it had
     * applied may be gone (a version it answered may be newer than the file's). */
    bool *may_have_lost;
} ef_sqlite_opts;

/* The default database path of `edgeflag serve`, `import` and `export`. */
#define EF_SQLITE_DEFAULT_PATH "./data/edgeflag.db"

/* Opens (creating if needed) a database by path or `file:` URI, runs pending migrations (refusing a
 * database whose schema is newer than this code), and publishes every namespace when a registry is
 * given. Returns NULL with *err filled.
 * One process per file: the store holds an exclusive flock on "<file>.lock" (holding its pid) for
 * its whole life, and opening a file another process holds fails with EF_STORE_UNAVAILABLE naming
 * that pid, because two writers would each serve only their own commits (docs/storage.md). */
ef_store *ef_sqlite_open(const char *path_or_uri, const ef_sqlite_opts *opts, ef_store_err *err);

/* Process-wide SQLite settings, for a program that owns all of the process's SQLite use (the
 * edgeflag command; never an application embedding libedgeflag): called once, first thing, before
 * any other thread or SQLite call. Turns SQLite's memory statistics off: they take a global mutex
 * around every allocation (4 % of a replica's apply of an entry), and nothing here reads them. */
void ef_store_process_init(void);

/* Schema version this code writes (the highest migration). */
int ef_sqlite_schema_version(void);

/* ---- dispatch wrappers ---- */

static inline void ef_store_close(ef_store *s)
{
    if (s) s->ops->close(s->h);
}

#define EF_STORE_CALL(fn, ...) return s->ops->fn(s->h, __VA_ARGS__)

static inline int ef_store_ns_create(ef_store *s, const ef_store_ns_in *in, ef_arena *a,
                                     ef_doc_namespace *out, ef_store_err *err)
{ EF_STORE_CALL(ns_create, in, a, out, err); }
static inline int ef_store_ns_get(ef_store *s, ef_bytes key, ef_arena *a, ef_doc_namespace *out,
                                  ef_store_err *err)
{ EF_STORE_CALL(ns_get, key, a, out, err); }
static inline int ef_store_ns_list(ef_store *s, const ef_store_page *p, ef_arena *a,
                                   ef_doc_namespace **out, size_t *n, ef_store_page_out *po,
                                   ef_store_err *err)
{ EF_STORE_CALL(ns_list, p, a, out, n, po, err); }
static inline int ef_store_ns_update(ef_store *s, const ef_store_ns_in *in, ef_arena *a,
                                     ef_doc_namespace *out, ef_store_err *err)
{ EF_STORE_CALL(ns_update, in, a, out, err); }
static inline int ef_store_ns_delete(ef_store *s, ef_bytes key, ef_store_err *err)
{ EF_STORE_CALL(ns_delete, key, false, err); }
static inline int ef_store_ns_delete_forced(ef_store *s, ef_bytes key, bool force, ef_store_err *err)
{ EF_STORE_CALL(ns_delete, key, force, err); }

static inline int ef_store_flag_create(ef_store *s, ef_bytes ns, const ef_store_flag_in *in,
                                       ef_arena *a, ef_doc_flag *out, ef_store_err *err)
{ EF_STORE_CALL(flag_create, ns, in, a, out, err); }
static inline int ef_store_flag_get(ef_store *s, ef_bytes ns, ef_bytes key, ef_arena *a,
                                    ef_doc_flag *out, ef_store_err *err)
{ EF_STORE_CALL(flag_get, ns, key, a, out, err); }
static inline int ef_store_flag_list(ef_store *s, ef_bytes ns, const ef_store_page *p, ef_arena *a,
                                     ef_doc_flag **out, size_t *n, ef_store_page_out *po,
                                     ef_store_err *err)
{ EF_STORE_CALL(flag_list, ns, p, a, out, n, po, err); }
static inline int ef_store_flag_update(ef_store *s, ef_bytes ns, const ef_store_flag_in *in,
                                       ef_arena *a, ef_doc_flag *out, ef_store_err *err)
{ EF_STORE_CALL(flag_update, ns, in, a, out, err); }
static inline int ef_store_flag_delete(ef_store *s, ef_bytes ns, ef_bytes key, ef_store_err *err)
{ EF_STORE_CALL(flag_delete, ns, key, err); }

static inline int ef_store_variant_create(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                          const ef_store_variant_in *in, ef_arena *a,
                                          ef_doc_variant *out, ef_store_err *err)
{ EF_STORE_CALL(variant_create, ns, flag_key, in, a, out, err); }
static inline int ef_store_variant_update(ef_store *s, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                                          const ef_store_variant_in *in, ef_arena *a,
                                          ef_doc_variant *out, ef_store_err *err)
{ EF_STORE_CALL(variant_update, ns, flag_key, id, in, a, out, err); }
static inline int ef_store_variant_delete(ef_store *s, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                                          ef_store_err *err)
{ EF_STORE_CALL(variant_delete, ns, flag_key, id, err); }

static inline int ef_store_segment_create(ef_store *s, ef_bytes ns, const ef_store_segment_in *in,
                                          ef_arena *a, ef_doc_segment *out, ef_store_err *err)
{ EF_STORE_CALL(segment_create, ns, in, a, out, err); }
static inline int ef_store_segment_get(ef_store *s, ef_bytes ns, ef_bytes key, ef_arena *a,
                                       ef_doc_segment *out, ef_store_err *err)
{ EF_STORE_CALL(segment_get, ns, key, a, out, err); }
static inline int ef_store_segment_list(ef_store *s, ef_bytes ns, const ef_store_page *p,
                                        ef_arena *a, ef_doc_segment **out, size_t *n,
                                        ef_store_page_out *po, ef_store_err *err)
{ EF_STORE_CALL(segment_list, ns, p, a, out, n, po, err); }
static inline int ef_store_segment_update(ef_store *s, ef_bytes ns, const ef_store_segment_in *in,
                                          ef_arena *a, ef_doc_segment *out, ef_store_err *err)
{ EF_STORE_CALL(segment_update, ns, in, a, out, err); }
static inline int ef_store_segment_delete(ef_store *s, ef_bytes ns, ef_bytes key,
                                          ef_store_err *err)
{ EF_STORE_CALL(segment_delete, ns, key, err); }

static inline int ef_store_constraint_create(ef_store *s, ef_bytes ns, ef_bytes segment_key,
                                             const ef_store_constraint_in *in, ef_arena *a,
                                             ef_doc_constraint *out, ef_store_err *err)
{ EF_STORE_CALL(constraint_create, ns, segment_key, in, a, out, err); }
static inline int ef_store_constraint_update(ef_store *s, ef_bytes ns, ef_bytes segment_key,
                                             ef_bytes id, const ef_store_constraint_in *in,
                                             ef_arena *a, ef_doc_constraint *out,
                                             ef_store_err *err)
{ EF_STORE_CALL(constraint_update, ns, segment_key, id, in, a, out, err); }
static inline int ef_store_constraint_delete(ef_store *s, ef_bytes ns, ef_bytes segment_key,
                                             ef_bytes id, ef_store_err *err)
{ EF_STORE_CALL(constraint_delete, ns, segment_key, id, err); }

static inline int ef_store_rule_create(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                       const ef_store_rule_in *in, ef_arena *a, ef_store_rule *out,
                                       ef_store_err *err)
{ EF_STORE_CALL(rule_create, ns, flag_key, in, a, out, err); }
static inline int ef_store_rule_get(ef_store *s, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                                    ef_arena *a, ef_store_rule *out, ef_store_err *err)
{ EF_STORE_CALL(rule_get, ns, flag_key, id, a, out, err); }
static inline int ef_store_rule_list(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                     const ef_store_page *p, ef_arena *a, ef_store_rule **out,
                                     size_t *n, ef_store_page_out *po, ef_store_err *err)
{ EF_STORE_CALL(rule_list, ns, flag_key, p, a, out, n, po, err); }
static inline int ef_store_rule_update(ef_store *s, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                                       const ef_store_rule_in *in, ef_arena *a, ef_store_rule *out,
                                       ef_store_err *err)
{ EF_STORE_CALL(rule_update, ns, flag_key, id, in, a, out, err); }
static inline int ef_store_rule_delete(ef_store *s, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                                       ef_store_err *err)
{ EF_STORE_CALL(rule_delete, ns, flag_key, id, err); }
static inline int ef_store_rule_order(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                      const ef_bytes *ids, size_t n, ef_store_err *err)
{ EF_STORE_CALL(rule_order, ns, flag_key, ids, n, err); }

static inline int ef_store_distribution_create(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                               ef_bytes rule_id,
                                               const ef_store_distribution_in *in, ef_arena *a,
                                               ef_doc_distribution *out, ef_store_err *err)
{ EF_STORE_CALL(distribution_create, ns, flag_key, rule_id, in, a, out, err); }
static inline int ef_store_distribution_update(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                               ef_bytes rule_id, ef_bytes id,
                                               const ef_store_distribution_in *in, ef_arena *a,
                                               ef_doc_distribution *out, ef_store_err *err)
{ EF_STORE_CALL(distribution_update, ns, flag_key, rule_id, id, in, a, out, err); }
static inline int ef_store_distribution_delete(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                               ef_bytes rule_id, ef_bytes id, ef_bytes variant_id,
                                               ef_store_err *err)
{ EF_STORE_CALL(distribution_delete, ns, flag_key, rule_id, id, variant_id, err); }

static inline int ef_store_rollout_create(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                          const ef_store_rollout_in *in, ef_arena *a,
                                          ef_store_rollout *out, ef_store_err *err)
{ EF_STORE_CALL(rollout_create, ns, flag_key, in, a, out, err); }
static inline int ef_store_rollout_get(ef_store *s, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                                       ef_arena *a, ef_store_rollout *out, ef_store_err *err)
{ EF_STORE_CALL(rollout_get, ns, flag_key, id, a, out, err); }
static inline int ef_store_rollout_list(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                        const ef_store_page *p, ef_arena *a,
                                        ef_store_rollout **out, size_t *n, ef_store_page_out *po,
                                        ef_store_err *err)
{ EF_STORE_CALL(rollout_list, ns, flag_key, p, a, out, n, po, err); }
static inline int ef_store_rollout_update(ef_store *s, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                                          const ef_store_rollout_in *in, ef_arena *a,
                                          ef_store_rollout *out, ef_store_err *err)
{ EF_STORE_CALL(rollout_update, ns, flag_key, id, in, a, out, err); }
static inline int ef_store_rollout_delete(ef_store *s, ef_bytes ns, ef_bytes flag_key, ef_bytes id,
                                          ef_store_err *err)
{ EF_STORE_CALL(rollout_delete, ns, flag_key, id, err); }
static inline int ef_store_rollout_order(ef_store *s, ef_bytes ns, ef_bytes flag_key,
                                         const ef_bytes *ids, size_t n, ef_store_err *err)
{ EF_STORE_CALL(rollout_order, ns, flag_key, ids, n, err); }

static inline int ef_store_token_create(ef_store *s, const ef_store_token *in, ef_arena *a,
                                        ef_store_token *out, ef_store_err *err)
{ EF_STORE_CALL(token_create, in, a, out, err); }
static inline int ef_store_token_list(ef_store *s, const ef_store_page *p, ef_arena *a,
                                      ef_store_token **out, size_t *n, ef_store_page_out *po,
                                      ef_store_err *err)
{ EF_STORE_CALL(token_list, p, a, out, n, po, err); }
static inline int ef_store_token_delete(ef_store *s, ef_bytes id, ef_store_err *err)
{ EF_STORE_CALL(token_delete, id, err); }
static inline int ef_store_token_expire(ef_store *s, ef_bytes id, int64_t expires_ns, ef_store_err *err)
{ EF_STORE_CALL(token_expire, id, expires_ns, err); }

static inline int ef_store_export(ef_store *s, ef_bytes ns, ef_arena *a, ef_doc *out,
                                  ef_store_err *err)
{ EF_STORE_CALL(export_doc, ns, a, out, err); }
static inline int ef_store_import(ef_store *s, const ef_doc *doc, const ef_store_import_opts *o,
                                  ef_store_err *err)
{ EF_STORE_CALL(import_doc, doc, o, err); }
static inline int ef_store_snapshot_doc(ef_store *s, ef_bytes ns, const ef_snapdoc_opts *o,
                                        ef_buf *out, uint64_t *version, ef_store_err *err)
{ EF_STORE_CALL(snapshot_doc, ns, o, out, version, err); }

static inline int ef_store_ns_version(ef_store *s, ef_bytes ns, uint64_t *version,
                                      ef_store_err *err)
{ EF_STORE_CALL(ns_version, ns, version, err); }
/* The last committed seq and the first seq the change log still holds (seq + 1 when empty). */
static inline int ef_store_seq(ef_store *s, uint64_t *seq, uint64_t *first_available,
                               ef_store_err *err)
{ EF_STORE_CALL(seq, seq, first_available, err); }
/* Calls fn for each entry with seq > after, in order, at most max (0: no limit). A position the log
 * no longer holds (after + 1 < first available) fails with EF_STORE_TRIMMED. A non-zero return
 * from fn stops the walk and is returned. */
static inline int ef_store_changes(ef_store *s, uint64_t after, size_t max, ef_store_change_fn fn,
                                   void *ctx, ef_store_err *err)
{ EF_STORE_CALL(changes, after, max, fn, ctx, err); }
/* Drops entries beyond the newest keep_entries and older than max_age_ns (0 disables either). */
static inline int ef_store_trim(ef_store *s, uint64_t keep_entries, int64_t max_age_ns,
                                ef_store_err *err)
{ EF_STORE_CALL(trim, keep_entries, max_age_ns, err); }
/* A consistent full dump (one read transaction) as JSON, appended to out (the feed writes its
 * event's prefix first), and the seq it reflects. It starts {"seq":N,"history":"H", and
 * carries per-table row counts; loading it adopts its history. */
static inline int ef_store_dump(ef_store *s, ef_buf *out, uint64_t *seq, ef_store_err *err)
{ EF_STORE_CALL(dump, out, seq, err); }
/* Replaces all state with a dump (one transaction); the store's seq becomes the dump's. */
static inline int ef_store_load_dump(ef_store *s, const char *data, size_t len, ef_store_err *err)
{ EF_STORE_CALL(load_dump, data, len, err); }
/* Applies one entry of another store's change log as one local transaction with the same seq. */
static inline int ef_store_apply_changes(ef_store *s, const char *entry, size_t len,
                                         ef_store_err *err)
{ EF_STORE_CALL(apply_changes, entry, len, err); }

/* Tells fn about every logged write of this store (not entries applied from an upstream nor dump
 * loads) right after its local COMMIT and before the snapshot is republished, so a primary's
 * replication feed can send an entry without waiting for the publish (issue 11). fn runs on the
 * writer's thread under the store's writer lock: it must copy what it keeps, never block and never
 * call back into the store; its return value is ignored. Returns -1 when the backend has no change
 * log to report. Clear it (fn NULL) before freeing ctx. */
static inline int ef_store_on_commit(ef_store *s, ef_store_change_fn fn, void *ctx)
{
    if (!s->ops->on_commit) return -1;
    s->ops->on_commit(s->h, fn, ctx);
    return 0;
}

/* The store's identity and history (empty strings for a backend without them). */
static inline int ef_store_get_identity(ef_store *s, ef_store_identity *out, ef_store_err *err)
{
    if (!s->ops->identity) {
        out->db_id[0] = out->history[0] = '\0';
        return 0;
    }
    return s->ops->identity(s->h, out, err);
}

/* The absolute path of the store's database file when it is an embedded file on this machine
 * (however --db named it: a path or a `file:` URI), NULL for a remote or in-memory store. Files
 * that belong beside the store (an audit cursor, a backup's source) are placed from this, never
 * by guessing from the text of the URL. */
static inline const char *ef_store_file_path(ef_store *s)
{
    return s->ops->file_path ? s->ops->file_path(s->h) : NULL;
}

static inline void ef_store_get_batches(ef_store *s, ef_store_batches *out)
{
    *out = (ef_store_batches){0};
    if (s->ops->batches) s->ops->batches(s->h, out);
}

#undef EF_STORE_CALL

#endif
