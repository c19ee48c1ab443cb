/*
 * test_store_log.c - the change log and replication primitives: contiguous seqs, namespace
 * versions, cascaded deletes logged row by row, trimming, dump + load + apply reproducing the same
 * export, and the declarative import/export round trip. Runs on every backend (store.cmake).
 */
#include <sys/stat.h>

#include "test_store_helper.h"
#include "store/sqlite_int.h"
#include "eval/registry.h"
#include "eval/model.h"

typedef struct collect {
    uint64_t seqs[256];
    char *entries[256];
    size_t n;
} collect;

static int collect_fn(void *ctx, const ef_store_change *c)
{
    collect *k = ctx;
    if (k->n == 256) return 1;
    k->seqs[k->n] = c->seq;
    k->entries[k->n] = strndup(c->entry.p, c->entry.n);
    k->n++;
    return 0;
}

static void collect_free(collect *k)
{
    for (size_t i = 0; i < k->n; i++) free(k->entries[i]);
    k->n = 0;
}

/* A namespace with every kind of entity. */
static void populate(ef_store *s, ef_arena *a)
{
    ef_store_err err;
    ef_doc_namespace ns;
    ef_store_ns_in nin = {.key = B("prod"), .name = B("Production")};
    assert_ok(ef_store_ns_create(s, &nin, a, &ns, &err), err);
    ef_doc_segment g;
    ef_store_segment_in gin = {.key = B("beta"), .name = B("Beta"), .match_type = EF_DOC_MATCH_ANY};
    assert_ok(ef_store_segment_create(s, B("prod"), &gin, a, &g, &err), err);
    ef_doc_constraint c;
    ef_store_constraint_in cin = {.type = EF_DOC_CT_STRING, .property = B("plan"), .op = B("eq"),
                                  .value = B("pro")};
    assert_ok(ef_store_constraint_create(s, B("prod"), B("beta"), &cin, a, &c, &err), err);
    ef_doc_flag f;
    ef_store_flag_in fin = {.key = B("color"), .name = B("Color"), .enabled = true};
    assert_ok(ef_store_flag_create(s, B("prod"), &fin, a, &f, &err), err);
    ef_doc_variant v;
    ef_store_variant_in vin = {.key = B("blue"), .name = B("Blue"), .attachment = B("{\"a\":1}")};
    assert_ok(ef_store_variant_create(s, B("prod"), B("color"), &vin, a, &v, &err), err);
    fin.default_variant_id = v.meta.id;
    assert_ok(ef_store_flag_update(s, B("prod"), &fin, a, &f, &err), err);
    ef_store_rule r;
    ef_store_rule_in rin = {.segment_key = B("beta"), .rank = 1};
    assert_ok(ef_store_rule_create(s, B("prod"), B("color"), &rin, a, &r, &err), err);
    ef_doc_distribution d;
    ef_store_distribution_in din = {.variant_id = v.meta.id, .rollout = 100};
    assert_ok(ef_store_distribution_create(s, B("prod"), B("color"), r.rule.meta.id, &din, a, &d,
                                           &err),
              err);
    ef_doc_flag b;
    ef_store_flag_in bin = {.key = B("dark"), .name = B("Dark"), .type = EF_DOC_BOOLEAN_FLAG};
    assert_ok(ef_store_flag_create(s, B("prod"), &bin, a, &b, &err), err);
    ef_store_rollout ro;
    ef_store_rollout_in roin = {.rank = 1, .type = EF_DOC_ROLLOUT_SEGMENT,
                                .segment_key = B("beta"), .value = true};
    assert_ok(ef_store_rollout_create(s, B("prod"), B("dark"), &roin, a, &ro, &err), err);
    roin = (ef_store_rollout_in){.rank = 2, .type = EF_DOC_ROLLOUT_THRESHOLD, .percentage = 33.3f};
    assert_ok(ef_store_rollout_create(s, B("prod"), B("dark"), &roin, a, &ro, &err), err);
}

static void export_yaml(ef_store *s, ef_buf *out)
{
    ef_arena a;
    ef_arena_init(&a, 65536);
    ef_doc doc;
    ef_store_err err;
    assert_ok(ef_store_export(s, NONE, &a, &doc, &err), err);
    ef_buf_clear(out);
    assert_int_equal(ef_decl_write_yaml(&doc, out), 0);
    ef_arena_free(&a);
}

/* Both stores export the same YAML, byte for byte. */
static void assert_same_export(ef_store *a, ef_store *b)
{
    ef_buf ya, yb;
    ef_buf_init(&ya);
    ef_buf_init(&yb);
    export_yaml(a, &ya);
    export_yaml(b, &yb);
    assert_int_equal(ya.len, yb.len);
    assert_memory_equal(ya.data, yb.data, ya.len);
    ef_buf_free(&ya);
    ef_buf_free(&yb);
}

static void test_seq_versions_and_cascade(void **state)
{
    (void)state;
    tstore *t = tstore_new(false);
    ef_store_err err;
    populate(t->s, &t->a);
    uint64_t seq, first, v1;
    assert_ok(ef_store_seq(t->s, &seq, &first, &err), err);
    assert_int_equal(seq, 11);
    assert_int_equal(first, 1);
    assert_ok(ef_store_ns_version(t->s, B("prod"), &v1, &err), err);
    assert_int_equal(v1, 11);
    collect k = {0};
    assert_ok(ef_store_changes(t->s, 0, 0, collect_fn, &k, &err), err);
    assert_int_equal(k.n, 11);
    for (size_t i = 0; i < k.n; i++) assert_int_equal(k.seqs[i], i + 1);
    assert_non_null(strstr(k.entries[0], "\"namespaces\":[{\"key\":\"prod\",\"version\":1}]"));
    collect_free(&k);
    /* deleting a flag logs every row that went with it */
    assert_ok(ef_store_flag_delete(t->s, B("prod"), B("color"), &err), err);
    assert_ok(ef_store_changes(t->s, 11, 0, collect_fn, &k, &err), err);
    assert_int_equal(k.n, 1);
    const char *tables[] = {"\"table\":\"flags\",\"op\":\"delete\"",
                            "\"table\":\"variants\",\"op\":\"delete\"",
                            "\"table\":\"rules\",\"op\":\"delete\"",
                            "\"table\":\"rule_segments\",\"op\":\"delete\"",
                            "\"table\":\"distributions\",\"op\":\"delete\""};
    for (size_t i = 0; i < 5; i++)
        if (!strstr(k.entries[0], tables[i])) fail_msg("%s missing in %s", tables[i], k.entries[0]);
    collect_free(&k);
    /* a no-op delete is not a transaction */
    assert_ok(ef_store_flag_delete(t->s, B("prod"), B("color"), &err), err);
    assert_ok(ef_store_seq(t->s, &seq, NULL, &err), err);
    assert_int_equal(seq, 12);
    /* a failed write changes nothing */
    ef_doc_flag f;
    ef_store_flag_in dup = {.key = B("dark"), .name = B("x")};
    assert_int_equal(ef_store_flag_create(t->s, B("prod"), &dup, &t->a, &f, &err), -1);
    assert_ok(ef_store_seq(t->s, &seq, NULL, &err), err);
    assert_int_equal(seq, 12);
    /* versions survive delete and re-create of a namespace */
    assert_ok(ef_store_flag_delete(t->s, B("prod"), B("dark"), &err), err);
    assert_ok(ef_store_segment_delete(t->s, B("prod"), B("beta"), &err), err);
    assert_ok(ef_store_ns_delete(t->s, B("prod"), &err), err);
    ef_doc_namespace ns;
    ef_store_ns_in nin = {.key = B("prod"), .name = B("P")};
    assert_ok(ef_store_ns_create(t->s, &nin, &t->a, &ns, &err), err);
    uint64_t v2;
    assert_ok(ef_store_ns_version(t->s, B("prod"), &v2, &err), err);
    assert_int_equal(v2, v1 + 5);
    tstore_free(t);
}

static void test_trim(void **state)
{
    (void)state;
    tstore *t = tstore_new(false);
    ef_store_err err;
    populate(t->s, &t->a);
    assert_ok(ef_store_trim(t->s, 4, 0, &err), err);
    uint64_t seq, first;
    assert_ok(ef_store_seq(t->s, &seq, &first, &err), err);
    assert_int_equal(first, 8);
    collect k = {0};
    assert_store_err(ef_store_changes(t->s, 3, 0, collect_fn, &k, &err), err, EF_STORE_TRIMMED,
                     "change log position 3 is no longer available (oldest entry is 8)");
    assert_ok(ef_store_changes(t->s, 7, 2, collect_fn, &k, &err), err);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.seqs[0], 8);
    collect_free(&k);
    /* retention configured at open trims after every write */
    ef_store_close(t->s);
    t->s = tstore_try_open(t, "sub/dir/edgeflag.db", false, false, 2, &err);
    if (!t->s) fail_msg("reopen: %s", err.message);
    ef_doc_segment g;
    ef_store_segment_in gin = {.key = B("x"), .name = B("x")};
    assert_ok(ef_store_segment_create(t->s, NONE, &gin, &t->a, &g, &err), err);
    assert_ok(ef_store_seq(t->s, &seq, &first, &err), err);
    assert_int_equal(seq, 12);
    assert_int_equal(first, 11);
    tstore_free(t);
}

static void test_dump_load_apply(void **state)
{
    (void)state;
    tstore *p = tstore_new(true);
    tstore *r = tstore_new_local(true); /* a replica's store is SQLite whatever p's backend */
    ef_store_err err;
    populate(p->s, &p->a);
    ef_buf dump;
    ef_buf_init(&dump);
    uint64_t at;
    assert_ok(ef_store_dump(p->s, &dump, &at, &err), err);
    assert_int_equal(at, 11);
    /* later writes on the primary, including cascades and re-ranking */
    ef_store_rollout *ros;
    size_t n;
    ef_store_page_out po;
    assert_ok(ef_store_rollout_list(p->s, B("prod"), B("dark"), NULL, &p->a, &ros, &n, &po, &err),
              err);
    ef_bytes ids[] = {ros[1].rollout.meta.id, ros[0].rollout.meta.id};
    assert_ok(ef_store_rollout_order(p->s, B("prod"), B("dark"), ids, 2, &err), err);
    ef_doc_flag f;
    assert_ok(ef_store_flag_get(p->s, B("prod"), B("color"), &p->a, &f, &err), err);
    assert_ok(ef_store_variant_delete(p->s, B("prod"), B("color"), f.variants[0].meta.id, &err), err);
    ef_store_flag_in fin = {.key = B("new"), .name = B("New"), .metadata = B("{\"x\":[1,2]}")};
    assert_ok(ef_store_flag_create(p->s, NONE, &fin, &p->a, &f, &err), err);

    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len, &err), err);
    uint64_t seq;
    assert_ok(ef_store_seq(r->s, &seq, NULL, &err), err);
    assert_int_equal(seq, 11);
    collect k = {0};
    assert_ok(ef_store_changes(p->s, at, 0, collect_fn, &k, &err), err);
    assert_int_equal(k.n, 3);
    /* out of order is refused */
    assert_store_err(ef_store_apply_changes(r->s, k.entries[1], strlen(k.entries[1]), &err), err,
                     EF_STORE_OUT_OF_ORDER, "entry seq 13 does not follow local seq 11");
    for (size_t i = 0; i < k.n; i++)
        assert_ok(ef_store_apply_changes(r->s, k.entries[i], strlen(k.entries[i]), &err), err);
    collect_free(&k);
    assert_same_export(p->s, r->s);
    uint64_t vp, vr;
    assert_ok(ef_store_ns_version(p->s, B("prod"), &vp, &err), err);
    assert_ok(ef_store_ns_version(r->s, B("prod"), &vr, &err), err);
    assert_int_equal(vp, vr);
    /* the replica's snapshots are published at the same seq */
    ef_registry_read_lock(r->reg);
    const ef_snapshot *snap = ef_registry_get(r->reg, B("prod"));
    assert_non_null(snap);
    assert_int_equal(ef_snapshot_version(snap), 13); /* seq 14 touched only "default" */
    assert_int_equal(ef_snapshot_flag_count(snap), 2);
    ef_registry_read_unlock(r->reg);
    /* the replica's own log continues the primary's */
    assert_ok(ef_store_changes(r->s, 11, 0, collect_fn, &k, &err), err);
    assert_int_equal(k.n, 3);
    collect_free(&k);
    /* the snapshot document has the namespace version for an ETag */
    ef_buf sd;
    ef_buf_init(&sd);
    uint64_t ver;
    assert_ok(ef_store_snapshot_doc(r->s, B("prod"), NULL, &sd, &ver, &err), err);
    assert_int_equal(ver, vp);
    assert_non_null(memmem(sd.data, sd.len, "\"dark\"", 6));
    ef_buf_free(&sd);
    ef_buf_free(&dump);
    tstore_free(p);
    tstore_free(r);
}

/* A populated store p, an empty replica store r (SQLite whatever p's backend), and p's dump,
 * NUL-terminated after its dump->len bytes. */
static void dump_pair(tstore **p, tstore **r, ef_buf *dump)
{
    ef_store_err err;
    *p = tstore_new(false);
    *r = tstore_new_local(true);
    populate((*p)->s, &(*p)->a);
    ef_buf_init(dump);
    uint64_t at;
    assert_ok(ef_store_dump((*p)->s, dump, &at, &err), err);
    ef_buf_putc(dump, '\0');
    dump->len--;
}

/* A dump whose rows break a reference (a variant of a flag the dump does not hold) is refused
 * whole, and the replica keeps the state it had: the rows go in with the foreign keys off, and
 * load_dump checks them all once before COMMIT (sqlite_log.c dump_refs_hold). */
static void test_dump_with_a_broken_reference_is_refused(void **state)
{
    (void)state;
    tstore *p, *r;
    ef_buf dump;
    dump_pair(&p, &r, &dump);
    ef_store_err err;
    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len, &err), err);
    char *variants = strstr(dump.data, "\"variants\":[");
    assert_non_null(variants);
    char *ref = strstr(variants, "\"flag_key\":\"color\"");
    assert_non_null(ref);
    memcpy(ref + strlen("\"flag_key\":\""), "COLOR", 5); /* same length: the dump stays valid JSON */
    assert_store_err(ef_store_load_dump(r->s, dump.data, dump.len, &err), err, EF_STORE_INVALID,
                     "dump breaks a reference: a row of table variants refers to a missing row of flags");
    assert_same_export(p->s, r->s);
    ef_registry_read_lock(r->reg);
    const ef_snapshot *snap = ef_registry_get(r->reg, B("prod"));
    assert_non_null(snap);
    assert_int_equal(ef_snapshot_flag_count(snap), 2);
    ef_registry_read_unlock(r->reg);
    /* the foreign keys are on again for the writes after it: a variant of no flag is refused */
    sqlite3 *db = ((sq *)r->s->h)->db;
    const char *orphan = "INSERT INTO variants(id, namespace_key, flag_key, key, created_at, updated_at)"
                         " VALUES ('x', 'prod', 'nosuch', 'k', 1, 1)";
    assert_int_not_equal(sqlite3_exec(db, orphan, NULL, NULL, NULL), SQLITE_OK);
    if (!strstr(sqlite3_errmsg(db), "FOREIGN KEY")) fail_msg("refused for: %s", sqlite3_errmsg(db));
    ef_buf_free(&dump);
    tstore_free(p);
    tstore_free(r);
}

/* At every registry notification during a dump's load, whether every namespace of the dump is
 * published already (what a node's version and the requests waiting for it rely on). */
typedef struct announced {
    ef_registry *reg;
    int calls, early;
} announced;

static void on_announce(ef_bytes ns, void *ctx)
{
    (void)ns;
    announced *k = ctx;
    k->calls++;
    ef_registry_read_lock(k->reg);
    for (const char *const *x = (const char *const[]){"default", "prod", "n1", "n2", NULL}; *x; x++)
        if (!ef_registry_get(k->reg, ef_bytes_of(*x))) {
            k->early++;
            break;
        }
    ef_registry_read_unlock(k->reg);
}

/* A dump of several namespaces is announced once all are published: a replica told of the first
 * one raised the version it serves (and released the requests waiting for it) while the others
 * were still missing, and answered "flag not found" for them (bench/scale_bench.mjs, 1,000
 * namespaces: 333 of 2,000 answers). */
static void test_dump_announced_when_whole(void **state)
{
    (void)state;
    tstore *p = tstore_new(false);
    tstore *r = tstore_new_local(true);
    ef_store_err err;
    populate(p->s, &p->a);
    for (const char *const *x = (const char *const[]){"n1", "n2", NULL}; *x; x++) {
        ef_doc_namespace ns;
        ef_store_ns_in nin = {.key = ef_bytes_of(*x), .name = ef_bytes_of(*x)};
        assert_ok(ef_store_ns_create(p->s, &nin, &p->a, &ns, &err), err);
        ef_store_flag_in fin = {.key = B("f"), .name = B("f"), .enabled = true};
        ef_doc_flag f;
        assert_ok(ef_store_flag_create(p->s, ef_bytes_of(*x), &fin, &p->a, &f, &err), err);
    }
    ef_buf dump;
    ef_buf_init(&dump);
    uint64_t at;
    assert_ok(ef_store_dump(p->s, &dump, &at, &err), err);
    announced k = {.reg = r->reg};
    assert_int_equal(ef_registry_listen(r->reg, on_announce, &k), 0);
    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len, &err), err);
    ef_registry_unlisten(r->reg, on_announce, &k);
    assert_true(k.calls >= 4);
    if (k.early) fail_msg("%d of %d announcements came before every namespace was published", k.early, k.calls);
    ef_buf_free(&dump);
    tstore_free(p);
    tstore_free(r);
}

/* Text with the first "updated_at":DIGITS after `after` given the value 1e999 (malloc'd). */
static char *with_infinity(const char *text, const char *after)
{
    const char *from = strstr(text, after);
    assert_non_null(from);
    const char *at = strstr(from, "\"updated_at\":");
    assert_non_null(at);
    at += strlen("\"updated_at\":");
    size_t digits = strspn(at, "0123456789");
    size_t head = (size_t)(at - text), n = strlen(text);
    char *out = malloc(n + 8);
    assert_non_null(out);
    memcpy(out, text, head);
    memcpy(out + head, "1e999", 5);
    memcpy(out + head + 5, at + digits, n - head - digits + 1);
    return out;
}

/* A number past a double's range (1e999, parsed as infinity) in a change or a dump row is refused:
 * stored, it came back in the next dump as Inf, which is not JSON, and the store refused its own
 * dump (fuzz_replication, corpus regress-dump-infinity). */
static void test_nonfinite_number_refused(void **state)
{
    (void)state;
    tstore *p, *r;
    ef_buf dump;
    dump_pair(&p, &r, &dump);
    ef_store_err err;
    uint64_t at;
    assert_ok(ef_store_seq(p->s, &at, NULL, &err), err);
    char *bad = with_infinity(dump.data, "\"segments\":[");
    assert_store_err(ef_store_load_dump(r->s, bad, strlen(bad), &err), err, EF_STORE_INVALID,
                     "segments.updated_at is not a finite number");
    free(bad);
    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len, &err), err);
    ef_store_flag_in fin = {.key = B("later"), .name = B("Later")};
    ef_doc_flag f;
    assert_ok(ef_store_flag_create(p->s, B("prod"), &fin, &p->a, &f, &err), err);
    collect k = {0};
    assert_ok(ef_store_changes(p->s, at, 0, collect_fn, &k, &err), err);
    assert_int_equal(k.n, 1);
    bad = with_infinity(k.entries[0], "\"row\":");
    assert_store_err(ef_store_apply_changes(r->s, bad, strlen(bad), &err), err, EF_STORE_INVALID,
                     "flags.updated_at is not a finite number");
    free(bad);
    assert_ok(ef_store_apply_changes(r->s, k.entries[0], strlen(k.entries[0]), &err), err);
    collect_free(&k);
    assert_same_export(p->s, r->s);
    ef_buf_free(&dump);
    tstore_free(p);
    tstore_free(r);
}

/* A populated store's export: the YAML (y1; y2 for a second export) and the document parsed
 * from it (in a). */
typedef struct exported {
    ef_buf y1, y2;
    ef_arena a;
    ef_doc doc;
} exported;

static void exported_init(exported *x, tstore *p)
{
    ef_buf_init(&x->y1);
    ef_buf_init(&x->y2);
    ef_arena_init(&x->a, 65536);
    populate(p->s, &p->a);
    export_yaml(p->s, &x->y1);
    ef_decl_error derr;
    if (ef_decl_parse("export.yml", x->y1.data, x->y1.len, &x->a, &x->doc, &derr))
        fail_msg("%s:%u:%u %s\n%.*s", derr.file, derr.line, derr.column, derr.message,
                 (int)x->y1.len, x->y1.data);
}

static void exported_free(exported *x)
{
    ef_arena_free(&x->a);
    ef_buf_free(&x->y1);
    ef_buf_free(&x->y2);
}

static void test_import_export_roundtrip(void **state)
{
    (void)state;
    tstore *p = tstore_new(false);
    tstore *q = tstore_new(true);
    ef_store_err err;
    exported x;
    exported_init(&x, p);
    ef_store_import_opts o = {0};
    assert_ok(ef_store_import(q->s, &x.doc, &o, &err), err);
    export_yaml(q->s, &x.y2);
    assert_int_equal(x.y1.len, x.y2.len);
    assert_memory_equal(x.y1.data, x.y2.data, x.y1.len);
    uint64_t seq;
    assert_ok(ef_store_seq(q->s, &seq, NULL, &err), err);
    assert_int_equal(seq, 1); /* one import, one transaction */
    /* importing again: not unique, and nothing changes */
    assert_int_equal(ef_store_import(q->s, &x.doc, &o, &err), -1);
    assert_int_equal(err.code, EF_STORE_NOT_UNIQUE);
    assert_ok(ef_store_seq(q->s, &seq, NULL, &err), err);
    assert_int_equal(seq, 1);
    {
        /* a flag whose key is taken, with nothing before it that collides: Flipt's message from
         * the primary key, which the import lets find it (sq_flag_insert_tx) */
        const ef_doc_flag *taken = NULL;
        for (size_t i = 0; i < x.doc.nnamespaces && !taken; i++)
            if (ef_bytes_eq(x.doc.namespaces[i].key, B("prod")) && x.doc.namespaces[i].nflags)
                taken = &x.doc.namespaces[i].flags[0];
        assert_non_null(taken);
        char yml[256];
        snprintf(yml, sizeof(yml), "namespace: prod\nflags:\n- key: %.*s\n  name: again\n",
                 (int)taken->key.n, taken->key.p);
        ef_arena ya;
        ef_arena_init(&ya, 4096);
        ef_doc one;
        ef_decl_error derr;
        assert_int_equal(ef_decl_parse("again.yml", yml, strlen(yml), &ya, &one, &derr), 0);
        assert_int_equal(ef_store_import(q->s, &one, &o, &err), -1);
        assert_int_equal(err.code, EF_STORE_NOT_UNIQUE);
        char want[200];
        snprintf(want, sizeof(want), "flag \"prod/%.*s\" is not unique", (int)taken->key.n,
                 taken->key.p);
        assert_non_null(strstr(err.message, want));
        ef_arena_free(&ya);
        assert_ok(ef_store_seq(q->s, &seq, NULL, &err), err);
        assert_int_equal(seq, 1);
    }
    o.skip_existing = true;
    assert_ok(ef_store_import(q->s, &x.doc, &o, &err), err);
    o = (ef_store_import_opts){.drop = true};
    assert_ok(ef_store_import(q->s, &x.doc, &o, &err), err);
    export_yaml(q->s, &x.y2);
    assert_int_equal(x.y1.len, x.y2.len);
    assert_memory_equal(x.y1.data, x.y2.data, x.y1.len);
    ef_registry_read_lock(q->reg);
    assert_non_null(ef_registry_get(q->reg, B("prod")));
    ef_registry_read_unlock(q->reg);
    /* An import skips the lookups a document ef_decl_read checked makes needless (sqlite_int.h);
     * one that breaks that promise (a rule naming a segment neither it nor the store holds) is
     * still refused whole: by the import's own check when it inserts with the foreign keys off
     * (sq_wtx_begin_bulk), by the schema's keys when it drops first. */
    tstore *r = tstore_new(false);
    for (size_t i = 0; i < x.doc.nnamespaces; i++)
        if (ef_bytes_eq(x.doc.namespaces[i].key, B("prod"))) x.doc.namespaces[i].nsegments = 0;
    assert_int_equal(ef_store_import(r->s, &x.doc, &(ef_store_import_opts){0}, &err), -1);
    if (!tstore_libsql() && !tstore_pg()) { /* the remote stores check with their keys */
        assert_int_equal(err.code, EF_STORE_NOT_FOUND);
        assert_non_null(strstr(err.message, "unknown segment"));
    }
    assert_ok(ef_store_seq(r->s, &seq, NULL, &err), err);
    assert_int_equal(seq, 0);
    assert_int_equal(ef_store_import(r->s, &x.doc, &(ef_store_import_opts){.drop = true}, &err), -1);
    assert_ok(ef_store_seq(r->s, &seq, NULL, &err), err);
    assert_int_equal(seq, 0);
    tstore_free(r);
    if (!tstore_libsql() && !tstore_pg()) {
        /* q's rows came from bulk imports: every reference holds, and the foreign keys are on
         * again for the writes after them (a flag's delete cascades to its children) */
        const ef_doc_namespace *prod = NULL;
        for (size_t i = 0; i < x.doc.nnamespaces; i++)
            if (ef_bytes_eq(x.doc.namespaces[i].key, B("prod"))) prod = &x.doc.namespaces[i];
        assert_non_null(prod);
        const ef_doc_flag *victim = NULL;
        for (size_t i = 0; i < prod->nflags && !victim; i++)
            if (prod->flags[i].nvariants && prod->flags[i].nrules) victim = &prod->flags[i];
        assert_non_null(victim);
        assert_ok(ef_store_flag_delete(q->s, B("prod"), victim->key, &err), err);
        sqlite3 *db;
        assert_int_equal(sqlite3_open_v2(q->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        static const char *const checks[] = {
            "SELECT count(*) FROM pragma_foreign_key_check",
            "SELECT count(*) FROM variants v WHERE NOT EXISTS (SELECT 1 FROM flags f WHERE"
            " f.namespace_key = v.namespace_key AND f.key = v.flag_key)",
            "SELECT count(*) FROM rules r WHERE NOT EXISTS (SELECT 1 FROM flags f WHERE"
            " f.namespace_key = r.namespace_key AND f.key = r.flag_key)",
            "SELECT count(*) FROM distributions d WHERE NOT EXISTS (SELECT 1 FROM rules r WHERE"
            " r.id = d.rule_id)",
        };
        for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
            sqlite3_stmt *st;
            assert_int_equal(sqlite3_prepare_v2(db, checks[i], -1, &st, NULL), SQLITE_OK);
            assert_int_equal(sqlite3_step(st), SQLITE_ROW);
            if (sqlite3_column_int64(st, 0) != 0) fail_msg("%s: %lld", checks[i], (long long)sqlite3_column_int64(st, 0));
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
    }
    exported_free(&x);
    tstore_free(p);
    tstore_free(q);
}


/* Each write's entry says who asked for it (the thread's attribution, as the HTTP layer sets it)
 * and, for updates and deletes, what the rows were before (schema 4); a write with no attribution
 * has no "audit" object, and a replica applying the entries keeps them verbatim. */
static void test_attribution_and_old_rows(void **state)
{
    (void)state;
    tstore *t = tstore_new(false);
    ef_store_err err;
    ef_store_attribution who = {.method = B("token"), .id = B("t-1"), .name = B("ci \"bot\""),
                                .ip = B("127.0.0.1:9"), .via = B("replica-a"), .type = B("flag"),
                                .action = B("created"), .ns = B("default"), .flag = B("f")};
    ef_store_attribute(&who);
    ef_doc_flag f;
    ef_store_flag_in fin = {.key = B("f"), .name = B("Before"), .enabled = true};
    assert_ok(ef_store_flag_create(t->s, B("default"), &fin, &t->a, &f, &err), err);
    who.action = B("updated");
    fin.name = B("After");
    assert_ok(ef_store_flag_update(t->s, B("default"), &fin, &t->a, &f, &err), err);
    ef_store_attribute(NULL);
    assert_ok(ef_store_flag_delete(t->s, B("default"), B("f"), &err), err);
    collect k = {0};
    assert_ok(ef_store_changes(t->s, 0, 0, collect_fn, &k, &err), err);
    assert_int_equal(k.n, 3);
    const char *want0 = ",\"audit\":{\"actor\":{\"method\":\"token\",\"id\":\"t-1\",\"name\":\"ci "
                        "\\\"bot\\\"\",\"ip\":\"127.0.0.1:9\"},\"via\":\"replica-a\",\"type\":\"flag\","
                        "\"action\":\"created\",\"namespace\":\"default\",\"flag\":\"f\"}}";
    if (!strstr(k.entries[0], want0)) fail_msg("no audit object in %s", k.entries[0]);
    assert_null(strstr(k.entries[0], "\"old\":")); /* an insert has no before */
    if (!strstr(k.entries[1], "\"action\":\"updated\"")) fail_msg("%s", k.entries[1]);
    if (!strstr(k.entries[1], "\"old\":{\"namespace_key\":\"default\",\"key\":\"f\",\"name\":\"Before\""))
        fail_msg("no old row in %s", k.entries[1]);
    if (!strstr(k.entries[1], "\"row\":{\"namespace_key\":\"default\",\"key\":\"f\",\"name\":\"After\""))
        fail_msg("no new row in %s", k.entries[1]);
    assert_null(strstr(k.entries[2], "\"audit\""));
    if (!strstr(k.entries[2], "\"op\":\"delete\",\"pk\":{\"namespace_key\":\"default\",\"key\":\"f\"},"
                              "\"old\":{\"namespace_key\":\"default\",\"key\":\"f\",\"name\":\"After\""))
        fail_msg("no old row in the delete %s", k.entries[2]);
    /* a replica applies them and logs them verbatim */
    tstore *r = tstore_new_local(false);
    for (size_t i = 0; i < k.n; i++)
        assert_ok(ef_store_apply_changes(r->s, k.entries[i], strlen(k.entries[i]), &err), err);
    collect kr = {0};
    assert_ok(ef_store_changes(r->s, 0, 0, collect_fn, &kr, &err), err);
    assert_int_equal(kr.n, 3);
    for (size_t i = 0; i < k.n; i++) assert_string_equal(kr.entries[i], k.entries[i]);
    collect_free(&kr);
    collect_free(&k);
    tstore_free(r);
    tstore_free(t);
}

/* An import writes its rows without the capture triggers and reads them into its entry before
 * COMMIT (sqlite_capture.c): the entry carries the deletes of a replacing import and every row
 * inserted, formatted as the triggers format them (a REAL's digits, escaped text), and a replica
 * applying it ends with the same state. Its flags name default variants listed after them, so the
 * replica's first, immediate-checked attempt is refused and the deferred retry applies it
 * (sqlite_log.c apply_changes). */
static void test_import_entry_replicates(void **state)
{
    (void)state;
    tstore *p = tstore_new(false);
    tstore *q = tstore_new(false);
    tstore *r = tstore_new_local(true);
    ef_store_err err;
    exported x;
    exported_init(&x, p);
    /* text that must be escaped in the entry */
    ef_doc_namespace *prod = NULL;
    for (size_t i = 0; i < x.doc.nnamespaces; i++)
        if (ef_bytes_eq(x.doc.namespaces[i].key, B("prod"))) prod = &x.doc.namespaces[i];
    assert_non_null(prod);
    assert_true(prod->nflags > 0);
    prod->flags[0].description = B("line\n\"q\" \xc3\xa9\t\\ \x01");
    ef_store_import_opts o = {0};
    assert_ok(ef_store_import(q->s, &x.doc, &o, &err), err);
    o.drop = true; /* deletes (captured by the triggers) and inserts (read from the tables) */
    assert_ok(ef_store_import(q->s, &x.doc, &o, &err), err);
    collect k = {0}, kp = {0};
    assert_ok(ef_store_changes(q->s, 0, 0, collect_fn, &k, &err), err);
    assert_int_equal(k.n, 2);
    assert_non_null(strstr(k.entries[1], "\"op\":\"delete\""));
    /* the threshold rollout's percentage as the trigger of the rollout write on p wrote it */
    assert_ok(ef_store_changes(p->s, 0, 0, collect_fn, &kp, &err), err);
    const char *pct = strstr(kp.entries[kp.n - 1], "\"percentage\":");
    assert_non_null(pct);
    char want[64];
    snprintf(want, sizeof(want), "%.*s", (int)strcspn(pct, ","), pct);
    if (!strstr(k.entries[1], want)) fail_msg("%s not in %s", want, k.entries[1]);
    for (size_t i = 0; i < k.n; i++)
        assert_ok(ef_store_apply_changes(r->s, k.entries[i], strlen(k.entries[i]), &err), err);
    export_yaml(q->s, &x.y1);
    export_yaml(r->s, &x.y2);
    assert_int_equal(x.y1.len, x.y2.len);
    assert_memory_equal(x.y1.data, x.y2.data, x.y1.len);
    ef_buf d1, d2;
    ef_buf_init(&d1);
    ef_buf_init(&d2);
    uint64_t v1, v2;
    assert_ok(ef_store_snapshot_doc(q->s, B("prod"), NULL, &d1, &v1, &err), err);
    assert_ok(ef_store_snapshot_doc(r->s, B("prod"), NULL, &d2, &v2, &err), err);
    assert_int_equal(v1, v2);
    assert_int_equal(d1.len, d2.len);
    assert_memory_equal(d1.data, d2.data, d1.len);
    /* an import checks what it inserts without looking up the flag and rule it just created: a
     * rollout out of range is refused, and nothing changes */
    ef_doc_rule *rr = NULL;
    for (size_t i = 0; i < prod->nflags && !rr; i++)
        if (prod->flags[i].nrules && prod->flags[i].rules[0].ndistributions)
            rr = &prod->flags[i].rules[0];
    assert_non_null(rr);
    rr->distributions[0].rollout = 150;
    uint64_t before, after;
    assert_ok(ef_store_seq(q->s, &before, NULL, &err), err);
    assert_int_equal(ef_store_import(q->s, &x.doc, &o, &err), -1);
    assert_int_equal(err.code, EF_STORE_INVALID);
    if (!strstr(err.message, ": invalid field rollout: must be less than or equal to '100'"))
        fail_msg("%s", err.message); /* prefixed with the distribution's place in the file */
    assert_ok(ef_store_seq(q->s, &after, NULL, &err), err);
    assert_int_equal(before, after);
    /* the triggers are back: a later write is captured as before */
    ef_doc_flag f;
    ef_store_flag_in fin = {.key = B("after"), .name = B("After")};
    assert_ok(ef_store_flag_create(q->s, B("prod"), &fin, &q->a, &f, &err), err);
    collect_free(&k);
    assert_ok(ef_store_changes(q->s, 2, 0, collect_fn, &k, &err), err);
    assert_int_equal(k.n, 1);
    assert_non_null(strstr(k.entries[0], "\"key\":\"after\""));
    collect_free(&k);
    collect_free(&kp);
    ef_buf_free(&d1);
    ef_buf_free(&d2);
    exported_free(&x);
    tstore_free(p);
    tstore_free(q);
    tstore_free(r);
}

/* A store on a file of its own in a fresh directory, opened with o (the backend's own store
 * closed): for what only a SQLite file shows (its WAL, its journal mode). */
static tstore *tstore_file(const char *name, const ef_sqlite_opts *o)
{
    tstore *t = tstore_new(false);
    ef_store_err err;
    ef_store_close(t->s);
    snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
    t->s = ef_sqlite_open(t->path, o, &err);
    if (!t->s) fail_msg("open %s: %s", t->path, err.message);
    return t;
}

/* The WAL header's checkpoint sequence number (bytes 12-15, big-endian): SQLite adds one each
 * time it starts the WAL over, which needs every frame in it copied into the database first. */
static unsigned wal_restarts(const char *db)
{
    char wal[200];
    snprintf(wal, sizeof(wal), "%s-wal", db);
    FILE *f = fopen(wal, "rb");
    unsigned char h[16] = {0};
    size_t got = f ? fread(h, 1, sizeof(h), f) : 0;
    if (f) fclose(f);
    if (got != sizeof(h)) fail_msg("cannot read the header of %s", wal);
    return (unsigned)h[12] << 24 | (unsigned)h[13] << 16 | (unsigned)h[14] << 8 | h[15];
}

/* A follower's WAL checkpoints run on the store's checkpoint thread (sqlite_checkpoint.c), which
 * replaces SQLite's automatic checkpoint on the writer: the WAL must still be copied and started
 * over once it passes 4,000 pages, under a steady stream of writes (where a copy beside the writer
 * never catches up and the thread must hold the writer off for the last frames). Writes of about
 * 30 pages each, back to back, until the restart shows: it must come well before 10,000 pages,
 * where the writer would checkpoint by itself, and the file then stays that size. (A copy that
 * catches up between two slow writes, on a loaded machine, may start it over sooner: as good.) */
static void test_wal_checkpointed_in_background(void **state)
{
    (void)state;
    ef_sqlite_opts o = {.sync_ms = 20}; /* a follower's store, where the thread runs */
    tstore *t = tstore_file("wal.db", &o);
    ef_store_err err;
    size_t dlen = 20000;
    char *desc = malloc(dlen);
    assert_non_null(desc);
    ef_store_flag_in in = {.key = B("big"), .name = B("big"), .type = EF_DOC_VARIANT_FLAG};
    ef_doc_flag f;
    assert_ok(ef_store_flag_create(t->s, NONE, &in, &t->a, &f, &err), err);
    unsigned before = wal_restarts(t->path);
    int i = 0;
    for (; i < 400 && wal_restarts(t->path) == before; i++) {
        memset(desc, 'a' + i % 26, dlen); /* a new value each time: every page is rewritten */
        in.description = (ef_bytes){desc, dlen};
        assert_ok(ef_store_flag_update(t->s, NONE, &in, &t->a, &f, &err), err);
        ef_arena_reset(&t->a);
    }
    free(desc);
    if (i == 400) fail_msg("the WAL was not started over in 400 writes: no checkpoint ran");
    char wal[200];
    snprintf(wal, sizeof(wal), "%s-wal", t->path);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    /* frames of 4 KiB pages, each with a 24-byte header */
    if (st.st_size > 9000 * (4096 + 24))
        fail_msg("the WAL grew to %lld bytes before it was started over (%d writes)",
                 (long long)st.st_size, i);
    tstore_free(t);
}

/* A declarative document of n flags with a variant and a rule each, parsed into doc (nodes in a,
 * text in *yml, which the caller frees). */
static void many_flags_doc(size_t n, ef_arena *a, ef_doc *doc, char **yml)
{
    ef_buf b;
    ef_buf_init(&b);
    ef_buf_puts(&b, "namespace: default\nsegments:\n- key: beta\n  name: Beta\n  match_type: ANY_MATCH_TYPE\n"
                    "flags:\n");
    for (size_t i = 0; i < n; i++)
        ef_buf_printf(&b,
                      "- key: flag-%zu\n  name: Flag %zu\n  type: VARIANT_FLAG_TYPE\n  enabled: true\n"
                      "  variants:\n  - key: on\n  rules:\n  - segment: beta\n"
                      "    distributions:\n    - variant: on\n      rollout: 100\n",
                      i, i);
    assert_true(ef_buf_ok(&b));
    ef_decl_error derr;
    if (ef_decl_parse("many.yml", b.data, b.len, a, doc, &derr) != 0)
        fail_msg("many.yml:%u: %s", derr.line, derr.message);
    *yml = b.data;
}

/* The file's journal mode as another connection reads it. */
static void journal_mode_is(const char *path, const char *want)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), want);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static long long file_size(const char *path, const char *suffix)
{
    char p[200];
    snprintf(p, sizeof(p), "%s%s", path, suffix);
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : -1;
}

/* A bulk import writes its pages once, into the database file, under a rollback journal
 * (sqlite_doc.c import_journal_begin), instead of into the WAL and again into the file: after
 * importing 2,000 flags (~2,000 pages) the WAL holds none of them (in WAL mode it held them all,
 * some 8 MB), the file is in WAL mode again, and writes after it are logged and readable. With
 * another connection on the file SQLite keeps WAL mode, and the import runs there, as before. */
static void test_import_bypasses_the_wal(void **state)
{
    (void)state;
    ef_sqlite_opts o = {0};
    tstore *t = tstore_file("import.db", &o);
    ef_store_err err;
    ef_doc doc;
    char *yml;
    many_flags_doc(2000, &t->a, &doc, &yml);
    assert_ok(ef_store_import(t->s, &doc, &(ef_store_import_opts){0}, &err), err);
    journal_mode_is(t->path, "wal");
    long long wal = file_size(t->path, "-wal"), file = file_size(t->path, "");
    if (wal > 256 * 1024 || file < 4 * 1024 * 1024)
        fail_msg("after the import the WAL has %lld bytes and the file %lld: the pages went "
                 "through the WAL", wal, file);
    ef_store_flag_in in = {.key = B("after"), .name = B("after"), .type = EF_DOC_BOOLEAN_FLAG};
    ef_doc_flag f;
    assert_ok(ef_store_flag_create(t->s, NONE, &in, &t->a, &f, &err), err);
    uint64_t seq;
    assert_ok(ef_store_seq(t->s, &seq, NULL, &err), err);
    assert_int_equal(seq, 2);
    assert_ok(ef_store_flag_get(t->s, NONE, B("flag-1999"), &t->a, &f, &err), err);
    assert_true(file_size(t->path, "-wal") > 0); /* the write after it went to the WAL */

    /* A replacing import beside a reader: WAL mode is kept, and the import is whole. */
    sqlite3 *reader = NULL;
    assert_int_equal(sqlite3_open_v2(t->path, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(reader, "SELECT count(*) FROM flags", NULL, NULL, NULL), SQLITE_OK);
    assert_ok(ef_store_import(t->s, &doc, &(ef_store_import_opts){.drop = true}, &err), err);
    journal_mode_is(t->path, "wal");
    if (file_size(t->path, "-wal") < 4 * 1024 * 1024)
        fail_msg("beside a reader the import must run in WAL mode (WAL %lld bytes)",
                 file_size(t->path, "-wal"));
    sqlite3_close(reader);
    assert_int_equal(ef_store_flag_get(t->s, NONE, B("after"), &t->a, &f, &err), -1);
    assert_ok(ef_store_flag_get(t->s, NONE, B("flag-0"), &t->a, &f, &err), err);
    free(yml);
    tstore_free(t);
}

/* A reader (`edgeflag export`) that opens while an import holds the file in rollback-journal
 * mode must read, not fail: it leaves the journal mode alone, since setting WAL mode needs the
 * file to itself and SQLite refuses that at once, with "database is locked", while a writer holds
 * its reserved lock. A raw connection stands in for the import (the store's writer is a mutex
 * away from this thread). */
static void test_reader_opens_beside_an_import(void **state)
{
    (void)state;
    ef_sqlite_opts o = {0};
    tstore *t = tstore_file("reader.db", &o);
    ef_store_err err;
    ef_store_flag_in in = {.key = B("before"), .name = B("before"), .type = EF_DOC_BOOLEAN_FLAG};
    ef_doc_flag f;
    assert_ok(ef_store_flag_create(t->s, NONE, &in, &t->a, &f, &err), err);
    ef_store_close(t->s);
    t->s = NULL;
    sqlite3 *w = NULL;
    assert_int_equal(sqlite3_open_v2(t->path, &w, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w, "PRAGMA journal_mode=TRUNCATE; BEGIN IMMEDIATE;"
                                     " DELETE FROM flags;", NULL, NULL, NULL), SQLITE_OK);
    ef_sqlite_opts ro = {.no_lock = true, .busy_timeout_ms = 200};
    ef_store *r = ef_sqlite_open(t->path, &ro, &err);
    if (!r) fail_msg("a reader beside a rollback-journal writer: %s", err.message);
    assert_ok(ef_store_flag_get(r, NONE, B("before"), &t->a, &f, &err), err);
    ef_store_close(r);
    assert_int_equal(sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(w);
    t->s = ef_sqlite_open(t->path, &o, &err); /* a writer's open: WAL mode again */
    if (!t->s) fail_msg("reopen: %s", err.message);
    journal_mode_is(t->path, "wal");
    tstore_free(t);
}

/* The import's entry writes a whole REAL itself (sqlite_capture.c): the same text as SQLite's
 * json_quote(), which the capture triggers use, for every value it takes; other values it leaves
 * to SQLite. */
static void test_real_json_as_sqlite_writes_it(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT json_quote(?1)", -1, &q, NULL), SQLITE_OK);
    double vals[4200];
    size_t n = 0;
    for (int i = -2000; i <= 2000; i++) vals[n++] = i;
    const double edge[] = {-0.0, 0.5, -0.5, 33.3, 99.99, 1e15 - 1, -(1e15 - 1), 1e15, -1e15, 4e18,
                           1e300, 1e-300, 123456789012345.0, 12345678901234.5, 9007199254740993.0};
    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) vals[n++] = edge[i];
    size_t fast = 0;
    for (size_t i = 0; i < n; i++) {
        char d[24];
        size_t len = sq_real_whole_json(vals[i], d);
        if (!len) continue;
        fast++;
        sqlite3_reset(q);
        sqlite3_bind_double(q, 1, vals[i]);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        const char *want = (const char *)sqlite3_column_text(q, 0);
        if (strlen(want) != len || memcmp(want, d, len) != 0)
            fail_msg("%.17g: \"%.*s\", SQLite writes \"%s\"", vals[i], (int)len, d, want);
    }
    assert_int_equal(fast, 4001 + 4); /* the integers, -0.0 and +-(1e15 - 1), 123456789012345 */
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static int64_t capture_triggers(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type ="
                                            " 'trigger' AND name LIKE 'ef_cap_%'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static ef_store *open_follower(const char *path, bool follower)
{
    ef_sqlite_opts o = {.sync_ms = 20, .follower = follower};
    ef_store_err err;
    ef_store *s = ef_sqlite_open(path, &o, &err);
    if (!s) fail_msg("open %s: %s", path, err.message);
    return s;
}

/* f starts from p's dump; then p is populated, and its entries since the dump are collected into
 * k for f to apply. Returns the dump's seq. */
static uint64_t follow_populate(tstore *p, ef_store *f, collect *k)
{
    ef_store_err err;
    ef_buf dump;
    ef_buf_init(&dump);
    uint64_t dseq;
    assert_ok(ef_store_dump(p->s, &dump, &dseq, &err), err);
    assert_ok(ef_store_load_dump(f, dump.data, dump.len, &err), err);
    ef_buf_free(&dump);
    populate(p->s, &p->a);
    assert_ok(ef_store_changes(p->s, dseq, 0, collect_fn, k, &err), err);
    return dseq;
}

/* Every operation ends with its statements reset (reset_all, which resets what sq_stmt handed
 * out since): a statement left stepped holds a read transaction that pins the WAL. */
static void assert_no_busy(ef_store *st)
{
    sq *q = st->h;
    pthread_mutex_lock(&q->mu);
    for (sqlite3_stmt *x = sqlite3_next_stmt(q->db, NULL); x; x = sqlite3_next_stmt(q->db, x))
        if (sqlite3_stmt_busy(x)) fail_msg("left running: %s", sqlite3_sql(x));
    pthread_mutex_unlock(&q->mu);
}

/* A follower's store (serve --upstream) has no capture triggers (sqlite_capture.c): it applies
 * what its upstream logged and ends with the same state, and refuses a write of its own, which
 * nothing would capture. The same file opened as a primary's has them back and logs its writes;
 * opened as a follower's again, it has none. */
static void test_follower_store_without_capture(void **state)
{
    (void)state;
    tstore *p = tstore_new(false);
    ef_store_err err;
    char path[200];
    snprintf(path, sizeof(path), "%s/follower.db", p->dir);
    ef_store *f = open_follower(path, true);
    assert_int_equal(capture_triggers(path), 0);
    /* the follower starts from the primary's dump, then applies its entries */
    collect k = {0};
    (void)follow_populate(p, f, &k);
    assert_true(k.n > 5);
    for (size_t i = 0; i < k.n; i++) {
        assert_ok(ef_store_apply_changes(f, k.entries[i], strlen(k.entries[i]), &err), err);
        assert_no_busy(f);
    }
    ef_buf y1, y2;
    ef_buf_init(&y1);
    ef_buf_init(&y2);
    export_yaml(p->s, &y1);
    export_yaml(f, &y2);
    assert_int_equal(y1.len, y2.len);
    assert_memory_equal(y1.data, y2.data, y1.len);
    assert_no_busy(f);
    if (!tstore_libsql() && !tstore_pg() && !tstore_mysql()) assert_no_busy(p->s);
    uint64_t before, after;
    assert_ok(ef_store_seq(f, &before, NULL, &err), err);
    ef_doc_flag fl;
    ef_store_flag_in in = {.key = B("own"), .name = B("Own")};
    assert_store_err(ef_store_flag_create(f, B("prod"), &in, &p->a, &fl, &err), err,
                     EF_STORE_INTERNAL, "this store follows an upstream and takes no writes of its own");
    assert_ok(ef_store_seq(f, &after, NULL, &err), err);
    assert_int_equal(before, after);
    ef_buf_clear(&y2);
    export_yaml(f, &y2);
    assert_memory_equal(y1.data, y2.data, y1.len); /* the refused write left nothing */
    ef_store_close(f);
    /* a reader beside it (edgeflag export) leaves the file as it is */
    ef_sqlite_opts ro = {.no_lock = true};
    ef_store *reader = ef_sqlite_open(path, &ro, &err);
    if (!reader) fail_msg("open as a reader: %s", err.message);
    assert_int_equal(capture_triggers(path), 0);
    ef_store_close(reader);
    /* the same file as a primary's: triggers first, then its writes are logged with their rows */
    f = open_follower(path, false);
    assert_true(capture_triggers(path) > 0);
    assert_ok(ef_store_flag_create(f, B("prod"), &in, &p->a, &fl, &err), err);
    collect kf = {0};
    assert_ok(ef_store_changes(f, after, 0, collect_fn, &kf, &err), err);
    assert_int_equal(kf.n, 1);
    assert_non_null(strstr(kf.entries[0], "\"table\":\"flags\""));
    assert_non_null(strstr(kf.entries[0], "\"key\":\"own\""));
    ef_store_close(f);
    f = open_follower(path, true);
    assert_int_equal(capture_triggers(path), 0);
    ef_store_close(f);
    collect_free(&kf);
    collect_free(&k);
    ef_buf_free(&y1);
    ef_buf_free(&y2);
    tstore_free(p);
}

/* The version of ns its registry serves (0: none). */
static uint64_t served_version(ef_registry *reg, const char *ns)
{
    ef_registry_read_lock(reg);
    const ef_snapshot *snap = ef_registry_get(reg, B(ns));
    uint64_t v = snap ? snap->version : 0;
    ef_registry_read_unlock(reg);
    return v;
}

static int refuse_commit(void *ctx)
{
    return *(int *)ctx; /* non-zero turns the COMMIT into a ROLLBACK */
}

/* A replica's store holds applied entries in one open transaction, each entry a savepoint, and
 * commits them in batches (sqlite_persist.c). An entry that fails part-way is undone alone: the
 * batch keeps the entries before it. A batch whose COMMIT fails is gone from the file although it
 * was published: the store goes back to the file's seq, the registry keeps serving the versions it
 * served (never lower) while the same entries are applied again, and the state after them equals
 * the upstream's, published again from there. */
static void test_follower_batch_undo_and_lost_batch(void **state)
{
    (void)state;
    tstore *p = tstore_new(false);
    ef_store_err err;
    char path[200];
    snprintf(path, sizeof(path), "%s/batched.db", p->dir);
    ef_registry *reg = ef_registry_new();
    /* a batch that stays open until something commits it: the thread waits ten minutes */
    ef_sqlite_opts o = {.sync_ms = 600000, .follower = true, .registry = reg};
    ef_store *f = ef_sqlite_open(path, &o, &err);
    if (!f) fail_msg("open: %s", err.message);
    sq *fs = f->h;
    collect k = {0};
    uint64_t seq, dseq = follow_populate(p, f, &k);
    assert_true(k.n > 6);
    size_t half = k.n / 2;
    for (size_t i = 0; i < half; i++)
        assert_ok(ef_store_apply_changes(f, k.entries[i], strlen(k.entries[i]), &err), err);
    assert_true(fs->batch_open);

    /* the next entry with a valid first change and a broken second one: undone alone */
    const char *e = k.entries[half];
    char *bad = malloc(strlen(e) + 64);
    assert_non_null(bad);
    const char *end = strrchr(e, ']'); /* the end of "changes" */
    assert_non_null(end);
    sprintf(bad, "%.*s,{\"op\":\"upsert\",\"table\":\"no_such_table\",\"row\":{}}%s",
            (int)(end - e), e, end);
    assert_int_not_equal(ef_store_apply_changes(f, bad, strlen(bad), &err), 0);
    free(bad);
    assert_ok(ef_store_seq(f, &seq, NULL, &err), err);
    assert_int_equal(seq, k.seqs[half - 1]);
    assert_true(fs->batch_open); /* the entries before it are still held */
    assert_ok(ef_store_apply_changes(f, e, strlen(e), &err), err);
    uint64_t served = served_version(reg, "prod");
    assert_true(served > 0);

    /* the batch's COMMIT refused: everything since the dump is gone from the file */
    int refuse = 1;
    sqlite3_commit_hook(fs->db, refuse_commit, &refuse);
    pthread_mutex_lock(&fs->mu);
    int rc = sq_batch_commit(fs, &err);
    pthread_mutex_unlock(&fs->mu);
    assert_store_err(rc, err, EF_STORE_UNAVAILABLE,
                     "the entries applied since the last batch could not be written to the database"
                     " file (constraint failed); they are applied again from the upstream");
    refuse = 0;
    assert_ok(ef_store_seq(f, &seq, NULL, &err), err);
    assert_int_equal(seq, dseq);
    ef_store_batches b;
    ef_store_get_batches(f, &b); /* what /metrics shows */
    assert_int_equal(b.lost, 1);
    assert_int_equal(b.commits, 0);
    assert_int_equal(b.applied_seq, dseq); /* back to what the file holds */
    assert_int_equal(served_version(reg, "prod"), served); /* never lower */
    /* the follower's next entry does not follow the file: it resumes from the file's seq */
    assert_int_not_equal(ef_store_apply_changes(f, k.entries[half + 1], strlen(k.entries[half + 1]), &err), 0);
    for (size_t i = 0; i < k.n; i++) {
        assert_ok(ef_store_apply_changes(f, k.entries[i], strlen(k.entries[i]), &err), err);
        uint64_t v = served_version(reg, "prod");
        if (v < served) fail_msg("entry %zu applied again: version %llu served after %llu", i,
                                 (unsigned long long)v, (unsigned long long)served);
        served = v;
    }
    uint64_t want;
    assert_ok(ef_store_ns_version(p->s, B("prod"), &want, &err), err);
    assert_int_equal(served, want);
    assert_same_export(p->s, f);
    /* and what is published is what the file holds: a fresh load compiles the same snapshot */
    ef_buf d1, d2;
    ef_buf_init(&d1);
    ef_buf_init(&d2);
    uint64_t v1, v2;
    ef_snapdoc_opts so = {0};
    assert_ok(ef_store_snapshot_doc(f, B("prod"), &so, &d1, &v1, &err), err);
    ef_store_close(f);
    ef_registry *reg2 = ef_registry_new();
    o.registry = reg2;
    f = ef_sqlite_open(path, &o, &err); /* closed cleanly: the batch was written */
    if (!f) fail_msg("reopen: %s", err.message);
    assert_ok(ef_store_seq(f, &seq, NULL, &err), err);
    assert_int_equal(seq, k.seqs[k.n - 1]);
    assert_ok(ef_store_snapshot_doc(f, B("prod"), &so, &d2, &v2, &err), err);
    assert_int_equal(v1, v2);
    assert_int_equal(d1.len, d2.len);
    assert_memory_equal(d1.data, d2.data, d1.len);
    assert_int_equal(served_version(reg2, "prod"), want);
    ef_store_close(f);
    ef_registry_free(reg2);
    ef_registry_free(reg);
    ef_buf_free(&d1);
    ef_buf_free(&d2);
    collect_free(&k);
    tstore_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_versions_and_cascade),
        cmocka_unit_test(test_attribution_and_old_rows),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_dump_load_apply),
        cmocka_unit_test(test_dump_with_a_broken_reference_is_refused),
        cmocka_unit_test(test_nonfinite_number_refused),
        cmocka_unit_test(test_dump_announced_when_whole),
        cmocka_unit_test(test_import_export_roundtrip),
        cmocka_unit_test(test_import_entry_replicates),
        cmocka_unit_test(test_real_json_as_sqlite_writes_it),
        cmocka_unit_test(test_follower_store_without_capture),
        cmocka_unit_test(test_follower_batch_undo_and_lost_batch),
        cmocka_unit_test(test_wal_checkpointed_in_background),
        cmocka_unit_test(test_import_bypasses_the_wal),
        cmocka_unit_test(test_reader_opens_beside_an_import),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
