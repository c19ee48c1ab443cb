/*
 * sqlite_flags.c - flags and their variants in the SQLite store.
 *
 * A flag's type is fixed at creation; its default variant must be one of its own variants; variant
 * attachments are valid JSON of at most 10,000 bytes, stored compacted as Flipt does. Deleting a
 * flag removes its variants, rules, distributions and rollouts; each removed row reaches the change
 * log through the capture triggers (cascades included), never silently.
 */
#include <string.h>

#include "store/sqlite_int.h"

#define FLAG_COLS                                                                                  \
    "namespace_key, key, name, description, enabled, type, default_variant_id, metadata,"         \
    " created_at, updated_at"
#define VAR_COLS "id, key, name, description, attachment, created_at, updated_at"

static int not_found_flag(ef_store_err *err, ef_bytes ns, ef_bytes key)
{
    return ef_store_fail(err, EF_STORE_NOT_FOUND, "flag \"%.*s/%.*s\" not found", (int)ns.n, ns.p,
                      (int)key.n, key.p);
}

int sq_flag_exists(sq *s, ef_bytes ns, ef_bytes key, bool *exists, ef_store_err *err)
{
    /* the key index alone answers it: no table row read (imports ask this for every rule) */
    sqlite3_stmt *st =
        sq_stmt(s, SL_FLAG_EXISTS, "SELECT 1 FROM flags WHERE namespace_key = ? AND key = ?", err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, key);
    int rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "flag");
}

static void variant_row(sqlite3_stmt *st, ef_arena *a, ef_doc_variant *v)
{
    memset(v, 0, sizeof(*v));
    v->meta.id = sq_col_bytes(st, 0, a);
    v->key = sq_col_bytes(st, 1, a);
    v->name = sq_col_bytes(st, 2, a);
    v->description = sq_col_bytes(st, 3, a);
    v->attachment = sq_col_bytes(st, 4, a);
    v->meta.created_ns = sqlite3_column_int64(st, 5);
    v->meta.updated_ns = sqlite3_column_int64(st, 6);
}

int sq_flag_read_row(sq *s, sqlite3_stmt *st, ef_arena *a, ef_doc_flag *f, ef_store_err *err)
{
    memset(f, 0, sizeof(*f));
    ef_bytes ns = sq_col_bytes(st, 0, a);
    f->key = sq_col_bytes(st, 1, a);
    f->name = sq_col_bytes(st, 2, a);
    f->description = sq_col_bytes(st, 3, a);
    f->enabled = sqlite3_column_int(st, 4) != 0;
    f->type = sqlite3_column_int(st, 5) == 1 ? EF_DOC_BOOLEAN_FLAG : EF_DOC_VARIANT_FLAG;
    ef_bytes def = sq_col_bytes(st, 6, a);
    f->metadata = sq_col_bytes(st, 7, a);
    f->meta.created_ns = sqlite3_column_int64(st, 8);
    f->meta.updated_ns = sqlite3_column_int64(st, 9);
    /* in (created_at, rowid) order, put here (sq_okey): read in the order of the flag's unique
     * key index, which every variant insert maintains anyway */
    sqlite3_stmt *vs = sq_stmt(s, SL_VAR_BY_FLAG,
                               "SELECT " VAR_COLS ", rowid FROM variants WHERE namespace_key = ? AND"
                               " flag_key = ?",
                               err);
    if (!vs) return -1;
    sq_bind_bytes(vs, 1, ns);
    sq_bind_bytes(vs, 2, f->key);
    size_t cap = 0, kcap = 0;
    sq_okey *keys = NULL;
    int rc;
    while ((rc = sqlite3_step(vs)) == SQLITE_ROW) {
        f->variants = sq_grow_from(a, f->variants, f->nvariants, &cap, sizeof(*f->variants), 2);
        if (!f->variants ||
            !sq_okey_put(a, &keys, f->nvariants, &kcap, sqlite3_column_int64(vs, 5),
                         sqlite3_column_int64(vs, 7), 0, 0)) {
            sqlite3_reset(vs);
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        }
        ef_doc_variant *v = &f->variants[f->nvariants++];
        variant_row(vs, a, v);
        v->is_default = def.n && ef_bytes_eq(def, v->meta.id);
    }
    sqlite3_reset(vs);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "variants");
    if (sq_order_children(f->variants, sizeof(*f->variants), keys, f->nvariants, a))
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    return 0;
}

int sq_flag_read(sq *s, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_flag *out,
                 ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_FLAG_GET,
                               "SELECT " FLAG_COLS " FROM flags WHERE namespace_key = ? AND key = ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) return not_found_flag(err, ns, key);
    if (rc != SQLITE_ROW) return sq_db_err(s, err, "flag");
    rc = sq_flag_read_row(s, st, a, out, err);
    sqlite3_reset(st);
    return rc;
}

static int flag_validate(const ef_store_flag_in *in, bool create, ef_store_err *err)
{
    if (in->key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    if (create && !ef_key_valid(in->key))
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: contains invalid characters");
    if (in->name.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field name: must not be empty");
    if (create && in->type != EF_DOC_VARIANT_FLAG && in->type != EF_DOC_BOOLEAN_FLAG)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field type: unknown flag type %d",
                          (int)in->type);
    return 0;
}

/* lookups: the namespace and the key are looked up first (an API write); an import, which
 * created or found the namespace itself, lets the primary key find a taken key (sqlite_int.h) */
static int flag_insert(sq *s, ef_bytes ns, const ef_store_flag_in *in, bool lookups,
                       ef_store_err *err)
{
    ns = sq_ns(ns);
    if (flag_validate(in, true, err)) return -1;
    ef_arena a;
    ef_arena_init(&a, 1024);
    int rc = -1;
    ef_bytes meta;
    bool exists;
    if (sq_json_compact(in->metadata, "metadata", 0, true, &a, &meta, err)) goto out;
    if (lookups) {
        if (sq_ns_exists(s, ns, &exists, err)) goto out;
        if (!exists) {
            ef_store_fail(err, EF_STORE_NOT_FOUND, "namespace \"%.*s\" not found", (int)ns.n, ns.p);
            goto out;
        }
        if (sq_flag_exists(s, ns, in->key, &exists, err)) goto out;
        if (exists) goto taken;
    }
    sqlite3_stmt *st = sq_stmt(s, SL_FLAG_INSERT,
                               "INSERT INTO flags VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)", err);
    if (!st) goto out;
    int64_t now = sq_now(s);
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, in->key);
    sq_bind_bytes(st, 3, in->name);
    sq_bind_bytes(st, 4, in->description);
    sqlite3_bind_int(st, 5, in->enabled);
    sqlite3_bind_int(st, 6, (int)in->type);
    sq_bind_opt(st, 7, meta);
    sqlite3_bind_int64(st, 8, now);
    sqlite3_bind_int64(st, 9, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY) goto taken;
        sq_db_err(s, err, "create flag");
        goto out;
    }
    rc = sq_wtx_touch(s, ns, err);
    goto out;
taken:
    ef_store_fail(err, EF_STORE_NOT_UNIQUE, "flag \"%.*s/%.*s\" is not unique", (int)ns.n, ns.p,
                  (int)in->key.n, in->key.p);
out:
    ef_arena_free(&a);
    return rc;
}

int sq_flag_create_tx(sq *s, ef_bytes ns, const ef_store_flag_in *in, ef_store_err *err)
{
    return flag_insert(s, ns, in, true, err);
}

int sq_flag_insert_tx(sq *s, ef_bytes ns, const ef_store_flag_in *in, ef_store_err *err)
{
    return flag_insert(s, ns, in, false, err);
}

static int flag_create(void *h, ef_bytes ns, const ef_store_flag_in *in, ef_arena *a,
                       ef_doc_flag *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_flag_create_tx(s, ns, in, err) ||
                      sq_flag_read(s, ns, in->key, a, out, err), err);
}

static int flag_get(void *h, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_flag *out,
                    ef_store_err *err)
{
    sq *s = h;
    if (key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    sq_lock(s);
    int rc = sq_flag_read(s, sq_ns(ns), key, a, out, err);
    sq_unlock(s);
    return rc;
}

static int flag_read(sq *s, sqlite3_stmt *st, ef_arena *a, void *elem, ef_store_err *err)
{
    return sq_flag_read_row(s, st, a, elem, err);
}

static ef_bytes flag_key(const void *elem)
{
    return ((const ef_doc_flag *)elem)->key;
}

static int flag_list(void *h, ef_bytes ns, const ef_store_page *p, ef_arena *a, ef_doc_flag **out,
                     size_t *n, ef_store_page_out *po, ef_store_err *err)
{
    ns = sq_ns(ns);
    sq_list l = {SL_FLAG_COUNT, "SELECT COUNT(*) FROM flags WHERE namespace_key = ?",
                 SL_FLAG_LIST,
                 "SELECT " FLAG_COLS " FROM flags WHERE namespace_key = ?"
                 " ORDER BY created_at, rowid LIMIT ? OFFSET ?",
                 &ns, 1, sizeof(**out), flag_read, flag_key, "list flags", 0};
    return sq_list_page(h, &l, p, a, (void **)out, n, po, err);
}

/* Is id a variant of ns/flag? */
static int variant_of_flag(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes id, bool *yes,
                           ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_VAR_GET,
                               "SELECT " VAR_COLS " FROM variants WHERE id = ? AND namespace_key = ?"
                               " AND flag_key = ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    int rc = sqlite3_step(st);
    *yes = rc == SQLITE_ROW;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "variant");
}

int sq_flag_set_default_tx(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes variant_id,
                           ef_store_err *err)
{
    if (variant_id.n) {
        bool yes;
        if (variant_of_flag(s, ns, flag, variant_id, &yes, err)) return -1;
        if (!yes)
            return ef_store_fail(err, EF_STORE_INVALID,
                              "variant \"%.*s\" not found for flag \"%.*s/%.*s\"",
                              (int)variant_id.n, variant_id.p, (int)ns.n, ns.p, (int)flag.n,
                              flag.p);
    }
    sqlite3_stmt *st = sq_stmt(s, SL_FLAG_SET_DEFAULT,
                               "UPDATE flags SET default_variant_id = ?, updated_at = ?"
                               " WHERE namespace_key = ? AND key = ?",
                               err);
    if (!st) return -1;
    sq_bind_opt(st, 1, variant_id);
    sqlite3_bind_int64(st, 2, sq_now(s));
    sq_bind_bytes(st, 3, ns);
    sq_bind_bytes(st, 4, flag);
    if (sq_step_done(s, st, "default variant", err)) return -1;
    return sq_wtx_touch(s, ns, err);
}

static int flag_update(void *h, ef_bytes ns, const ef_store_flag_in *in, ef_arena *a,
                       ef_doc_flag *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (flag_validate(in, false, err)) return -1;
    ef_bytes meta;
    if (sq_json_compact(in->metadata, "metadata", 0, true, a, &meta, err)) return -1;
    if (sq_wtx_begin(s, err)) return -1;
    /* Flipt checks the default variant first (internal/storage/sql/common/flag.go UpdateFlag), so
     * an unknown flag with a default variant is that variant's 400, not the flag's 404 */
    if (in->default_variant_id.n) {
        bool yes;
        if (variant_of_flag(s, ns, in->key, in->default_variant_id, &yes, err)) goto fail;
        if (!yes) {
            ef_store_fail(err, EF_STORE_INVALID, "variant \"%.*s\" not found for flag \"%.*s/%.*s\"",
                       (int)in->default_variant_id.n, in->default_variant_id.p, (int)ns.n, ns.p,
                       (int)in->key.n, in->key.p);
            goto fail;
        }
    }
    bool exists;
    if (sq_flag_exists(s, ns, in->key, &exists, err)) goto fail;
    if (!exists) {
        not_found_flag(err, ns, in->key);
        goto fail;
    }
    sqlite3_stmt *st = sq_stmt(s, SL_FLAG_UPDATE,
                               "UPDATE flags SET name = ?, description = ?, enabled = ?,"
                               " default_variant_id = ?, metadata = ?, updated_at = ?"
                               " WHERE namespace_key = ? AND key = ?",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, in->name);
    sq_bind_bytes(st, 2, in->description);
    sqlite3_bind_int(st, 3, in->enabled);
    sq_bind_opt(st, 4, in->default_variant_id);
    sq_bind_opt(st, 5, meta);
    sqlite3_bind_int64(st, 6, sq_now(s));
    sq_bind_bytes(st, 7, ns);
    sq_bind_bytes(st, 8, in->key);
    if (sq_step_done(s, st, "update flag", err)) goto fail;
    if (sq_wtx_touch(s, ns, err) || sq_flag_read(s, ns, in->key, a, out, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

int sq_flag_delete_tx(sq *s, ef_bytes ns, ef_bytes key, ef_store_err *err)
{
    sqlite3_stmt *st =
        sq_stmt(s, SL_FLAG_DELETE, "DELETE FROM flags WHERE namespace_key = ? AND key = ?", err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, key);
    if (sq_step_done(s, st, "delete flag", err)) return -1;
    return sqlite3_changes(s->db) ? sq_wtx_touch(s, ns, err) : 0;
}

static int flag_delete(void *h, ef_bytes ns, ef_bytes key, ef_store_err *err)
{
    sq *s = h;
    if (key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_flag_delete_tx(s, sq_ns(ns), key, err), err);
}

/* ---- variants ---- */

static int variant_validate(ef_bytes flag, const ef_store_variant_in *in, ef_arena *a,
                            ef_bytes *attachment, ef_store_err *err)
{
    if (flag.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field flagKey: must not be empty");
    if (in->key.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field key: must not be empty");
    return sq_json_compact(in->attachment, "attachment", 10000, false, a, attachment, err);
}

/* Is key taken by another variant of the flag (other than except_id)? */
static int variant_key_taken(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes key, ef_bytes except_id,
                             ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_VAR_KEY_EXISTS,
                               "SELECT 1 FROM variants WHERE namespace_key = ? AND flag_key = ?"
                               " AND key = ? AND id <> ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, flag);
    sq_bind_bytes(st, 3, key);
    sq_bind_bytes(st, 4, except_id);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return ef_store_fail(err, EF_STORE_NOT_UNIQUE,
                          "variant \"%.*s\" is not unique for flag \"%.*s/%.*s\"", (int)key.n,
                          key.p, (int)ns.n, ns.p, (int)flag.n, flag.p);
    return rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "variant");
}

static int variant_read(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes id, ef_arena *a,
                        ef_doc_variant *out, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_VAR_GET,
                               "SELECT " VAR_COLS " FROM variants WHERE id = ? AND namespace_key = ?"
                               " AND flag_key = ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "variant \"%.*s\" not found", (int)id.n, id.p);
    if (rc != SQLITE_ROW) return sq_db_err(s, err, "variant");
    variant_row(st, a, out);
    sqlite3_reset(st);
    return 0;
}

/* Inserts a variant variant_validate accepted (att: the attachment as it compacted it). */
static int variant_insert(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_variant_in *in,
                          ef_bytes att, ef_arena *a, ef_bytes *id, ef_store_err *err)
{
    sq_new_id(a, id);
    sqlite3_stmt *st =
        sq_stmt(s, SL_VAR_INSERT, "INSERT INTO variants VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", err);
    if (!st) return -1;
    int64_t now = sq_now(s);
    sq_bind_bytes(st, 1, *id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    sq_bind_bytes(st, 4, in->key);
    sq_bind_bytes(st, 5, in->name);
    sq_bind_bytes(st, 6, in->description);
    sq_bind_opt(st, 7, att);
    sqlite3_bind_int64(st, 8, now);
    sqlite3_bind_int64(st, 9, now);
    if (sq_step_done(s, st, "create variant", err)) return -1;
    return sq_wtx_touch(s, ns, err);
}

int sq_variant_create_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_variant_in *in,
                         ef_arena *a, ef_bytes *id, ef_store_err *err)
{
    ef_bytes att; /* Flipt checks the request before it looks the flag or the key up */
    if (variant_validate(flag, in, a, &att, err)) return -1;
    bool exists;
    if (sq_flag_exists(s, ns, flag, &exists, err)) return -1;
    if (!exists) return not_found_flag(err, ns, flag);
    if (variant_key_taken(s, ns, flag, in->key, (ef_bytes){"", 0}, err)) return -1;
    return variant_insert(s, ns, flag, in, att, a, id, err);
}

int sq_variant_insert_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_variant_in *in,
                         ef_arena *a, ef_bytes *id, ef_store_err *err)
{
    ef_bytes att;
    if (variant_validate(flag, in, a, &att, err)) return -1;
    return variant_insert(s, ns, flag, in, att, a, id, err);
}

static int variant_create(void *h, ef_bytes ns, ef_bytes flag, const ef_store_variant_in *in,
                          ef_arena *a, ef_doc_variant *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    ef_bytes id;
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_variant_create_tx(s, ns, flag, in, a, &id, err) ||
                      variant_read(s, ns, flag, id, a, out, err), err);
}

static int variant_update(void *h, ef_bytes ns, ef_bytes flag, ef_bytes id,
                          const ef_store_variant_in *in, ef_arena *a, ef_doc_variant *out,
                          ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (id.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field id: must not be empty");
    ef_bytes att;
    if (variant_validate(flag, in, a, &att, err)) return -1;
    if (sq_wtx_begin(s, err)) return -1;
    if (variant_read(s, ns, flag, id, a, out, err)) {
        /* Flipt's UpdateVariant names the key it was asked to set, not the id it did not find */
        if (err && err->code == EF_STORE_NOT_FOUND)
            ef_store_fail(err, EF_STORE_NOT_FOUND, "variant \"%.*s\" not found", (int)in->key.n, in->key.p);
        goto fail;
    }
    if (variant_key_taken(s, ns, flag, in->key, id, err)) goto fail;
    sqlite3_stmt *st = sq_stmt(s, SL_VAR_UPDATE,
                               "UPDATE variants SET key = ?, name = ?, description = ?,"
                               " attachment = ?, updated_at = ? WHERE id = ?",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, in->key);
    sq_bind_bytes(st, 2, in->name);
    sq_bind_bytes(st, 3, in->description);
    sq_bind_opt(st, 4, att);
    sqlite3_bind_int64(st, 5, sq_now(s));
    sq_bind_bytes(st, 6, id);
    if (sq_step_done(s, st, "update variant", err)) goto fail;
    if (sq_wtx_touch(s, ns, err) || variant_read(s, ns, flag, id, a, out, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

static int variant_delete(void *h, ef_bytes ns, ef_bytes flag, ef_bytes id, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (id.n == 0) return ef_store_fail(err, EF_STORE_INVALID, "invalid field id: must not be empty");
    if (flag.n == 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field flagKey: must not be empty");
    if (sq_wtx_begin(s, err)) return -1;
    /* distributions naming the variant cascade; a flag defaulting to it is set to none */
    sqlite3_stmt *st = sq_stmt(s, SL_VAR_DELETE,
                               "DELETE FROM variants WHERE id = ? AND namespace_key = ?"
                               " AND flag_key = ?",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    if (sq_step_done(s, st, "delete variant", err)) goto fail;
    if (sqlite3_changes(s->db) && sq_wtx_touch(s, ns, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

void sq_fill_ops_flags(ef_store_ops *o)
{
    o->flag_create = flag_create;
    o->flag_get = flag_get;
    o->flag_list = flag_list;
    o->flag_update = flag_update;
    o->flag_delete = flag_delete;
    o->variant_create = variant_create;
    o->variant_update = variant_update;
    o->variant_delete = variant_delete;
}
