/*
 * sqlite_tokens.c - client tokens in the SQLite store. Only hashes are stored: a token given to a
 * caller once at creation is never written anywhere. Token writes are logged like any other write
 * (no namespace is touched, so no snapshot is recompiled).
 */
#include <string.h>

#include "store/sqlite_int.h"

#define TOK_COLS "id, hashed_token, name, description, namespace_key, metadata, expires_at, created_at, updated_at"

static void read_row(sqlite3_stmt *st, ef_arena *a, ef_store_token *t)
{
    t->id = sq_col_bytes(st, 0, a);
    t->hashed = sq_col_bytes(st, 1, a);
    t->name = sq_col_bytes(st, 2, a);
    t->description = sq_col_bytes(st, 3, a);
    t->namespace_key = sq_col_bytes(st, 4, a);
    t->metadata = sq_col_bytes(st, 5, a);
    t->expires_ns = sqlite3_column_int64(st, 6);
    t->created_ns = sqlite3_column_int64(st, 7);
    t->updated_ns = sqlite3_column_int64(st, 8);
}

static int token_create(void *h, const ef_store_token *in, ef_arena *a, ef_store_token *out,
                        ef_store_err *err)
{
    sq *s = h;
    if (in->hashed.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field token: must not be empty");
    if (in->name.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field name: must not be empty");
    if (in->namespace_key.n && !ef_key_valid(in->namespace_key))
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field namespaceKey: contains invalid characters");
    ef_bytes metadata = {"", 0};
    if (in->metadata.n && sq_json_compact(in->metadata, "metadata", 10000, true, a, &metadata, err))
        return -1;
    if (sq_wtx_begin(s, err)) return -1;
    if (in->namespace_key.n) {
        bool exists;
        if (sq_ns_exists(s, in->namespace_key, &exists, err)) goto fail;
        if (!exists) {
            ef_store_fail(err, EF_STORE_NOT_FOUND, "namespace \"%.*s\" not found", (int)in->namespace_key.n,
                       in->namespace_key.p);
            goto fail;
        }
    }
    *out = *in;
    out->metadata = metadata;
    sq_new_id(a, &out->id);
    out->created_ns = out->updated_ns = sq_now(s);
    sqlite3_stmt *st = sq_stmt(s, SL_TOK_INSERT, "INSERT INTO tokens(" TOK_COLS ") VALUES (?,?,?,?,?,?,?,?,?)", err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, out->id);
    sq_bind_bytes(st, 2, out->hashed);
    sq_bind_bytes(st, 3, out->name);
    sq_bind_bytes(st, 4, out->description);
    sq_bind_opt(st, 5, out->namespace_key);
    sq_bind_opt(st, 6, out->metadata);
    if (out->expires_ns)
        sqlite3_bind_int64(st, 7, out->expires_ns);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int64(st, 8, out->created_ns);
    sqlite3_bind_int64(st, 9, out->updated_ns);
    if (sqlite3_step(st) != SQLITE_DONE) {
        if ((sqlite3_extended_errcode(s->db) & 0xff) == SQLITE_CONSTRAINT)
            ef_store_fail(err, EF_STORE_NOT_UNIQUE, "token is not unique");
        else
            sq_db_err(s, err, "create token");
        goto fail;
    }
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

static int token_read(sq *s, sqlite3_stmt *st, ef_arena *a, void *elem, ef_store_err *err)
{
    (void)s;
    (void)err;
    read_row(st, a, elem);
    return 0;
}

static ef_bytes token_key(const void *elem)
{
    return ((const ef_store_token *)elem)->id;
}

static int token_list(void *h, const ef_store_page *p, ef_arena *a, ef_store_token **out, size_t *n,
                      ef_store_page_out *po, ef_store_err *err)
{
    sq_list l = {SL_TOK_COUNT, "SELECT COUNT(*) FROM tokens", SL_TOK_LIST,
                 "SELECT " TOK_COLS " FROM tokens ORDER BY created_at, id LIMIT ? OFFSET ?",
                 NULL, 0, sizeof(**out), token_read, token_key, "list tokens", 0};
    return sq_list_page(h, &l, p, a, (void **)out, n, po, err);
}

/* Runs a prepared write on one token inside the write transaction sq_wtx_begin opened: commits
 * when it changed a row, rolls back with NOT_FOUND when the id names no token. */
static int token_finish(sq *s, sqlite3_stmt *st, ef_bytes id, const char *what, ef_store_err *err)
{
    if (!st || sq_step_done(s, st, what, err)) goto fail;
    if (sqlite3_changes(s->db) == 0) {
        ef_store_fail(err, EF_STORE_NOT_FOUND, "authentication \"%.*s\" not found", (int)id.n, id.p);
        goto fail;
    }
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

static int token_delete(void *h, ef_bytes id, ef_store_err *err)
{
    sq *s = h;
    if (sq_wtx_begin(s, err)) return -1;
    sqlite3_stmt *st = sq_stmt(s, SL_TOK_DELETE, "DELETE FROM tokens WHERE id = ?", err);
    if (st) sq_bind_bytes(st, 1, id);
    return token_finish(s, st, id, "delete token", err);
}

static int token_expire(void *h, ef_bytes id, int64_t expires_ns, ef_store_err *err)
{
    sq *s = h;
    if (sq_wtx_begin(s, err)) return -1;
    sqlite3_stmt *st = sq_stmt(s, SL_TOK_EXPIRE, "UPDATE tokens SET expires_at = ?, updated_at = ? WHERE id = ?", err);
    if (st) {
        sqlite3_bind_int64(st, 1, expires_ns);
        sqlite3_bind_int64(st, 2, sq_now(s));
        sq_bind_bytes(st, 3, id);
    }
    return token_finish(s, st, id, "expire token", err);
}

void sq_fill_ops_tokens(ef_store_ops *o)
{
    o->token_expire = token_expire;
    o->token_create = token_create;
    o->token_list = token_list;
    o->token_delete = token_delete;
}
