/*
 * sqlite_doc.c - whole namespaces between SQLite and the document model: loading a namespace
 * (compile and export), compiling and publishing snapshots, the snapshot document the HTTP layer
 * serves, and the atomic import of declarative documents.
 *
 * The snapshot goes document -> ef_doc_write_snapshot -> JSON -> ef_snapshot_compile, the same path
 * SDKs take, so what the server evaluates can never differ from what it serves. An import is one
 * transaction: any error, anywhere in any file, imports nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "base/json.h"
#include "base/log.h"
#include "eval/eval.h"
#include "store/sqlite_int.h"

#define FLAG_COLS                                                                                  \
    "namespace_key, key, name, description, enabled, type, default_variant_id, metadata,"         \
    " created_at, updated_at"
#define SEG_COLS "namespace_key, key, name, description, match_type, created_at, updated_at"
#define RULE_COLS "id, flag_key, rank, segment_operator, created_at, updated_at"
#define RO_COLS                                                                                    \
    "id, flag_key, type, rank, description, percentage, value, segment_operator, created_at,"     \
    " updated_at"

int sq_flag_load_children(sq *s, ef_bytes ns, ef_arena *a, ef_doc_flag *f, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_RULE_LIST,
                               "SELECT " RULE_COLS " FROM rules WHERE namespace_key = ? AND flag_key = ?"
                               " ORDER BY rank, created_at, rowid LIMIT ? OFFSET ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, f->key);
    sqlite3_bind_int64(st, 3, -1);
    sqlite3_bind_int64(st, 4, 0);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ef_store_rule r;
        if (sq_rule_read_row(s, st, a, &r, err)) return -1;
        f->rules = sq_grow(a, f->rules, f->nrules, &cap, sizeof(*f->rules));
        if (!f->rules) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        f->rules[f->nrules++] = r.rule;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "rules");
    st = sq_stmt(s, SL_RO_LIST,
                 "SELECT " RO_COLS " FROM rollouts WHERE namespace_key = ? AND flag_key = ?"
                 " ORDER BY rank, created_at, rowid LIMIT ? OFFSET ?",
                 err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, f->key);
    sqlite3_bind_int64(st, 3, -1);
    sqlite3_bind_int64(st, 4, 0);
    cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ef_store_rollout r;
        if (sq_rollout_read_row(s, st, a, &r, err)) return -1;
        f->rollouts = sq_grow(a, f->rollouts, f->nrollouts, &cap, sizeof(*f->rollouts));
        if (!f->rollouts) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        f->rollouts[f->nrollouts++] = r.rollout;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "rollouts");
}

int sq_ns_load(sq *s, ef_bytes key, ef_arena *a, ef_doc_namespace *out, ef_store_err *err)
{
    if (sq_ns_read(s, key, a, out, err)) return -1;
    ef_bytes ns = out->key;
    sqlite3_stmt *st = sq_stmt(s, SL_FLAG_ALL,
                               "SELECT " FLAG_COLS " FROM flags WHERE namespace_key = ?"
                               " ORDER BY created_at, rowid",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->flags = sq_grow(a, out->flags, out->nflags, &cap, sizeof(*out->flags));
        if (!out->flags) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        ef_doc_flag *f = &out->flags[out->nflags++];
        if (sq_flag_read_row(s, st, a, f, err) || sq_flag_load_children(s, ns, a, f, err)) return -1;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "flags");
    st = sq_stmt(s, SL_SEG_LIST,
                 "SELECT " SEG_COLS " FROM segments WHERE namespace_key = ?"
                 " ORDER BY created_at, rowid LIMIT ? OFFSET ?",
                 err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sqlite3_bind_int64(st, 2, -1);
    sqlite3_bind_int64(st, 3, 0);
    cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->segments = sq_grow(a, out->segments, out->nsegments, &cap, sizeof(*out->segments));
        if (!out->segments) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        if (sq_segment_read_row(s, st, a, &out->segments[out->nsegments++], err)) return -1;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "segments");
}

/* Keys of every namespace, in creation order (arena). */
static int ns_keys(sq *s, ef_arena *a, ef_bytes **keys, size_t *n, ef_store_err *err)
{
    sqlite3_stmt *st =
        sq_stmt(s, SL_NS_LIST,
                "SELECT key, name, description, protected, created_at, updated_at FROM namespaces"
                " ORDER BY created_at, rowid LIMIT ? OFFSET ?",
                err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, -1);
    sqlite3_bind_int64(st, 2, 0);
    size_t cap = 0;
    int rc;
    *keys = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *keys = sq_grow(a, *keys, *n, &cap, sizeof(**keys));
        if (!*keys) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        (*keys)[(*n)++] = sq_col_bytes(st, 0, a);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "namespaces");
}

int sq_publish_all(sq *s, ef_store_err *err)
{
    if (!s->opts.registry) return 0;
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_bytes *keys;
    size_t n;
    int rc = ns_keys(s, &a, &keys, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) rc = sq_ns_publish(s, keys[i], err);
    ef_arena_free(&a);
#ifdef __GLIBC__
    /* a full load's temporaries (rows, documents, JSON trees) are gone: give their pages back,
     * so the process holds about what its snapshots need */
    malloc_trim(0);
#endif
    return rc;
}

static int snapshot_doc(void *h, ef_bytes ns, const ef_snapdoc_opts *o, ef_buf *out,
                        uint64_t *version, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    ef_arena a;
    ef_arena_init(&a, 65536);
    ef_doc_namespace doc;
    sq_lock(s);
    int rc = sq_ns_load(s, ns, &a, &doc, err);
    if (rc == 0) {
        sqlite3_stmt *st = sq_stmt(
            s, SL_VER_GET, "SELECT version FROM ns_versions WHERE namespace_key = ?", err);
        if (!st) {
            rc = -1;
        } else {
            sq_bind_bytes(st, 1, ns);
            int r = sqlite3_step(st);
            *version = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
            if (r != SQLITE_ROW && r != SQLITE_DONE) rc = sq_db_err(s, err, "version");
        }
    }
    sq_unlock(s);
    if (rc == 0 && (ef_doc_write_snapshot(&doc, o, out) != 0 || !ef_buf_ok(out)))
        rc = ef_store_fail(err, EF_STORE_INTERNAL, "cannot write snapshot document");
    ef_arena_free(&a);
    return rc;
}

static int export_doc(void *h, ef_bytes ns, ef_arena *a, ef_doc *out, ef_store_err *err)
{
    sq *s = h;
    memset(out, 0, sizeof(*out));
    out->version = (ef_bytes){"", 0};
    sq_lock(s);
    int rc;
    if (ns.n) {
        out->namespaces = ef_arena_calloc(a, sizeof(*out->namespaces));
        rc = out->namespaces ? sq_ns_load(s, ns, a, out->namespaces, err)
                             : ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        if (rc == 0) out->nnamespaces = 1;
    } else {
        ef_bytes *keys;
        size_t n;
        rc = ns_keys(s, a, &keys, &n, err);
        if (rc == 0) {
            out->namespaces = ef_arena_calloc(a, (n ? n : 1) * sizeof(*out->namespaces));
            if (!out->namespaces) rc = ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = sq_ns_load(s, keys[i], a, &out->namespaces[i], err);
            if (rc == 0) out->nnamespaces++;
        }
    }
    sq_unlock(s);
    return rc;
}

/* ---- import ---- */

/* Prefixes an error with the entity's position in its source file. */
static int at(const ef_doc_pos *pos, ef_store_err *err)
{
    if (pos->file && err) {
        char m[sizeof(err->message)];
        snprintf(m, sizeof(m), "%s:%u:%u: %s", pos->file, pos->line, pos->column, err->message);
        memcpy(err->message, m, sizeof(m));
    }
    return -1;
}

static int import_flag(sq *s, ef_bytes ns, const ef_doc_flag *f, ef_arena *a, ef_store_err *err)
{
    ef_store_flag_in fin = {.key = f->key, .name = f->name, .description = f->description,
                            .enabled = f->enabled, .type = f->type, .metadata = f->metadata};
    /* the namespace was created or found above (import_ns) */
    if (sq_flag_insert_tx(s, ns, &fin, err)) return at(&f->pos, err);
    ef_bytes *vids = ef_arena_alloc(a, (f->nvariants + 1) * sizeof(*vids));
    if (!vids) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    for (size_t i = 0; i < f->nvariants; i++) {
        const ef_doc_variant *v = &f->variants[i];
        ef_store_variant_in vin = {.key = v->key, .name = v->name, .description = v->description,
                                   .attachment = v->attachment};
        /* the flag was created just above, from a checked document: no lookups (sqlite_int.h) */
        if (sq_variant_insert_tx(s, ns, f->key, &vin, a, &vids[i], err)) return at(&v->pos, err);
        if (v->is_default && sq_flag_set_default_tx(s, ns, f->key, vids[i], err))
            return at(&v->pos, err);
    }
    for (size_t i = 0; i < f->nrules; i++) {
        const ef_doc_rule *r = &f->rules[i];
        ef_store_rule_in rin = {.segment_keys = r->segment_keys,
                                .nsegment_keys = r->nsegments,
                                .op = r->op,
                                .rank = (int32_t)(i + 1)};
        ef_bytes rid;
        if (sq_rule_insert_tx(s, ns, f->key, &rin, a, &rid, err)) return at(&r->pos, err);
        for (size_t j = 0; j < r->ndistributions; j++) {
            const ef_doc_distribution *d = &r->distributions[j];
            ef_bytes vid = {"", 0};
            for (size_t k = 0; k < f->nvariants; k++)
                if (ef_bytes_eq(f->variants[k].key, d->variant_key)) vid = vids[k];
            if (vid.n == 0) {
                ef_store_fail(err, EF_STORE_NOT_FOUND, "variant \"%.*s\" not found for flag \"%.*s/%.*s\"",
                           (int)d->variant_key.n, d->variant_key.p, (int)ns.n, ns.p, (int)f->key.n,
                           f->key.p);
                return at(&d->pos, err);
            }
            ef_store_distribution_in din = {.variant_id = vid, .rollout = d->rollout};
            ef_bytes did;
            /* the rule was created above and the variant is one of this flag's */
            if (sq_distribution_insert_tx(s, ns, f->key, rid, &din, a, &did, err))
                return at(&d->pos, err);
        }
    }
    for (size_t i = 0; i < f->nrollouts; i++) {
        const ef_doc_rollout *r = &f->rollouts[i];
        ef_store_rollout_in rin = {.rank = (int32_t)(i + 1),
                                   .description = r->description,
                                   .type = r->type,
                                   .percentage = r->percentage,
                                   .value = r->value,
                                   .segment_keys = r->segment_keys,
                                   .nsegment_keys = r->nsegments,
                                   .op = r->op};
        ef_bytes id;
        if (sq_rollout_insert_tx(s, ns, f->key, &rin, a, &id, err)) return at(&r->pos, err);
    }
    return 0;
}

static int import_ns(sq *s, const ef_doc_namespace *d, const ef_store_import_opts *o, ef_arena *a,
                     ef_store_err *err)
{
    ef_bytes ns = sq_ns(d->key);
    bool exists;
    if (sq_ns_exists(s, ns, &exists, err)) return -1;
    if (!exists) {
        ef_store_ns_in nin = {.key = ns, .name = d->name.n ? d->name : ns,
                              .description = d->description};
        if (sq_ns_create_tx(s, &nin, err)) return at(&d->pos, err);
    }
    if (sq_wtx_touch(s, ns, err)) return -1;
    for (size_t i = 0; i < d->nsegments; i++) {
        const ef_doc_segment *g = &d->segments[i];
        if (o->skip_existing) {
            if (sq_segment_exists(s, ns, g->key, &exists, err)) return -1;
            if (exists) continue;
        }
        ef_store_segment_in gin = {.key = g->key, .name = g->name, .description = g->description,
                                   .match_type = g->match_type};
        if (sq_segment_create_tx(s, ns, &gin, err)) return at(&g->pos, err);
        for (size_t j = 0; j < g->nconstraints; j++) {
            const ef_doc_constraint *c = &g->constraints[j];
            ef_store_constraint_in cin = {.type = c->type, .property = c->property, .op = c->op,
                                          .value = c->value, .description = c->description};
            ef_bytes id;
            /* declarative values are stored as written (Flipt does not normalise them) */
            if (sq_constraint_create_tx(s, ns, g->key, &cin, false, a, &id, err))
                return at(&c->pos, err);
        }
    }
    for (size_t i = 0; i < d->nflags; i++) {
        const ef_doc_flag *f = &d->flags[i];
        if (o->skip_existing) {
            if (sq_flag_exists(s, ns, f->key, &exists, err)) return -1;
            if (exists) continue;
        }
        if (import_flag(s, ns, f, a, err)) return -1;
    }
    return 0;
}

static int bytes_cmp(const void *x, const void *y)
{
    const ef_bytes *a = x, *b = y;
    int c = memcmp(a->p, b->p, a->n < b->n ? a->n : b->n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

static bool has_key(const ef_bytes *sorted, size_t n, ef_bytes k)
{
    return bsearch(&k, sorted, n, sizeof(*sorted), bytes_cmp) != NULL;
}

/* Every segment a rule or rollout names is one of its namespace's segments in the document (the
 * declarative reader's rule too): what the foreign keys would otherwise check row by row, here
 * once per reference, so the import may insert with them off (sq_wtx_begin_bulk). */
static int refs_in_doc(const ef_doc *doc, ef_store_err *err)
{
    for (size_t i = 0; i < doc->nnamespaces; i++) {
        const ef_doc_namespace *d = &doc->namespaces[i];
        ef_bytes *keys = malloc((d->nsegments + 1) * sizeof(*keys));
        if (!keys) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        for (size_t j = 0; j < d->nsegments; j++) keys[j] = d->segments[j].key;
        qsort(keys, d->nsegments, sizeof(*keys), bytes_cmp);
        const ef_doc_flag *bad = NULL;
        ef_bytes missing = {"", 0};
        for (size_t j = 0; !bad && j < d->nflags; j++) {
            const ef_doc_flag *f = &d->flags[j];
            for (size_t r = 0; !bad && r < f->nrules; r++)
                for (size_t k = 0; !bad && k < f->rules[r].nsegments; k++)
                    if (!has_key(keys, d->nsegments, missing = f->rules[r].segment_keys[k])) bad = f;
            for (size_t r = 0; !bad && r < f->nrollouts; r++)
                for (size_t k = 0; !bad && k < f->rollouts[r].nsegments; k++)
                    if (!has_key(keys, d->nsegments, missing = f->rollouts[r].segment_keys[k]))
                        bad = f;
        }
        free(keys);
        if (bad) {
            ef_store_fail(err, EF_STORE_NOT_FOUND, "flag \"%.*s\": unknown segment \"%.*s\"",
                          (int)bad->key.n, bad->key.p, (int)missing.n, missing.p);
            return at(&bad->pos, err);
        }
    }
    return 0;
}

static int drop_all(sq *s, ef_store_err *err)
{
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_bytes *keys;
    size_t n;
    int rc = ns_keys(s, &a, &keys, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) rc = sq_wtx_touch(s, keys[i], err);
    ef_arena_free(&a);
    /* flags first: their rules hold the segment references that RESTRICT segment deletes */
    if (rc == 0)
        rc = sq_exec(s,
                     "DELETE FROM flags; DELETE FROM segments;"
                     " DELETE FROM namespaces WHERE protected = 0;",
                     err);
    return rc;
}

/* Sets the file's journal mode (outside a transaction, under the store's mutex); true when the
 * mode is now `mode`. SQLite leaves WAL mode only when no other connection has the file open, and
 * says which mode it kept. */
static bool journal_mode_set(sq *s, const char *mode)
{
    char q[48];
    snprintf(q, sizeof(q), "PRAGMA journal_mode=%s", mode);
    sqlite3_stmt *st = NULL;
    bool now = sqlite3_prepare_v2(s->db, q, -1, &st, NULL) == SQLITE_OK &&
               sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) &&
               strcasecmp((const char *)sqlite3_column_text(st, 0), mode) == 0;
    sqlite3_finalize(st);
    return now;
}

/* An import writes thousands of pages in one transaction, and in WAL mode each is written twice:
 * into the WAL at COMMIT, then into the database file by the checkpoint that the same COMMIT runs
 * (SQLite's automatic one, past 1,000 pages), each pass ending in an fsync. For 10,000 flags that
 * was half of the import (strace: 8,474 pages, 34.7 MB, read back and written again). Under a
 * rollback journal a page that held nothing before (most of an import) is written once, into the
 * file; only pages that held data (a replacing import's) are copied into the journal first. So the
 * import's transaction runs with a rollback journal and the file goes back to WAL mode right after.
 *
 * TRUNCATE, not DELETE: with synchronous=FULL its commit truncates the journal and syncs it,
 * where DELETE's unlink is durable only once the directory is synced (synchronous=EXTRA). Killed
 * before COMMIT, the file keeps a hot journal that the next open rolls back, then sets WAL mode
 * again as every writer's open does (tests/crash/crash_store.c kills imports). Another
 * connection to the file (an `edgeflag export` beside) keeps the file in WAL mode and the import
 * runs there, as before; a reader that opens during the import leaves the journal mode alone
 * and reads the state before it (sq_migrate, ef_sqlite_open). A follower's store never imports,
 * and its checkpoint connection would keep WAL mode anyway. */
static bool import_journal_begin(sq *s)
{
    if (!sq_is_file(s->path) || s->opts.no_lock || s->opts.follower) return false;
    pthread_mutex_lock(&s->mu);
    bool changed = journal_mode_set(s, "TRUNCATE");
    pthread_mutex_unlock(&s->mu);
    return changed;
}

/* Back to WAL mode. It fails while a reader that opened during the import still has the file;
 * the next writer's open sets it then. Takes the store's mutex. */
static void import_journal_end(sq *s)
{
    pthread_mutex_lock(&s->mu);
    if (!journal_mode_set(s, "WAL"))
        ef_log(EF_LOG_WARN, "sqlite: cannot return to WAL mode after an import; the next open will",
               "database", s->path, "error", sqlite3_errmsg(s->db), NULL);
    pthread_mutex_unlock(&s->mu);
}

static int import_doc(void *h, const ef_doc *doc, const ef_store_import_opts *o, ef_store_err *err)
{
    sq *s = h;
    static const ef_store_import_opts none = {false, false};
    if (!o) o = &none;
    bool rollback_journal = import_journal_begin(s);
    /* An import that drops nothing only inserts, every reference checked above: its rows need no
     * foreign-key probes. A dropping one deletes first, which needs their ON DELETE actions. */
    int rc = o->drop ? sq_wtx_begin(s, err) : refs_in_doc(doc, err) || sq_wtx_begin_bulk(s, err);
    if (rc == 0) {
        sq_cache_bulk(s);
        ef_arena a;
        ef_arena_init(&a, 65536);
        rc = o->drop ? drop_all(s, err) : 0;
        /* from here the import only inserts: its rows go into the entry straight from their tables */
        if (rc == 0) rc = sq_capture_pause(s, err);
        for (size_t i = 0; rc == 0 && i < doc->nnamespaces; i++) {
            rc = import_ns(s, &doc->namespaces[i], o, &a, err);
            ef_arena_reset(&a);
        }
        ef_arena_free(&a);
        rc = sq_wtx_end(s, rc, err); /* releases the writer */
        sq_bulk_done(s);
    }
    if (rollback_journal) import_journal_end(s);
    return rc ? -1 : 0;
}

void sq_fill_ops_doc(ef_store_ops *o)
{
    o->export_doc = export_doc;
    o->import_doc = import_doc;
    o->snapshot_doc = snapshot_doc;
}
