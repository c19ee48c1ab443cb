/*
 * dir_store.c - the directory backend seen through the store interface (ef_dir_store_view): the
 * management API's reads (namespaces, flags, segments, rules, rollouts; get and list) answered
 * from the current documents as Flipt's local (read-only) storage answers them, and every other
 * operation refused with Flipt's read-only error.
 *
 * Flipt's local storage differs from its SQL stores, and this file follows the former: lists are
 * ordered by key (namespaces, flags, segments) or rank (rules, rollouts), page tokens are decimal
 * offsets ("pageToken is not valid: %q", "invalid offset: %d"), an empty list accepts any token,
 * rules and rollouts of an unknown flag are an empty list, and a rule or rollout is found by id
 * within the namespace. It must never write anything and never hand out memory of a state it has
 * released: every result is copied into the caller's arena while the state is held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/dir.h"
#include "store/store.h"

/* Flipt's unmodifiable store: a plain error, which its gRPC layer turns into Internal (500). */
#define READ_ONLY_MESSAGE "modification is not allowed in read-only mode"

/* ---- copies into the caller's arena ---- */

static int dup_bytes(ef_arena *a, ef_bytes *b)
{
    if (!b->n) {
        *b = (ef_bytes){"", 0};
        return 0;
    }
    char *c = ef_arena_memdup(a, b->p, b->n);
    if (!c) return -1;
    b->p = c;
    return 0;
}

static int dup_array(ef_arena *a, void **arr, size_t n, size_t elsz)
{
    if (!n) {
        *arr = NULL;
        return 0;
    }
    void *c = ef_arena_memdup(a, *arr, n * elsz);
    if (!c) return -1;
    *arr = c;
    return 0;
}

static int dup_meta(ef_arena *a, ef_doc_meta *m)
{
    return dup_bytes(a, &m->id);
}

static int dup_keys(ef_arena *a, ef_bytes **keys, size_t n)
{
    if (dup_array(a, (void **)keys, n, sizeof(**keys))) return -1;
    for (size_t i = 0; i < n; i++)
        if (dup_bytes(a, &(*keys)[i])) return -1;
    return 0;
}

static int dup_rule(ef_arena *a, ef_doc_rule *r)
{
    if (dup_meta(a, &r->meta) || dup_keys(a, &r->segment_keys, r->nsegments) ||
        dup_array(a, (void **)&r->distributions, r->ndistributions, sizeof(*r->distributions)))
        return -1;
    for (size_t i = 0; i < r->ndistributions; i++) {
        ef_doc_distribution *d = &r->distributions[i];
        d->pos.file = NULL;
        if (dup_meta(a, &d->meta) || dup_bytes(a, &d->variant_key) || dup_bytes(a, &d->variant_id)) return -1;
    }
    r->pos.file = NULL;
    return 0;
}

static int dup_rollout(ef_arena *a, ef_doc_rollout *r)
{
    r->pos.file = NULL;
    return dup_meta(a, &r->meta) || dup_bytes(a, &r->description) || dup_keys(a, &r->segment_keys, r->nsegments);
}

static int dup_flag(ef_arena *a, ef_doc_flag *f)
{
    f->pos.file = NULL;
    if (dup_meta(a, &f->meta) || dup_bytes(a, &f->key) || dup_bytes(a, &f->name) || dup_bytes(a, &f->description) ||
        dup_bytes(a, &f->metadata) || dup_array(a, (void **)&f->variants, f->nvariants, sizeof(*f->variants)) ||
        dup_array(a, (void **)&f->rules, f->nrules, sizeof(*f->rules)) ||
        dup_array(a, (void **)&f->rollouts, f->nrollouts, sizeof(*f->rollouts)))
        return -1;
    for (size_t i = 0; i < f->nvariants; i++) {
        ef_doc_variant *v = &f->variants[i];
        v->pos.file = NULL;
        if (dup_meta(a, &v->meta) || dup_bytes(a, &v->key) || dup_bytes(a, &v->name) ||
            dup_bytes(a, &v->description) || dup_bytes(a, &v->attachment))
            return -1;
    }
    for (size_t i = 0; i < f->nrules; i++)
        if (dup_rule(a, &f->rules[i])) return -1;
    for (size_t i = 0; i < f->nrollouts; i++)
        if (dup_rollout(a, &f->rollouts[i])) return -1;
    return 0;
}

static int dup_segment(ef_arena *a, ef_doc_segment *s)
{
    s->pos.file = NULL;
    if (dup_meta(a, &s->meta) || dup_bytes(a, &s->key) || dup_bytes(a, &s->name) || dup_bytes(a, &s->description) ||
        dup_array(a, (void **)&s->constraints, s->nconstraints, sizeof(*s->constraints)))
        return -1;
    for (size_t i = 0; i < s->nconstraints; i++) {
        ef_doc_constraint *c = &s->constraints[i];
        c->pos.file = NULL;
        if (dup_meta(a, &c->meta) || dup_bytes(a, &c->property) || dup_bytes(a, &c->op) || dup_bytes(a, &c->value) ||
            dup_bytes(a, &c->description))
            return -1;
    }
    return 0;
}

/* A namespace without its flags and segments (what the namespace routes show). */
static int dup_namespace(ef_arena *a, const ef_doc_namespace *in, ef_doc_namespace *out)
{
    *out = (ef_doc_namespace){.meta = in->meta, .key = in->key, .name = in->name,
                              .description = in->description, .protected_ = in->protected_};
    /* Flipt shows a namespace without a name under its key, and its local storage never marks
     * one protected (the flag exists for the database's default namespace) */
    if (!out->name.n) out->name = out->key;
    out->protected_ = false;
    return dup_meta(a, &out->meta) || dup_bytes(a, &out->key) || dup_bytes(a, &out->name) ||
           dup_bytes(a, &out->description);
}

static int oom(ef_store_err *err)
{
    return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
}

/* ---- pagination, as Flipt's local storage ---- */

typedef struct page_slice {
    size_t from, to; /* the items of this page: [from, to) */
} page_slice;

/* limit_required: Flipt validates List{Flag,Segment,Rule}Request before any store sees it. */
static int paginate(const ef_store_page *p, size_t total, bool limit_required, ef_arena *a,
                    page_slice *out, ef_store_page_out *po, ef_store_err *err)
{
    static const ef_store_page none = {0, 0, {NULL, 0}};
    if (!p) p = &none;
    if (limit_required && p->limit == 0 && (p->offset > 0 || p->page_token.n))
        return ef_store_fail(err, EF_STORE_INVALID, "limit must be set when offset or pageToken is set");
    po->total_count = total;
    po->next_page_token = (ef_bytes){"", 0};
    *out = (page_slice){0, 0};
    if (total == 0) return 0;
    long long off = 0;
    if (p->page_token.n) {
        /* strconv.ParseInt(token, 10, 64): an optional sign, then digits only */
        char buf[32];
        bool ok = p->page_token.n < sizeof(buf);
        if (ok) {
            memcpy(buf, p->page_token.p, p->page_token.n);
            buf[p->page_token.n] = '\0';
            const char *d = buf + (buf[0] == '+' || buf[0] == '-');
            ok = *d != '\0';
            for (const char *c = d; *c && ok; c++) ok = *c >= '0' && *c <= '9';
            if (ok) {
                char *end;
                errno = 0;
                off = strtoll(buf, &end, 10);
                ok = !errno;
            }
        }
        if (!ok) {
            char q[300];
            ef_store_go_quote(p->page_token, q, sizeof(q));
            return ef_store_fail(err, EF_STORE_INVALID, "pageToken is not valid: %s", q);
        }
    }
    if (off < 0 || (unsigned long long)off >= total)
        return ef_store_fail(err, EF_STORE_INVALID, "invalid offset: %lld", off);
    out->from = (size_t)off;
    out->to = total;
    if (p->limit > 0 && (size_t)off + (size_t)p->limit < total) {
        out->to = (size_t)off + (size_t)p->limit;
        char t[32];
        int n = snprintf(t, sizeof(t), "%zu", out->to);
        char *c = ef_arena_memdup(a, t, (size_t)n);
        if (!c) return oom(err);
        po->next_page_token = (ef_bytes){c, (size_t)n};
    }
    return 0;
}

/* ---- the view ---- */

typedef struct view_read {
    ef_dir_state *st;
    const ef_doc_namespace *ns;
} view_read;

/* Holds the current state and finds ns ("" is default). Returns 0 or -1 (not found; released). */
static int view_begin(void *h, ef_bytes ns, view_read *v, ef_store_err *err)
{
    v->st = ef_dir_acquire(h);
    if (!v->st) return ef_store_fail(err, EF_STORE_UNAVAILABLE, "directory not loaded");
    if (!ns.n) ns = EF_BYTES_LIT("default");
    v->ns = ef_dir_state_namespace(v->st, ns);
    if (!v->ns) {
        ef_dir_release(v->st);
        return ef_store_fail(err, EF_STORE_NOT_FOUND, "namespace \"%.*s\" not found", (int)ns.n, ns.p);
    }
    return 0;
}

static int cmp_key(ef_bytes a, ef_bytes b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

static int cmp_ns(const void *x, const void *y)
{
    return cmp_key(((const ef_doc_namespace *)x)->key, ((const ef_doc_namespace *)y)->key);
}
static int cmp_flag(const void *x, const void *y)
{
    return cmp_key(((const ef_doc_flag *)x)->key, ((const ef_doc_flag *)y)->key);
}
static int cmp_segment(const void *x, const void *y)
{
    return cmp_key(((const ef_doc_segment *)x)->key, ((const ef_doc_segment *)y)->key);
}

static void view_close(void *h)
{
    (void)h; /* the view owns nothing */
}

static int v_ns_get(void *h, ef_bytes key, ef_arena *a, ef_doc_namespace *out, ef_store_err *err)
{
    view_read v;
    if (view_begin(h, key, &v, err)) return -1;
    int rc = dup_namespace(a, v.ns, out) ? oom(err) : 0;
    ef_dir_release(v.st);
    return rc;
}

static int v_ns_list(void *h, const ef_store_page *p, ef_arena *a, ef_doc_namespace **out, size_t *n,
                     ef_store_page_out *po, ef_store_err *err)
{
    *out = NULL;
    *n = 0;
    ef_dir_state *st = ef_dir_acquire(h);
    if (!st) return ef_store_fail(err, EF_STORE_UNAVAILABLE, "directory not loaded");
    const ef_doc *doc = ef_dir_state_doc(st);
    int rc = -1;
    ef_doc_namespace *all = doc->nnamespaces ? ef_arena_alloc(a, doc->nnamespaces * sizeof(*all)) : NULL;
    if (doc->nnamespaces && !all) {
        oom(err);
        goto out;
    }
    for (size_t i = 0; i < doc->nnamespaces; i++) all[i] = doc->namespaces[i];
    if (doc->nnamespaces) qsort(all, doc->nnamespaces, sizeof(*all), cmp_ns);
    page_slice sl;
    if (paginate(p, doc->nnamespaces, false, a, &sl, po, err)) goto out;
    for (size_t i = sl.from; i < sl.to; i++)
        if (dup_namespace(a, &all[i], &all[i])) {
            oom(err);
            goto out;
        }
    *out = all + sl.from;
    *n = sl.to - sl.from;
    rc = 0;
out:
    ef_dir_release(st);
    return rc;
}

static int v_flag_get(void *h, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_flag *out, ef_store_err *err)
{
    view_read v;
    if (view_begin(h, ns, &v, err)) return -1;
    int rc = ef_store_fail(err, EF_STORE_NOT_FOUND, "flag \"%.*s/%.*s\" not found", (int)v.ns->key.n, v.ns->key.p,
                           (int)key.n, key.p);
    for (size_t i = 0; i < v.ns->nflags; i++)
        if (ef_bytes_eq(v.ns->flags[i].key, key)) {
            *out = v.ns->flags[i];
            rc = dup_flag(a, out) ? oom(err) : 0;
            break;
        }
    ef_dir_release(v.st);
    return rc;
}

static int v_flag_list(void *h, ef_bytes ns, const ef_store_page *p, ef_arena *a, ef_doc_flag **out, size_t *n,
                       ef_store_page_out *po, ef_store_err *err)
{
    *out = NULL;
    *n = 0;
    /* validation comes before the store in Flipt: a missing limit is reported first */
    if (p && p->limit == 0 && (p->offset > 0 || p->page_token.n))
        return paginate(p, 0, true, a, &(page_slice){0, 0}, po, err);
    view_read v;
    if (view_begin(h, ns, &v, err)) return -1;
    int rc = -1;
    size_t total = v.ns->nflags;
    ef_doc_flag *all = total ? ef_arena_alloc(a, total * sizeof(*all)) : NULL;
    if (total && !all) {
        oom(err);
        goto out;
    }
    for (size_t i = 0; i < total; i++) all[i] = v.ns->flags[i];
    if (total) qsort(all, total, sizeof(*all), cmp_flag);
    page_slice sl;
    if (paginate(p, total, true, a, &sl, po, err)) goto out;
    for (size_t i = sl.from; i < sl.to; i++)
        if (dup_flag(a, &all[i])) {
            oom(err);
            goto out;
        }
    *out = all + sl.from;
    *n = sl.to - sl.from;
    rc = 0;
out:
    ef_dir_release(v.st);
    return rc;
}

static int v_segment_get(void *h, ef_bytes ns, ef_bytes key, ef_arena *a, ef_doc_segment *out, ef_store_err *err)
{
    view_read v;
    if (view_begin(h, ns, &v, err)) return -1;
    int rc = ef_store_fail(err, EF_STORE_NOT_FOUND, "segment \"%.*s/%.*s\" not found", (int)v.ns->key.n,
                           v.ns->key.p, (int)key.n, key.p);
    for (size_t i = 0; i < v.ns->nsegments; i++)
        if (ef_bytes_eq(v.ns->segments[i].key, key)) {
            *out = v.ns->segments[i];
            rc = dup_segment(a, out) ? oom(err) : 0;
            break;
        }
    ef_dir_release(v.st);
    return rc;
}

static int v_segment_list(void *h, ef_bytes ns, const ef_store_page *p, ef_arena *a, ef_doc_segment **out,
                          size_t *n, ef_store_page_out *po, ef_store_err *err)
{
    *out = NULL;
    *n = 0;
    if (p && p->limit == 0 && (p->offset > 0 || p->page_token.n))
        return paginate(p, 0, true, a, &(page_slice){0, 0}, po, err);
    view_read v;
    if (view_begin(h, ns, &v, err)) return -1;
    int rc = -1;
    size_t total = v.ns->nsegments;
    ef_doc_segment *all = total ? ef_arena_alloc(a, total * sizeof(*all)) : NULL;
    if (total && !all) {
        oom(err);
        goto out;
    }
    for (size_t i = 0; i < total; i++) all[i] = v.ns->segments[i];
    if (total) qsort(all, total, sizeof(*all), cmp_segment);
    page_slice sl;
    if (paginate(p, total, true, a, &sl, po, err)) goto out;
    for (size_t i = sl.from; i < sl.to; i++)
        if (dup_segment(a, &all[i])) {
            oom(err);
            goto out;
        }
    *out = all + sl.from;
    *n = sl.to - sl.from;
    rc = 0;
out:
    ef_dir_release(v.st);
    return rc;
}

/* Rules and rollouts are found by id in the whole namespace, as Flipt's local storage does. */
static int v_rule_get(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id, ef_arena *a, ef_store_rule *out,
                      ef_store_err *err)
{
    (void)flag_key;
    view_read v;
    if (view_begin(h, ns, &v, err)) return -1;
    int rc = ef_store_fail(err, EF_STORE_NOT_FOUND, "rule \"%.*s/%.*s\" not found", (int)v.ns->key.n, v.ns->key.p,
                           (int)id.n, id.p);
    for (size_t i = 0; i < v.ns->nflags && rc; i++)
        for (size_t r = 0; r < v.ns->flags[i].nrules; r++)
            if (id.n && ef_bytes_eq(v.ns->flags[i].rules[r].meta.id, id)) {
                out->rule = v.ns->flags[i].rules[r];
                out->rank = (int32_t)r + 1;
                rc = dup_rule(a, &out->rule) ? oom(err) : 0;
                break;
            }
    ef_dir_release(v.st);
    return rc;
}

static const ef_doc_flag *find_flag(const ef_doc_namespace *ns, ef_bytes key)
{
    for (size_t i = 0; i < ns->nflags; i++)
        if (ef_bytes_eq(ns->flags[i].key, key)) return &ns->flags[i];
    return NULL;
}

static int v_rule_list(void *h, ef_bytes ns, ef_bytes flag_key, const ef_store_page *p, ef_arena *a,
                       ef_store_rule **out, size_t *n, ef_store_page_out *po, ef_store_err *err)
{
    *out = NULL;
    *n = 0;
    if (!flag_key.n) return ef_store_fail(err, EF_STORE_INVALID, "invalid field flagKey: must not be empty");
    if (p && p->limit == 0 && (p->offset > 0 || p->page_token.n))
        return paginate(p, 0, true, a, &(page_slice){0, 0}, po, err);
    view_read v;
    if (view_begin(h, ns, &v, err)) return -1;
    int rc = -1;
    const ef_doc_flag *f = find_flag(v.ns, flag_key);
    size_t total = f ? f->nrules : 0;
    page_slice sl;
    if (paginate(p, total, true, a, &sl, po, err)) goto out;
    ef_store_rule *items = sl.to > sl.from ? ef_arena_alloc(a, (sl.to - sl.from) * sizeof(*items)) : NULL;
    if (sl.to > sl.from && !items) {
        oom(err);
        goto out;
    }
    for (size_t i = sl.from; i < sl.to; i++) {
        ef_store_rule *r = &items[i - sl.from];
        r->rule = f->rules[i];
        r->rank = (int32_t)i + 1;
        if (dup_rule(a, &r->rule)) {
            oom(err);
            goto out;
        }
    }
    *out = items;
    *n = sl.to - sl.from;
    rc = 0;
out:
    ef_dir_release(v.st);
    return rc;
}

static int v_rollout_get(void *h, ef_bytes ns, ef_bytes flag_key, ef_bytes id, ef_arena *a, ef_store_rollout *out,
                         ef_store_err *err)
{
    (void)flag_key;
    view_read v;
    if (view_begin(h, ns, &v, err)) return -1;
    int rc = ef_store_fail(err, EF_STORE_NOT_FOUND, "rollout \"%.*s/%.*s\" not found", (int)v.ns->key.n,
                           v.ns->key.p, (int)id.n, id.p);
    for (size_t i = 0; i < v.ns->nflags && rc; i++)
        for (size_t r = 0; r < v.ns->flags[i].nrollouts; r++)
            if (id.n && ef_bytes_eq(v.ns->flags[i].rollouts[r].meta.id, id)) {
                out->rollout = v.ns->flags[i].rollouts[r];
                out->rank = (int32_t)r + 1;
                rc = dup_rollout(a, &out->rollout) ? oom(err) : 0;
                break;
            }
    ef_dir_release(v.st);
    return rc;
}

static int v_rollout_list(void *h, ef_bytes ns, ef_bytes flag_key, const ef_store_page *p, ef_arena *a,
                          ef_store_rollout **out, size_t *n, ef_store_page_out *po, ef_store_err *err)
{
    *out = NULL;
    *n = 0;
    view_read v;
    if (view_begin(h, ns, &v, err)) return -1;
    int rc = -1;
    const ef_doc_flag *f = find_flag(v.ns, flag_key);
    size_t total = f ? f->nrollouts : 0;
    page_slice sl;
    if (paginate(p, total, false, a, &sl, po, err)) goto out;
    ef_store_rollout *items = sl.to > sl.from ? ef_arena_alloc(a, (sl.to - sl.from) * sizeof(*items)) : NULL;
    if (sl.to > sl.from && !items) {
        oom(err);
        goto out;
    }
    for (size_t i = sl.from; i < sl.to; i++) {
        ef_store_rollout *r = &items[i - sl.from];
        r->rollout = f->rollouts[i];
        r->rank = (int32_t)i + 1;
        if (dup_rollout(a, &r->rollout)) {
            oom(err);
            goto out;
        }
    }
    *out = items;
    *n = sl.to - sl.from;
    rc = 0;
out:
    ef_dir_release(v.st);
    return rc;
}

/* Every other operation: NULL in the table; ef_dir_store_refuses says what a caller answers. */
static const ef_store_ops view_ops = {
    .close = view_close,
    .ns_get = v_ns_get,
    .ns_list = v_ns_list,
    .flag_get = v_flag_get,
    .flag_list = v_flag_list,
    .segment_get = v_segment_get,
    .segment_list = v_segment_list,
    .rule_get = v_rule_get,
    .rule_list = v_rule_list,
    .rollout_get = v_rollout_get,
    .rollout_list = v_rollout_list,
};

void ef_dir_store_view(ef_dir *d, ef_store *out)
{
    *out = (ef_store){.ops = &view_ops, .h = d};
}

int ef_dir_store_refuse(ef_store_err *err)
{
    return ef_store_fail(err, EF_STORE_READ_ONLY, READ_ONLY_MESSAGE);
}
