/*
 * sqlite_segments.c - segments and their constraints in the SQLite store.
 *
 * Constraints are checked as Flipt checks them at create/update (operator per type, values where
 * required, isoneof arrays, datetimes normalised to UTC) before they are stored, so the engine
 * never meets an operator it cannot read. A segment still used by a rule or rollout cannot be
 * deleted: removing it would silently change what the rule matches.
 */
#include <string.h>

#include "store/sqlite_int.h"

#define SEG_COLS "namespace_key, key, name, description, match_type, created_at, updated_at"
#define CON_COLS                                                                                   \
    "id, type, property, operator, value, description, created_at, updated_at, segment_key"

static int not_found_segment(ef_store_err *err, ef_bytes ns, ef_bytes key)
{
    return ef_store_fail(err, EF_STORE_NOT_FOUND, "segment \"%.*s/%.*s\" not found", (int)ns.n, ns.p,
                      (int)key.n, key.p);
}

int sq_segment_exists(sq *s, ef_bytes ns, ef_bytes key, bool *exists, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_SEG_EXISTS,
                               "SELECT 1 FROM segments WHERE namespace_key = ? AND key = ?", err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, key);
    int rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "segment");
}

static void constraint_row(sqlite3_stmt *st, ef_arena *a, ef_doc_constraint *c)
{
    memset(c, 0, sizeof(*c));
    c->meta.id = sq_col_bytes(st, 0, a);
    c->type = (ef_doc_ctype)sqlite3_column_int(st, 1);
    c->property = sq_col_bytes(st, 2, a);
    c->op = sq_col_bytes(st, 3, a);
    c->value = sq_col_bytes(st, 4, a);
    c->description = sq_col_bytes(st, 5, a);
    c->meta.created_ns = sqlite3_column_int64(st, 6);
    c->meta.updated_ns = sqlite3_column_int64(st, 7);
}

int sq_segment_read_row(sq *s, sqlite3_stmt *st, ef_arena *a, ef_doc_segment *g,
                        ef_store_err *err)
{
    memset(g, 0, sizeof(*g));
    ef_bytes ns = sq_col_bytes(st, 0, a);
    g->key = sq_col_bytes(st, 1, a);
    g->name = sq_col_bytes(st, 2, a);
    g->description = sq_col_bytes(st, 3, a);
    g->match_type = sqlite3_column_int(st, 4) == 1 ? EF_DOC_MATCH_ANY : EF_DOC_MATCH_ALL;
    g->meta.created_ns = sqlite3_column_int64(st, 5);
    g->meta.updated_ns = sqlite3_column_int64(st, 6);
    sqlite3_stmt *cs = sq_stmt(s, SL_CON_BY_SEG,
                               "SELECT " CON_COLS " FROM constraints WHERE namespace_key = ? AND"
                               " segment_key = ? ORDER BY created_at, rowid",
                               err);
    if (!cs) return -1;
    sq_bind_bytes(cs, 1, ns);
    sq_bind_bytes(cs, 2, g->key);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(cs)) == SQLITE_ROW) {
        g->constraints = sq_grow(a, g->constraints, g->nconstraints, &cap, sizeof(*g->constraints));
        if (!g->constraints) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        constraint_row(cs, a, &g->constraints[g->nconstraints++]);
    }
    sqlite3_reset(cs);
    return rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "constraints");
}

int sq_segment_read(sq *s, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_segment *out,
                    ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(
        s, SL_SEG_GET, "SELECT " SEG_COLS " FROM segments WHERE namespace_key = ? AND key = ?", err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return not_found_segment(err, ns, key);
    if (rc != SQLITE_ROW) return sq_db_err(s, err, "segment");
    rc = sq_segment_read_row(s, st, a, out, err);
    sqlite3_reset(st);
    return rc;
}

static int segment_validate(const ef_store_segment_in *in, bool create, ef_store_err *err)
{
    if (in->key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    if (create && !ef_key_valid(in->key))
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: contains invalid characters");
    if (in->name.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field name: must not be empty");
    if (in->match_type != EF_DOC_MATCH_ALL && in->match_type != EF_DOC_MATCH_ANY)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field matchType: unknown match type %d",
                          (int)in->match_type);
    return 0;
}

int sq_segment_create_tx(sq *s, ef_bytes ns, const ef_store_segment_in *in, ef_store_err *err)
{
    if (segment_validate(in, true, err)) return -1;
    bool exists;
    if (sq_ns_exists(s, ns, &exists, err)) return -1;
    if (!exists)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "namespace \"%.*s\" not found", (int)ns.n, ns.p);
    if (sq_segment_exists(s, ns, in->key, &exists, err)) return -1;
    if (exists)
        return ef_store_fail(err, EF_STORE_NOT_UNIQUE, "segment \"%.*s/%.*s\" is not unique",
                          (int)ns.n, ns.p, (int)in->key.n, in->key.p);
    sqlite3_stmt *st =
        sq_stmt(s, SL_SEG_INSERT, "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)", err);
    if (!st) return -1;
    int64_t now = sq_now(s);
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, in->key);
    sq_bind_bytes(st, 3, in->name);
    sq_bind_bytes(st, 4, in->description);
    sqlite3_bind_int(st, 5, (int)in->match_type);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, now);
    if (sq_step_done(s, st, "create segment", err)) return -1;
    return sq_wtx_touch(s, ns, err);
}

static int segment_create(void *h, ef_bytes ns, const ef_store_segment_in *in, ef_arena *a,
                          ef_doc_segment *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_segment_create_tx(s, ns, in, err) || sq_segment_read(s, ns, in->key, a, out, err), err);
}

static int segment_get(void *h, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_segment *out,
                       ef_store_err *err)
{
    sq *s = h;
    if (key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    sq_lock(s);
    int rc = sq_segment_read(s, sq_ns(ns), key, a, out, err);
    sq_unlock(s);
    return rc;
}

static int segment_read(sq *s, sqlite3_stmt *st, ef_arena *a, void *elem, ef_store_err *err)
{
    return sq_segment_read_row(s, st, a, elem, err);
}

static ef_bytes segment_key(const void *elem)
{
    return ((const ef_doc_segment *)elem)->key;
}

static int segment_list(void *h, ef_bytes ns, const ef_store_page *p, ef_arena *a,
                        ef_doc_segment **out, size_t *n, ef_store_page_out *po, ef_store_err *err)
{
    ns = sq_ns(ns);
    sq_list l = {SL_SEG_COUNT, "SELECT COUNT(*) FROM segments WHERE namespace_key = ?",
                 SL_SEG_LIST,
                 "SELECT " SEG_COLS " FROM segments WHERE namespace_key = ?"
                 " ORDER BY created_at, rowid LIMIT ? OFFSET ?",
                 &ns, 1, sizeof(**out), segment_read, segment_key, "list segments", 0};
    return sq_list_page(h, &l, p, a, (void **)out, n, po, err);
}

static int segment_update(void *h, ef_bytes ns, const ef_store_segment_in *in, ef_arena *a,
                          ef_doc_segment *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (segment_validate(in, false, err)) return -1;
    if (sq_wtx_begin(s, err)) return -1;
    sqlite3_stmt *st = sq_stmt(s, SL_SEG_UPDATE,
                               "UPDATE segments SET name = ?, description = ?, match_type = ?,"
                               " updated_at = ? WHERE namespace_key = ? AND key = ?",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, in->name);
    sq_bind_bytes(st, 2, in->description);
    sqlite3_bind_int(st, 3, (int)in->match_type);
    sqlite3_bind_int64(st, 4, sq_now(s));
    sq_bind_bytes(st, 5, ns);
    sq_bind_bytes(st, 6, in->key);
    if (sq_step_done(s, st, "update segment", err)) goto fail;
    if (sqlite3_changes(s->db) == 0) {
        not_found_segment(err, ns, in->key);
        goto fail;
    }
    if (sq_wtx_touch(s, ns, err) || sq_segment_read(s, ns, in->key, a, out, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

int sq_segment_delete_tx(sq *s, ef_bytes ns, ef_bytes key, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_SEG_IN_USE,
                               "SELECT (SELECT COUNT(*) FROM rule_segments WHERE namespace_key = ?1"
                               " AND segment_key = ?2) + (SELECT COUNT(*) FROM rollout_segments"
                               " WHERE namespace_key = ?1 AND segment_key = ?2)",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, key);
    if (sqlite3_step(st) != SQLITE_ROW) return sq_db_err(s, err, "delete segment");
    bool in_use = sqlite3_column_int64(st, 0) > 0;
    sqlite3_reset(st); /* a statement left mid-step would keep its read open */
    if (in_use)
        return ef_store_fail(err, EF_STORE_INVALID, "segment \"%.*s/%.*s\" is in use", (int)ns.n, ns.p,
                             (int)key.n, key.p);
    st = sq_stmt(s, SL_SEG_DELETE, "DELETE FROM segments WHERE namespace_key = ? AND key = ?", err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, key);
    if (sq_step_done(s, st, "delete segment", err)) return -1;
    return sqlite3_changes(s->db) ? sq_wtx_touch(s, ns, err) : 0;
}

static int segment_delete(void *h, ef_bytes ns, ef_bytes key, ef_store_err *err)
{
    sq *s = h;
    if (key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_segment_delete_tx(s, sq_ns(ns), key, err), err);
}

/* ---- constraints ---- */

static int constraint_read(sq *s, ef_bytes ns, ef_bytes seg, ef_bytes id, ef_arena *a,
                           ef_doc_constraint *out, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_CON_GET,
                               "SELECT " CON_COLS " FROM constraints WHERE id = ? AND"
                               " namespace_key = ? AND segment_key = ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, seg);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "constraint \"%.*s\" not found", (int)id.n, id.p);
    if (rc != SQLITE_ROW) return sq_db_err(s, err, "constraint");
    constraint_row(st, a, out);
    sqlite3_reset(st);
    return 0;
}

int sq_constraint_create_tx(sq *s, ef_bytes ns, ef_bytes seg, const ef_store_constraint_in *in,
                            bool normalise, ef_arena *a, ef_bytes *id, ef_store_err *err)
{
    if (seg.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field segmentKey: must not be empty");
    ef_bytes op, value;
    if (sq_constraint_check(in, normalise, a, &op, &value, err)) return -1;
    bool exists;
    if (sq_segment_exists(s, ns, seg, &exists, err)) return -1;
    if (!exists) return not_found_segment(err, ns, seg);
    sq_new_id(a, id);
    sqlite3_stmt *st = sq_stmt(s, SL_CON_INSERT,
                               "INSERT INTO constraints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
    if (!st) return -1;
    int64_t now = sq_now(s);
    sq_bind_bytes(st, 1, *id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, seg);
    sqlite3_bind_int(st, 4, (int)in->type);
    sq_bind_bytes(st, 5, in->property);
    sq_bind_bytes(st, 6, op);
    sq_bind_bytes(st, 7, value);
    sq_bind_bytes(st, 8, in->description);
    sqlite3_bind_int64(st, 9, now);
    sqlite3_bind_int64(st, 10, now);
    if (sq_step_done(s, st, "create constraint", err)) return -1;
    return sq_wtx_touch(s, ns, err);
}

static int constraint_create(void *h, ef_bytes ns, ef_bytes seg, const ef_store_constraint_in *in,
                             ef_arena *a, ef_doc_constraint *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    ef_bytes id;
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_constraint_create_tx(s, ns, seg, in, true, a, &id, err) ||
                      constraint_read(s, ns, seg, id, a, out, err), err);
}

static int constraint_update(void *h, ef_bytes ns, ef_bytes seg, ef_bytes id,
                             const ef_store_constraint_in *in, ef_arena *a, ef_doc_constraint *out,
                             ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (id.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field id: must not be empty");
    if (seg.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field segmentKey: must not be empty");
    ef_bytes op, value;
    if (sq_constraint_check(in, true, a, &op, &value, err)) return -1;
    if (sq_wtx_begin(s, err)) return -1;
    if (constraint_read(s, ns, seg, id, a, out, err)) goto fail;
    sqlite3_stmt *st = sq_stmt(s, SL_CON_UPDATE,
                               "UPDATE constraints SET type = ?, property = ?, operator = ?,"
                               " value = ?, description = ?, updated_at = ? WHERE id = ?",
                               err);
    if (!st) goto fail;
    sqlite3_bind_int(st, 1, (int)in->type);
    sq_bind_bytes(st, 2, in->property);
    sq_bind_bytes(st, 3, op);
    sq_bind_bytes(st, 4, value);
    sq_bind_bytes(st, 5, in->description);
    sqlite3_bind_int64(st, 6, sq_now(s));
    sq_bind_bytes(st, 7, id);
    if (sq_step_done(s, st, "update constraint", err)) goto fail;
    if (sq_wtx_touch(s, ns, err) || constraint_read(s, ns, seg, id, a, out, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

static int constraint_delete(void *h, ef_bytes ns, ef_bytes seg, ef_bytes id, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (id.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field id: must not be empty");
    if (seg.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field segmentKey: must not be empty");
    if (sq_wtx_begin(s, err)) return -1;
    sqlite3_stmt *st = sq_stmt(s, SL_CON_DELETE,
                               "DELETE FROM constraints WHERE id = ? AND namespace_key = ?"
                               " AND segment_key = ?",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, seg);
    if (sq_step_done(s, st, "delete constraint", err)) goto fail;
    if (sqlite3_changes(s->db) && sq_wtx_touch(s, ns, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

void sq_fill_ops_segments(ef_store_ops *o)
{
    o->segment_create = segment_create;
    o->segment_get = segment_get;
    o->segment_list = segment_list;
    o->segment_update = segment_update;
    o->segment_delete = segment_delete;
    o->constraint_create = constraint_create;
    o->constraint_update = constraint_update;
    o->constraint_delete = constraint_delete;
}
