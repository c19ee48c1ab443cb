/*
 * sqlite_int.h - internals shared by the SQLite backend's files (never included outside src/store/).
 *
 * One connection does all writes and management reads, serialised by one mutex: SQLite allows a
 * single writer anyway, and a single connection keeps the prepared-statement cache simple. Every
 * statement is prepared once (sq_stmt) from a constant string, with user values bound as
 * parameters; no SQL is ever built from user input.
 */
#ifndef EF_STORE_SQLITE_INT_H
#define EF_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/bytes.h"
#include "base/json.h"
#include "store/store.h"

/* A table as the change log sees it: name, primary-key columns and all columns (schema order).
 * The change-capture triggers, dumps and the replica's row-by-row apply are all derived from this
 * one description, so they cannot disagree with each other. */
typedef struct sq_table {
    const char *name;
    const char *pk[3];     /* NULL-terminated */
    const char *cols[12];  /* NULL-terminated */
} sq_table;

#define SQ_NTABLES 11 /* entries of sq_tables (checked where it is defined) */
extern const sq_table sq_tables[SQ_NTABLES];
extern const size_t sq_ntables;

#define SQ_MAX_STMTS 160
#define SQ_MAX_TOUCHED 1024

typedef struct sq_incr sq_incr; /* sqlite_incr.c */

typedef struct sq {
    sqlite3 *db;
    char *path; /* as given (path or file: URI), for opening dump readers */
    int lock_fd; /* the flock'd "<file>.lock" held for the store's life, or -1 */
    pthread_mutex_t mu;
    ef_sqlite_opts opts;
    sqlite3_stmt *stmts[SQ_MAX_STMTS]; /* cache, indexed by the call site's slot */
    uint64_t stmts_used[(SQ_MAX_STMTS + 63) / 64]; /* slots handed out since the last reset_all */
    sqlite3_stmt **apply_upsert;       /* per sq_tables entry, prepared on first apply */
    sqlite3_stmt **apply_delete;
    int64_t last_ts;                   /* timestamps are strictly increasing within a store */
    bool in_tx;
    bool applying; /* inside apply_changes/load_dump: the entry is logged verbatim */
    bool apply_fk_failed; /* apply_changes: a foreign key refused a row (retried deferred) */
    size_t ntouched;
    char *touched[SQ_MAX_TOUCHED]; /* namespaces written in the open transaction (malloc'd) */
    bool touched_all;              /* too many to list, or a dump load: recompile everything */
    bool capture_paused;           /* sqlite_capture.c: the triggers are dropped in this tx */
    bool fk_off;                   /* sq_wtx_begin_bulk: foreign keys off until the tx ends */
    int64_t capture_marks[SQ_NTABLES]; /* per table: the highest rowid before the pause */
    ef_store_change_fn commit_fn; /* under mu: ef_store_on_commit's listener, or NULL */
    void *commit_fn_ctx;
    sq_incr *incr;     /* per namespace: the flag parts of its published snapshot (sqlite_incr.c) */
    /* batched durability (sqlite_persist.c): seqs applied and known durable, under persist_mu */
    bool persist_started, persist_stop, may_have_lost;
    bool persist_idle; /* under persist_mu: the thread waits for entries (not gathering a batch) */
    pthread_t persist_thread;
    pthread_mutex_t persist_mu;
    pthread_cond_t persist_cv;
    uint64_t persist_applied, persist_durable, persist_failures;
    /* A follower's open batch (sqlite_persist.c), under mu: one write transaction holds every
     * entry applied since the last batch commit, each entry a savepoint inside it. */
    bool batch_open;
    bool lock_open;          /* the lock file's record says "open" (sqlite_persist.c) */
    bool in_entry;           /* inside the savepoint of the entry being applied */
    uint64_t batch_last;     /* the highest seq applied into the open batch */
    uint64_t batch_entries;  /* entries released into the open batch (0: nothing to write) */
    uint64_t batch_commits, batch_lost; /* atomic: written under mu, read without it */
    uint64_t republish_hold; /* after a lost batch: entries up to this seq were published already */
    int wal_fd; /* the WAL, opened for fdatasync, or -1 */
    /* WAL checkpoints (sqlite_checkpoint.c); all but ckpt_started under ckpt_mu */
    bool ckpt_started, ckpt_idle, ckpt_stop;
    bool ckpt_finish; /* the bulk is copied: the writer's next commit copies the rest itself */
    enum { SQ_CKPT_NONE, SQ_CKPT_COPY, SQ_CKPT_RESTART } ckpt_want;
    int ckpt_copied; /* frames of the current WAL the last pass copied */
    pthread_t ckpt_thread;
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
    sqlite3_stmt **touch_ns;           /* per sq_tables entry: the namespace of a row by its key */
    ef_store_ops ops;
    ef_store store; /* what ef_sqlite_open returns: {&ops, this} */
} sq;

/* ---- batched durability and the lock file's record (sqlite_persist.c) ---- */
/* Reads the lock file's record of the previous run (sets may_have_lost) and writes "open". */
int sq_lock_record_open(sq *s);
/* Records a clean close (after sq_persist_stop synced everything). */
void sq_lock_record_clean(sq *s);
int sq_persist_start(sq *s, ef_store_err *err);
/* An applied entry (seq) went into the open batch: the batch thread will commit and sync it. */
void sq_persist_applied(sq *s, uint64_t seq);
/* A write of the store's own was committed: fsync now, before it is acknowledged. */
int sq_persist_local(sq *s, uint64_t seq, ef_store_err *err);
/* ef_store_ops.batches: the counters of the batches above. */
void sq_persist_batches(void *h, ef_store_batches *out);
/* The open batch (caller holds mu). entry_begin starts the batch's transaction if none is open,
 * then a savepoint for one entry; entry_end releases it into the batch; entry_undo rolls back that
 * entry alone (the batch's earlier entries stay). batch_commit commits the batch, if one is open:
 * every way into a transaction of another kind commits it first. When a batch cannot be committed,
 * or an error rolled back the whole transaction, every entry in it is gone from the file although
 * it was published: see sqlite_persist.c for how the store recovers. */
int sq_batch_entry_begin(sq *s, ef_store_err *err);
int sq_batch_entry_end(sq *s, uint64_t seq, ef_store_err *err);
void sq_batch_entry_undo(sq *s);
int sq_batch_commit(sq *s, ef_store_err *err);
/* Stops the thread and syncs what is left; -1 when that last sync failed. */
int sq_persist_stop(sq *s);

/* ---- WAL checkpoints off the writer's path (sqlite_checkpoint.c) ---- */
/* Starts the thread and hooks the writer connection; nothing for an in-memory database. */
int sq_checkpoint_start(sq *s, ef_store_err *err);
/* Unhooks and joins the thread (before the writer connection closes, which checkpoints last). */
void sq_checkpoint_stop(sq *s);

/* ---- statements (sqlite_schema.c) ---- */
/* Whether target (a path or a `file:` URI) names a file rather than an in-memory database. */
bool sq_is_file(const char *target);
/* For a transaction that writes a whole state (an import, a dump's load): sq_cache_bulk, inside
 * it under the store's mutex, lets the writer connection's page cache grow to 128 MiB. With the
 * default 2 MiB an import's pages spilled into the WAL while it ran and were read back (most of
 * its time, when this was measured). sq_bulk_done, after the transaction, takes the mutex, sets the
 * cache back to SQLite's default and gives the process's freed pages back to the system (the
 * parse of a 140 MB dump, an import's document). */
void sq_cache_bulk(sq *s);
void sq_bulk_done(sq *s);
/* The cached statement for a slot, prepared from sql on first use, reset and unbound. */
sqlite3_stmt *sq_stmt(sq *s, int slot, const char *sql, ef_store_err *err);
int sq_db_err(sq *s, ef_store_err *err, const char *what);
/* Steps a statement that returns no rows: 0 when it ran to completion, else -1 with *err. */
int sq_step_done(sq *s, sqlite3_stmt *st, const char *what, ef_store_err *err);
/* Binds b without copying it: b must stay valid until the statement has been stepped for the
 * last time (bind and step in one scope). */
void sq_bind_bytes(sqlite3_stmt *st, int i, ef_bytes b);
void sq_bind_opt(sqlite3_stmt *st, int i, ef_bytes b); /* NULL when empty; not copied either */
ef_bytes sq_col_bytes(sqlite3_stmt *st, int i, ef_arena *a);
int sq_exec(sq *s, const char *sql, ef_store_err *err);
int sq_migrate(sq *s, ef_store_err *err);
/* SQL text `json_object('c1', <prefix>c1, ...)` for a table, into b. */
void sq_row_json_sql(ef_buf *b, const sq_table *t, const char *prefix, bool pk_only);
const sq_table *sq_table_find(ef_bytes name);
/* The statement a replica applies one change with (an upsert of every column, or a delete by
 * primary key; positional parameters in sq_table column order). Shared with the libSQL backend,
 * which sends the same statements to the remote database. */
void sq_apply_sql(ef_buf *b, const sq_table *t, bool del);
/* Migration step v (1-based): its DDL (part 0) or its change-capture triggers (part 1), as
 * statements separated by ";\n" at top level. Migration 1 seeds the default namespace (SQ_SEED_SQL,
 * parameter ?1 = now) between the two parts. Used locally and, through Hrana, on a remote. */
void sq_migration_sql(int v, int part, ef_buf *b);
/* The change-capture triggers of the current schema: CREATE statements (create) or DROPs. */
void sq_capture_triggers_sql(ef_buf *b, bool create);
#define SQ_SEED_SQL \
    "INSERT INTO namespaces VALUES ('default', 'Default', 'Default namespace', 1, ?1, ?1)"
#define SQ_SCHEMA_VERSION 6
/* The largest entry a dump carries as its "last" (sqlite_log.c): every write but a bulk import. A
 * replica loading a dump without one cannot show which entry its position is until it applies one. */
#define SQ_DUMP_LAST_MAX (1u << 20)

/* Statement slots: one per distinct SQL text, so the cache never mixes them up. Grouped by table,
 * a line or two each (by hand: clang-format would put one per line). */
/* clang-format off */
enum {
    SL_NS_INSERT = 1, SL_NS_GET, SL_NS_LIST, SL_NS_COUNT, SL_NS_UPDATE, SL_NS_DELETE, SL_NS_FLAGS,
    SL_NS_ALL, SL_NS_EXISTS, SL_NS_FLAGS_ALL,
    SL_FLAG_INSERT, SL_FLAG_GET, SL_FLAG_LIST, SL_FLAG_COUNT, SL_FLAG_UPDATE, SL_FLAG_DELETE,
    SL_FLAG_ALL, SL_FLAG_SET_DEFAULT, SL_FLAG_EXISTS,
    SL_VAR_INSERT, SL_VAR_GET, SL_VAR_BY_FLAG, SL_VAR_UPDATE, SL_VAR_DELETE, SL_VAR_KEY_EXISTS,
    SL_SEG_INSERT, SL_SEG_GET, SL_SEG_LIST, SL_SEG_COUNT, SL_SEG_UPDATE, SL_SEG_DELETE, SL_SEG_ALL,
    SL_SEG_IN_USE, SL_SEG_EXISTS,
    SL_CON_INSERT, SL_CON_GET, SL_CON_BY_SEG, SL_CON_UPDATE, SL_CON_DELETE,
    SL_RULE_INSERT, SL_RULE_GET, SL_RULE_LIST, SL_RULE_COUNT, SL_RULE_UPDATE, SL_RULE_DELETE,
    SL_RULE_BY_FLAG, SL_RULE_RANK, SL_RULESEG_INSERT, SL_RULESEG_DELETE, SL_RULESEG_BY_RULE,
    SL_DIST_INSERT, SL_DIST_GET, SL_DIST_BY_RULE, SL_DIST_UPDATE, SL_DIST_DELETE,
    SL_RO_INSERT, SL_RO_GET, SL_RO_LIST, SL_RO_COUNT, SL_RO_UPDATE, SL_RO_DELETE, SL_RO_BY_FLAG,
    SL_RO_RANK, SL_RO_RANK_EXISTS, SL_ROSEG_INSERT, SL_ROSEG_DELETE, SL_ROSEG_BY_RO,
    SL_TX_BEGIN, SL_TX_COMMIT, SL_TX_ROLLBACK, SL_PENDING_READ, SL_PENDING_CLEAR, SL_VER_BUMP,
    SL_VER_GET, SL_VER_SET, SL_STATE_GET, SL_STATE_SEQ, SL_LOG_INSERT, SL_LOG_READ, SL_LOG_TRIM,
    SL_LOG_TRIM_AGE, SL_STATE_TRIMMED, SL_LOG_MAXTRIM, SL_LOG_DUMP_LAST, SL_VER_ALL,
    SL_TOK_INSERT, SL_TOK_LIST, SL_TOK_COUNT, SL_TOK_DELETE, SL_TOK_ALL, SL_TOK_EXPIRE,
    SL_ID_GET, SL_ID_SET,
    SL_INCR_POS_ALL, SL_INCR_POS_ONE, SL_INCR_HISTORY, SL_INCR_FLAGS, SL_INCR_FLAGS_SCAN, SL_INCR_VARS, SL_INCR_RULES,
    SL_INCR_RSEGS, SL_INCR_DISTS, SL_INCR_ROS, SL_INCR_ROSEGS, SL_INCR_SEGS, SL_INCR_CONS,
    SL_INCR_VARKEY, SL_INCR_MAXFLAG, SL_INCR_VARS_SCAN, SL_INCR_RULES_SCAN, SL_INCR_RSEGS_SCAN,
    SL_INCR_DISTS_SCAN, SL_INCR_ROS_SCAN, SL_INCR_ROSEGS_SCAN, SL_INCR_CONS_SCAN, SL_RULE_EXISTS,
    SL_BATCH_SAVE, SL_BATCH_RELEASE,
    SL_COUNT_
};
/* clang-format on */

/* ---- validation (sqlite_validate.c) ---- */
/* Validates JSON text and writes its compact form into out (arena). field names the error. */
int sq_json_compact(ef_bytes in, const char *field, size_t max, bool object_only, ef_arena *a,
                    ef_bytes *out, ef_store_err *err);
/* Checks a constraint as Flipt's CreateConstraintRequest.Validate; lower-cases the operator,
 * blanks the value of no-value operators and (normalise_dates) normalises datetime values. */
int sq_constraint_check(const ef_store_constraint_in *in, bool normalise_dates, ef_arena *a,
                        ef_bytes *op_out, ef_bytes *value_out, ef_store_err *err);
/* Removes duplicate segment keys (first one kept) and checks exactly one form is given. */
int sq_segment_keys(ef_bytes single, const ef_bytes *keys, size_t n, ef_arena *a,
                    ef_bytes **out, size_t *nout, ef_store_err *err);
size_t sq_base64_encode(const unsigned char *in, size_t n, char *out);
int sq_base64_decode(ef_bytes in, ef_arena *a, ef_bytes *out);
/* How a list reads its page request, as Flipt's SQL store for that kind does. */
#define SQ_PAGE_LIMIT_OPTIONAL 1u /* no "limit must be set" (namespaces, rollouts: not validated) */
#define SQ_PAGE_NO_OFFSET 2u      /* the deprecated offset is ignored (rollouts) */
/* Turns a page request into SQL limit/offset (limit -1: all rows). */
int sq_page_begin(const ef_store_page *p, unsigned flags, int64_t *limit, int64_t *offset,
                  ef_store_err *err);
/* After fetching up to limit+1 rows: trims *n and sets the next-page token. */
void sq_page_end(const ef_store_page *p, int64_t offset, size_t *n, ef_bytes last_key,
                 ef_arena *a, ef_store_page_out *po);

/* One page of a list operation: the COUNT query for totalCount, then the rows. Both statements
 * take the same leading parameters (bound as text), the list one then LIMIT and OFFSET. */
typedef struct sq_list {
    int count_slot;
    const char *count_sql;
    int list_slot;
    const char *list_sql;
    const ef_bytes *params;
    int nparams;
    size_t elem_size;
    /* reads one row into elem; returns 0 or -1 with *err */
    int (*read)(sq *s, sqlite3_stmt *st, ef_arena *a, void *elem, ef_store_err *err);
    ef_bytes (*key)(const void *elem); /* the page token's key of an element */
    const char *what;                  /* "list flags", for error messages */
    unsigned page_flags;               /* SQ_PAGE_* */
} sq_list;
/* Takes the connection lock itself. *out is an arena array of elem_size elements. */
int sq_list_page(sq *s, const sq_list *l, const ef_store_page *p, ef_arena *a, void **out,
                 size_t *n, ef_store_page_out *po, ef_store_err *err);
ef_bytes sq_ns(ef_bytes ns); /* "" -> "default" */
/* Room for element n of an arena array (doubling; the old copy stays in the arena). sq_grow
 * starts at 16 elements (a list); sq_grow_from at first, for the children of one parent, which are
 * few: a full load grows some 100,000 of those arrays, and 16 each took 80 MB at 10,000 flags. */
void *sq_grow(ef_arena *a, void *arr, size_t n, size_t *cap, size_t elsz);
void *sq_grow_from(ef_arena *a, void *arr, size_t n, size_t *cap, size_t elsz, size_t first);
char *sq_cstr(ef_arena *a, ef_bytes b);
/* The SQL order of a child row within its parent (rank or 0, created_at, rowid; a segment
 * reference's position), its position as read (i) and, for the full load's rules and rollouts, its
 * entry in a list of its own (ref). Children are read without ORDER BY (SQLite sorts through a
 * temporary b-tree, or needs an index per order: 16 % of a full load, a tenth of an import) and
 * each parent's few children are put in order here. */
typedef struct sq_okey {
    int64_t k[3];
    uint32_t i, ref;
} sq_okey;
/* Room for key n of a parent's key list, set to (k0, k1, k2) at position n. */
bool sq_okey_put(ef_arena *a, sq_okey **keys, size_t n, size_t *cap, int64_t k0, int64_t k1,
                 int64_t k2, uint32_t ref);
/* Puts n elements of elsz bytes in key order (keys[j].i == j on entry; on return keys[m] is the
 * key of the element now at m). -1: out of memory. */
int sq_order_children(void *el, size_t elsz, sq_okey *keys, size_t n, ef_arena *a);

/* ---- transactions and the change log (sqlite_log.c) ---- */
/* Takes the writer and opens an IMMEDIATE transaction. */
int sq_wtx_begin(sq *s, ef_store_err *err);
/* The same for a bulk insert whose references the caller checks itself (an import that deletes
 * nothing, before it begins; a dump's load, which empties every table itself, with PRAGMA
 * foreign_key_check before COMMIT): SQLite's foreign-key probes are off until the transaction
 * ends, so each inserted row costs no lookup of its parents (a tenth of an import) and is no
 * statement that may abort (a dump's load journalled every page it touched). Never for a write
 * that deletes or updates rows through their ON DELETE actions. */
int sq_wtx_begin_bulk(sq *s, ef_store_err *err);
/* Resets every cached statement (a stepped one holds a read transaction open). */
void sq_reset_stmts(sq *s);
/* ROLLBACK of the open transaction, whatever it holds (caller holds mu); statements reset. */
void sq_tx_rollback(sq *s);
/* The writer mutex for reads; sq_unlock also resets every cached statement. */
void sq_lock(sq *s);
void sq_unlock(sq *s);
/* Records that ns was written (its version is bumped and its snapshot rebuilt after commit). */
int sq_wtx_touch(sq *s, ef_bytes ns, ef_store_err *err);
/* Finishes the transaction (versions, seq, log entry, COMMIT), recompiles, releases the writer.
 * On failure everything is rolled back. Always releases the writer. */
int sq_wtx_commit(sq *s, ef_store_err *err);
void sq_wtx_rollback(sq *s);
/* Ends a write transaction: rolls back and returns -1 when failed, else commits. */
int sq_wtx_end(sq *s, int failed, ef_store_err *err);
int64_t sq_now(sq *s);
void sq_new_id(ef_arena *a, ef_bytes *out);
uint64_t sq_state_seq(sq *s); /* 0 when unreadable: only for logs and publishing */
int sq_state_seq_get(sq *s, uint64_t *seq, ef_store_err *err);

/* ---- entity operations inside an open write transaction ---- */
int sq_ns_create_tx(sq *s, const ef_store_ns_in *in, ef_store_err *err);
int sq_flag_create_tx(sq *s, ef_bytes ns, const ef_store_flag_in *in, ef_store_err *err);
int sq_flag_set_default_tx(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes variant_id,
                           ef_store_err *err);
int sq_variant_create_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_variant_in *in,
                         ef_arena *a, ef_bytes *id, ef_store_err *err);
/* The _insert_tx forms skip the lookups the _create_tx forms make before inserting (the namespace,
 * a flag key taken, the flag, the segments named, a variant key or rollout rank already taken):
 * for an import, which created the namespace and the flag in this transaction, from a document
 * ef_decl_read checked (variant keys distinct, every segment named defined in it, ranks 1, 2, ...)
 * and whose segment references it checks again itself (it inserts with the foreign keys off).
 * Unique keys still refuse what slips past: a taken flag key with Flipt's message, the others
 * with SQLite's less helpful one. */
int sq_flag_insert_tx(sq *s, ef_bytes ns, const ef_store_flag_in *in, ef_store_err *err);
int sq_variant_insert_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_variant_in *in,
                         ef_arena *a, ef_bytes *id, ef_store_err *err);
int sq_segment_create_tx(sq *s, ef_bytes ns, const ef_store_segment_in *in, ef_store_err *err);
int sq_constraint_create_tx(sq *s, ef_bytes ns, ef_bytes seg, const ef_store_constraint_in *in,
                            bool normalise, ef_arena *a, ef_bytes *id, ef_store_err *err);
int sq_rule_create_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rule_in *in, ef_arena *a,
                      ef_bytes *id, ef_store_err *err);
int sq_rule_insert_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rule_in *in, ef_arena *a,
                      ef_bytes *id, ef_store_err *err);
int sq_distribution_create_tx(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes rule,
                              const ef_store_distribution_in *in, ef_arena *a, ef_bytes *id,
                              ef_store_err *err);
/* The same without checking that the rule is the flag's and the variant too: for a caller that
 * created both in this transaction (an import). */
int sq_distribution_insert_tx(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes rule,
                              const ef_store_distribution_in *in, ef_arena *a, ef_bytes *id,
                              ef_store_err *err);
int sq_rollout_create_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rollout_in *in,
                         ef_arena *a, ef_bytes *id, ef_store_err *err);
int sq_rollout_insert_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rollout_in *in,
                         ef_arena *a, ef_bytes *id, ef_store_err *err);
int sq_flag_delete_tx(sq *s, ef_bytes ns, ef_bytes key, ef_store_err *err);
int sq_segment_delete_tx(sq *s, ef_bytes ns, ef_bytes key, ef_store_err *err);
int sq_flag_exists(sq *s, ef_bytes ns, ef_bytes key, bool *exists, ef_store_err *err);
int sq_segment_exists(sq *s, ef_bytes ns, ef_bytes key, bool *exists, ef_store_err *err);
int sq_ns_exists(sq *s, ef_bytes key, bool *exists, ef_store_err *err);

/* ---- reading rows into documents (with the writer held) ---- */
int sq_ns_read(sq *s, ef_bytes key, ef_arena *a, ef_doc_namespace *out, ef_store_err *err);
int sq_flag_read(sq *s, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_flag *out,
                 ef_store_err *err);
int sq_flag_read_row(sq *s, sqlite3_stmt *st, ef_arena *a, ef_doc_flag *out, ef_store_err *err);
int sq_segment_read(sq *s, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_segment *out,
                    ef_store_err *err);
int sq_segment_read_row(sq *s, sqlite3_stmt *st, ef_arena *a, ef_doc_segment *out,
                        ef_store_err *err);
int sq_rule_read(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes id, ef_arena *a, ef_store_rule *out,
                 ef_store_err *err);
int sq_rule_read_row(sq *s, sqlite3_stmt *st, ef_arena *a, ef_store_rule *out, ef_store_err *err);
int sq_rollout_read_row(sq *s, sqlite3_stmt *st, ef_arena *a, ef_store_rollout *out,
                        ef_store_err *err);
/* A whole namespace (flags with variants, rules, rollouts; segments with constraints). */
int sq_ns_load(sq *s, ef_bytes key, ef_arena *a, ef_doc_namespace *out, ef_store_err *err);
/* A flag's variants are read with it; these are its rules (with segments and distributions) and
 * rollouts, in rank order. */
int sq_flag_load_children(sq *s, ef_bytes ns, ef_arena *a, ef_doc_flag *f, ef_store_err *err);
/* Compiles the whole namespace and publishes it (or removes it from the registry when it is gone). */
int sq_ns_publish(sq *s, ef_bytes key, ef_store_err *err);
int sq_publish_all(sq *s, ef_store_err *err);

/* ---- incremental snapshots (sqlite_incr.c) ---- */
/* Entries above this size (an import, a bulk apply) are not parsed for row keys: their namespaces
 * are recompiled in full, which is cheaper than resolving thousands of rows one by one. */
#define SQ_INCR_MAX_ENTRY (1u << 20)
/* Inside the open transaction, before COMMIT: compiles what the transaction's change-log entry
 * (parsed; NULL: unknown, everything touched is recompiled) changed in each touched namespace. A
 * result the compiler refuses is EF_STORE_INVALID ("write refused, ..."); the caller rolls back. */
int sq_incr_prepare(sq *s, const ef_json *entry, ef_store_err *err);
bool sq_incr_is_prepared(sq *s);
/* After COMMIT: installs the prepared states and publishes their snapshots. */
int sq_incr_publish(sq *s, ef_store_err *err);
/* After a rollback: drops the prepared states. */
void sq_incr_discard(sq *s);
void sq_incr_free(sq *s); /* on close */

/* ---- change capture paused for a bulk write (sqlite_capture.c) ---- */
/* Inside the open write transaction: drops the capture triggers (the rollback of the transaction
 * restores them) and records where each table's rows end. Only for writes that insert rows and
 * update nothing older than the pause (an import after its deletes). */
int sq_capture_pause(sq *s, ef_store_err *err);
/* At open: the triggers a follower's store goes without (ef_sqlite_opts.follower), and every other
 * store has, dropped or created in one transaction. A reader's open (no_lock) leaves them. */
int sq_capture_setup(sq *s, ef_store_err *err);
/* A REAL as SQLite's json_quote() writes it ("%!.15g": 50.0 -> "50.0") when it is a whole number
 * below 10^15 in magnitude: its length, else 0 (SQLite must format it). out holds 24 bytes. */
size_t sq_real_whole_json(double x, char out[24]);
/* Before COMMIT of a paused transaction: appends every row inserted since the pause to the
 * entry's changes as an upsert (parents' tables first) and recreates the triggers. *n counts the
 * changes written so far (for the separators). No-op when capture is not paused. */
int sq_capture_resume(sq *s, ef_buf *entry, size_t *n, ef_store_err *err);

/* ---- the ops table: each file fills in the entries it implements ---- */
void sq_fill_ops_ns(ef_store_ops *o);
void sq_fill_ops_flags(ef_store_ops *o);
void sq_fill_ops_segments(ef_store_ops *o);
void sq_fill_ops_rules(ef_store_ops *o);
void sq_fill_ops_log(ef_store_ops *o);
void sq_fill_ops_tokens(ef_store_ops *o);
void sq_fill_ops_doc(ef_store_ops *o);

#endif
