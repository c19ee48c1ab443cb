/*
 * test_store_history.c - regression tests of issue 19 ("Hardening") for the store and its
 * history: dumps that fail instead of coming out partial (item 6), writes the compiler would refuse
 * being refused before the commit (item 8), one process per database file (item 4) and history
 * identity (item 5). SQLite backend only: the faults are injected into the local file.
 *
 * A test here must never pass by skipping: every check runs on every build.
 */
#include <sqlite3.h>

#include "eval/eval.h"
#include "test_store_helper.h"

/* Runs SQL on the store's file through a connection of its own (fault injection). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) fail_msg("open %s", path);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void flag_create(ef_store *s, ef_arena *a, const char *ns, const char *key)
{
    ef_store_err err;
    ef_doc_flag f;
    ef_store_flag_in in = {.key = B(key), .name = B(key), .type = EF_DOC_BOOLEAN_FLAG,
                           .enabled = true};
    assert_ok(ef_store_flag_create(s, B(ns), &in, a, &f, &err), err);
}

static uint64_t store_seq(ef_store *s)
{
    ef_store_err err;
    uint64_t seq, first;
    assert_ok(ef_store_seq(s, &seq, &first, &err), err);
    return seq;
}

/* Item 6: a step error in the middle of a table (here a row the JSON functions refuse, as an I/O
 * error or corruption would) used to end that table's loop as if it were the end, and the dump
 * "succeeded" without the rest of the rows. */
static void test_dump_fails_on_step_error(void **state)
{
    (void)state;
    tstore *t = tstore_new_local(true);
    ef_store_err err;
    flag_create(t->s, &t->a, "default", "a");
    flag_create(t->s, &t->a, "default", "b");
    flag_create(t->s, &t->a, "default", "c");
    ef_buf dump;
    ef_buf_init(&dump);
    uint64_t seq = 0;
    assert_ok(ef_store_dump(t->s, &dump, &seq, &err), err);
    assert_int_equal(seq, 3);
    assert_non_null(strstr(dump.data, "\"counts\":{"));

    /* a BLOB in flag b: json_object() fails on that row, mid-table */
    raw_exec(t->path, "DROP TRIGGER ef_cap_flags_1;"
                      "UPDATE flags SET metadata = x'00ff' WHERE key = 'b';");
    ef_buf_clear(&dump);
    int rc = ef_store_dump(t->s, &dump, &seq, &err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.message, "dump"));
    ef_buf_free(&dump);
    tstore_free(t);
}

/* A primary's store with flags a and b, and a replica's holding only its own flag "mine". */
static void two_stores(tstore **p, tstore **r)
{
    *p = tstore_new_local(true);
    *r = tstore_new_local(true);
    flag_create((*p)->s, &(*p)->a, "default", "a");
    flag_create((*p)->s, &(*p)->a, "default", "b");
    flag_create((*r)->s, &(*r)->a, "default", "mine");
}

/* Item 6, the loading side: a dump whose tables hold fewer rows than it announces is refused and
 * the replica keeps its whole state. */
static void test_partial_dump_refused(void **state)
{
    (void)state;
    tstore *p, *r;
    two_stores(&p, &r);
    ef_store_err err;
    ef_buf dump;
    ef_buf_init(&dump);
    assert_ok(ef_store_dump(p->s, &dump, NULL, &err), err);
    ef_buf_putc(&dump, '\0');
    /* drop flag b's row from the text, as a truncated producer would */
    char *flags = strstr(dump.data, "\"flags\":[");
    assert_non_null(flags);
    char *second = strstr(flags, "},{");
    assert_non_null(second);
    char *end = strchr(second + 3, '}');
    assert_non_null(end);
    memmove(second + 1, end + 1, strlen(end + 1) + 1);
    assert_store_err(ef_store_load_dump(r->s, dump.data, strlen(dump.data), &err), err,
                     EF_STORE_INVALID,
                     "dump is incomplete: table flags has 1 rows, the dump announced 2");
    ef_doc_flag f;
    assert_ok(ef_store_flag_get(r->s, NONE, B("mine"), &r->a, &f, &err), err);
    ef_buf_free(&dump);
    tstore_free(p);
    tstore_free(r);
}

static int last_entry_fn(void *ctx, const ef_store_change *c)
{
    ef_buf *b = ctx;
    ef_buf_append(b, c->entry.p, c->entry.n);
    return 0;
}

/* A dump carries the entry at its seq ("last"): the loading store keeps it verbatim as its log's
 * only entry, so a replica whose position came from a dump can show which entry it holds there
 * (the stream's at=). A "last" that is not an entry at the dump's seq is refused and the replica
 * keeps its whole state. */
static void test_dump_last_entry(void **state)
{
    (void)state;
    tstore *p, *r;
    two_stores(&p, &r);
    ef_store_err err;
    uint64_t seq, first;
    assert_ok(ef_store_seq(p->s, &seq, NULL, &err), err);
    ef_buf want, got, dump;
    ef_buf_init(&want);
    ef_buf_init(&got);
    ef_buf_init(&dump);
    assert_ok(ef_store_changes(p->s, seq - 1, 1, last_entry_fn, &want, &err), err);
    assert_ok(ef_store_dump(p->s, &dump, NULL, &err), err);
    ef_buf_putc(&dump, '\0');
    assert_non_null(strstr(dump.data, "\"last\":{\"time\":"));

    /* refused, state kept: its seq is another, it is no object, it is not text */
    static const struct { const char *from, *to, *msg; } bad[] = {
        {"\"entry\":\"{\\\"seq\\\":", "\"entry\":\"{\\\"seq\\\":9", "not a change-log entry at the dump's seq"},
        {"\"entry\":\"{", "\"entry\":\"[{", "not a change-log entry at the dump's seq"},
        {"\"entry\":\"", "\"entry\":7,\"x\":\"", "dump's last is not"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ef_buf b;
        ef_buf_init(&b);
        char *at = strstr(dump.data, bad[i].from);
        assert_non_null(at);
        ef_buf_append(&b, dump.data, (size_t)(at - dump.data));
        ef_buf_puts(&b, bad[i].to);
        ef_buf_puts(&b, at + strlen(bad[i].from));
        assert_int_equal(ef_store_load_dump(r->s, b.data, b.len, &err), -1);
        assert_int_equal(err.code, EF_STORE_INVALID);
        if (!strstr(err.message, bad[i].msg)) fail_msg("case %zu: %s", i, err.message);
        ef_doc_flag f;
        assert_ok(ef_store_flag_get(r->s, NONE, B("mine"), &r->a, &f, &err), err);
        ef_buf_free(&b);
    }

    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len - 1, &err), err);
    uint64_t rseq;
    assert_ok(ef_store_seq(r->s, &rseq, &first, &err), err);
    assert_int_equal(rseq, seq);
    assert_int_equal(first, seq); /* the log holds the dump's entry, and only it */
    assert_ok(ef_store_changes(r->s, seq - 1, 1, last_entry_fn, &got, &err), err);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len); /* verbatim: the same fingerprint */
    /* and the replica's own dump passes it on */
    ef_buf again;
    ef_buf_init(&again);
    assert_ok(ef_store_dump(r->s, &again, NULL, &err), err);
    ef_buf_putc(&again, '\0');
    char *l1 = strstr(dump.data, "\"last\":"), *l2 = strstr(again.data, "\"last\":");
    assert_non_null(l2);
    assert_int_equal(strstr(l1, ",\"versions\"") - l1, strstr(l2, ",\"versions\"") - l2);
    assert_memory_equal(l1, l2, (size_t)(strstr(l1, ",\"versions\"") - l1));
    ef_buf_free(&again);
    ef_buf_free(&want);
    ef_buf_free(&got);
    ef_buf_free(&dump);
    tstore_free(p);
    tstore_free(r);
}

/* 257 segments and a flag in one import (one transaction), then the flag's rules. */
static void import_segments(ef_store *s, ef_arena *a, int n)
{
    ef_buf y;
    ef_buf_init(&y);
    ef_buf_puts(&y, "version: \"1.2\"\nnamespace: default\nflags:\n- key: big\n  name: big\n"
                    "  type: VARIANT_FLAG_TYPE\n  enabled: true\nsegments:\n");
    for (int i = 0; i < n; i++)
        ef_buf_printf(&y, "- key: s%d\n  name: s%d\n  match_type: ANY_MATCH_TYPE\n", i, i);
    ef_doc doc;
    ef_decl_error derr;
    if (ef_decl_parse("segs.yml", y.data, y.len, a, &doc, &derr) != 0)
        fail_msg("parse: %s", derr.message);
    ef_store_err err;
    ef_store_import_opts o = {0};
    assert_ok(ef_store_import(s, &doc, &o, &err), err);
    ef_buf_free(&y);
}

/* Item 8: a rule or rollout over more than EF_MAX_RULE_SEGMENTS distinct segments was committed,
 * then refused by the compiler: the client got a 500 after the commit and no later write to the
 * namespace reached evaluation. It is now a 400 before anything is written. */
static void test_too_many_segments_refused_before_commit(void **state)
{
    (void)state;
    tstore *t = tstore_new_local(true);
    ef_store_err err;
    const int n = EF_MAX_RULE_SEGMENTS + 1;
    import_segments(t->s, &t->a, n);
    uint64_t before = store_seq(t->s);
    ef_bytes *keys = ef_arena_alloc(&t->a, (size_t)n * sizeof(*keys));
    for (int i = 0; i < n; i++) {
        char k[16];
        snprintf(k, sizeof(k), "s%d", i);
        keys[i] = (ef_bytes){ef_arena_memdup(&t->a, k, strlen(k)), strlen(k)};
    }
    char want[128];
    snprintf(want, sizeof(want), "invalid field segmentKeys: at most %d distinct segments, got %d",
             EF_MAX_RULE_SEGMENTS, n);
    ef_store_rule r;
    ef_store_rule_in rin = {.segment_keys = keys, .nsegment_keys = (size_t)n, .rank = 1,
                            .op = EF_DOC_OP_AND};
    assert_store_err(ef_store_rule_create(t->s, NONE, B("big"), &rin, &t->a, &r, &err), err,
                     EF_STORE_INVALID, want);
    ef_store_rollout ro;
    ef_store_rollout_in roin = {.rank = 1, .type = EF_DOC_ROLLOUT_SEGMENT, .segment_keys = keys,
                                .nsegment_keys = (size_t)n, .value = true};
    assert_store_err(ef_store_rollout_create(t->s, NONE, B("big"), &roin, &t->a, &ro, &err), err,
                     EF_STORE_INVALID, want);
    /* exactly the limit is fine */
    rin.nsegment_keys = EF_MAX_RULE_SEGMENTS;
    assert_ok(ef_store_rule_create(t->s, NONE, B("big"), &rin, &t->a, &r, &err), err);
    assert_int_equal(store_seq(t->s), before + 1);
    /* growing it past the limit by an update is refused too, and changes nothing */
    rin.nsegment_keys = (size_t)n;
    assert_store_err(ef_store_rule_update(t->s, NONE, B("big"), r.rule.meta.id, &rin, &t->a, &r,
                                          &err),
                     err, EF_STORE_INVALID, want);
    assert_int_equal(store_seq(t->s), before + 1);
    /* and a later flag in that namespace reaches evaluation */
    flag_create(t->s, &t->a, "default", "later");
    ef_registry_read_lock(t->reg);
    const ef_snapshot *snap = ef_registry_get(t->reg, B("default"));
    assert_non_null(snap);
    assert_non_null(ef_snapshot_find_flag(snap, B("later")));
    assert_int_equal(ef_snapshot_version(snap), before + 2);
    ef_registry_read_unlock(t->reg);
    tstore_free(t);
}

/* Item 8 on a replica: an entry whose result the compiler refuses (a primary without the check,
 * or a hostile upstream) is refused whole, so the replica keeps a state it evaluates instead of
 * rows its snapshots no longer follow; the next good entry at that position applies. */
static void test_replica_refuses_entry_that_cannot_compile(void **state)
{
    (void)state;
    tstore *p = tstore_new_local(false);
    tstore *r = tstore_new_local(true);
    ef_store_err err;
    const int n = EF_MAX_RULE_SEGMENTS + 1;
    import_segments(p->s, &p->a, n);
    ef_buf dump;
    ef_buf_init(&dump);
    assert_ok(ef_store_dump(p->s, &dump, NULL, &err), err);
    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len, &err), err);
    uint64_t at = store_seq(r->s);
    ef_buf e;
    ef_buf_init(&e);
    for (int nseg = n; nseg >= 1; nseg -= n - 1) {
        ef_buf_clear(&e);
        ef_buf_printf(&e, "{\"seq\":%llu,\"time\":1,\"namespaces\":[{\"key\":\"default\","
                          "\"version\":9}],\"changes\":[{\"table\":\"rules\",\"op\":\"upsert\","
                          "\"pk\":{\"id\":\"r1\"},\"row\":{\"id\":\"r1\",\"namespace_key\":"
                          "\"default\",\"flag_key\":\"big\",\"rank\":1,\"segment_operator\":1,"
                          "\"created_at\":1,\"updated_at\":1}}",
                      (unsigned long long)at + 1);
        for (int i = 0; i < nseg; i++)
            ef_buf_printf(&e, ",{\"table\":\"rule_segments\",\"op\":\"upsert\",\"pk\":"
                              "{\"rule_id\":\"r1\",\"segment_key\":\"s%d\"},\"row\":{\"rule_id\":"
                              "\"r1\",\"namespace_key\":\"default\",\"segment_key\":\"s%d\","
                              "\"position\":%d}}",
                          i, i, i);
        ef_buf_puts(&e, "]}");
        int rc = ef_store_apply_changes(r->s, e.data, e.len, &err);
        if (nseg == n) {
            assert_int_equal(rc, -1);
            assert_int_equal(err.code, EF_STORE_INVALID);
            assert_non_null(strstr(err.message, "cannot be evaluated"));
            assert_int_equal(store_seq(r->s), at);
        } else {
            assert_ok(rc, err);
            assert_int_equal(store_seq(r->s), at + 1);
        }
    }
    ef_registry_read_lock(r->reg);
    const ef_snapshot *snap = ef_registry_get(r->reg, B("default"));
    assert_non_null(snap);
    assert_non_null(ef_snapshot_find_flag(snap, B("big")));
    assert_int_equal(ef_snapshot_version(snap), at + 1);
    ef_registry_read_unlock(r->reg);
    ef_buf_free(&e);
    ef_buf_free(&dump);
    tstore_free(p);
    tstore_free(r);
}

/* Item 4: a second store on a file another one holds is refused with the holder's pid (flock is
 * per open file, so a second open in this process conflicts like another process would); a
 * reader (export) may still open it, and the file is free again once the holder closes. */
static void test_second_writer_refused(void **state)
{
    (void)state;
    tstore *t = tstore_new_local(true);
    ef_store_err err;
    flag_create(t->s, &t->a, "default", "a");
    ef_sqlite_opts o = {0};
    ef_store *again = ef_sqlite_open(t->path, &o, &err);
    assert_null(again);
    assert_int_equal(err.code, EF_STORE_UNAVAILABLE);
    char want[300];
    snprintf(want, sizeof(want), "database %s is in use by another process (pid %ld, lock %s.lock)",
             t->path, (long)getpid(), t->path);
    if (!strstr(err.message, want)) fail_msg("got \"%s\"", err.message);
    /* as a file: URI too */
    char uri[200];
    snprintf(uri, sizeof(uri), "file:%s?cache=private", t->path);
    assert_null(ef_sqlite_open(uri, &o, &err));
    /* a reader is let in */
    ef_sqlite_opts ro = {.no_lock = true};
    ef_store *reader = ef_sqlite_open(t->path, &ro, &err);
    assert_non_null(reader);
    ef_store_close(reader);
    /* a libSQL node whose local cache is that file is refused the same way, before it talks to
     * its server (two nodes started in one directory used to share the default cache file) */
    ef_store_open_opts lo = {.cache_path = t->path, .timeout_ms = 200};
    assert_null(ef_store_open("http://127.0.0.1:9/", &lo, &err));
    if (!strstr(err.message, "is in use by another process")) fail_msg("libsql: \"%s\"", err.message);
    /* once the holder is gone the file opens again */
    ef_store_close(t->s);
    t->s = ef_sqlite_open(t->path, &o, &err);
    if (!t->s) fail_msg("reopen: %s", err.message);
    tstore_free(t);
}

/* Item 5: every database has an identity and every history an id; a dump carries the history and
 * loading it adopts it (the replica's own db_id stays); a database from before schema 3 gets both
 * when it is migrated. */
static void test_identity_and_history(void **state)
{
    (void)state;
    tstore *p = tstore_new_local(true);
    tstore *r = tstore_new_local(true);
    ef_store_err err;
    ef_store_identity ip, ir, ir2;
    assert_ok(ef_store_get_identity(p->s, &ip, &err), err);
    assert_ok(ef_store_get_identity(r->s, &ir, &err), err);
    assert_int_equal(strlen(ip.db_id), 32);
    assert_int_equal(strlen(ip.history), 32);
    assert_string_not_equal(ip.db_id, ir.db_id);
    assert_string_not_equal(ip.history, ir.history);
    flag_create(p->s, &p->a, "default", "a");
    ef_buf dump;
    ef_buf_init(&dump);
    assert_ok(ef_store_dump(p->s, &dump, NULL, &err), err);
    char prefix[80];
    snprintf(prefix, sizeof(prefix), "{\"seq\":1,\"history\":\"%s\",", ip.history);
    assert_memory_equal(dump.data, prefix, strlen(prefix));
    assert_ok(ef_store_load_dump(r->s, dump.data, dump.len, &err), err);
    assert_ok(ef_store_get_identity(r->s, &ir2, &err), err);
    assert_string_equal(ir2.history, ip.history);
    assert_string_equal(ir2.db_id, ir.db_id);
    /* a history that is not hex is refused */
    const char bad[] = "{\"seq\":1,\"history\":\"../x\",\"versions\":{},\"tables\":{}}";
    assert_store_err(ef_store_load_dump(r->s, bad, strlen(bad), &err), err, EF_STORE_INVALID,
                     "dump history is not 1 to 64 hex digits");
    ef_buf_free(&dump);

    /* a schema-2 database (no identity yet) is migrated */
    ef_store_close(p->s);
    raw_exec(p->path, "DROP TABLE ef_identity; DROP TABLE ef_pending;"
                      " CREATE TABLE ef_pending(id INTEGER PRIMARY KEY, tbl TEXT NOT NULL,"
                      " op TEXT NOT NULL, pk TEXT NOT NULL, row TEXT);"
                      " DELETE FROM schema_migrations WHERE version >= 3;");
    ef_sqlite_opts o = {0};
    p->s = ef_sqlite_open(p->path, &o, &err);
    if (!p->s) fail_msg("reopen: %s", err.message);
    ef_store_identity ip2;
    assert_ok(ef_store_get_identity(p->s, &ip2, &err), err);
    assert_int_equal(strlen(ip2.history), 32);
    assert_string_not_equal(ip2.history, ip.history);
    assert_int_equal(store_seq(p->s), 1);
    tstore_free(p);
    tstore_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_fails_on_step_error),
        cmocka_unit_test(test_partial_dump_refused),
        cmocka_unit_test(test_dump_last_entry),
        cmocka_unit_test(test_too_many_segments_refused_before_commit),
        cmocka_unit_test(test_replica_refuses_entry_that_cannot_compile),
        cmocka_unit_test(test_second_writer_refused),
        cmocka_unit_test(test_identity_and_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
