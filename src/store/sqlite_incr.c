/*
 * sqlite_incr.c - incremental snapshots for the SQLite store (DESIGN.md principle 8): a write
 * recompiles only the flags it touched, or that use a segment it touched, and publishes a snapshot
 * that shares every other flag part with the previous one.
 *
 * For each published namespace the store keeps a state: its flag parts in document order (created_at,
 * rowid, as the full load orders them) and, per flag, the ids of every row its piece was built from
 * (variants, rules, distributions, rollouts, constraints of the segments it uses) and the keys of
 * those segments. A write's change-log entry names each changed row by table and primary key (and
 * carries the row for upserts); a deleted row is found through those ids. Anything that cannot be
 * resolved, a large entry, or a namespace without a state is recompiled in full, so a doubt always
 * costs time, never correctness (test_store_incr compares both after random writes).
 *
 * Before COMMIT (sq_incr_prepare) the touched flags are compiled: anything the compiler refuses is
 * refused with the write (issue 19 item 8). After COMMIT (sq_incr_publish) the prepared states
 * replace the old ones and their snapshots are published; a rollback drops them (sq_incr_discard).
 * All of this runs with the writer mutex held; the states are never seen by another thread. This
 * file must never publish a state that was not committed, and never free a part a snapshot still
 * holds (parts are reference-counted; the registry frees snapshots after an RCU grace period).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "base/json.h"
#include "eval/eval.h"
#include "eval/registry.h"
#include "store/sqlite_int.h"

typedef struct fmeta {
    int64_t created, rowid; /* the flag's position: ORDER BY created_at, rowid */
    uint64_t khash;         /* key_hash of the flag key: a lookup scans these, not the parts */
    char *ids;              /* "\x1f" id "\x1f" id ... "\x1f" of the rows its piece uses (or NULL) */
    char *segs;             /* the same for the keys of the segments it uses */
} fmeta;

typedef struct nsstate {
    char *key;
    size_t n, cap;
    ef_flag_part **parts; /* document order; one reference each */
    fmeta *meta;
    /* by key hash: index + 1 (0 empty), open addressing over kmask + 1 slots. Kept up to date by
     * appends (a new flag comes last in document order); anything that shifts indices marks it
     * stale and the next lookup rebuilds it (those changes move the arrays' tails anyway). */
    uint32_t *kidx;
    uint32_t kmask;
    bool kidx_stale;
    /* the registry's snapshot of version published_seq was assembled from this state as it is
     * (but for the in-place changes of a prep not yet published, which its undo list names): so
     * the next publish can say which pages changed instead of having them compared */
    bool published;
    uint64_t published_seq;
} nsstate;

/* A change made in place to a namespace's state before COMMIT, undone by a rollback. */
typedef struct undo {
    enum { UNDO_INSERT, UNDO_REMOVE, UNDO_REPLACE } op;
    size_t at;
    ef_flag_part *part; /* REMOVE, REPLACE: what was there */
    fmeta meta;
} undo;

/* A namespace's next state, built before COMMIT. */
typedef struct prep {
    char *key;
    nsstate *next; /* NULL: the namespace is gone */
    bool full;     /* next shares nothing with the old state */
    /* partial: next IS the old state, changed in place (no copy of a 100,000-flag list per
     * write); undo lists the changes, newest last */
    bool inplace;
    size_t nundo, capundo;
    undo *undo;
    /* partial: the old entries next no longer holds (freed on commit) and the new ones (freed on
     * discard) */
    size_t ndrop, nadd;
    ef_flag_part **drop_parts, **add_parts;
    fmeta *drop_meta, *add_meta;
} prep;

struct sq_incr {
    size_t nns;
    nsstate **ns;
    size_t npre;
    prep *pre;
    bool prepared; /* sq_incr_prepare ran for the open transaction */
};

static int ns_reserve(sq_incr *in, size_t n, ef_store_err *err);

/* ---- states ---- */

static void meta_free(fmeta *m)
{
    free(m->ids);
    free(m->segs);
}

static void state_free(nsstate *st, bool entries)
{
    if (!st) return;
    if (entries)
        for (size_t i = 0; i < st->n; i++) {
            ef_flag_part_unref(st->parts[i]);
            meta_free(&st->meta[i]);
        }
    free(st->parts);
    free(st->meta);
    free(st->kidx);
    free(st->key);
    free(st);
}

static nsstate *state_new(ef_bytes key, size_t cap)
{
    nsstate *st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    st->key = malloc(key.n + 1);
    st->cap = cap ? cap : 8;
    st->parts = malloc(st->cap * sizeof(*st->parts));
    st->meta = malloc(st->cap * sizeof(*st->meta));
    if (!st->key || !st->parts || !st->meta) {
        state_free(st, false);
        return NULL;
    }
    memcpy(st->key, key.p, key.n);
    st->key[key.n] = '\0';
    return st;
}

static int state_reserve(nsstate *st, size_t n)
{
    if (n <= st->cap) return 0;
    size_t cap = st->cap * 2 > n ? st->cap * 2 : n;
    ef_flag_part **p = realloc(st->parts, cap * sizeof(*p));
    if (!p) return -1;
    st->parts = p;
    fmeta *m = realloc(st->meta, cap * sizeof(*m));
    if (!m) return -1;
    st->meta = m;
    st->cap = cap;
    return 0;
}

static bool key_is(const char *k, ef_bytes b)
{
    return strlen(k) == b.n && memcmp(k, b.p, b.n) == 0;
}

static nsstate *state_find(sq_incr *in, ef_bytes key, size_t *at)
{
    for (size_t i = 0; in && i < in->nns; i++)
        if (key_is(in->ns[i]->key, key)) {
            if (at) *at = i;
            return in->ns[i];
        }
    return NULL;
}

static uint64_t key_hash(ef_bytes k);

static void kidx_put(nsstate *st, size_t i)
{
    for (uint32_t j = (uint32_t)st->meta[i].khash & st->kmask;; j = (j + 1) & st->kmask)
        if (!st->kidx[j]) {
            st->kidx[j] = (uint32_t)i + 1;
            return;
        }
}

/* The key index for st's n flags, at twice their count at least; -1: out of memory. */
static int kidx_build(nsstate *st)
{
    uint32_t cap = 16;
    while (cap < st->n * 2 + 2) cap *= 2;
    if (!st->kidx || st->kmask + 1 != cap) {
        uint32_t *k = realloc(st->kidx, cap * sizeof(*k));
        if (!k) return -1;
        st->kidx = k;
        st->kmask = cap - 1;
    }
    memset(st->kidx, 0, cap * sizeof(*st->kidx));
    for (size_t i = 0; i < st->n; i++) kidx_put(st, i);
    st->kidx_stale = false;
    return 0;
}

/* The index of flag key in st (a deleted, new or moved flag), or -1. */
static ssize_t flag_index(nsstate *st, ef_bytes key)
{
    uint64_t h = key_hash(key);
    if (st->kidx_stale || !st->kidx || st->n * 2 + 2 > (size_t)st->kmask + 1) {
        if (kidx_build(st) != 0) { /* out of memory: the scan needs none */
            for (size_t i = 0; i < st->n; i++)
                if (st->meta[i].khash == h && ef_bytes_eq(ef_flag_part_key(st->parts[i]), key))
                    return (ssize_t)i;
            return -1;
        }
    }
    for (uint32_t j = (uint32_t)h & st->kmask; st->kidx[j]; j = (j + 1) & st->kmask) {
        size_t i = st->kidx[j] - 1;
        if (st->meta[i].khash == h && ef_bytes_eq(ef_flag_part_key(st->parts[i]), key))
            return (ssize_t)i;
    }
    return -1;
}

/* The same, for a flag whose position in the document (created, rowid) is known: st is in that
 * order, so a flag still at its place is found by binary search without the key index (which a
 * removal makes stale); anything else goes to the key index. */
static ssize_t flag_index_at(nsstate *st, ef_bytes key, int64_t created, int64_t rowid)
{
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const fmeta *x = &st->meta[mid];
        if (x->created < created || (x->created == created && x->rowid < rowid))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < st->n && st->meta[lo].created == created && st->meta[lo].rowid == rowid &&
        ef_bytes_eq(ef_flag_part_key(st->parts[lo]), key))
        return (ssize_t)lo;
    return flag_index(st, key);
}

/* Is "\x1f" v "\x1f" in blob? */
static bool blob_has(const char *blob, ef_bytes v)
{
    if (!blob || v.n == 0) return false;
    for (const char *p = blob; (p = strchr(p, '\x1f')) != NULL; p++) {
        if (strncmp(p + 1, v.p, v.n) == 0 && p[1 + v.n] == '\x1f' &&
            !memchr(v.p, '\x1f', v.n) && !memchr(v.p, '\0', v.n))
            return true;
    }
    return false;
}

/* ---- building one flag's part ---- */

static void blob_add(ef_buf *b, ef_bytes v)
{
    if (b->len == 0) ef_buf_putc(b, '\x1f');
    ef_buf_append(b, v.p, v.n);
    ef_buf_putc(b, '\x1f');
}

static char *blob_take(ef_buf *b, ef_store_err *err, int *rc)
{
    if (!ef_buf_ok(b)) {
        *rc = ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        return NULL;
    }
    if (b->len == 0) return NULL;
    char *c = malloc(b->len + 1);
    if (!c) {
        *rc = ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        return NULL;
    }
    memcpy(c, b->data, b->len);
    c[b->len] = '\0';
    return c;
}

static const ef_doc_segment *seg_find(const ef_doc_namespace *d, ef_bytes key)
{
    for (size_t i = 0; i < d->nsegments; i++)
        if (ef_bytes_eq(d->segments[i].key, key)) return &d->segments[i];
    return NULL;
}

static void meta_segments(ef_buf *ids, ef_buf *segs, const ef_doc_namespace *d,
                          const ef_snapdoc_segs *index, const ef_bytes *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        blob_add(segs, keys[i]);
        long at = index ? ef_snapdoc_segs_find(index, keys[i]) : -1;
        const ef_doc_segment *g = index ? (at >= 0 ? &d->segments[at] : NULL) : seg_find(d, keys[i]);
        for (size_t j = 0; g && j < g->nconstraints; j++) blob_add(ids, g->constraints[j].meta.id);
    }
}

/* Reused buffers of a run of build_part calls (a full load builds thousands). */
typedef struct scratch {
    ef_buf piece, ids, segs;
    ef_arena arena; /* the compiler's */
    ef_arena src;   /* the flag's values (ef_flag_src) */
} scratch;

static void scratch_init(scratch *x)
{
    ef_buf_init(&x->piece);
    ef_buf_init(&x->ids);
    ef_buf_init(&x->segs);
    ef_arena_init(&x->arena, 16384);
    ef_arena_init(&x->src, 4096);
}

static void scratch_free(scratch *x)
{
    ef_buf_free(&x->piece);
    ef_buf_free(&x->ids);
    ef_buf_free(&x->segs);
    ef_arena_free(&x->arena);
    ef_arena_free(&x->src);
}

/* The piece, the compiled part and the row ids of flag f, whose segments d holds. */
/* segs: d's segments written once (a full load), or NULL (a flag's refresh, whose d holds only
 * the segments it uses). */
static int build_part(const ef_doc_namespace *d, const ef_snapdoc_segs *segs, const ef_doc_flag *f,
                      scratch *x, ef_flag_part **out, fmeta *m, ef_store_err *err)
{
    ef_buf *piece = &x->piece;
    *out = NULL;
    m->ids = m->segs = NULL;
    m->khash = key_hash(f->key);
    ef_buf_clear(piece);
    ef_snapdoc_opts o = {.segs = segs};
    int wrc = ef_doc_write_snapshot_flag(d, f, &o, piece);
    if (wrc != 0)
        return ef_store_fail(err, EF_STORE_INTERNAL,
                             "namespace \"%.*s\": cannot write the snapshot document of flag \"%.*s\"",
                             (int)d->key.n, d->key.p, (int)f->key.n, f->key.p);
    /* compiled from the values the piece was written from, not by parsing it back (a third of a
     * full load's instructions); from the text where only the text says what the engine reads */
    ef_flag_src src;
    ef_arena_reset(&x->src);
    int src_rc = ef_doc_snapshot_flag_src(d, f, &o, &x->src, &src);
    if (src_rc == -ENOMEM) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    ef_compile_error cerr;
    ef_flag_part *p = src_rc == 0
                          ? ef_flag_part_compile_src(&src, piece->data, piece->len, &x->arena, &cerr)
                          : ef_flag_part_compile_in(piece->data, piece->len, &x->arena, &cerr);
    if (!p) /* the rows are what the compiler refuses: invalid input, not a fault */
        return ef_store_fail(err, EF_STORE_INVALID, "namespace \"%.*s\": compile: %s", (int)d->key.n,
                             d->key.p, cerr.message);
    ef_buf *ids = &x->ids, *segs_blob = &x->segs;
    ef_buf_clear(ids);
    ef_buf_clear(segs_blob);
    for (size_t i = 0; i < f->nvariants; i++) blob_add(ids, f->variants[i].meta.id);
    for (size_t i = 0; i < f->nrules; i++) {
        const ef_doc_rule *r = &f->rules[i];
        blob_add(ids, r->meta.id);
        for (size_t j = 0; j < r->ndistributions; j++) blob_add(ids, r->distributions[j].meta.id);
        meta_segments(ids, segs_blob, d, segs, r->segment_keys, r->nsegments);
    }
    for (size_t i = 0; i < f->nrollouts; i++) {
        blob_add(ids, f->rollouts[i].meta.id);
        meta_segments(ids, segs_blob, d, segs, f->rollouts[i].segment_keys, f->rollouts[i].nsegments);
    }
    int rc = 0;
    m->ids = blob_take(ids, err, &rc);
    if (rc == 0) m->segs = blob_take(segs_blob, err, &rc);
    if (rc) {
        meta_free(m);
        ef_flag_part_unref(p);
        return -1;
    }
    *out = p;
    return 0;
}

/* ---- a whole namespace with one query per table ---- */

/* Keys -> index, open addressing over an arena array (for grouping child rows). */
static uint64_t key_hash(ef_bytes k)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < k.n; i++) h = (h ^ (unsigned char)k.p[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

typedef struct smap {
    uint32_t mask;
    uint64_t *slots; /* (index + 1) << 32 | the key hash's high half: a probe reads no other key */
} smap;

static int smap_build(smap *m, ef_arena *a, const ef_bytes *keys, size_t stride, size_t n)
{
    uint32_t cap = 8;
    while (cap < n * 2) cap *= 2;
    m->mask = cap - 1;
    m->slots = ef_arena_calloc(a, cap * sizeof(*m->slots));
    if (!m->slots) return -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = key_hash(*(const ef_bytes *)((const char *)keys + i * stride));
        uint32_t j = (uint32_t)h & m->mask;
        while (m->slots[j]) j = (j + 1) & m->mask;
        m->slots[j] = ((uint64_t)i + 1) << 32 | (h >> 32);
    }
    return 0;
}

static ssize_t smap_get(const smap *m, const ef_bytes *keys, size_t stride, ef_bytes k)
{
    uint64_t h = key_hash(k);
    for (uint32_t j = (uint32_t)h & m->mask;; j = (j + 1) & m->mask) {
        uint64_t x = m->slots[j];
        if (!x) return -1;
        size_t i = (size_t)(x >> 32) - 1;
        if ((uint32_t)x == (uint32_t)(h >> 32) &&
            ef_bytes_eq(*(const ef_bytes *)((const char *)keys + i * stride), k))
            return (ssize_t)i;
    }
}

/* The key of variant id wherever it is: 1 found, 0 not found, -1 error. Its own statement, so
 * the caller's stays where it is. */
static int variant_key(sq *s, ef_bytes id, ef_arena *a, ef_bytes *out, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_INCR_VARKEY, "SELECT key FROM variants WHERE id = ?", err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sq_col_bytes(st, 0, a);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : sq_db_err(s, err, "variant");
}

typedef struct child_ref { /* a rule or rollout: its id, flag and index there */
    ef_bytes id;
    uint32_t flag, at;
} child_ref;

#define GROW(arr, n, cap)                                                                          \
    ((arr) = sq_grow(a, (arr), (n), &(cap), sizeof(*(arr))))
/* a parent's children: a few each, and there are as many arrays as parents */
#define KIDS(arr, n, cap)                                                                          \
    ((arr) = sq_grow_from(a, (arr), (n), &(cap), sizeof(*(arr)), 2))

/* The segment list of the rule (rule) or rollout ref names: its keys, *n of them. */
static ef_bytes **segment_list(ef_doc_namespace *d, const child_ref *ref, bool rule, size_t **n)
{
    ef_doc_flag *f = &d->flags[ref->flag];
    if (rule) {
        *n = &f->rules[ref->at].nsegments;
        return &f->rules[ref->at].segment_keys;
    }
    *n = &f->rollouts[ref->at].nsegments;
    return &f->rollouts[ref->at].segment_keys;
}

/* The segment keys of rules (rule) or rollouts, in position order, from st's rows (parent id,
 * segment key, position): a parent unknown to m (another namespace's) is skipped. st is reset. */
static int read_segment_refs(sq *s, sqlite3_stmt *st, ef_doc_namespace *d, const smap *m,
                             const child_ref *refs, size_t nrefs, bool rule, ef_arena *a,
                             ef_store_err *err)
{
    size_t *caps = ef_arena_calloc(a, (nrefs + 1) * sizeof(*caps));
    sq_okey **keys = ef_arena_calloc(a, (nrefs + 1) * sizeof(*keys));
    size_t *kcaps = ef_arena_calloc(a, (nrefs + 1) * sizeof(*kcaps));
    if (!caps || !keys || !kcaps) {
        sqlite3_reset(st);
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ef_bytes id = {(const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0)};
        ssize_t i = nrefs && id.n ? smap_get(m, &refs[0].id, sizeof(child_ref), id) : -1;
        if (i < 0) continue;
        size_t *n;
        ef_bytes **list = segment_list(d, &refs[i], rule, &n);
        if (!(*list = sq_grow_from(a, *list, *n, &caps[i], sizeof(**list), 2)) ||
            !sq_okey_put(a, &keys[i], *n, &kcaps[i], sqlite3_column_int64(st, 2), 0, 0, 0)) {
            sqlite3_reset(st);
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        }
        (*list)[(*n)++] = sq_col_bytes(st, 1, a);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, rule ? "rule segments" : "rollout segments");
    for (size_t i = 0; i < nrefs; i++) { /* ORDER BY position */
        if (!refs[i].id.n) continue; /* a rollout that is not a segment rollout */
        size_t *n;
        ef_bytes **list = segment_list(d, &refs[i], rule, &n);
        if (sq_order_children(*list, sizeof(ef_bytes), keys[i], *n, a))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    }
    return 0;
}

/* Child tables are read through their namespace index, or, when the namespace holds at least half
 * of all flags (one namespace: the common case), by scanning the whole table and skipping other
 * namespaces' rows: a scan reads each row once where the index costs a seek per row (variants,
 * distributions and rule segments of 10,000 flags: 2x faster). Either way the same rows. */
#define BY_NS(whole, cols_from) "SELECT " cols_from " WHERE " whole "namespace_key = ?"
static sqlite3_stmt *child_stmt(sq *s, int slot, int scan_slot, bool whole, const char *sql,
                                const char *scan_sql, ef_bytes ns, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, whole ? scan_slot : slot, whole ? scan_sql : sql, err);
    if (st) sq_bind_bytes(st, 1, ns);
    return st;
}
#define CHILD(slot, cols_from)                                                                     \
    child_stmt(s, slot, slot##_SCAN, whole, BY_NS("", cols_from), BY_NS("+", cols_from), ns, err)

/* Whether namespace ns holds at least half of all flags. When no other namespace has a flag (two
 * seeks in the key index) it holds them all; else its count (a walk of its index entries, 400
 * instructions a flag) against max(rowid), which bounds the number of all flags from above
 * (deleted rows only make it say no more often). */
static int holds_most(sq *s, ef_bytes ns, bool *whole, ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_INCR_MAXFLAG,
                               "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM flags WHERE namespace_key < ?1)"
                               " AND NOT EXISTS (SELECT 1 FROM flags WHERE namespace_key > ?1) THEN 1"
                               " ELSE (SELECT count(*) FROM flags WHERE namespace_key = ?1) * 2 >="
                               " (SELECT COALESCE(MAX(rowid), 0) FROM flags) END",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    int rc = sqlite3_step(st);
    *whole = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : sq_db_err(s, err, "flags");
}

/* The namespace as sq_ns_load reads it (same rows, same order), with each flag's position
 * (created_at, rowid pairs in *pos), in one query per table instead of several per flag. Only
 * what a flag's snapshot piece and its row ids (fmeta) need is read: a variant's name and
 * description, a rollout's or constraint's description and the updated_at of every child row
 * are left empty (each text column read costs about 200 instructions a row). */
static int load_ns_rows(sq *s, ef_bytes key, ef_arena *a, ef_doc_namespace *d, int64_t **pos,
                        ef_store_err *err)
{
    if (sq_ns_read(s, key, a, d, err)) return -1;
    ef_bytes ns = d->key;
    d->flags = NULL;
    d->nflags = 0;
    d->segments = NULL;
    d->nsegments = 0;
    size_t capf = 0, capd = 0;
    ef_bytes *defs = NULL;
    *pos = NULL;
    int rc;
    bool whole;
    if (holds_most(s, ns, &whole, err)) return -1;
    /* ORDER BY created_at, rowid: through the index (a table seek per flag), or, reading most of
     * the table anyway, in the table's order and sorted here (10,000 flags: 24.7 M -> 19.1 M) */
#define FLAG_COLS "SELECT key, name, description, enabled, type, default_variant_id, created_at," \
                  " updated_at, rowid FROM flags WHERE "
    sqlite3_stmt *st =
        whole ? sq_stmt(s, SL_INCR_FLAGS_SCAN, FLAG_COLS "+namespace_key = ?", err)
              : sq_stmt(s, SL_INCR_FLAGS, FLAG_COLS "namespace_key = ? ORDER BY created_at, rowid",
                        err);
#undef FLAG_COLS
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_okey *order = NULL;
    size_t capo = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!GROW(d->flags, d->nflags, capf) || !GROW(defs, d->nflags, capd) ||
            !sq_okey_put(a, &order, d->nflags, &capo, sqlite3_column_int64(st, 6),
                         sqlite3_column_int64(st, 8), 0, 0))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        ef_doc_flag *f = &d->flags[d->nflags];
        memset(f, 0, sizeof(*f));
        f->key = sq_col_bytes(st, 0, a);
        f->name = sq_col_bytes(st, 1, a);
        f->description = sq_col_bytes(st, 2, a);
        f->enabled = sqlite3_column_int(st, 3) != 0;
        f->type = sqlite3_column_int(st, 4) == 1 ? EF_DOC_BOOLEAN_FLAG : EF_DOC_VARIANT_FLAG;
        defs[d->nflags] = sq_col_bytes(st, 5, a);
        f->meta.created_ns = sqlite3_column_int64(st, 6);
        f->meta.updated_ns = sqlite3_column_int64(st, 7);
        d->nflags++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "flags");
    if (sq_order_children(d->flags, sizeof(ef_doc_flag), order, d->nflags, a))
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    ef_bytes *sorted_defs = ef_arena_alloc(a, (d->nflags + 1) * sizeof(*defs));
    *pos = ef_arena_alloc(a, (d->nflags + 1) * 2 * sizeof(**pos));
    if (!sorted_defs || !*pos) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    for (size_t i = 0; i < d->nflags; i++) {
        sorted_defs[i] = defs[order[i].i];
        (*pos)[i * 2] = order[i].k[0];
        (*pos)[i * 2 + 1] = order[i].k[1];
    }
    defs = sorted_defs;
    smap fm;
    if (smap_build(&fm, a, d->nflags ? &d->flags[0].key : NULL, sizeof(ef_doc_flag), d->nflags))
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    size_t *caps = ef_arena_calloc(a, (d->nflags + 1) * 3 * sizeof(*caps));
    if (!caps) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");

    /* per flag: the order keys of its variants, rules and rollouts (sq_okey) */
    sq_okey **fkeys = ef_arena_calloc(a, (d->nflags + 1) * 3 * sizeof(*fkeys));
    size_t *kcaps = ef_arena_calloc(a, (d->nflags + 1) * 3 * sizeof(*kcaps));
    if (!fkeys || !kcaps) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    st = CHILD(SL_INCR_VARS, "flag_key, id, key, attachment, created_at, rowid FROM variants");
    if (!st) return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ef_bytes fk = {(const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0)};
        ssize_t fi = d->nflags ? smap_get(&fm, &d->flags[0].key, sizeof(ef_doc_flag), fk) : -1;
        if (fi < 0) continue;
        ef_doc_flag *f = &d->flags[fi];
        if (!KIDS(f->variants, f->nvariants, caps[fi * 3]) ||
            !sq_okey_put(a, &fkeys[fi * 3], f->nvariants, &kcaps[fi * 3], sqlite3_column_int64(st, 4),
                      sqlite3_column_int64(st, 5), 0, 0))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        ef_doc_variant *v = &f->variants[f->nvariants++];
        memset(v, 0, sizeof(*v));
        v->meta.id = sq_col_bytes(st, 1, a);
        v->key = sq_col_bytes(st, 2, a);
        v->attachment = sq_col_bytes(st, 3, a);
        v->meta.created_ns = sqlite3_column_int64(st, 4);
        v->is_default = defs[fi].n && ef_bytes_eq(defs[fi], v->meta.id);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "variants");
    for (size_t i = 0; i < d->nflags; i++) /* ORDER BY created_at, rowid */
        if (sq_order_children(d->flags[i].variants, sizeof(ef_doc_variant), fkeys[i * 3],
                           d->flags[i].nvariants, a))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");

    /* rules, then their segments and distributions */
    child_ref *rules = NULL;
    size_t nrules = 0, caprules = 0;
    st = CHILD(SL_INCR_RULES,
               "flag_key, id, segment_operator, created_at, rank, rowid FROM rules");
    if (!st) return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ef_bytes fk = {(const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0)};
        ssize_t fi = d->nflags ? smap_get(&fm, &d->flags[0].key, sizeof(ef_doc_flag), fk) : -1;
        if (fi < 0) continue;
        ef_doc_flag *f = &d->flags[fi];
        if (!KIDS(f->rules, f->nrules, caps[fi * 3 + 1]) || !GROW(rules, nrules, caprules) ||
            !sq_okey_put(a, &fkeys[fi * 3 + 1], f->nrules, &kcaps[fi * 3 + 1],
                      sqlite3_column_int64(st, 4), sqlite3_column_int64(st, 3),
                      sqlite3_column_int64(st, 5), (uint32_t)nrules))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        ef_doc_rule *r = &f->rules[f->nrules];
        memset(r, 0, sizeof(*r));
        r->meta.id = sq_col_bytes(st, 1, a);
        r->op = sqlite3_column_int(st, 2) == 1 ? EF_DOC_OP_AND : EF_DOC_OP_OR;
        r->meta.created_ns = sqlite3_column_int64(st, 3);
        rules[nrules++] = (child_ref){r->meta.id, (uint32_t)fi, (uint32_t)f->nrules};
        f->nrules++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "rules");
    for (size_t i = 0; i < d->nflags; i++) { /* ORDER BY rank, created_at, rowid */
        sq_okey *k = fkeys[i * 3 + 1];
        if (sq_order_children(d->flags[i].rules, sizeof(ef_doc_rule), k, d->flags[i].nrules, a))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        for (size_t m = 0; m < d->flags[i].nrules; m++) rules[k[m].ref].at = (uint32_t)m;
    }
    smap rm;
    if (smap_build(&rm, a, nrules ? &rules[0].id : NULL, sizeof(child_ref), nrules))
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    size_t *rcaps = ef_arena_calloc(a, (nrules + 1) * sizeof(*rcaps));
    sq_okey **dkeys = ef_arena_calloc(a, (nrules + 1) * sizeof(*dkeys));
    size_t *dcaps = ef_arena_calloc(a, (nrules + 1) * sizeof(*dcaps));
    if (!rcaps || !dkeys || !dcaps) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    st = CHILD(SL_INCR_RSEGS, "rule_id, segment_key, position FROM rule_segments");
    if (!st || read_segment_refs(s, st, d, &rm, rules, nrules, true, a, err)) return -1;
    /* distributions have no namespace column: a scan keeps those of this namespace's rules */
#define DIST_COLS "d.rule_id, d.id, d.variant_id, d.rollout, d.created_at, d.rowid"
    if (whole)
        st = sq_stmt(s, SL_INCR_DISTS_SCAN, "SELECT " DIST_COLS " FROM distributions d", err);
    else if ((st = sq_stmt(s, SL_INCR_DISTS,
                           "SELECT " DIST_COLS " FROM distributions d JOIN rules r ON r.id ="
                           " d.rule_id WHERE r.namespace_key = ?",
                           err)))
        sq_bind_bytes(st, 1, ns);
#undef DIST_COLS
    if (!st) return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ef_bytes id = {(const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0)};
        ssize_t ri = nrules ? smap_get(&rm, &rules[0].id, sizeof(child_ref), id) : -1;
        if (ri < 0) continue;
        ef_doc_rule *r = &d->flags[rules[ri].flag].rules[rules[ri].at];
        /* the variant's key from the rows read above (what a JOIN on variants gave, without a
         * lookup per distribution); a variant of another flag is looked up, and a distribution
         * without its variant is left out, as the JOIN left it out */
        ef_bytes vid = {(const char *)sqlite3_column_text(st, 2), (size_t)sqlite3_column_bytes(st, 2)};
        ef_bytes vkey;
        const ef_doc_flag *of = &d->flags[rules[ri].flag];
        bool found = false;
        for (size_t v = 0; v < of->nvariants && !found; v++)
            if (ef_bytes_eq(of->variants[v].meta.id, vid)) {
                vkey = of->variants[v].key;
                found = true;
            }
        if (!found) {
            int vr = variant_key(s, vid, a, &vkey, err);
            if (vr < 0) return -1;
            if (vr == 0) continue;
        }
        if (!KIDS(r->distributions, r->ndistributions, rcaps[ri]) ||
            !sq_okey_put(a, &dkeys[ri], r->ndistributions, &dcaps[ri], sqlite3_column_int64(st, 4),
                      sqlite3_column_int64(st, 5), 0, 0))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        ef_doc_distribution *x = &r->distributions[r->ndistributions++];
        memset(x, 0, sizeof(*x));
        x->meta.id = sq_col_bytes(st, 1, a);
        x->variant_id = sq_col_bytes(st, 2, a);
        x->variant_key = vkey;
        x->rollout = (float)sqlite3_column_double(st, 3);
        x->meta.created_ns = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "distributions");
    for (size_t i = 0; i < nrules; i++) { /* ORDER BY created_at, rowid */
        ef_doc_rule *r = &d->flags[rules[i].flag].rules[rules[i].at];
        if (sq_order_children(r->distributions, sizeof(ef_doc_distribution), dkeys[i],
                           r->ndistributions, a))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    }

    /* rollouts and their segments */
    child_ref *ros = NULL;
    size_t nros = 0, capros = 0;
    st = CHILD(SL_INCR_ROS, "flag_key, id, type, percentage, value, segment_operator, created_at,"
                            " rank, rowid FROM rollouts");
    if (!st) return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ef_bytes fk = {(const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0)};
        ssize_t fi = d->nflags ? smap_get(&fm, &d->flags[0].key, sizeof(ef_doc_flag), fk) : -1;
        if (fi < 0) continue;
        ef_doc_flag *f = &d->flags[fi];
        if (!KIDS(f->rollouts, f->nrollouts, caps[fi * 3 + 2]) || !GROW(ros, nros, capros) ||
            !sq_okey_put(a, &fkeys[fi * 3 + 2], f->nrollouts, &kcaps[fi * 3 + 2],
                      sqlite3_column_int64(st, 7), sqlite3_column_int64(st, 6),
                      sqlite3_column_int64(st, 8), (uint32_t)nros))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        ef_doc_rollout *r = &f->rollouts[f->nrollouts];
        memset(r, 0, sizeof(*r));
        r->meta.id = sq_col_bytes(st, 1, a);
        r->type = (ef_doc_rollout_type)sqlite3_column_int(st, 2);
        r->percentage = (float)sqlite3_column_double(st, 3);
        r->value = sqlite3_column_int(st, 4) != 0;
        r->op = sqlite3_column_int(st, 5) == 1 ? EF_DOC_OP_AND : EF_DOC_OP_OR;
        r->meta.created_ns = sqlite3_column_int64(st, 6);
        /* only a segment rollout's segments are read, as sq_rollout_read_row does */
        ros[nros++] = (child_ref){r->type == EF_DOC_ROLLOUT_SEGMENT ? r->meta.id : (ef_bytes){"", 0},
                                  (uint32_t)fi, (uint32_t)f->nrollouts};
        f->nrollouts++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "rollouts");
    for (size_t i = 0; i < d->nflags; i++) { /* ORDER BY rank, created_at, rowid */
        sq_okey *k = fkeys[i * 3 + 2];
        if (sq_order_children(d->flags[i].rollouts, sizeof(ef_doc_rollout), k, d->flags[i].nrollouts,
                           a))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        for (size_t m = 0; m < d->flags[i].nrollouts; m++) ros[k[m].ref].at = (uint32_t)m;
    }
    smap om;
    if (smap_build(&om, a, nros ? &ros[0].id : NULL, sizeof(child_ref), nros))
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    st = CHILD(SL_INCR_ROSEGS, "rollout_id, segment_key, position FROM rollout_segments");
    if (!st || read_segment_refs(s, st, d, &om, ros, nros, false, a, err)) return -1;

    /* segments and their constraints */
    size_t caps_seg = 0;
    st = sq_stmt(s, SL_INCR_SEGS,
                 "SELECT key, name, description, match_type, created_at, updated_at FROM segments"
                 " WHERE namespace_key = ? ORDER BY created_at, rowid",
                 err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!GROW(d->segments, d->nsegments, caps_seg))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        ef_doc_segment *g = &d->segments[d->nsegments++];
        memset(g, 0, sizeof(*g));
        g->key = sq_col_bytes(st, 0, a);
        g->name = sq_col_bytes(st, 1, a);
        g->description = sq_col_bytes(st, 2, a);
        g->match_type = sqlite3_column_int(st, 3) == 1 ? EF_DOC_MATCH_ANY : EF_DOC_MATCH_ALL;
        g->meta.created_ns = sqlite3_column_int64(st, 4);
        g->meta.updated_ns = sqlite3_column_int64(st, 5);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "segments");
    smap gm;
    if (smap_build(&gm, a, d->nsegments ? &d->segments[0].key : NULL, sizeof(ef_doc_segment),
                   d->nsegments))
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    size_t *gcaps = ef_arena_calloc(a, (d->nsegments + 1) * sizeof(*gcaps));
    sq_okey **gkeys = ef_arena_calloc(a, (d->nsegments + 1) * sizeof(*gkeys));
    size_t *gkcaps = ef_arena_calloc(a, (d->nsegments + 1) * sizeof(*gkcaps));
    if (!gcaps || !gkeys || !gkcaps) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    st = CHILD(SL_INCR_CONS, "segment_key, id, type, property, operator, value, created_at, rowid"
                             " FROM constraints");
    if (!st) return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ef_bytes gk = {(const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0)};
        ssize_t gi = d->nsegments ? smap_get(&gm, &d->segments[0].key, sizeof(ef_doc_segment), gk) : -1;
        if (gi < 0) continue;
        ef_doc_segment *g = &d->segments[gi];
        if (!KIDS(g->constraints, g->nconstraints, gcaps[gi]) ||
            !sq_okey_put(a, &gkeys[gi], g->nconstraints, &gkcaps[gi], sqlite3_column_int64(st, 6),
                      sqlite3_column_int64(st, 7), 0, 0))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        ef_doc_constraint *c = &g->constraints[g->nconstraints++];
        memset(c, 0, sizeof(*c));
        c->meta.id = sq_col_bytes(st, 1, a);
        c->type = (ef_doc_ctype)sqlite3_column_int(st, 2);
        c->property = sq_col_bytes(st, 3, a);
        c->op = sq_col_bytes(st, 4, a);
        c->value = sq_col_bytes(st, 5, a);
        c->meta.created_ns = sqlite3_column_int64(st, 6);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return sq_db_err(s, err, "constraints");
    for (size_t i = 0; i < d->nsegments; i++) /* ORDER BY created_at, rowid */
        if (sq_order_children(d->segments[i].constraints, sizeof(ef_doc_constraint), gkeys[i],
                           d->segments[i].nconstraints, a))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    return 0;
}

#undef GROW
#undef KIDS

/* The whole namespace, compiled flag by flag. *out NULL when the namespace is gone. On one
 * thread: a second one compiling half the flags was slower on the benchmark VM once malloc uses
 * huge pages (hugepages.h), because glibc 2.36 advises them for the main arena only and the
 * helper's parts faulted in 4 KiB pages at ~11 us each (10,000 flags: 102-133 ms on two threads,
 * 93-100 ms on one; 100,000: 1,263 ms, 988 ms). */
static int full_state(sq *s, ef_bytes key, nsstate **out, ef_store_err *err)
{
    *out = NULL;
    ef_arena a;
    ef_arena_init(&a, 65536);
    ef_doc_namespace d;
    int64_t *pos;
    ef_store_err lerr;
    if (load_ns_rows(s, key, &a, &d, &pos, &lerr)) {
        ef_arena_free(&a);
        if (lerr.code == EF_STORE_NOT_FOUND) return 0;
        if (err) *err = lerr;
        return -1;
    }
    nsstate *st = state_new(d.key, d.nflags);
    /* each segment written once, not once per flag whose rules use it, and found by key */
    ef_snapdoc_segs *segs = st ? ef_snapdoc_segs_new(&d, NULL) : NULL;
    if (!st || !segs) {
        state_free(st, false);
        ef_arena_free(&a);
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    }
    scratch x;
    scratch_init(&x);
    size_t done = 0; /* flags [0, done) are built */
    int rc = 0;
    while (done < d.nflags &&
           (rc = build_part(&d, segs, &d.flags[done], &x, &st->parts[done], &st->meta[done], err)) == 0) {
        st->meta[done].created = pos[done * 2];
        st->meta[done].rowid = pos[done * 2 + 1];
        done++;
    }
    scratch_free(&x);
    ef_snapdoc_segs_free(segs);
    ef_arena_free(&a);
    if (rc) {
        for (size_t i = 0; i < done; i++) {
            ef_flag_part_unref(st->parts[i]);
            meta_free(&st->meta[i]);
        }
        state_free(st, false);
        return -1;
    }
    st->n = d.nflags;
    *out = st;
    return 0;
}

/* ---- what an entry touched ---- */

typedef struct dirty {
    bool full;
    size_t nflags, capf, nsegs, caps;
    ef_bytes *flags, *segs;
} dirty;

typedef struct idmap { /* rules and rollouts written by this entry: id -> (namespace, flag) */
    ef_bytes id, ns, flag;
} idmap;

typedef struct scan {
    sq *s;
    ef_arena *a;
    dirty *d; /* per touched namespace */
    idmap *ids;
    size_t nids, capids;
} scan;

static ssize_t touched_index(sq *s, ef_bytes ns)
{
    ns = sq_ns(ns);
    for (size_t i = 0; i < s->ntouched; i++)
        if (key_is(s->touched[i], ns)) return (ssize_t)i;
    return -1;
}

static void all_full(scan *c)
{
    for (size_t i = 0; i < c->s->ntouched; i++) c->d[i].full = true;
}

static int add_key(scan *c, ef_bytes **arr, size_t *n, size_t *cap, ef_bytes k)
{
    for (size_t i = 0; i < *n; i++)
        if (ef_bytes_eq((*arr)[i], k)) return 0;
    *arr = sq_grow(c->a, *arr, *n, cap, sizeof(**arr));
    if (!*arr) return -1;
    (*arr)[(*n)++] = k;
    return 0;
}

/* A flag of ns changed; a namespace the transaction did not touch gets everything recompiled. */
static int mark_flag(scan *c, ef_bytes ns, ef_bytes flag)
{
    ssize_t t = touched_index(c->s, ns);
    if (t < 0) {
        all_full(c);
        return 0;
    }
    dirty *d = &c->d[t];
    return add_key(c, &d->flags, &d->nflags, &d->capf, flag);
}

static int mark_seg(scan *c, ef_bytes ns, ef_bytes seg)
{
    ssize_t t = touched_index(c->s, ns);
    if (t < 0) {
        all_full(c);
        return 0;
    }
    dirty *d = &c->d[t];
    return add_key(c, &d->segs, &d->nsegs, &d->caps, seg);
}

/* Marks every flag of a touched namespace whose rows include id. Returns whether any did. */
static bool mark_by_id(scan *c, ef_bytes id)
{
    bool found = false;
    for (size_t t = 0; t < c->s->ntouched; t++) {
        nsstate *st = state_find(c->s->incr, ef_bytes_of(c->s->touched[t]), NULL);
        for (size_t i = 0; st && i < st->n; i++)
            if (blob_has(st->meta[i].ids, id)) {
                found = true;
                dirty *d = &c->d[t];
                if (add_key(c, &d->flags, &d->nflags, &d->capf, ef_flag_part_key(st->parts[i])))
                    c->d[t].full = true; /* out of memory: the safe answer */
            }
    }
    return found;
}

/* A row of a rule's or rollout's children: its parent, written by this entry or already known. */
static bool mark_parent(scan *c, ef_bytes parent)
{
    for (size_t i = 0; i < c->nids; i++)
        if (ef_bytes_eq(c->ids[i].id, parent)) {
            mark_flag(c, c->ids[i].ns, c->ids[i].flag);
            return true;
        }
    return mark_by_id(c, parent);
}

static ef_bytes jstr(const ef_json *obj, const char *name, bool *ok)
{
    const ef_json *v = obj ? ef_json_get(obj, name) : NULL;
    if (!v || v->type != EF_JSON_STRING) {
        *ok = false;
        return (ef_bytes){"", 0};
    }
    return v->str;
}

static void classify(scan *c, const ef_json *ch)
{
    bool ok = true;
    ef_bytes tbl = jstr(ch, "table", &ok), op = jstr(ch, "op", &ok);
    const ef_json *pk = ef_json_get(ch, "pk"), *row = ef_json_get(ch, "row");
    bool del = ef_bytes_eq(op, EF_BYTES_LIT("delete"));
    if (!ok || (!del && (!row || row->type != EF_JSON_OBJECT)) || !pk || pk->type != EF_JSON_OBJECT) {
        all_full(c);
        return;
    }
#define IS(name) ef_bytes_eq(tbl, EF_BYTES_LIT(name))
    if (IS("tokens")) return; /* not part of any snapshot */
    if (IS("namespaces")) {
        ef_bytes k = jstr(pk, "key", &ok);
        ssize_t t = ok ? touched_index(c->s, k) : -1;
        if (t < 0)
            all_full(c);
        else if (del || !state_find(c->s->incr, sq_ns(k), NULL))
            c->d[t].full = true; /* a new namespace is compiled whole; a renamed one is unchanged */
        return;
    }
    if (IS("flags")) {
        ef_bytes ns = jstr(pk, "namespace_key", &ok), k = jstr(pk, "key", &ok);
        if (ok) mark_flag(c, ns, k); else all_full(c);
        return;
    }
    if (IS("segments")) {
        ef_bytes ns = jstr(pk, "namespace_key", &ok), k = jstr(pk, "key", &ok);
        if (ok) mark_seg(c, ns, k); else all_full(c);
        return;
    }
    if (IS("variants") || IS("rules") || IS("rollouts")) {
        if (del) {
            ef_bytes id = jstr(pk, "id", &ok);
            /* not found: the row is in no published piece (nor, then, in any that will change) */
            if (ok) mark_by_id(c, id); else all_full(c);
            return;
        }
        ef_bytes ns = jstr(row, "namespace_key", &ok), f = jstr(row, "flag_key", &ok);
        if (ok) mark_flag(c, ns, f); else all_full(c);
        return;
    }
    if (IS("constraints")) {
        if (del) {
            ef_bytes id = jstr(pk, "id", &ok);
            if (ok) mark_by_id(c, id); else all_full(c);
            return;
        }
        ef_bytes ns = jstr(row, "namespace_key", &ok), g = jstr(row, "segment_key", &ok);
        if (ok) mark_seg(c, ns, g); else all_full(c);
        return;
    }
    if (IS("rule_segments") || IS("rollout_segments") || IS("distributions")) {
        const char *pcol = IS("rollout_segments") ? "rollout_id" : "rule_id";
        if (del && IS("distributions")) {
            ef_bytes id = jstr(pk, "id", &ok);
            if (ok) mark_by_id(c, id); else all_full(c);
            return;
        }
        ef_bytes parent = jstr(del ? pk : row, pcol, &ok);
        if (!ok) {
            all_full(c);
            return;
        }
        /* a deleted child of a parent no piece holds changes nothing; an upsert must resolve */
        if (!mark_parent(c, parent) && !del) all_full(c);
        return;
    }
#undef IS
    all_full(c); /* a table this file does not know */
}

/* Fills c->d from the entry's changes. */
static void scan_entry(scan *c, const ef_json *root)
{
    const ef_json *ch = root ? ef_json_get(root, "changes") : NULL;
    if (!ch || ch->type != EF_JSON_ARRAY) {
        all_full(c);
        return;
    }
    /* first the rules and rollouts this entry writes, so their children resolve to them */
    for (const ef_json *x = ch->child; x; x = x->next) {
        bool ok = true;
        ef_bytes tbl = jstr(x, "table", &ok);
        const ef_json *row = ef_json_get(x, "row");
        if (!ok || !row || row->type != EF_JSON_OBJECT ||
            !(ef_bytes_eq(tbl, EF_BYTES_LIT("rules")) || ef_bytes_eq(tbl, EF_BYTES_LIT("rollouts"))))
            continue;
        idmap m = {jstr(row, "id", &ok), jstr(row, "namespace_key", &ok), jstr(row, "flag_key", &ok)};
        if (!ok) continue; /* classify() sends it to a full recompile */
        c->ids = sq_grow(c->a, c->ids, c->nids, &c->capids, sizeof(*c->ids));
        if (!c->ids) {
            all_full(c);
            return;
        }
        c->ids[c->nids++] = m;
    }
    for (const ef_json *x = ch->child; x; x = x->next) classify(c, x);
}

/* ---- a namespace's next state ---- */

static void state_remove_at(nsstate *st, size_t i);

/* Room for n more undo records, so a change is never made without its record. */
static int undo_reserve(prep *p, size_t n)
{
    if (p->nundo + n <= p->capundo) return 0;
    size_t cap = p->capundo * 2 > p->nundo + n ? p->capundo * 2 : p->nundo + n + 8;
    undo *u = realloc(p->undo, cap * sizeof(*u));
    if (!u) return -1;
    p->undo = u;
    p->capundo = cap;
    return 0;
}

static void undo_push(prep *p, int op, size_t at, ef_flag_part *part, fmeta meta)
{
    p->undo[p->nundo++] = (undo){.op = op, .at = at, .part = part, .meta = meta};
}

static void prep_free(prep *p, bool committed)
{
    if (committed) {
        for (size_t i = 0; i < p->ndrop; i++) {
            ef_flag_part_unref(p->drop_parts[i]);
            meta_free(&p->drop_meta[i]);
        }
    } else {
        if (p->inplace) { /* put the old state back as it was */
            nsstate *st = p->next;
            if (p->nundo) st->kidx_stale = true;
            for (size_t i = p->nundo; i-- > 0;) {
                undo *u = &p->undo[i];
                if (u->op == UNDO_INSERT) {
                    state_remove_at(st, u->at);
                } else if (u->op == UNDO_REPLACE) {
                    st->parts[u->at] = u->part;
                    st->meta[u->at] = u->meta;
                } else { /* capacity: a removal made room for this very entry */
                    memmove(&st->parts[u->at + 1], &st->parts[u->at], (st->n - u->at) * sizeof(*st->parts));
                    memmove(&st->meta[u->at + 1], &st->meta[u->at], (st->n - u->at) * sizeof(*st->meta));
                    st->parts[u->at] = u->part;
                    st->meta[u->at] = u->meta;
                    st->n++;
                }
            }
        }
        for (size_t i = 0; i < p->nadd; i++) {
            ef_flag_part_unref(p->add_parts[i]);
            meta_free(&p->add_meta[i]);
        }
        if (!p->inplace) state_free(p->next, p->full);
    }
    free(p->undo);
    free(p->drop_parts);
    free(p->drop_meta);
    free(p->add_parts);
    free(p->add_meta);
    free(p->key);
    memset(p, 0, sizeof(*p));
}

static int prep_record(ef_flag_part ***parts, fmeta **meta, size_t *n, ef_flag_part *p, fmeta m)
{
    ef_flag_part **np = realloc(*parts, (*n + 1) * sizeof(*np));
    if (!np) return -1;
    *parts = np;
    fmeta *nm = realloc(*meta, (*n + 1) * sizeof(*nm));
    if (!nm) return -1;
    *meta = nm;
    (*parts)[*n] = p;
    (*meta)[*n] = m;
    (*n)++;
    return 0;
}

static void state_remove_at(nsstate *st, size_t i)
{
    st->kidx_stale = true;
    memmove(&st->parts[i], &st->parts[i + 1], (st->n - i - 1) * sizeof(*st->parts));
    memmove(&st->meta[i], &st->meta[i + 1], (st->n - i - 1) * sizeof(*st->meta));
    st->n--;
}

static size_t state_insert_sorted(nsstate *st, ef_flag_part *p, fmeta m)
{
    size_t lo = 0, hi = st->n; /* first entry ordered after (created, rowid) */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const fmeta *x = &st->meta[mid];
        if (x->created < m.created || (x->created == m.created && x->rowid < m.rowid))
            lo = mid + 1;
        else
            hi = mid;
    }
    bool append = lo == st->n;
    memmove(&st->parts[lo + 1], &st->parts[lo], (st->n - lo) * sizeof(*st->parts));
    memmove(&st->meta[lo + 1], &st->meta[lo], (st->n - lo) * sizeof(*st->meta));
    st->parts[lo] = p;
    st->meta[lo] = m;
    st->n++;
    /* a new flag (the last in document order) joins the key index; anything else shifted it */
    if (append && st->kidx && !st->kidx_stale && st->n * 2 + 2 <= (size_t)st->kmask + 1)
        kidx_put(st, lo);
    else
        st->kidx_stale = true;
    return lo;
}

static int flag_position(sq *s, ef_bytes ns, ef_bytes key, int64_t *created, int64_t *rowid,
                         ef_store_err *err)
{
    sqlite3_stmt *st = sq_stmt(s, SL_INCR_POS_ONE,
                               "SELECT created_at, rowid FROM flags WHERE namespace_key = ? AND key = ?",
                               err);
    if (!st) return -1;
    sq_bind_bytes(st, 1, ns);
    sq_bind_bytes(st, 2, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *created = sqlite3_column_int64(st, 0);
        *rowid = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return ef_store_fail(err, EF_STORE_NOT_FOUND, "flag gone");
    return rc == SQLITE_ROW ? 0 : sq_db_err(s, err, "flag");
}

/* Reloads one flag (with the segments it uses) into the next state p->next. */
static int refresh_flag(sq *s, prep *p, ef_bytes ns, ef_bytes key, scratch *x, ef_store_err *err)
{
    nsstate *st = p->next;
    ssize_t at;
    ef_arena a;
    ef_arena_init(&a, 8192);
    ef_doc_namespace d;
    memset(&d, 0, sizeof(d));
    d.key = ns;
    ef_doc_flag f;
    ef_store_err lerr;
    int rc = sq_flag_read(s, ns, key, &a, &f, &lerr);
    if (rc && lerr.code == EF_STORE_NOT_FOUND) { /* deleted */
        if ((at = flag_index(st, key)) >= 0) {
            if (undo_reserve(p, 1) ||
                prep_record(&p->drop_parts, &p->drop_meta, &p->ndrop, st->parts[at], st->meta[at]))
                rc = ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
            else {
                undo_push(p, UNDO_REMOVE, (size_t)at, st->parts[at], st->meta[at]);
                state_remove_at(st, (size_t)at);
                rc = 0;
            }
        } else {
            rc = 0;
        }
        ef_arena_free(&a);
        return rc;
    }
    if (rc) {
        if (err) *err = lerr;
        ef_arena_free(&a);
        return -1;
    }
    int64_t created = 0, rowid = 0;
    rc = sq_flag_load_children(s, ns, &a, &f, err);
    if (rc == 0) rc = flag_position(s, ns, key, &created, &rowid, err);
    /* the segments its rules and rollouts use */
    size_t cap = 0;
    for (size_t i = 0; rc == 0 && i < f.nrules + f.nrollouts; i++) {
        const ef_bytes *keys = i < f.nrules ? f.rules[i].segment_keys
                                            : f.rollouts[i - f.nrules].segment_keys;
        size_t n = i < f.nrules ? f.rules[i].nsegments : f.rollouts[i - f.nrules].nsegments;
        for (size_t j = 0; rc == 0 && j < n; j++) {
            if (seg_find(&d, keys[j])) continue;
            d.segments = sq_grow(&a, d.segments, d.nsegments, &cap, sizeof(*d.segments));
            if (!d.segments) {
                rc = ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
                break;
            }
            rc = sq_segment_read(s, ns, keys[j], &a, &d.segments[d.nsegments], err);
            if (rc == 0) d.nsegments++;
        }
    }
    ef_flag_part *part = NULL;
    fmeta m = {0};
    if (rc == 0) rc = build_part(&d, NULL, &f, x, &part, &m, err);
    ef_arena_free(&a);
    if (rc) return -1;
    m.created = created;
    m.rowid = rowid;
    at = flag_index_at(st, key, created, rowid);
    if (prep_record(&p->add_parts, &p->add_meta, &p->nadd, part, m)) {
        ef_flag_part_unref(part);
        meta_free(&m);
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    }
    if (undo_reserve(p, 2) || state_reserve(st, st->n + 1))
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    if (at >= 0) {
        if (prep_record(&p->drop_parts, &p->drop_meta, &p->ndrop, st->parts[at], st->meta[at]))
            return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        if (st->meta[at].created == created && st->meta[at].rowid == rowid) {
            undo_push(p, UNDO_REPLACE, (size_t)at, st->parts[at], st->meta[at]);
            st->parts[at] = part; /* same place in the document */
            st->meta[at] = m;
            return 0;
        }
        undo_push(p, UNDO_REMOVE, (size_t)at, st->parts[at], st->meta[at]);
        state_remove_at(st, (size_t)at);
    }
    undo_push(p, UNDO_INSERT, state_insert_sorted(st, part, m), NULL, (fmeta){0});
    return 0;
}

/* The next state of touched namespace t, given what the entry touched in it. */
static int prepare_ns(sq *s, prep *p, dirty *d, ef_store_err *err)
{
    ef_bytes key = ef_bytes_of(p->key);
    nsstate *old = state_find(s->incr, key, NULL);
    if (!old || d->full || d->nflags > old->n / 4 + 8) {
        p->full = true;
        return full_state(s, key, &p->next, err);
    }
    p->next = old;
    p->inplace = true;
    scratch x;
    scratch_init(&x);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < d->nflags; i++) rc = refresh_flag(s, p, key, d->flags[i], &x, err);
    scratch_free(&x);
    return rc;
}

void sq_incr_discard(sq *s)
{
    sq_incr *in = s->incr;
    if (!in) return;
    for (size_t i = 0; i < in->npre; i++) prep_free(&in->pre[i], false);
    free(in->pre);
    in->pre = NULL;
    in->npre = 0;
    in->prepared = false;
}

/* Expands the dirty segments of each namespace into the flags that use them (with the scan's
 * arena still alive). */
static int expand_segments(scan *c)
{
    for (size_t t = 0; t < c->s->ntouched; t++) {
        dirty *d = &c->d[t];
        nsstate *old = state_find(c->s->incr, ef_bytes_of(c->s->touched[t]), NULL);
        for (size_t g = 0; old && !d->full && g < d->nsegs; g++)
            for (size_t i = 0; i < old->n; i++)
                if (blob_has(old->meta[i].segs, d->segs[g]) &&
                    add_key(c, &d->flags, &d->nflags, &d->capf, ef_flag_part_key(old->parts[i])))
                    return -1;
        d->nsegs = 0;
    }
    return 0;
}

int sq_incr_prepare(sq *s, const ef_json *entry, ef_store_err *err)
{
    sq_incr_discard(s);
    if (!s->opts.registry || s->ntouched == 0) return 0;
    if (!s->incr && !(s->incr = calloc(1, sizeof(*s->incr))))
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    sq_incr *in = s->incr;
    ef_arena a;
    ef_arena_init(&a, 16384);
    scan c = {.s = s, .a = &a};
    c.d = ef_arena_calloc(&a, s->ntouched * sizeof(*c.d));
    in->pre = calloc(s->ntouched, sizeof(*in->pre));
    if (!c.d || !in->pre) {
        ef_arena_free(&a);
        free(in->pre);
        in->pre = NULL;
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    }
    if (ns_reserve(in, s->ntouched, err)) {
        ef_arena_free(&a);
        free(in->pre);
        in->pre = NULL;
        return -1;
    }
    scan_entry(&c, entry);
    if (expand_segments(&c)) all_full(&c);
    int rc = 0;
    size_t ntouched = s->ntouched; /* touched never grows past this point */
    for (size_t t = 0; rc == 0 && t < ntouched; t++) {
        prep *p = &in->pre[t];
        p->key = strdup(s->touched[t]);
        in->npre = t + 1;
        if (!p->key) {
            rc = ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
            break;
        }
        ef_store_err perr;
        rc = prepare_ns(s, p, &c.d[t], &perr);
        if (rc) {
            if (perr.code != EF_STORE_INVALID) { /* reading failed: say so as it is */
                if (err) *err = perr;
            } else {
                ef_store_fail(err, EF_STORE_INVALID,
                              "write refused, its result cannot be evaluated: %s", perr.message);
            }
        }
    }
    ef_arena_free(&a);
    if (rc) {
        sq_incr_discard(s);
        return -1;
    }
    in->prepared = true;
    return 0;
}

bool sq_incr_is_prepared(sq *s)
{
    return s->incr && s->incr->prepared;
}

/* A stable 64-bit hash of the store's history id (0 when it has none). */
static uint64_t history_hash(sq *s)
{
    sqlite3_stmt *st = sq_stmt(s, SL_INCR_HISTORY, "SELECT history FROM ef_identity WHERE id = 1", NULL);
    uint64_t h = 0;
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        h = 0xcbf29ce484222325ull;
        for (; t && *t; t++) h = (h ^ *t) * 0x100000001b3ull;
    }
    if (st) sqlite3_reset(st);
    return h;
}

/* Room for n more states (reserved before anything is committed, so installing cannot fail). */
static int ns_reserve(sq_incr *in, size_t n, ef_store_err *err)
{
    nsstate **ns = realloc(in->ns, (in->nns + n + 1) * sizeof(*ns));
    if (!ns) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    in->ns = ns;
    return 0;
}

/* Makes st the namespace's state (taking it; NULL removes it) and publishes its snapshot.
 * changes (NULL: unknown) are st's in-place changes since it was last published. The caller
 * frees the old state (found before) as the new one's sharing requires. */
static int install(sq *s, ef_bytes key, nsstate *st, uint64_t history, uint64_t seq,
                   const ef_parts_changes *changes, ef_store_err *err)
{
    sq_incr *in = s->incr;
    size_t at;
    if (state_find(in, key, &at)) in->ns[at] = in->ns[--in->nns];
    if (!st) {
        ef_registry_remove(s->opts.registry, key);
        return 0;
    }
    in->ns[in->nns++] = st; /* room reserved by ns_reserve */
    st->published = false; /* until this publish succeeds */
    /* the snapshot being replaced stays alive inside the read section: its table may be reused */
    ef_registry_read_lock(s->opts.registry);
    ef_snapshot *snap = ef_snapshot_assemble(key, st->parts, st->n, history,
                                             ef_registry_get(s->opts.registry, key), changes);
    ef_registry_read_unlock(s->opts.registry);
    if (!snap) return ef_store_fail(err, EF_STORE_INTERNAL, "publish: out of memory");
    ef_snapshot_set_version(snap, seq);
    if (ef_registry_publish(s->opts.registry, snap) != 0)
        return ef_store_fail(err, EF_STORE_INTERNAL, "publish: out of memory");
    st->published = true;
    st->published_seq = seq;
    return 0;
}

/* What prep p changed in place in its namespace's state since that state was last published, for
 * install; false when it cannot say (a new state, one never published, out of memory).
 * *replaced is the caller's to free. */
static bool prep_changes(const prep *p, ef_parts_changes *ch, size_t **replaced)
{
    *ch = (ef_parts_changes){.shift_from = SIZE_MAX};
    *replaced = NULL;
    if (!p->inplace || p->full || !p->next->published) return false;
    ch->since = p->next->published_seq;
    if (p->nundo && !(*replaced = malloc(p->nundo * sizeof(**replaced)))) return false;
    for (size_t i = 0; i < p->nundo; i++) {
        const undo *u = &p->undo[i];
        if (u->op == UNDO_REPLACE)
            (*replaced)[ch->nreplaced++] = u->at;
        else if (u->at < ch->shift_from) /* an insert or a removal moves every part after it */
            ch->shift_from = u->at;
    }
    ch->replaced = *replaced;
    return true;
}

int sq_incr_publish(sq *s, ef_store_err *err)
{
    sq_incr *in = s->incr;
    if (!in || !in->prepared) return 0;
    uint64_t history = history_hash(s), seq = sq_state_seq(s);
    int rc = 0;
    for (size_t i = 0; i < in->npre; i++) {
        prep *p = &in->pre[i];
        ef_bytes key = ef_bytes_of(p->key);
        nsstate *old = state_find(in, key, NULL);
        ef_parts_changes ch;
        size_t *replaced;
        bool known = prep_changes(p, &ch, &replaced); /* before p lets go of its state */
        nsstate *next = p->next;
        p->next = NULL; /* install owns it now */
        bool full = p->full || !next;
        /* the old state's arrays go; its entries go too when next shares none of them */
        int r = install(s, key, next, history, seq, known ? &ch : NULL, rc ? NULL : err);
        free(replaced);
        if (r < 0) rc = -1;
        if (old && old != next) state_free(old, full);
        prep_free(p, true);
    }
    free(in->pre);
    in->pre = NULL;
    in->npre = 0;
    in->prepared = false;
    return rc;
}

int sq_ns_publish(sq *s, ef_bytes key, ef_store_err *err)
{
    if (!s->opts.registry) return 0;
    if (!s->incr && !(s->incr = calloc(1, sizeof(*s->incr))))
        return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    key = sq_ns(key);
    nsstate *st;
    if (ns_reserve(s->incr, 1, err) || full_state(s, key, &st, err)) return -1;
    nsstate *old = state_find(s->incr, key, NULL);
    int r = install(s, key, st, history_hash(s), sq_state_seq(s), NULL, err);
    if (old) state_free(old, true);
    return r < 0 ? -1 : 0;
}

void sq_incr_free(sq *s)
{
    sq_incr *in = s->incr;
    if (!in) return;
    sq_incr_discard(s);
    for (size_t i = 0; i < in->nns; i++) state_free(in->ns[i], true);
    free(in->ns);
    free(in);
    s->incr = NULL;
}
