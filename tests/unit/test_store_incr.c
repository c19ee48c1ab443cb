/*
 * test_store_incr.c - the incremental snapshots of the SQLite store (DESIGN.md principle 8) against
 * full recompiles, after seeded random write sequences.
 *
 * A primary takes random management writes (flags, variants, segments, constraints, rules,
 * distributions, rollouts, reorders, namespaces; many of them fail, which must change nothing) and
 * a replica applies the primary's change-log entries as the follower does. After every write, for
 * every namespace: the primary's published snapshot (built incrementally), the replica's, a fresh
 * full load of a byte-for-byte copy of the primary's database, and the document the store writes
 * from its rows in one piece (ef_store_snapshot_doc) must have identical documents and ETag hashes
 * and give identical answers on a request corpus. The test must never pass by comparing a state
 * with itself: the full load always happens in a separate store with its own registry.
 */
#include <pthread.h>
#include <sqlite3.h>

#include "base/json.h"
#include "eval/eval.h"
#include "eval/registry.h"
#include "test_store_helper.h"

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

static const char *const NS[] = {"default", "other"};
#define NFLAGS 10 /* flags a seed starts with, unless it asks for more */
#define NSEGS 6

/* The flags random writes pick from (and a seed starts with): over EF_PART_PAGE (64), a snapshot
 * has several pages of parts, which an incremental publish shares or replaces one by one. */
static uint32_t nflags = NFLAGS;

static ef_bytes pick_ns(void)
{
    return ef_bytes_of(NS[rnd(5) == 0]);
}

static ef_bytes name_of(ef_arena *a, const char *prefix, uint32_t i)
{
    char k[32];
    int l = snprintf(k, sizeof(k), "%s%u", prefix, i);
    return (ef_bytes){ef_arena_memdup(a, k, (size_t)l), (size_t)l};
}

/* Copies the database file with SQLite's online backup (pages as they are, rowids included). */
static void db_copy(const char *from, const char *to)
{
    sqlite3 *src, *dst;
    assert_int_equal(sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_open(to, &dst), SQLITE_OK);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    assert_non_null(b);
    assert_int_equal(sqlite3_backup_step(b, -1), SQLITE_DONE);
    sqlite3_backup_finish(b);
    sqlite3_close(dst);
    sqlite3_close(src);
}

/* ---- one random write ---- */

static ef_bytes some_variant(tstore *t, ef_bytes ns, ef_bytes flag)
{
    ef_store_err err;
    ef_doc_flag f;
    if (ef_store_flag_get(t->s, ns, flag, &t->a, &f, &err) || f.nvariants == 0) return NONE;
    return f.variants[rnd((uint32_t)f.nvariants)].meta.id;
}

static int some_rule(tstore *t, ef_bytes ns, ef_bytes flag, ef_store_rule *out)
{
    ef_store_err err;
    ef_store_page p = {0};
    ef_store_page_out po;
    ef_store_rule *rs;
    size_t n;
    if (ef_store_rule_list(t->s, ns, flag, &p, &t->a, &rs, &n, &po, &err) || n == 0) return -1;
    *out = rs[rnd((uint32_t)n)];
    return 0;
}

static int some_rollout(tstore *t, ef_bytes ns, ef_bytes flag, ef_store_rollout *out, size_t *count)
{
    ef_store_err err;
    ef_store_page p = {0};
    ef_store_page_out po;
    ef_store_rollout *rs;
    size_t n;
    *count = 0;
    if (ef_store_rollout_list(t->s, ns, flag, &p, &t->a, &rs, &n, &po, &err)) return -1;
    *count = n;
    if (n == 0) return -1;
    *out = rs[rnd((uint32_t)n)];
    return 0;
}

static ef_bytes *some_segments(ef_arena *a, size_t *n)
{
    *n = 1 + rnd(3);
    ef_bytes *k = ef_arena_calloc(a, *n * sizeof(*k));
    for (size_t i = 0; i < *n; i++) k[i] = name_of(a, "seg", rnd(NSEGS));
    return k;
}

static void random_write(tstore *t)
{
    ef_arena *a = &t->a;
    ef_store_err err;
    ef_bytes ns = pick_ns();
    ef_bytes flag = name_of(a, "flag", rnd(nflags));
    ef_bytes seg = name_of(a, "seg", rnd(NSEGS));
    static const char *const values[] = {"a", "b", "c", "[\"a\",\"b\"]", "[\"c\"]"};
    static const char *const ops[] = {"eq", "neq", "isoneof", "prefix", "notempty"};
    static const char *const attachments[] = {"", "{\"x\":1}", "[1,2,3]", "\"s\""};
    switch (rnd(24)) {
    case 0:
    case 1: {
        ef_store_flag_in in = {.key = flag, .name = flag, .enabled = rnd(2),
                               .type = rnd(3) == 0 ? EF_DOC_BOOLEAN_FLAG : EF_DOC_VARIANT_FLAG};
        ef_doc_flag f;
        (void)ef_store_flag_create(t->s, ns, &in, a, &f, &err);
        break;
    }
    case 2: {
        ef_store_flag_in in = {.key = flag, .name = name_of(a, "Name", rnd(5)), .enabled = rnd(2),
                               .default_variant_id = rnd(2) ? some_variant(t, ns, flag) : NONE};
        ef_doc_flag f;
        (void)ef_store_flag_update(t->s, ns, &in, a, &f, &err);
        break;
    }
    case 3: (void)ef_store_flag_delete(t->s, ns, flag, &err); break;
    case 4:
    case 5: {
        ef_store_variant_in in = {.key = name_of(a, "v", rnd(4)),
                                  .attachment = ef_bytes_of(attachments[rnd(4)])};
        ef_doc_variant v;
        (void)ef_store_variant_create(t->s, ns, flag, &in, a, &v, &err);
        break;
    }
    case 6: {
        ef_bytes id = some_variant(t, ns, flag);
        ef_store_variant_in in = {.key = name_of(a, "v", rnd(4)),
                                  .attachment = ef_bytes_of(attachments[rnd(4)])};
        ef_doc_variant v;
        if (id.n) (void)ef_store_variant_update(t->s, ns, flag, id, &in, a, &v, &err);
        break;
    }
    case 7: {
        ef_bytes id = some_variant(t, ns, flag);
        if (id.n) (void)ef_store_variant_delete(t->s, ns, flag, id, &err);
        break;
    }
    case 8: {
        ef_store_segment_in in = {.key = seg, .name = seg, .match_type = rnd(2)};
        ef_doc_segment g;
        (void)ef_store_segment_create(t->s, ns, &in, a, &g, &err);
        break;
    }
    case 9: {
        ef_store_segment_in in = {.key = seg, .name = name_of(a, "S", rnd(3)), .match_type = rnd(2)};
        ef_doc_segment g;
        (void)ef_store_segment_update(t->s, ns, &in, a, &g, &err);
        break;
    }
    case 10: (void)ef_store_segment_delete(t->s, ns, seg, &err); break;
    case 11:
    case 12: {
        ef_store_constraint_in in = {.type = EF_DOC_CT_STRING, .property = EF_BYTES_LIT("plan"),
                                     .op = ef_bytes_of(ops[rnd(5)]),
                                     .value = ef_bytes_of(values[rnd(5)])};
        ef_doc_constraint c;
        (void)ef_store_constraint_create(t->s, ns, seg, &in, a, &c, &err);
        break;
    }
    case 13:
    case 14: {
        ef_doc_segment g;
        if (ef_store_segment_get(t->s, ns, seg, a, &g, &err) || g.nconstraints == 0) break;
        ef_bytes id = g.constraints[rnd((uint32_t)g.nconstraints)].meta.id;
        if (rnd(2)) {
            (void)ef_store_constraint_delete(t->s, ns, seg, id, &err);
        } else {
            ef_store_constraint_in in = {.type = EF_DOC_CT_STRING, .property = EF_BYTES_LIT("plan"),
                                         .op = ef_bytes_of(ops[rnd(5)]),
                                         .value = ef_bytes_of(values[rnd(5)])};
            ef_doc_constraint c;
            (void)ef_store_constraint_update(t->s, ns, seg, id, &in, a, &c, &err);
        }
        break;
    }
    case 15:
    case 16: {
        size_t n;
        ef_bytes *keys = some_segments(a, &n);
        ef_store_rule_in in = {.segment_keys = keys, .nsegment_keys = n, .op = rnd(2),
                               .rank = (int32_t)(1 + rnd(6))};
        ef_store_rule r;
        (void)ef_store_rule_create(t->s, ns, flag, &in, a, &r, &err);
        break;
    }
    case 17: {
        ef_store_rule r;
        if (some_rule(t, ns, flag, &r)) break;
        if (rnd(3) == 0) {
            (void)ef_store_rule_delete(t->s, ns, flag, r.rule.meta.id, &err);
        } else {
            size_t n;
            ef_bytes *keys = some_segments(a, &n);
            ef_store_rule_in in = {.segment_keys = keys, .nsegment_keys = n, .op = rnd(2)};
            ef_store_rule out;
            (void)ef_store_rule_update(t->s, ns, flag, r.rule.meta.id, &in, a, &out, &err);
        }
        break;
    }
    case 18: {
        ef_store_page p = {0};
        ef_store_page_out po;
        ef_store_rule *rs;
        size_t n;
        if (ef_store_rule_list(t->s, ns, flag, &p, a, &rs, &n, &po, &err) || n < 2) break;
        ef_bytes *ids = ef_arena_calloc(a, n * sizeof(*ids));
        for (size_t i = 0; i < n; i++) ids[i] = rs[n - 1 - i].rule.meta.id;
        (void)ef_store_rule_order(t->s, ns, flag, ids, n, &err);
        break;
    }
    case 19:
    case 20: {
        ef_store_rule r;
        if (some_rule(t, ns, flag, &r)) break;
        if (r.rule.ndistributions && rnd(2)) {
            const ef_doc_distribution *d = &r.rule.distributions[rnd((uint32_t)r.rule.ndistributions)];
            if (rnd(2)) {
                (void)ef_store_distribution_delete(t->s, ns, flag, r.rule.meta.id, d->meta.id,
                                                   d->variant_id, &err);
            } else {
                ef_store_distribution_in in = {.variant_id = d->variant_id,
                                               .rollout = (float)rnd(101)};
                ef_doc_distribution out;
                (void)ef_store_distribution_update(t->s, ns, flag, r.rule.meta.id, d->meta.id, &in,
                                                   a, &out, &err);
            }
        } else {
            ef_bytes vid = some_variant(t, ns, flag);
            ef_store_distribution_in in = {.variant_id = vid, .rollout = (float)rnd(101)};
            ef_doc_distribution out;
            if (vid.n)
                (void)ef_store_distribution_create(t->s, ns, flag, r.rule.meta.id, &in, a, &out,
                                                   &err);
        }
        break;
    }
    case 21: {
        ef_store_rollout r;
        size_t count;
        int have = some_rollout(t, ns, flag, &r, &count);
        if (have == 0 && rnd(2)) {
            if (rnd(2)) {
                (void)ef_store_rollout_delete(t->s, ns, flag, r.rollout.meta.id, &err);
            } else {
                size_t n;
                ef_bytes *keys = some_segments(a, &n);
                ef_store_rollout_in in = {.percentage = (float)rnd(101), .value = rnd(2),
                                          .segment_keys = r.rollout.type == EF_DOC_ROLLOUT_SEGMENT ? keys : NULL,
                                          .nsegment_keys = r.rollout.type == EF_DOC_ROLLOUT_SEGMENT ? n : 0,
                                          .op = rnd(2)};
                ef_store_rollout out;
                (void)ef_store_rollout_update(t->s, ns, flag, r.rollout.meta.id, &in, a, &out, &err);
            }
            break;
        }
        size_t n;
        ef_bytes *keys = some_segments(a, &n);
        bool threshold = rnd(2);
        ef_store_rollout_in in = {.rank = (int32_t)(count + 1),
                                  .type = threshold ? EF_DOC_ROLLOUT_THRESHOLD : EF_DOC_ROLLOUT_SEGMENT,
                                  .percentage = (float)rnd(101), .value = rnd(2),
                                  .segment_keys = threshold ? NULL : keys,
                                  .nsegment_keys = threshold ? 0 : n, .op = rnd(2)};
        ef_store_rollout out;
        (void)ef_store_rollout_create(t->s, ns, flag, &in, a, &out, &err);
        break;
    }
    case 22: {
        ef_store_ns_in in = {.key = EF_BYTES_LIT("other"), .name = name_of(a, "Other", rnd(3))};
        ef_doc_namespace d;
        if (ef_store_ns_create(t->s, &in, a, &d, &err))
            (void)ef_store_ns_update(t->s, &in, a, &d, &err);
        break;
    }
    default:
        if (rnd(4) == 0) (void)ef_store_ns_delete(t->s, EF_BYTES_LIT("other"), &err);
        break;
    }
}

/* ---- comparison ---- */

typedef struct copy_ctx {
    tstore *replica;
} copy_ctx;

static int apply_entry(void *ctx, const ef_store_change *c)
{
    copy_ctx *x = ctx;
    ef_store_err err;
    if (ef_store_apply_changes(x->replica->s, c->entry.p, c->entry.n, &err))
        fail_msg("replica apply of seq %llu: %s", (unsigned long long)c->seq, err.message);
    return 0;
}

static void sync_replica(tstore *p, tstore *r)
{
    ef_store_err err;
    uint64_t have, first;
    assert_ok(ef_store_seq(r->s, &have, &first, &err), err);
    copy_ctx x = {r};
    assert_ok(ef_store_changes(p->s, have, 0, apply_entry, &x, &err), err);
}

/* The snapshot's document and hash, copied out of the read section. */
static bool snap_doc(ef_registry *reg, ef_bytes ns, ef_buf *doc, uint64_t *hash)
{
    ef_buf_clear(doc);
    ef_registry_read_lock(reg);
    const ef_snapshot *s = ef_registry_get(reg, ns);
    if (s) {
        ef_bytes d = ef_snapshot_document(s);
        ef_buf_append(doc, d.p, d.n);
        *hash = ef_snapshot_document_hash(s);
    }
    ef_registry_read_unlock(reg);
    return s != NULL;
}

static void put_variant(ef_buf *b, ef_eval_status st, const ef_variant_result *r)
{
    ef_buf_printf(b, "%d:", (int)st);
    if (st != EF_EVAL_OK) return;
    ef_buf_printf(b, "%d %d %.*s %d %.*s [", r->match, (int)r->reason, (int)r->variant_key.n,
                  r->variant_key.p, r->has_attachment, (int)r->attachment.n, r->attachment.p);
    for (int i = ef_matched_next(&r->segments, 0); i >= 0; i = ef_matched_next(&r->segments, i + 1)) {
        ef_bytes k = ef_matched_key(&r->segments, i);
        ef_buf_printf(b, "%.*s,", (int)k.n, k.p);
    }
    ef_buf_puts(b, "]\n");
}

static void put_boolean(ef_buf *b, ef_eval_status st, const ef_boolean_result *r)
{
    ef_buf_printf(b, "%d:", (int)st);
    if (st != EF_EVAL_OK) return;
    ef_buf_printf(b, "%d %d [", r->enabled, (int)r->reason);
    for (int i = ef_matched_next(&r->segments, 0); i >= 0; i = ef_matched_next(&r->segments, i + 1)) {
        ef_bytes k = ef_matched_key(&r->segments, i);
        ef_buf_printf(b, "%.*s,", (int)k.n, k.p);
    }
    ef_buf_puts(b, "]\n");
}

/* Every answer of a snapshot on the corpus, as text. */
static void answers(const ef_snapshot *s, ef_arena *a, ef_buf *out)
{
    static const char *const plans[] = {"a", "b", "c", "", "ab"};
    for (uint32_t f = 0; f <= nflags; f++)
        for (uint32_t e = 0; e < 12; e++) {
            ef_kv kv = {EF_BYTES_LIT("plan"), ef_bytes_of(plans[e % 5])};
            ef_eval_request req;
            assert_int_equal(ef_request_build(a, name_of(a, "flag", f), name_of(a, "e", e), &kv,
                                              e % 6 ? 1 : 0, &req), 0);
            ef_variant_result vr;
            put_variant(out, ef_eval_variant(s, &req, &vr), &vr);
            ef_boolean_result br;
            put_boolean(out, ef_eval_boolean(s, &req, &br), &br);
        }
}

/* The answers of the engine's own compile of a snapshot document. */
static void doc_answers(const ef_buf *doc, ef_arena *a, ef_buf *out)
{
    ef_json_error je;
    ef_json *tree = ef_json_parse(doc->data, doc->len, a, NULL, &je);
    assert_non_null(tree);
    ef_compile_error ce;
    ef_snapshot *s = ef_snapshot_compile(tree, &ce);
    assert_non_null(s);
    answers(s, a, out);
    ef_snapshot_free(s);
}

static void registry_answers(ef_registry *reg, ef_bytes ns, ef_arena *a, ef_buf *out)
{
    ef_buf_clear(out);
    ef_registry_read_lock(reg);
    const ef_snapshot *s = ef_registry_get(reg, ns);
    if (s) answers(s, a, out);
    ef_registry_read_unlock(reg);
}

static void check_ns(tstore *p, tstore *r, tstore *full, ef_bytes ns, int step)
{
    ef_buf di, dr, df, dl, ai, ar, af, al;
    ef_buf *all[] = {&di, &dr, &df, &dl, &ai, &ar, &af, &al};
    for (int i = 0; i < 8; i++) ef_buf_init(all[i]);
    uint64_t hi = 0, hr = 0, hf = 0, ver;
    bool in_i = snap_doc(p->reg, ns, &di, &hi);
    bool in_r = snap_doc(r->reg, ns, &dr, &hr);
    bool in_f = snap_doc(full->reg, ns, &df, &hf);
    if (in_i != in_f || in_r != in_f)
        fail_msg("step %d ns %.*s: published incremental %d, replica %d, full %d", step, (int)ns.n,
                 ns.p, in_i, in_r, in_f);
    if (in_i) {
        ef_store_err err;
        assert_ok(ef_store_snapshot_doc(p->s, ns, NULL, &dl, &ver, &err), err);
        if (di.len != df.len || memcmp(di.data, df.data, di.len) != 0)
            fail_msg("step %d ns %.*s: incremental document differs from a full load:\n%s\n---\n%s",
                     step, (int)ns.n, ns.p, di.data, df.data);
        if (dl.len != df.len || memcmp(dl.data, df.data, dl.len) != 0)
            fail_msg("step %d ns %.*s: full load differs from the store's one-piece document", step,
                     (int)ns.n, ns.p);
        if (dr.len != df.len || memcmp(dr.data, df.data, dr.len) != 0)
            fail_msg("step %d ns %.*s: replica document differs", step, (int)ns.n, ns.p);
        if (hi != hf || hr != hf)
            fail_msg("step %d ns %.*s: ETag hashes %016llx (incremental) %016llx (replica) %016llx"
                     " (full)", step, (int)ns.n, ns.p, (unsigned long long)hi,
                     (unsigned long long)hr, (unsigned long long)hf);
        registry_answers(p->reg, ns, &p->a, &ai);
        registry_answers(r->reg, ns, &p->a, &ar);
        registry_answers(full->reg, ns, &p->a, &af);
        doc_answers(&dl, &p->a, &al); /* and the engine's own compile of the one-piece document */
        if (ai.len != af.len || memcmp(ai.data, af.data, ai.len) != 0 || ar.len != af.len ||
            memcmp(ar.data, af.data, ar.len) != 0 || al.len != af.len ||
            memcmp(al.data, af.data, al.len) != 0)
            fail_msg("step %d ns %.*s: answers differ", step, (int)ns.n, ns.p);
    }
    for (int i = 0; i < 8; i++) ef_buf_free(all[i]);
}

static void check_all(tstore *p, tstore *r, int step)
{
    sync_replica(p, r);
    tstore *full = tstore_new_local(false);
    char path[192];
    snprintf(path, sizeof(path), "%s/copy.db", full->dir);
    db_copy(p->path, path);
    ef_store_close(full->s);
    full->s = NULL;
    tstore_open_at(full, "copy.db", true);
    for (size_t i = 0; i < 2; i++) check_ns(p, r, full, ef_bytes_of(NS[i]), step);
    tstore_free(full);
}

static void run_seed(uint64_t seed, int steps, uint32_t flags)
{
    rng_state = seed;
    nflags = flags;
    tstore *p = tstore_new_local(true);
    tstore *r = tstore_new_local(true);
    /* the replica starts from a dump, so it shares the primary's history (and ETags) */
    ef_store_err err;
    ef_buf dump;
    ef_buf_init(&dump);
    uint64_t seq;
    assert_ok(ef_store_dump(p->s, &dump, &seq, &err), err);
    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len, &err), err);
    ef_buf_free(&dump);
    /* a populated start: segments with a constraint, flags with variants, a rule each */
    for (uint32_t i = 0; i < NSEGS; i++) {
        ef_store_segment_in in = {.key = name_of(&p->a, "seg", i), .name = EF_BYTES_LIT("S")};
        ef_doc_segment g;
        assert_ok(ef_store_segment_create(p->s, EF_BYTES_LIT("default"), &in, &p->a, &g, &err), err);
        ef_store_constraint_in c = {.type = EF_DOC_CT_STRING, .property = EF_BYTES_LIT("plan"),
                                    .op = EF_BYTES_LIT("eq"), .value = i % 2 ? EF_BYTES_LIT("a") : EF_BYTES_LIT("b")};
        ef_doc_constraint dc;
        assert_ok(ef_store_constraint_create(p->s, EF_BYTES_LIT("default"), in.key, &c, &p->a, &dc, &err), err);
    }
    for (uint32_t i = 0; i < nflags; i++) {
        ef_bytes k = name_of(&p->a, "flag", i);
        ef_store_flag_in in = {.key = k, .name = k, .enabled = true,
                               .type = i % 4 == 3 ? EF_DOC_BOOLEAN_FLAG : EF_DOC_VARIANT_FLAG};
        ef_doc_flag f;
        assert_ok(ef_store_flag_create(p->s, EF_BYTES_LIT("default"), &in, &p->a, &f, &err), err);
        ef_bytes vid = NONE;
        for (uint32_t v = 0; v < 2; v++) {
            ef_store_variant_in vin = {.key = name_of(&p->a, "v", v)};
            ef_doc_variant dv;
            assert_ok(ef_store_variant_create(p->s, EF_BYTES_LIT("default"), k, &vin, &p->a, &dv, &err), err);
            vid = dv.meta.id;
        }
        ef_bytes sk = name_of(&p->a, "seg", i % NSEGS);
        ef_store_rule_in rin = {.segment_keys = &sk, .nsegment_keys = 1, .rank = 1};
        ef_store_rule rule;
        assert_ok(ef_store_rule_create(p->s, EF_BYTES_LIT("default"), k, &rin, &p->a, &rule, &err), err);
        ef_store_distribution_in din = {.variant_id = vid, .rollout = 60};
        ef_doc_distribution dd;
        assert_ok(ef_store_distribution_create(p->s, EF_BYTES_LIT("default"), k, rule.rule.meta.id, &din,
                                               &p->a, &dd, &err), err);
    }
    check_all(p, r, -1);
    uint64_t start, first0;
    assert_ok(ef_store_seq(p->s, &start, &first0, &err), err);
    for (int i = 0; i < steps; i++) {
        ef_arena_reset(&p->a);
        random_write(p);
        ef_arena_reset(&p->a);
        check_all(p, r, i);
    }
    uint64_t last, first;
    assert_ok(ef_store_seq(p->s, &last, &first, &err), err);
    /* most random writes must succeed, or the comparison proves little */
    printf("seed %llu: %d writes tried, %llu committed\n", (unsigned long long)seed, steps,
           (unsigned long long)(last - start));
    assert_true(last - start > (uint64_t)steps / 3);
    tstore_free(r);
    tstore_free(p);
}

#define NSEEDS 5

/* EF_INCR_SEEDS picks the seeds to run (a comma list of 1..NSEEDS, default all): ctest runs them
 * as three tests at once in the plain build (store.cmake). A bit per seed; anything else in the
 * list fails the test, so a typo cannot make it pass by running nothing. */
static unsigned seeds_wanted(void)
{
    const char *list = getenv("EF_INCR_SEEDS");
    if (!list || !*list) return (1u << (NSEEDS + 1)) - 2;
    unsigned mask = 0;
    for (const char *p = list;;) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || v < 1 || v > NSEEDS || (*end && *end != ','))
            fail_msg("EF_INCR_SEEDS: not a comma list of seeds 1-%d: %s", NSEEDS, list);
        mask |= 1u << v;
        if (!*end) return mask;
        p = end + 1;
    }
}

static void test_random_writes_match_full_recompile(void **state)
{
    (void)state;
    const char *env = getenv("EF_INCR_STEPS");
    int steps = env ? atoi(env) : 150;
    unsigned seeds = seeds_wanted();
    for (uint64_t seed = 1; seed < NSEEDS; seed++)
        if (seeds & (1u << seed)) run_seed(seed, steps, NFLAGS);
    /* three pages of parts: writes replace flags on any page (a segment's, on every one),
     * delete some in the middle (every page after shifts) and create them again at the end;
     * half the steps (each compares 150 flags four ways) */
    if (seeds & (1u << NSEEDS)) run_seed(NSEEDS, steps / 2 > 10 ? steps / 2 : 10, 150);
    nflags = NFLAGS;
}

/* Readers evaluate and read documents while a writer publishes incremental snapshots: parts and
 * pages shared between snapshots are released on liburcu's reclaim thread (run under TSan and
 * ASan: a race or a use after free on a shared part shows there). Each reader also finds every
 * flag of the snapshot it holds by its key: flags appended to a shared key table are written into
 * it while older snapshots are read, and must neither hide an older snapshot's flag nor show it
 * one it does not have. */
typedef struct reader_ctx {
    ef_registry *reg;
    int stop; /* atomic */
    unsigned long evals;
    unsigned long lost; /* flags a snapshot's own table did not find */
} reader_ctx;

static void *reader(void *arg)
{
    reader_ctx *x = arg;
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_buf doc;
    ef_buf_init(&doc);
    while (!__atomic_load_n(&x->stop, __ATOMIC_ACQUIRE)) {
        ef_registry_read_lock(x->reg);
        const ef_snapshot *s = ef_registry_get(x->reg, EF_BYTES_LIT("default"));
        if (s) {
            for (uint32_t f = 0; f < NFLAGS; f++) {
                ef_arena_reset(&a);
                ef_eval_request req = {.flag_key = name_of(&a, "flag", f), .entity_id = EF_BYTES_LIT("e")};
                ef_variant_result vr;
                (void)ef_eval_variant(s, &req, &vr);
                __atomic_add_fetch(&x->evals, 1, __ATOMIC_RELAXED);
            }
            for (size_t i = 0; i < ef_snapshot_flag_count(s); i++) {
                const ef_flag *f = ef_snapshot_flag_at(s, i);
                if (ef_snapshot_find_flag(s, ef_flag_key(f)) != f)
                    __atomic_add_fetch(&x->lost, 1, __ATOMIC_RELAXED);
            }
            ef_buf_clear(&doc);
            (void)ef_snapshot_write_document(s, &doc);
        }
        ef_registry_read_unlock(x->reg);
    }
    ef_buf_free(&doc);
    ef_arena_free(&a);
    return NULL;
}

static void test_readers_during_incremental_writes(void **state)
{
    (void)state;
    rng_state = 99;
    tstore *p = tstore_new_local(true);
    ef_store_err err;
    for (uint32_t i = 0; i < NSEGS; i++) {
        ef_store_segment_in in = {.key = name_of(&p->a, "seg", i), .name = EF_BYTES_LIT("S")};
        ef_doc_segment g;
        assert_ok(ef_store_segment_create(p->s, EF_BYTES_LIT("default"), &in, &p->a, &g, &err), err);
    }
    reader_ctx x = {.reg = p->reg};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, reader, &x), 0);
    /* more flags than a page, so pages are both shared and replaced */
    for (uint32_t i = 0; i < 150; i++) {
        ef_bytes k = name_of(&p->a, "bulk", i);
        ef_store_flag_in in = {.key = k, .name = k, .enabled = true};
        ef_doc_flag f;
        assert_ok(ef_store_flag_create(p->s, EF_BYTES_LIT("default"), &in, &p->a, &f, &err), err);
    }
    for (int i = 0; i < 300; i++) {
        ef_arena_reset(&p->a);
        random_write(p);
    }
    __atomic_store_n(&x.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    assert_true(x.evals > 0);
    assert_int_equal(x.lost, 0);
    tstore_free(p);
}

/* A replica's entry whose rows apply but whose COMMIT fails (a deferred foreign key): the flags
 * it changed in place before COMMIT must be put back, or a later entry would publish them. */
typedef struct grab_ctx {
    ef_buf *out;
} grab_ctx;

static int grab_entry(void *ctx, const ef_store_change *c)
{
    grab_ctx *g = ctx;
    ef_buf_clear(g->out);
    ef_buf_append(g->out, c->entry.p, c->entry.n);
    return 0;
}

static void test_failed_commit_leaves_state(void **state)
{
    (void)state;
    tstore *p = tstore_new_local(true);
    tstore *r = tstore_new_local(true);
    ef_store_err err;
    ef_arena *a = &p->a;
    for (uint32_t i = 0; i < 3; i++) {
        ef_bytes k = name_of(a, "flag", i);
        ef_store_flag_in in = {.key = k, .name = k, .enabled = true};
        ef_doc_flag f;
        assert_ok(ef_store_flag_create(p->s, EF_BYTES_LIT("default"), &in, a, &f, &err), err);
    }
    ef_buf dump;
    ef_buf_init(&dump);
    uint64_t seq;
    assert_ok(ef_store_dump(p->s, &dump, &seq, &err), err);
    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len, &err), err);
    ef_buf_free(&dump);
    /* the next entry: flag0 renamed */
    ef_store_flag_in up = {.key = EF_BYTES_LIT("flag0"), .name = EF_BYTES_LIT("renamed"), .enabled = true};
    ef_doc_flag f;
    assert_ok(ef_store_flag_update(p->s, EF_BYTES_LIT("default"), &up, a, &f, &err), err);
    ef_doc_flag f2;
    assert_ok(ef_store_flag_get(p->s, EF_BYTES_LIT("default"), EF_BYTES_LIT("flag2"), a, &f2, &err), err);
    ef_buf entry, bad;
    ef_buf_init(&entry);
    ef_buf_init(&bad);
    grab_ctx g = {&entry};
    assert_ok(ef_store_changes(p->s, seq, 1, grab_entry, &g, &err), err);
    /* the same entry, also renaming flag2 and adding a variant of a flag that does not exist */
    const char *at = strstr(entry.data, "\"changes\":[");
    assert_non_null(at);
    size_t head = (size_t)(at - entry.data) + strlen("\"changes\":[");
    ef_buf_append(&bad, entry.data, head);
    ef_buf_printf(&bad,
                  "{\"table\":\"flags\",\"op\":\"upsert\",\"pk\":{\"namespace_key\":\"default\","
                  "\"key\":\"flag2\"},\"row\":{\"namespace_key\":\"default\",\"key\":\"flag2\","
                  "\"name\":\"BROKEN\",\"description\":\"\",\"enabled\":1,\"type\":0,"
                  "\"default_variant_id\":null,\"metadata\":null,\"created_at\":%lld,"
                  "\"updated_at\":%lld}},"
                  "{\"table\":\"variants\",\"op\":\"upsert\",\"pk\":{\"id\":\"ghost-variant\"},"
                  "\"row\":{\"id\":\"ghost-variant\",\"namespace_key\":\"default\","
                  "\"flag_key\":\"ghost\",\"key\":\"v\",\"name\":\"\",\"description\":\"\","
                  "\"attachment\":null,\"created_at\":1,\"updated_at\":1}},",
                  (long long)f2.meta.created_ns, (long long)f2.meta.updated_ns);
    ef_buf_append(&bad, entry.data + head, entry.len - head);
    assert_int_not_equal(ef_store_apply_changes(r->s, bad.data, bad.len, &err), 0);
    /* the real entry next: its snapshot must show flag0 renamed and flag2 as it was */
    assert_ok(ef_store_apply_changes(r->s, entry.data, entry.len, &err), err);
    ef_buf dr, dp;
    ef_buf_init(&dr);
    ef_buf_init(&dp);
    uint64_t hr = 0, hp = 0;
    assert_true(snap_doc(r->reg, EF_BYTES_LIT("default"), &dr, &hr));
    assert_true(snap_doc(p->reg, EF_BYTES_LIT("default"), &dp, &hp));
    assert_null(strstr(dr.data, "BROKEN"));
    assert_non_null(strstr(dr.data, "renamed"));
    assert_int_equal(dr.len, dp.len);
    assert_memory_equal(dr.data, dp.data, dp.len);
    assert_int_equal(hr, hp);
    ef_buf_free(&dr);
    ef_buf_free(&dp);
    ef_buf_free(&entry);
    ef_buf_free(&bad);
    tstore_free(r);
    tstore_free(p);
}

/* The commit listener (ef_store_on_commit, issue 11): a primary's feed hears of a write at its
 * COMMIT, before the republish, with the very entry the change log holds; nothing for a failed
 * write, for entries applied from an upstream, or after it is cleared. */
typedef struct commit_seen {
    int commits, publishes;
    int publishes_at_commit; /* publishes seen when the last commit was reported */
    uint64_t seq;
    ef_buf entry;
} commit_seen;

static int on_commit_seen(void *ctx, const ef_store_change *c)
{
    commit_seen *x = ctx;
    x->commits++;
    x->publishes_at_commit = x->publishes;
    x->seq = c->seq;
    ef_buf_clear(&x->entry);
    ef_buf_append(&x->entry, c->entry.p, c->entry.n);
    return 0;
}

static void on_publish_seen(ef_bytes ns, void *ctx)
{
    (void)ns;
    ((commit_seen *)ctx)->publishes++;
}

static void test_commit_listener_before_publish(void **state)
{
    (void)state;
    tstore *p = tstore_new_local(true);
    tstore *r = tstore_new_local(true);
    ef_store_err err;
    commit_seen x = {0}, y = {0};
    ef_buf_init(&x.entry);
    ef_buf_init(&y.entry);
    assert_int_equal(ef_registry_listen(p->reg, on_publish_seen, &x), 0);
    assert_int_equal(ef_store_on_commit(p->s, on_commit_seen, &x), 0);
    assert_int_equal(ef_store_on_commit(r->s, on_commit_seen, &y), 0);
    ef_store_flag_in in = {.key = EF_BYTES_LIT("f1"), .name = EF_BYTES_LIT("F"), .enabled = true};
    ef_doc_flag f;
    assert_ok(ef_store_flag_create(p->s, EF_BYTES_LIT("default"), &in, &p->a, &f, &err), err);
    assert_int_equal(x.commits, 1);
    assert_int_equal(x.publishes_at_commit, 0); /* reported before the publish */
    assert_true(x.publishes >= 1);
    uint64_t seq, first;
    assert_ok(ef_store_seq(p->s, &seq, &first, &err), err);
    assert_int_equal(x.seq, seq);
    ef_buf logged;
    ef_buf_init(&logged);
    grab_ctx g = {&logged};
    assert_ok(ef_store_changes(p->s, seq - 1, 1, grab_entry, &g, &err), err);
    assert_int_equal(logged.len, x.entry.len);
    assert_memory_equal(logged.data, x.entry.data, logged.len);
    /* a write that fails is not reported */
    assert_int_not_equal(ef_store_flag_create(p->s, EF_BYTES_LIT("default"), &in, &p->a, &f, &err), 0);
    assert_int_equal(x.commits, 1);
    /* an entry applied from an upstream is not this store's write */
    ef_buf dump;
    ef_buf_init(&dump);
    uint64_t dseq;
    assert_ok(ef_store_dump(p->s, &dump, &dseq, &err), err);
    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len, &err), err);
    ef_buf_free(&dump);
    in.key = EF_BYTES_LIT("f2");
    assert_ok(ef_store_flag_create(p->s, EF_BYTES_LIT("default"), &in, &p->a, &f, &err), err);
    assert_int_equal(x.commits, 2);
    assert_ok(ef_store_apply_changes(r->s, x.entry.data, x.entry.len, &err), err);
    assert_int_equal(y.commits, 0);
    /* cleared: no more calls */
    assert_int_equal(ef_store_on_commit(p->s, NULL, NULL), 0);
    in.key = EF_BYTES_LIT("f3");
    assert_ok(ef_store_flag_create(p->s, EF_BYTES_LIT("default"), &in, &p->a, &f, &err), err);
    assert_int_equal(x.commits, 2);
    ef_registry_unlisten(p->reg, on_publish_seen, &x);
    ef_buf_free(&logged);
    ef_buf_free(&x.entry);
    ef_buf_free(&y.entry);
    tstore_free(r);
    tstore_free(p);
}

/* A namespace large enough to be compiled on two threads at load (BUILD_SPLIT_MIN in
 * sqlite_incr.c), holding most flags, so its child tables are scanned, next to a small one read
 * through the namespace index. Rules name several segments out of key order and segment rollouts
 * two, so the order of a parent's children (put in order in C, not by SQL) shows. Each loaded
 * snapshot must equal the one-piece document of the per-flag queries, and answer the same. */
#define BIG_FLAGS 2600

static void build_load_ns(ef_arena *a, ef_doc_namespace *ns, const char *key, uint32_t n)
{
    memset(ns, 0, sizeof(*ns));
    ns->key = ef_bytes_of(key);
    ns->nsegments = NSEGS;
    ns->segments = ef_arena_calloc(a, NSEGS * sizeof(ef_doc_segment));
    for (uint32_t i = 0; i < NSEGS; i++) {
        ef_doc_segment *g = &ns->segments[i];
        g->key = g->name = name_of(a, "seg", i);
        g->match_type = i % 2 ? EF_DOC_MATCH_ANY : EF_DOC_MATCH_ALL;
        g->nconstraints = 2;
        g->constraints = ef_arena_calloc(a, 2 * sizeof(ef_doc_constraint));
        for (uint32_t c = 0; c < 2; c++)
            g->constraints[c] = (ef_doc_constraint){.type = EF_DOC_CT_STRING,
                                                    .property = EF_BYTES_LIT("plan"),
                                                    .op = EF_BYTES_LIT("eq"),
                                                    .value = c ? EF_BYTES_LIT("a") : EF_BYTES_LIT("b")};
    }
    ns->nflags = n;
    ns->flags = ef_arena_calloc(a, n * sizeof(ef_doc_flag));
    for (uint32_t i = 0; i < n; i++) {
        ef_doc_flag *f = &ns->flags[i];
        f->key = f->name = name_of(a, "flag", i);
        f->enabled = i % 5 != 0;
        ef_bytes *segs = ef_arena_calloc(a, 3 * sizeof(ef_bytes));
        for (uint32_t k = 0; k < 3; k++) segs[k] = name_of(a, "seg", (i + 5 - 2 * k) % NSEGS);
        if (i % 3 == 1) { /* boolean: a segment rollout on two segments, then a threshold */
            f->type = EF_DOC_BOOLEAN_FLAG;
            f->nrollouts = 2;
            f->rollouts = ef_arena_calloc(a, 2 * sizeof(ef_doc_rollout));
            f->rollouts[0] = (ef_doc_rollout){.type = EF_DOC_ROLLOUT_SEGMENT, .value = true,
                                              .nsegments = 2, .segment_keys = segs,
                                              .op = i % 2 ? EF_DOC_OP_AND : EF_DOC_OP_OR};
            f->rollouts[1] = (ef_doc_rollout){.type = EF_DOC_ROLLOUT_THRESHOLD, .percentage = 30};
            continue;
        }
        f->type = EF_DOC_VARIANT_FLAG;
        f->nvariants = 3;
        f->variants = ef_arena_calloc(a, 3 * sizeof(ef_doc_variant));
        for (uint32_t v = 0; v < 3; v++) f->variants[v].key = name_of(a, "v", v);
        f->nrules = 2;
        f->rules = ef_arena_calloc(a, 2 * sizeof(ef_doc_rule));
        for (uint32_t r = 0; r < 2; r++) {
            ef_doc_rule *rule = &f->rules[r];
            rule->nsegments = r ? 1 : 3;
            rule->segment_keys = r ? &segs[2] : segs;
            rule->op = EF_DOC_OP_OR;
            rule->ndistributions = 2;
            rule->distributions = ef_arena_calloc(a, 2 * sizeof(ef_doc_distribution));
            rule->distributions[0] = (ef_doc_distribution){.variant_key = f->variants[2 - r].key,
                                                           .rollout = 40};
            rule->distributions[1] = (ef_doc_distribution){.variant_key = f->variants[r].key,
                                                           .rollout = 60};
        }
    }
}

static void test_large_namespace_load_matches_per_flag_queries(void **state)
{
    (void)state;
    tstore *t = tstore_new_local(false);
    ef_doc doc = {.nnamespaces = 2};
    doc.namespaces = ef_arena_calloc(&t->a, 2 * sizeof(ef_doc_namespace));
    build_load_ns(&t->a, &doc.namespaces[0], "default", BIG_FLAGS);
    build_load_ns(&t->a, &doc.namespaces[1], "other", 12);
    ef_store_err err;
    ef_store_import_opts io = {0};
    assert_ok(ef_store_import(t->s, &doc, &io, &err), err);
    ef_store_close(t->s);
    /* creation times out of rowid order, with ties: the full load scans "default" (it holds most
     * flags) in rowid order and sorts in C, and reads "other" through the index; both must give
     * SQL's ORDER BY created_at, rowid */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(t->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "BEGIN; UPDATE flags SET created_at = 1000 + (rowid * 7919) % 50;"
                                  " DELETE FROM ef_pending; COMMIT;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    tstore_open_at(t, "sub/dir/edgeflag.db", true); /* a full load of both namespaces */
    ef_buf dr, dl, ar, al;
    ef_buf_init(&dr);
    ef_buf_init(&dl);
    ef_buf_init(&ar);
    ef_buf_init(&al);
    for (size_t i = 0; i < 2; i++) {
        ef_bytes ns = ef_bytes_of(NS[i]);
        uint64_t hash, ver;
        assert_true(snap_doc(t->reg, ns, &dr, &hash));
        ef_buf_clear(&dl);
        assert_ok(ef_store_snapshot_doc(t->s, ns, NULL, &dl, &ver, &err), err);
        if (dr.len != dl.len || memcmp(dr.data, dl.data, dl.len) != 0)
            fail_msg("ns %s: the loaded snapshot's document differs from the per-flag queries'",
                     NS[i]);
        ef_arena_reset(&t->a);
        registry_answers(t->reg, ns, &t->a, &ar);
        ef_buf_clear(&al);
        doc_answers(&dl, &t->a, &al);
        assert_true(ar.len > 0);
        assert_true(ar.len == al.len && memcmp(ar.data, al.data, al.len) == 0);
        /* the order of a parent's children is the SQL order: seg5, seg3, seg1 in flag0's rule */
        if (i == 0) {
            const char *r = strstr(dl.data, "\"segments\":[{\"key\":\"seg5\"");
            const char *d = r ? strstr(r, "\"distributions\"") : NULL;
            const char *k3 = r ? strstr(r, "{\"key\":\"seg3\"") : NULL;
            const char *k1 = k3 ? strstr(k3, "{\"key\":\"seg1\"") : NULL;
            assert_true(d && k1 && k1 < d);
        }
    }
    ef_buf_free(&dr);
    ef_buf_free(&dl);
    ef_buf_free(&ar);
    ef_buf_free(&al);
    tstore_free(t);
}

/* --random-only: the seeded comparison alone (the other ctest parts of this file). */
int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--random-only")) {
        const struct CMUnitTest random_only[] = {cmocka_unit_test(test_random_writes_match_full_recompile)};
        return cmocka_run_group_tests(random_only, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_listener_before_publish),
        cmocka_unit_test(test_failed_commit_leaves_state),
        cmocka_unit_test(test_readers_during_incremental_writes),
        cmocka_unit_test(test_random_writes_match_full_recompile),
        cmocka_unit_test(test_large_namespace_load_matches_per_flag_queries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
