/*
 * sqlite_ns.c - namespaces in the SQLite store: create, get, list, update, delete.
 *
 * The default namespace is protected and a namespace that still has flags cannot be deleted
 * (Flipt v1's rules). Deleting a namespace removes its segments with it; each removed row is in
 * the change log because the capture triggers see cascaded deletes too.
 */
#include <string.h>

#include "store/sqlite_int.h"

#define NS_COLS "key, name, description, protected, created_at, updated_at"

static int ns_row(sqlite3_stmt *st, ef_arena *a, ef_doc_namespace *out)
{
    memset(out, 0, sizeof(*out));
    out->key = sq_col_bytes(st, 0, a);
    out->name = sq_col_bytes(st, 1, a);
    out->description = sq_col_bytes(st, 2, a);
    out->protected_ = sqlite3_column_int(st, 3) != 0;
    out->meta.created_ns = sqlite3_column_int64(st, 4);
    out->meta.updated_ns = sqlite3_column_int64(st, 5);
    return 0;
}

int sq_ns_exists(sq *s, ef_bytes key, bool *exists, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_NS_EXISTS, "SELECT 1 FROM namespaces WHERE key = ?", err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, key);
    int rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "namespace");
}

int sq_ns_read(sq *s, ef_bytes key, ef_arena *a, ef_doc_namespace *out, ef_store_err *err)
{
    sqlite3_stmt *st =
        sq_stmt(s, SL_NS_GET, "SELECT " NS_COLS " FROM namespaces WHERE key = ?", err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "namespace \"%.*s\" not found", (int)key.n,
                          key.p);
    if (rc != SQLITE_ROW) return sq_db_err(s, err, "namespace");
    ns_row(st, a, out);
    sqlite3_reset(st);
    return 0;
}

static int ns_validate(const ef_store_ns_in *in, bool create, ef_store_err *err)
{
    if (in->key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    if (create && !ef_key_valid(in->key))
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: contains invalid characters");
    if (in->name.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field name: must not be empty");
    return 0;
}

int sq_ns_create_tx(sq *s, const ef_store_ns_in *in, ef_store_err *err)
{
    if (ns_validate(in, true, err)) return -1;
    bool exists;
    if (sq_ns_exists(s, in->key, &exists, err)) return -1;
    if (exists)
        return ef_store_fail(err, EF_STORE_NOT_UNIQUE, "namespace \"%.*s\" is not unique",
                          (int)in->key.n, in->key.p);
    sqlite3_stmt *st = sq_stmt(s, SL_NS_INSERT, "INSERT INTO namespaces VALUES (?, ?, ?, 0, ?, ?)",
                               err);
    if (!st) return -1;
    int64_t now = sq_now(s);
    sq_bind_bytes(st, 1, in->key);
    sq_bind_bytes(st, 2, in->name);
    sq_bind_bytes(st, 3, in->description);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now);
    if (sq_step_done(s, st, "create namespace", err)) return -1;
    return sq_wtx_touch(s, in->key, err);
}

static int ns_create(void *h, const ef_store_ns_in *in, ef_arena *a, ef_doc_namespace *out,
                     ef_store_err *err)
{
    sq *s = h;
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_ns_create_tx(s, in, err) || sq_ns_read(s, in->key, a, out, err), err);
}

static int ns_get(void *h, ef_bytes key, ef_arena *a, ef_doc_namespace *out, ef_store_err *err)
{
    sq *s = h;
    if (key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    sq_lock(s);
    int rc = sq_ns_read(s, key, a, out, err);
    sq_unlock(s);
    return rc;
}

static int ns_read(sq *s, sqlite3_stmt *st, ef_arena *a, void *elem, ef_store_err *err)
{
    (void)s;
    (void)err;
    ns_row(st, a, elem);
    return 0;
}

static ef_bytes ns_key(const void *elem)
{
    return ((const ef_doc_namespace *)elem)->key;
}

static int ns_list(void *h, const ef_store_page *p, ef_arena *a, ef_doc_namespace **out, size_t *n,
                   ef_store_page_out *po, ef_store_err *err)
{
    sq_list l = {SL_NS_COUNT, "SELECT COUNT(*) FROM namespaces", SL_NS_LIST,
                 "SELECT " NS_COLS " FROM namespaces ORDER BY created_at, rowid LIMIT ? OFFSET ?",
                 NULL, 0, sizeof(**out), ns_read, ns_key, "list namespaces", SQ_PAGE_LIMIT_OPTIONAL};
    return sq_list_page(h, &l, p, a, (void **)out, n, po, err);
}

static int ns_update(void *h, const ef_store_ns_in *in, ef_arena *a, ef_doc_namespace *out,
                     ef_store_err *err)
{
    sq *s = h;
    if (ns_validate(in, false, err)) return -1;
    if (sq_wtx_begin(s, err)) return -1;
    sqlite3_stmt *st = sq_stmt(s, SL_NS_UPDATE,
                               "UPDATE namespaces SET name = ?, description = ?, updated_at = ?"
                               " WHERE key = ?",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, in->name);
    sq_bind_bytes(st, 2, in->description);
    sqlite3_bind_int64(st, 3, sq_now(s));
    sq_bind_bytes(st, 4, in->key);
    if (sq_step_done(s, st, "update namespace", err)) goto fail;
    if (sqlite3_changes(s->db) == 0) {
        ef_store_fail(err, EF_STORE_NOT_FOUND, "namespace \"%.*s\" not found", (int)in->key.n,
                   in->key.p);
        goto fail;
    }
    if (sq_wtx_touch(s, in->key, err) || sq_ns_read(s, in->key, a, out, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

static int ns_delete(void *h, ef_bytes key, bool force, ef_store_err *err)
{
    sq *s = h;
    if (key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    if (sq_wtx_begin(s, err)) return -1;
    ef_arena a;
    ef_arena_init(&a, 512);
    ef_doc_namespace ns;
    ef_store_err nf;
    if (sq_ns_read(s, key, &a, &ns, &nf)) {
        ef_arena_free(&a);
        if (nf.code != EF_STORE_NOT_FOUND) {
            *err = nf;
            goto fail;
        }
        /* Flipt answers a delete of a missing namespace with success */
        return sq_wtx_commit(s, err);
    }
    ef_arena_free(&a);
    if (ns.protected_) {
        ef_store_fail(err, EF_STORE_INVALID, "namespace \"%.*s\" is protected", (int)key.n, key.p);
        goto fail;
    }
    sqlite3_stmt *st =
        sq_stmt(s, SL_NS_FLAGS, "SELECT COUNT(*) FROM flags WHERE namespace_key = ?", err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, key);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sq_db_err(s, err, "delete namespace");
        goto fail;
    }
    if (!force && sqlite3_column_int64(st, 0) > 0) {
        ef_store_fail(err, EF_STORE_INVALID,
                   "namespace \"%.*s\" cannot be deleted; flags must be deleted first", (int)key.n,
                   key.p);
        goto fail;
    }
    sqlite3_reset(st);
    if (force) { /* the flags go first (their variants, rules and rollouts cascade) */
        st = sq_stmt(s, SL_NS_FLAGS_ALL, "DELETE FROM flags WHERE namespace_key = ?", err);
        if (!st) goto fail;
        sq_bind_bytes(st, 1, key);
        if (sq_step_done(s, st, "delete namespace", err)) goto fail;
    }
    /* segments go explicitly (their constraints cascade and are captured by the triggers) */
    st = sq_stmt(s, SL_SEG_ALL, "DELETE FROM segments WHERE namespace_key = ?", err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, key);
    if (sq_step_done(s, st, "delete namespace", err)) goto fail;
    st = sq_stmt(s, SL_NS_DELETE, "DELETE FROM namespaces WHERE key = ?", err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, key);
    if (sq_step_done(s, st, "delete namespace", err)) goto fail;
    if (sq_wtx_touch(s, key, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

void sq_fill_ops_ns(ef_store_ops *o)
{
    o->ns_create = ns_create;
    o->ns_get = ns_get;
    o->ns_list = ns_list;
    o->ns_update = ns_update;
    o->ns_delete = ns_delete;
}
