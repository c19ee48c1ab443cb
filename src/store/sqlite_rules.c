/*
 * sqlite_rules.c - rules (with their segments and distributions) and rollouts in the SQLite store,
 * and the order endpoints that rewrite ranks 1..N.
 *
 * Ranks decide evaluation order, so every path that removes a rule or rollout re-ranks the rest
 * (as Flipt's SQL store does) and the order endpoints only accept ids of the flag they name. A rule
 * with one segment always has the OR operator.
 */
#include <string.h>

#include "store/sqlite_int.h"

#define RULE_COLS "id, flag_key, rank, segment_operator, created_at, updated_at"
#define RO_COLS                                                                                    \
    "id, flag_key, type, rank, description, percentage, value, segment_operator, created_at,"     \
    " updated_at"
#define DIST_COLS "d.id, d.variant_id, v.key, d.rollout, d.created_at, d.updated_at"

static int need(ef_bytes v, const char *field, ef_store_err *err)
{
    return v.n ? 0 : ef_store_fail(err, EF_STORE_INVALID, "invalid field %s: must not be empty", field);
}

static int flag_must_exist(sq *s, ef_bytes ns, ef_bytes flag, ef_store_err *err)
{
    bool exists;
    if (sq_flag_exists(s, ns, flag, &exists, err)) return -1;
    if (!exists)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "flag \"%.*s/%.*s\" not found", (int)ns.n, ns.p,
                          (int)flag.n, flag.p);
    return 0;
}

static int segments_must_exist(sq *s, ef_bytes ns, const ef_bytes *keys, size_t n,
                               ef_store_err *err)
{
    for (size_t i = 0; i < n; i++) {
        bool exists;
        if (sq_segment_exists(s, ns, keys[i], &exists, err)) return -1;
        if (!exists)
            return ef_store_fail(err, EF_STORE_NOT_FOUND, "segment \"%.*s/%.*s\" not found",
                              (int)ns.n, ns.p, (int)keys[i].n, keys[i].p);
    }
    return 0;
}

/* Flipt's SQLite store answers a rule or rollout insert that breaks a foreign key (an unknown flag
 * or segment) with one message naming both (internal/storage/sql/sqlite/sqlite.go), quoting the
 * request's single segmentKey as given: "" when the rule uses segmentKeys. */
static int refs_must_exist(sq *s, ef_bytes ns, ef_bytes flag, const ef_bytes *keys, size_t n,
                           bool *missing, ef_store_err *err)
{
    bool exists;
    *missing = false;
    if (sq_flag_exists(s, ns, flag, &exists, err)) return -1;
    for (size_t i = 0; exists && i < n; i++)
        if (sq_segment_exists(s, ns, keys[i], &exists, err)) return -1;
    *missing = !exists;
    return 0;
}

/* A rule's or rollout's segment keys in position order; sql selects (segment_key, position) of
 * the parent whose id it binds. */
static int read_segment_keys(sq *s, int slot, const char *sql, ef_bytes id, ef_arena *a,
                             ef_bytes **keys, size_t *n, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, slot, sql, err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, id);
    size_t cap = 0, kcap = 0;
    sq_okey *order = NULL;
    int rc;
    *keys = NULL;
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        *keys = sq_grow_from(a, *keys, *n, &cap, sizeof(**keys), 2);
        if (!*keys || !sq_okey_put(a, &order, *n, &kcap, sqlite3_column_int64(st, 1), 0, 0, 0)) {
            sqlite3_reset(st);
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        }
        (*keys)[(*n)++] = sq_col_bytes(st, 0, a);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "segment references");
    if (sq_order_children(*keys, sizeof(**keys), order, *n, a)) /* by position */
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    return 0;
}

static void dist_row(sqlite3_stmt *st, ef_arena *a, ef_doc_distribution *d)
{
    memset(d, 0, sizeof(*d));
    d->meta.id = sq_col_bytes(st, 0, a);
    d->variant_id = sq_col_bytes(st, 1, a);
    d->variant_key = sq_col_bytes(st, 2, a);
    d->rollout = (float)sqlite3_column_double(st, 3);
    d->meta.created_ns = sqlite3_column_int64(st, 4);
    d->meta.updated_ns = sqlite3_column_int64(st, 5);
}

int sq_rule_read_row(sq *s, sqlite3_stmt *st, ef_arena *a, ef_store_rule *out, ef_store_err *err)
{
    memset(out, 0, sizeof(*out));
    ef_doc_rule *r = &out->rule;
    r->meta.id = sq_col_bytes(st, 0, a);
    out->rank = sqlite3_column_int(st, 2);
    r->op = sqlite3_column_int(st, 3) == 1 ? EF_DOC_OP_AND : EF_DOC_OP_OR;
    r->meta.created_ns = sqlite3_column_int64(st, 4);
    r->meta.updated_ns = sqlite3_column_int64(st, 5);
    if (read_segment_keys(s, SL_RULESEG_BY_RULE,
                          "SELECT segment_key, position FROM rule_segments WHERE rule_id = ?",
                          r->meta.id, a, &r->segment_keys, &r->nsegments, err))
        return -1;
    sqlite3_stmt *ds = sq_stmt(s, SL_DIST_BY_RULE,
                               "SELECT " DIST_COLS " FROM distributions d JOIN variants v ON"
                               " v.id = d.variant_id WHERE d.rule_id = ? ORDER BY d.created_at,"
                               " d.rowid",
                               err);
    if (!ds) return -1;
    sq_bind_bytes(ds, 1, r->meta.id);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(ds)) == SQLITE_ROW) {
        r->distributions = sq_grow(a, r->distributions, r->ndistributions, &cap,
                                   sizeof(*r->distributions));
        if (!r->distributions) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        dist_row(ds, a, &r->distributions[r->ndistributions++]);
    }
    sqlite3_reset(ds);
    return rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "distributions");
}

int sq_rule_read(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes id, ef_arena *a, ef_store_rule *out,
                 ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_RULE_GET,
                               "SELECT " RULE_COLS " FROM rules WHERE id = ? AND namespace_key = ?"
                               " AND flag_key = ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "rule \"%.*s/%.*s\" not found", (int)ns.n, ns.p,
                          (int)id.n, id.p);
    if (rc != SQLITE_ROW) return sq_db_err(s, err, "rule");
    rc = sq_rule_read_row(s, st, a, out, err);
    sqlite3_reset(st);
    return rc;
}

static int rule_segments_write(sq *s, ef_bytes ns, ef_bytes id, const ef_bytes *keys, size_t n,
                               ef_store_err *err)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st =
            sq_stmt(s, SL_RULESEG_INSERT, "INSERT INTO rule_segments VALUES (?, ?, ?, ?)", err);
        if (!st) return -1;
        sq_bind_bytes(st, 1, id);
        sq_bind_bytes(st, 2, ns);
        sq_bind_bytes(st, 3, keys[i]);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)i);
        if (sq_step_done(s, st, "rule segments", err)) return -1;
    }
    return 0;
}

/* lookups: the flag and the segments are looked up first (an API write); an import that created
 * them itself, from a document that names only segments it holds, skips that (sqlite_int.h). */
static int rule_insert(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rule_in *in, ef_arena *a,
                       ef_bytes *id, bool lookups, ef_store_err *err)
{
    ef_bytes *keys;
    size_t n;
    if (need(flag, "flagKey", err) ||
        sq_segment_keys(in->segment_key, in->segment_keys, in->nsegment_keys, a, &keys, &n, err))
        return -1;
    if (in->rank <= 0)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid field rank: must be greater than 0");
    bool missing = false;
    if (lookups && refs_must_exist(s, ns, flag, keys, n, &missing, err)) return -1;
    if (missing)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "flag \"%.*s/%.*s\" or segment \"%.*s/%.*s\" not found",
                             (int)ns.n, ns.p, (int)flag.n, flag.p, (int)ns.n, ns.p,
                             (int)in->segment_key.n, in->segment_key.p);
    sq_new_id(a, id);
    sqlite3_stmt *st =
        sq_stmt(s, SL_RULE_INSERT, "INSERT INTO rules VALUES (?, ?, ?, ?, ?, ?, ?)", err);
    if (!st) return -1;
    int64_t now = sq_now(s);
    sq_bind_bytes(st, 1, *id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    sqlite3_bind_int(st, 4, in->rank);
    sqlite3_bind_int(st, 5, n > 1 && in->op == EF_DOC_OP_AND ? 1 : 0);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int64(st, 7, now);
    if (sq_step_done(s, st, "create rule", err)) return -1;
    if (rule_segments_write(s, ns, *id, keys, n, err)) return -1;
    return sq_wtx_touch(s, ns, err);
}

int sq_rule_create_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rule_in *in, ef_arena *a,
                      ef_bytes *id, ef_store_err *err)
{
    return rule_insert(s, ns, flag, in, a, id, true, err);
}

int sq_rule_insert_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rule_in *in, ef_arena *a,
                      ef_bytes *id, ef_store_err *err)
{
    return rule_insert(s, ns, flag, in, a, id, false, err);
}

static int rule_create(void *h, ef_bytes ns, ef_bytes flag, const ef_store_rule_in *in,
                       ef_arena *a, ef_store_rule *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    ef_bytes id;
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_rule_create_tx(s, ns, flag, in, a, &id, err) ||
                      sq_rule_read(s, ns, flag, id, a, out, err), err);
}

static int rule_get(void *h, ef_bytes ns, ef_bytes flag, ef_bytes id, ef_arena *a,
                    ef_store_rule *out, ef_store_err *err)
{
    sq *s = h;
    if (need(id, "id", err) || need(flag, "flagKey", err)) return -1;
    sq_lock(s);
    int rc = sq_rule_read(s, sq_ns(ns), flag, id, a, out, err);
    sq_unlock(s);
    return rc;
}

static int rule_read_elem(sq *s, sqlite3_stmt *st, ef_arena *a, void *elem, ef_store_err *err)
{
    return sq_rule_read_row(s, st, a, elem, err);
}

static ef_bytes rule_key(const void *elem)
{
    return ((const ef_store_rule *)elem)->rule.meta.id;
}

static int rule_list(void *h, ef_bytes ns, ef_bytes flag, const ef_store_page *p, ef_arena *a,
                     ef_store_rule **out, size_t *n, ef_store_page_out *po, ef_store_err *err)
{
    if (need(flag, "flagKey", err)) return -1;
    ef_bytes params[2] = {sq_ns(ns), flag};
    sq_list l = {SL_RULE_COUNT, "SELECT COUNT(*) FROM rules WHERE namespace_key = ? AND flag_key = ?",
                 SL_RULE_LIST,
                 "SELECT " RULE_COLS " FROM rules WHERE namespace_key = ? AND flag_key = ?"
                 " ORDER BY rank, created_at, rowid LIMIT ? OFFSET ?",
                 params, 2, sizeof(**out), rule_read_elem, rule_key, "list rules", 0};
    return sq_list_page(h, &l, p, a, (void **)out, n, po, err);
}

static int rule_update(void *h, ef_bytes ns, ef_bytes flag, ef_bytes id, const ef_store_rule_in *in,
                       ef_arena *a, ef_store_rule *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    ef_bytes *keys;
    size_t n;
    if (need(id, "id", err) || need(flag, "flagKey", err) ||
        sq_segment_keys(in->segment_key, in->segment_keys, in->nsegment_keys, a, &keys, &n, err))
        return -1;
    if (sq_wtx_begin(s, err)) return -1;
    if (sq_rule_read(s, ns, flag, id, a, out, err)) goto fail;
    bool missing = false;
    for (size_t i = 0; i < n && !missing; i++) {
        bool exists;
        if (sq_segment_exists(s, ns, keys[i], &exists, err)) goto fail;
        missing = !exists;
    }
    if (missing) { /* Flipt's SQLite store: the foreign key error of an update names the rule */
        ef_store_fail(err, EF_STORE_NOT_FOUND, "rule \"%.*s/%.*s\" not found", (int)ns.n, ns.p, (int)id.n, id.p);
        goto fail;
    }
    sqlite3_stmt *st = sq_stmt(s, SL_RULE_UPDATE,
                               "UPDATE rules SET segment_operator = ?, updated_at = ? WHERE id = ?",
                               err);
    if (!st) goto fail;
    sqlite3_bind_int(st, 1, n > 1 && in->op == EF_DOC_OP_AND ? 1 : 0);
    sqlite3_bind_int64(st, 2, sq_now(s));
    sq_bind_bytes(st, 3, id);
    if (sq_step_done(s, st, "update rule", err)) goto fail;
    st = sq_stmt(s, SL_RULESEG_DELETE, "DELETE FROM rule_segments WHERE rule_id = ?", err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, id);
    if (sq_step_done(s, st, "update rule", err)) goto fail;
    if (rule_segments_write(s, ns, id, keys, n, err) || sq_wtx_touch(s, ns, err) ||
        sq_rule_read(s, ns, flag, id, a, out, err))
        goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

/* Sets rank i+1 on ids[i] for rules (rollouts=false) or rollouts of ns/flag; every id must be one
 * of the flag's. */
static int rerank(sq *s, bool rollouts, ef_bytes ns, ef_bytes flag, const ef_bytes *ids, size_t n,
                  ef_store_err *err)
{
    int64_t now = sq_now(s);
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st =
            rollouts ? sq_stmt(s, SL_RO_RANK,
                               "UPDATE rollouts SET rank = ?, updated_at = ? WHERE id = ? AND"
                               " namespace_key = ? AND flag_key = ?",
                               err)
                     : sq_stmt(s, SL_RULE_RANK,
                               "UPDATE rules SET rank = ?, updated_at = ? WHERE id = ? AND"
                               " namespace_key = ? AND flag_key = ?",
                               err);
        if (!st) return -1;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)(i + 1));
        sqlite3_bind_int64(st, 2, now);
        sq_bind_bytes(st, 3, ids[i]);
        sq_bind_bytes(st, 4, ns);
        sq_bind_bytes(st, 5, flag);
        if (sq_step_done(s, st, "order", err)) return -1;
        if (sqlite3_changes(s->db) == 0)
            return ef_store_fail(err, EF_STORE_NOT_FOUND, "%s \"%.*s/%.*s\" not found",
                              rollouts ? "rollout" : "rule", (int)ns.n, ns.p, (int)ids[i].n,
                              ids[i].p);
    }
    return 0;
}

/* After a delete: the remaining rules/rollouts of the flag get ranks 1..N in their old order. */
static int rerank_remaining(sq *s, bool rollouts, ef_bytes ns, ef_bytes flag, ef_store_err *err)
{
    sqlite3_stmt *st =
        rollouts ? sq_stmt(s, SL_RO_BY_FLAG,
                           "SELECT id FROM rollouts WHERE namespace_key = ? AND flag_key = ?"
                           " ORDER BY rank, created_at, rowid",
                           err)
                 : sq_stmt(s, SL_RULE_BY_FLAG,
                           "SELECT id FROM rules WHERE namespace_key = ? AND flag_key = ?"
                           " ORDER BY rank, created_at, rowid",
                           err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, flag);
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_bytes *ids = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids = sq_grow(&a, ids, n, &cap, sizeof(*ids));
        if (!ids) {
            ef_arena_free(&a);
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        }
        ids[n++] = sq_col_bytes(st, 0, &a);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        ef_arena_free(&a);
        return sq_db_err(s, err, "order");
    }
    rc = rerank(s, rollouts, ns, flag, ids, n, err);
    ef_arena_free(&a);
    return rc;
}

static int rule_delete(void *h, ef_bytes ns, ef_bytes flag, ef_bytes id, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (need(id, "id", err) || need(flag, "flagKey", err)) return -1;
    if (sq_wtx_begin(s, err)) return -1;
    sqlite3_stmt *st = sq_stmt(
        s, SL_RULE_DELETE, "DELETE FROM rules WHERE id = ? AND namespace_key = ? AND flag_key = ?",
        err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    if (sq_step_done(s, st, "delete rule", err)) goto fail;
    if (sqlite3_changes(s->db) &&
        (rerank_remaining(s, false, ns, flag, err) || sq_wtx_touch(s, ns, err)))
        goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

static int order(sq *s, bool rollouts, ef_bytes ns, ef_bytes flag, const ef_bytes *ids, size_t n,
                 ef_store_err *err)
{
    ns = sq_ns(ns);
    if (need(flag, "flagKey", err)) return -1;
    if (n < 2)
        return ef_store_fail(err, EF_STORE_INVALID,
                          "invalid field %s: must contain atleast 2 elements",
                          rollouts ? "rolloutIds" : "ruleIds");
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, flag_must_exist(s, ns, flag, err) || rerank(s, rollouts, ns, flag, ids, n, err) ||
                      sq_wtx_touch(s, ns, err), err);
}

static int rule_order(void *h, ef_bytes ns, ef_bytes flag, const ef_bytes *ids, size_t n,
                      ef_store_err *err)
{
    return order(h, false, ns, flag, ids, n, err);
}

/* ---- distributions ---- */

static int dist_validate(ef_bytes flag, ef_bytes rule, const ef_store_distribution_in *in,
                         ef_store_err *err)
{
    if (need(flag, "flagKey", err) || need(rule, "ruleId", err) ||
        need(in->variant_id, "variantId", err))
        return -1;
    if (in->rollout < 0)
        return ef_store_fail(err, EF_STORE_INVALID,
                          "invalid field rollout: must be greater than or equal to '0'");
    if (in->rollout > 100)
        return ef_store_fail(err, EF_STORE_INVALID,
                          "invalid field rollout: must be less than or equal to '100'");
    return 0;
}

/* The rule belongs to the flag and the variant too. Flipt checks both in one query and answers
 * either miss with one message (internal/storage/sql/common/rule.go, distributionValidationHelper). */
static int dist_refs(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes rule, ef_bytes variant,
                     ef_arena *a, ef_store_err *err)
{
    (void)a;
    /* the rule must be the flag's: an existence check (reading the whole rule with its segments
     * and distributions was an eighth of an import's time) */
    sqlite3_stmt *rs = sq_stmt(s, SL_RULE_EXISTS,
                               "SELECT 1 FROM rules WHERE id = ? AND namespace_key = ? AND flag_key = ?",
                               err);
    if (!rs) return -1;
    sq_bind_bytes(rs, 1, rule);
    sq_bind_bytes(rs, 2, ns);
    sq_bind_bytes(rs, 3, flag);
    int rc = sqlite3_step(rs);
    sqlite3_reset(rs);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sq_db_err(s, err, "rule");
    if (rc == SQLITE_ROW) {
        sqlite3_stmt *st = sq_stmt(s, SL_VAR_GET,
                                   "SELECT id, key, name, description, attachment, created_at,"
                                   " updated_at FROM variants WHERE id = ? AND namespace_key = ?"
                                   " AND flag_key = ?",
                                   err);
        if (!st) return -1;
        sq_bind_bytes(st, 1, variant);
        sq_bind_bytes(st, 2, ns);
        sq_bind_bytes(st, 3, flag);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    if (rc == SQLITE_DONE)
        return ef_store_fail(err, EF_STORE_NOT_FOUND,
                             "variant \"%.*s\", rule \"%.*s\", flag \"%.*s\" in namespace \"%.*s\" not found",
                             (int)variant.n, variant.p, (int)rule.n, rule.p, (int)flag.n, flag.p, (int)ns.n, ns.p);
    return rc == SQLITE_ROW ? 0 : sq_db_err(s, err, "variant");
}

static int dist_read(sq *s, ef_bytes rule, ef_bytes id, ef_arena *a, ef_doc_distribution *out,
                     ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_DIST_GET,
                               "SELECT " DIST_COLS " FROM distributions d JOIN variants v ON"
                               " v.id = d.variant_id WHERE d.id = ? AND d.rule_id = ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, rule);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "distribution \"%.*s\" not found", (int)id.n,
                          id.p);
    if (rc != SQLITE_ROW) return sq_db_err(s, err, "distribution");
    dist_row(st, a, out);
    sqlite3_reset(st);
    return 0;
}

int sq_distribution_create_tx(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes rule,
                              const ef_store_distribution_in *in, ef_arena *a, ef_bytes *id,
                              ef_store_err *err)
{
    if (dist_validate(flag, rule, in, err) ||
        dist_refs(s, ns, flag, rule, in->variant_id, a, err))
        return -1;
    return sq_distribution_insert_tx(s, ns, flag, rule, in, a, id, err);
}

int sq_distribution_insert_tx(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes rule,
                              const ef_store_distribution_in *in, ef_arena *a, ef_bytes *id,
                              ef_store_err *err)
{
    if (dist_validate(flag, rule, in, err)) return -1; /* a few comparisons: again is cheap */
    sq_new_id(a, id);
    sqlite3_stmt *st =
        sq_stmt(s, SL_DIST_INSERT, "INSERT INTO distributions VALUES (?, ?, ?, ?, ?, ?)", err);
    if (!st) return -1;
    int64_t now = sq_now(s);
    sq_bind_bytes(st, 1, *id);
    sq_bind_bytes(st, 2, rule);
    sq_bind_bytes(st, 3, in->variant_id);
    sqlite3_bind_double(st, 4, (double)in->rollout);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, now);
    if (sq_step_done(s, st, "create distribution", err)) return -1;
    return sq_wtx_touch(s, ns, err);
}

static int distribution_create(void *h, ef_bytes ns, ef_bytes flag, ef_bytes rule,
                               const ef_store_distribution_in *in, ef_arena *a,
                               ef_doc_distribution *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    ef_bytes id;
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_distribution_create_tx(s, ns, flag, rule, in, a, &id, err) ||
                      dist_read(s, rule, id, a, out, err), err);
}

static int distribution_update(void *h, ef_bytes ns, ef_bytes flag, ef_bytes rule, ef_bytes id,
                               const ef_store_distribution_in *in, ef_arena *a,
                               ef_doc_distribution *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (need(id, "id", err) || dist_validate(flag, rule, in, err)) return -1;
    if (sq_wtx_begin(s, err)) return -1;
    if (dist_refs(s, ns, flag, rule, in->variant_id, a, err) || dist_read(s, rule, id, a, out, err))
        goto fail;
    sqlite3_stmt *st = sq_stmt(s, SL_DIST_UPDATE,
                               "UPDATE distributions SET variant_id = ?, rollout = ?, updated_at = ?"
                               " WHERE id = ?",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, in->variant_id);
    sqlite3_bind_double(st, 2, (double)in->rollout);
    sqlite3_bind_int64(st, 3, sq_now(s));
    sq_bind_bytes(st, 4, id);
    if (sq_step_done(s, st, "update distribution", err)) goto fail;
    if (sq_wtx_touch(s, ns, err) || dist_read(s, rule, id, a, out, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

static int distribution_delete(void *h, ef_bytes ns, ef_bytes flag, ef_bytes rule, ef_bytes id,
                               ef_bytes variant, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (need(id, "id", err) || need(flag, "flagKey", err) || need(rule, "ruleId", err) ||
        need(variant, "variantId", err))
        return -1;
    if (sq_wtx_begin(s, err)) return -1;
    sqlite3_stmt *st = sq_stmt(s, SL_DIST_DELETE,
                               "DELETE FROM distributions WHERE id = ? AND rule_id = ? AND"
                               " variant_id = ? AND rule_id IN (SELECT id FROM rules WHERE"
                               " namespace_key = ? AND flag_key = ?)",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, rule);
    sq_bind_bytes(st, 3, variant);
    sq_bind_bytes(st, 4, ns);
    sq_bind_bytes(st, 5, flag);
    if (sq_step_done(s, st, "delete distribution", err)) goto fail;
    if (sqlite3_changes(s->db) && sq_wtx_touch(s, ns, err)) goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

/* ---- rollouts ---- */

static const char *rollout_type_name(int t)
{
    return t == EF_DOC_ROLLOUT_SEGMENT     ? "SEGMENT_ROLLOUT_TYPE"
           : t == EF_DOC_ROLLOUT_THRESHOLD ? "THRESHOLD_ROLLOUT_TYPE"
                                           : "UNKNOWN_ROLLOUT_TYPE";
}

int sq_rollout_read_row(sq *s, sqlite3_stmt *st, ef_arena *a, ef_store_rollout *out,
                        ef_store_err *err)
{
    memset(out, 0, sizeof(*out));
    ef_doc_rollout *r = &out->rollout;
    r->meta.id = sq_col_bytes(st, 0, a);
    r->type = (ef_doc_rollout_type)sqlite3_column_int(st, 2);
    out->rank = sqlite3_column_int(st, 3);
    r->description = sq_col_bytes(st, 4, a);
    r->percentage = (float)sqlite3_column_double(st, 5);
    r->value = sqlite3_column_int(st, 6) != 0;
    r->op = sqlite3_column_int(st, 7) == 1 ? EF_DOC_OP_AND : EF_DOC_OP_OR;
    r->meta.created_ns = sqlite3_column_int64(st, 8);
    r->meta.updated_ns = sqlite3_column_int64(st, 9);
    if (r->type != EF_DOC_ROLLOUT_SEGMENT) return 0;
    return read_segment_keys(s, SL_ROSEG_BY_RO,
                             "SELECT segment_key, position FROM rollout_segments WHERE"
                             " rollout_id = ?",
                             r->meta.id, a, &r->segment_keys, &r->nsegments, err);
}

static int rollout_read(sq *s, ef_bytes ns, ef_bytes flag, ef_bytes id, ef_arena *a,
                        ef_store_rollout *out, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_RO_GET,
                               "SELECT " RO_COLS " FROM rollouts WHERE id = ? AND namespace_key = ?"
                               " AND flag_key = ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "rollout \"%.*s/%.*s\" not found", (int)ns.n,
                          ns.p, (int)id.n, id.p);
    if (rc != SQLITE_ROW) return sq_db_err(s, err, "rollout");
    rc = sq_rollout_read_row(s, st, a, out, err);
    sqlite3_reset(st);
    return rc;
}

/* Checks the rule part of a rollout; keys and n receive the de-duplicated segment keys. */
static int rollout_validate(ef_bytes flag, const ef_store_rollout_in *in, ef_arena *a,
                            ef_bytes **keys, size_t *n, ef_store_err *err)
{
    *keys = NULL;
    *n = 0;
    if (need(flag, "flagKey", err)) return -1;
    if (in->type == EF_DOC_ROLLOUT_THRESHOLD) {
        if (!(in->percentage >= 0 && in->percentage <= 100))
            return ef_store_fail(err, EF_STORE_INVALID,
                              "invalid field threshold.percentage: must be within range [0, 100]");
        return 0;
    }
    if (in->type == EF_DOC_ROLLOUT_SEGMENT)
        return sq_segment_keys(in->segment_key, in->segment_keys, in->nsegment_keys, a, keys, n,
                               err);
    /* no rule: the store reports it, after its rank check (sq_rollout_create_tx) */
    return 0;
}

static int rollout_segments_write(sq *s, ef_bytes ns, ef_bytes id, const ef_bytes *keys, size_t n,
                                  ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_ROSEG_DELETE, "DELETE FROM rollout_segments WHERE rollout_id = ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, id);
    if (sq_step_done(s, st, "rollout segments", err)) return -1;
    for (size_t i = 0; i < n; i++) {
        st = sq_stmt(s, SL_ROSEG_INSERT, "INSERT INTO rollout_segments VALUES (?, ?, ?, ?)", err);
        if (!st) return -1;
        sq_bind_bytes(st, 1, id);
        sq_bind_bytes(st, 2, ns);
        sq_bind_bytes(st, 3, keys[i]);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)i);
        if (sq_step_done(s, st, "rollout segments", err)) return -1;
    }
    return 0;
}

/* lookups: as rule_insert's; an import's ranks are 1, 2, ... of a flag it just created */
static int rollout_insert(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rollout_in *in,
                          ef_arena *a, ef_bytes *id, bool lookups, ef_store_err *err)
{
    ef_bytes *keys;
    size_t n;
    if (rollout_validate(flag, in, a, &keys, &n, err)) return -1;
    /* Flipt's order (internal/storage/sql/common/rollout.go CreateRollout): the rank, then the rule,
     * then the insert whose foreign keys find an unknown flag or segment */
    sqlite3_stmt *st;
    if (lookups) {
        st = sq_stmt(s, SL_RO_RANK_EXISTS,
                     "SELECT 1 FROM rollouts WHERE namespace_key = ? AND flag_key = ? AND rank = ?",
                     err);
        if (!st) return -1;
        sq_bind_bytes(st, 1, ns);
        sq_bind_bytes(st, 2, flag);
        sqlite3_bind_int(st, 3, in->rank);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_ROW)
            return ef_store_fail(err, EF_STORE_INVALID, "rank number: %d already exists",
                                 (int)in->rank);
        if (rc != SQLITE_DONE) return sq_db_err(s, err, "rollout");
    }
    if (in->type != EF_DOC_ROLLOUT_THRESHOLD && in->type != EF_DOC_ROLLOUT_SEGMENT)
        return ef_store_fail(err, EF_STORE_INVALID, "rollout rule is missing");
    bool missing = false;
    if (lookups && refs_must_exist(s, ns, flag, keys, n, &missing, err)) return -1;
    if (missing && in->type == EF_DOC_ROLLOUT_SEGMENT) /* sic: Flipt's quoting */
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "flag \"%.*s/%.*s or segment %.*s\" not found", (int)ns.n,
                             ns.p, (int)flag.n, flag.p, (int)in->segment_key.n, in->segment_key.p);
    if (missing)
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "flag \"%.*s/%.*s\" not found", (int)ns.n, ns.p, (int)flag.n,
                             flag.p);
    sq_new_id(a, id);
    st = sq_stmt(s, SL_RO_INSERT, "INSERT INTO rollouts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 err);
    if (!st) return -1;
    int64_t now = sq_now(s);
    sq_bind_bytes(st, 1, *id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    sqlite3_bind_int(st, 4, (int)in->type);
    sqlite3_bind_int(st, 5, in->rank);
    sq_bind_bytes(st, 6, in->description);
    sqlite3_bind_double(st, 7, in->type == EF_DOC_ROLLOUT_THRESHOLD ? (double)in->percentage : 0);
    sqlite3_bind_int(st, 8, in->value);
    sqlite3_bind_int(st, 9, n > 1 && in->op == EF_DOC_OP_AND ? 1 : 0);
    sqlite3_bind_int64(st, 10, now);
    sqlite3_bind_int64(st, 11, now);
    if (sq_step_done(s, st, "create rollout", err)) return -1;
    if (rollout_segments_write(s, ns, *id, keys, n, err)) return -1;
    return sq_wtx_touch(s, ns, err);
}

int sq_rollout_create_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rollout_in *in,
                         ef_arena *a, ef_bytes *id, ef_store_err *err)
{
    return rollout_insert(s, ns, flag, in, a, id, true, err);
}

int sq_rollout_insert_tx(sq *s, ef_bytes ns, ef_bytes flag, const ef_store_rollout_in *in,
                         ef_arena *a, ef_bytes *id, ef_store_err *err)
{
    return rollout_insert(s, ns, flag, in, a, id, false, err);
}

static int rollout_create(void *h, ef_bytes ns, ef_bytes flag, const ef_store_rollout_in *in,
                          ef_arena *a, ef_store_rollout *out, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    ef_bytes id;
    if (sq_wtx_begin(s, err)) return -1;
    return sq_wtx_end(s, sq_rollout_create_tx(s, ns, flag, in, a, &id, err) ||
                      rollout_read(s, ns, flag, id, a, out, err), err);
}

static int rollout_get(void *h, ef_bytes ns, ef_bytes flag, ef_bytes id, ef_arena *a,
                       ef_store_rollout *out, ef_store_err *err)
{
    sq *s = h;
    if (need(id, "id", err) || need(flag, "flagKey", err)) return -1;
    sq_lock(s);
    int rc = rollout_read(s, sq_ns(ns), flag, id, a, out, err);
    sq_unlock(s);
    return rc;
}

static int rollout_read_elem(sq *s, sqlite3_stmt *st, ef_arena *a, void *elem, ef_store_err *err)
{
    return sq_rollout_read_row(s, st, a, elem, err);
}

static ef_bytes rollout_key(const void *elem)
{
    return ((const ef_store_rollout *)elem)->rollout.meta.id;
}

static int rollout_list(void *h, ef_bytes ns, ef_bytes flag, const ef_store_page *p, ef_arena *a,
                        ef_store_rollout **out, size_t *n, ef_store_page_out *po, ef_store_err *err)
{
    if (need(flag, "flagKey", err)) return -1;
    ef_bytes params[2] = {sq_ns(ns), flag};
    sq_list l = {SL_RO_COUNT, "SELECT COUNT(*) FROM rollouts WHERE namespace_key = ? AND flag_key = ?",
                 SL_RO_LIST,
                 "SELECT " RO_COLS " FROM rollouts WHERE namespace_key = ? AND flag_key = ?"
                 " ORDER BY rank, created_at, rowid LIMIT ? OFFSET ?",
                 params, 2, sizeof(**out), rollout_read_elem, rollout_key, "list rollouts",
                 SQ_PAGE_LIMIT_OPTIONAL | SQ_PAGE_NO_OFFSET};
    return sq_list_page(h, &l, p, a, (void **)out, n, po, err);
}

static int rollout_update(void *h, ef_bytes ns, ef_bytes flag, ef_bytes id,
                          const ef_store_rollout_in *in, ef_arena *a, ef_store_rollout *out,
                          ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    ef_bytes *keys;
    size_t n;
    if (need(id, "id", err) || rollout_validate(flag, in, a, &keys, &n, err)) return -1;
    if (sq_wtx_begin(s, err)) return -1;
    if (rollout_read(s, ns, flag, id, a, out, err)) goto fail;
    /* Without a rule, Flipt's UpdateRollout changes the description only
     * (internal/storage/sql/common/rollout.go): the rule stays as it is. */
    ef_store_rollout_in keep;
    if (in->type != EF_DOC_ROLLOUT_THRESHOLD && in->type != EF_DOC_ROLLOUT_SEGMENT) {
        const ef_doc_rollout *cur = &out->rollout;
        keep = (ef_store_rollout_in){.rank = out->rank, .description = in->description, .type = cur->type,
                                     .percentage = cur->percentage, .value = cur->value,
                                     .segment_keys = cur->segment_keys, .nsegment_keys = cur->nsegments,
                                     .op = cur->op};
        in = &keep;
        keys = cur->segment_keys;
        n = cur->nsegments;
    }
    if (out->rollout.type != in->type) {
        ef_store_fail(err, EF_STORE_INVALID, "cannot change type of rollout: have \"%s\" attempted \"%s\"",
                   rollout_type_name(out->rollout.type), rollout_type_name(in->type));
        goto fail;
    }
    if (segments_must_exist(s, ns, keys, n, err)) goto fail;
    sqlite3_stmt *st = sq_stmt(s, SL_RO_UPDATE,
                               "UPDATE rollouts SET description = ?, percentage = ?, value = ?,"
                               " segment_operator = ?, updated_at = ? WHERE id = ?",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, in->description);
    sqlite3_bind_double(st, 2, in->type == EF_DOC_ROLLOUT_THRESHOLD ? (double)in->percentage : 0);
    sqlite3_bind_int(st, 3, in->value);
    sqlite3_bind_int(st, 4, n > 1 && in->op == EF_DOC_OP_AND ? 1 : 0);
    sqlite3_bind_int64(st, 5, sq_now(s));
    sq_bind_bytes(st, 6, id);
    if (sq_step_done(s, st, "update rollout", err)) goto fail;
    if ((in->type == EF_DOC_ROLLOUT_SEGMENT && rollout_segments_write(s, ns, id, keys, n, err)) ||
        sq_wtx_touch(s, ns, err) || rollout_read(s, ns, flag, id, a, out, err))
        goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

static int rollout_delete(void *h, ef_bytes ns, ef_bytes flag, ef_bytes id, ef_store_err *err)
{
    sq *s = h;
    ns = sq_ns(ns);
    if (need(id, "id", err) || need(flag, "flagKey", err)) return -1;
    if (sq_wtx_begin(s, err)) return -1;
    sqlite3_stmt *st = sq_stmt(s, SL_RO_DELETE,
                               "DELETE FROM rollouts WHERE id = ? AND namespace_key = ? AND"
                               " flag_key = ?",
                               err);
    if (!st) goto fail;
    sq_bind_bytes(st, 1, id);
    sq_bind_bytes(st, 2, ns);
    sq_bind_bytes(st, 3, flag);
    if (sq_step_done(s, st, "delete rollout", err)) goto fail;
    if (sqlite3_changes(s->db) &&
        (rerank_remaining(s, true, ns, flag, err) || sq_wtx_touch(s, ns, err)))
        goto fail;
    return sq_wtx_commit(s, err);
fail:
    sq_wtx_rollback(s);
    return -1;
}

static int rollout_order(void *h, ef_bytes ns, ef_bytes flag, const ef_bytes *ids, size_t n,
                         ef_store_err *err)
{
    return order(h, true, ns, flag, ids, n, err);
}

void sq_fill_ops_rules(ef_store_ops *o)
{
    o->rule_create = rule_create;
    o->rule_get = rule_get;
    o->rule_list = rule_list;
    o->rule_update = rule_update;
    o->rule_delete = rule_delete;
    o->rule_order = rule_order;
    o->distribution_create = distribution_create;
    o->distribution_update = distribution_update;
    o->distribution_delete = distribution_delete;
    o->rollout_create = rollout_create;
    o->rollout_get = rollout_get;
    o->rollout_list = rollout_list;
    o->rollout_update = rollout_update;
    o->rollout_delete = rollout_delete;
    o->rollout_order = rollout_order;
}
