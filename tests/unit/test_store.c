/*
 * test_store.c - the SQLite store's management operations: every entity's create/get/list/
 * update/delete, Flipt's validation messages, cascades, ordering and pagination.
 */
#include "test_store_helper.h"

#include <sqlite3.h>

static ef_doc_flag mkflag(tstore *t, const char *ns, const char *key, ef_doc_flag_type type)
{
    ef_store_err err;
    ef_doc_flag f;
    ef_store_flag_in in = {.key = B(key), .name = B(key), .type = type, .enabled = true};
    assert_ok(ef_store_flag_create(t->s, B(ns), &in, &t->a, &f, &err), err);
    return f;
}

static ef_bytes mkvariant(tstore *t, const char *flag, const char *key)
{
    ef_store_err err;
    ef_doc_variant v;
    ef_store_variant_in in = {.key = B(key), .name = B(key)};
    assert_ok(ef_store_variant_create(t->s, NONE, B(flag), &in, &t->a, &v, &err), err);
    return v.meta.id;
}

static void mksegment(tstore *t, const char *key)
{
    ef_store_err err;
    ef_doc_segment g;
    ef_store_segment_in in = {.key = B(key), .name = B(key), .match_type = EF_DOC_MATCH_ALL};
    assert_ok(ef_store_segment_create(t->s, NONE, &in, &t->a, &g, &err), err);
}

static void test_open_and_migrations(void **state)
{
    (void)state;
    tstore *t = tstore_new(false);
    ef_store_err err;
    ef_doc_namespace ns;
    assert_ok(ef_store_ns_get(t->s, B("default"), &t->a, &ns, &err), err);
    assert_true(ns.protected_);
    assert_bytes(ns.name, "Default");
    ef_store_close(t->s);
    /* reopening runs no migration twice */
    tstore_open_at(t, "sub/dir/edgeflag.db", false);
    ef_store_close(t->s);
    /* a database from a newer edgeflag is refused */
    assert_int_equal(
        tstore_record_exec(t, "sub/dir/edgeflag.db", "INSERT INTO schema_migrations VALUES (99, 0)"),
        0);
    assert_null(tstore_try_open(t, "sub/dir/edgeflag.db", false, false, 0, &err));
    assert_int_equal(err.code, EF_STORE_UNAVAILABLE);
    assert_non_null(strstr(err.message, "newer"));
    /* file: URIs work */
    char uri[200];
    ef_sqlite_opts o = {0};
    snprintf(uri, sizeof(uri), "file:%s/uri.db?mode=rwc", t->dir);
    t->s = ef_sqlite_open(uri, &o, &err);
    assert_non_null(t->s);
    tstore_free(t);
}

static void test_namespaces(void **state)
{
    (void)state;
    tstore *t = tstore_new(true);
    ef_store_err err;
    ef_doc_namespace ns;
    ef_store_ns_in in = {.key = B("team-a"), .name = B("Team A"), .description = B("d")};
    assert_ok(ef_store_ns_create(t->s, &in, &t->a, &ns, &err), err);
    assert_bytes(ns.key, "team-a");
    assert_true(ns.meta.created_ns > 0);
    assert_store_err(ef_store_ns_create(t->s, &in, &t->a, &ns, &err), err, EF_STORE_NOT_UNIQUE,
                     "namespace \"team-a\" is not unique");
    ef_store_ns_in bad = {.key = B("a b"), .name = B("x")};
    assert_store_err(ef_store_ns_create(t->s, &bad, &t->a, &ns, &err), err, EF_STORE_INVALID,
                     "invalid field key: contains invalid characters");
    bad = (ef_store_ns_in){.key = NONE, .name = B("x")};
    assert_store_err(ef_store_ns_create(t->s, &bad, &t->a, &ns, &err), err, EF_STORE_INVALID,
                     "invalid field key: must not be empty");
    bad = (ef_store_ns_in){.key = B("ok"), .name = NONE};
    assert_store_err(ef_store_ns_create(t->s, &bad, &t->a, &ns, &err), err, EF_STORE_INVALID,
                     "invalid field name: must not be empty");
    assert_store_err(ef_store_ns_get(t->s, B("nope"), &t->a, &ns, &err), err, EF_STORE_NOT_FOUND,
                     "namespace \"nope\" not found");
    in.name = B("Renamed");
    assert_ok(ef_store_ns_update(t->s, &in, &t->a, &ns, &err), err);
    assert_bytes(ns.name, "Renamed");
    assert_true(ns.meta.updated_ns > ns.meta.created_ns);
    ef_store_ns_in missing = {.key = B("nope"), .name = B("x")};
    assert_store_err(ef_store_ns_update(t->s, &missing, &t->a, &ns, &err), err,
                     EF_STORE_NOT_FOUND, "namespace \"nope\" not found");
    ef_doc_namespace *list;
    size_t n;
    ef_store_page_out po;
    assert_ok(ef_store_ns_list(t->s, NULL, &t->a, &list, &n, &po, &err), err);
    assert_int_equal(n, 2);
    assert_int_equal(po.total_count, 2);
    assert_bytes(list[0].key, "default");
    /* protected and non-empty namespaces stay */
    assert_store_err(ef_store_ns_delete(t->s, B("default"), &err), err, EF_STORE_INVALID,
                     "namespace \"default\" is protected");
    mkflag(t, "team-a", "f1", EF_DOC_BOOLEAN_FLAG);
    assert_store_err(ef_store_ns_delete(t->s, B("team-a"), &err), err, EF_STORE_INVALID,
                     "namespace \"team-a\" cannot be deleted; flags must be deleted first");
    assert_ok(ef_store_flag_delete(t->s, B("team-a"), B("f1"), &err), err);
    ef_registry_read_lock(t->reg);
    assert_non_null(ef_registry_get(t->reg, B("team-a")));
    ef_registry_read_unlock(t->reg);
    assert_ok(ef_store_ns_delete(t->s, B("team-a"), &err), err);
    assert_store_err(ef_store_ns_get(t->s, B("team-a"), &t->a, &ns, &err), err,
                     EF_STORE_NOT_FOUND, "namespace \"team-a\" not found");
    ef_registry_read_lock(t->reg);
    assert_null(ef_registry_get(t->reg, B("team-a")));
    ef_registry_read_unlock(t->reg);
    /* deleting what is not there succeeds, as in Flipt */
    assert_ok(ef_store_ns_delete(t->s, B("team-a"), &err), err);
    /* force: the namespace goes with its flags and segments (Flipt's force=true), and so does
     * what evaluation sees; a protected namespace stays */
    ef_store_ns_in tb = {.key = B("team-b"), .name = B("B")};
    assert_ok(ef_store_ns_create(t->s, &tb, &t->a, &ns, &err), err);
    mkflag(t, "team-b", "f1", EF_DOC_BOOLEAN_FLAG);
    mkflag(t, "team-b", "f2", EF_DOC_VARIANT_FLAG);
    assert_store_err(ef_store_ns_delete_forced(t->s, B("team-b"), false, &err), err, EF_STORE_INVALID,
                     "namespace \"team-b\" cannot be deleted; flags must be deleted first");
    assert_ok(ef_store_ns_delete_forced(t->s, B("team-b"), true, &err), err);
    assert_store_err(ef_store_ns_get(t->s, B("team-b"), &t->a, &ns, &err), err,
                     EF_STORE_NOT_FOUND, "namespace \"team-b\" not found");
    ef_registry_read_lock(t->reg);
    assert_null(ef_registry_get(t->reg, B("team-b")));
    ef_registry_read_unlock(t->reg);
    assert_store_err(ef_store_ns_delete_forced(t->s, B("default"), true, &err), err, EF_STORE_INVALID,
                     "namespace \"default\" is protected");
    ef_doc_flag f;
    ef_store_flag_in fin = {.key = B("x"), .name = B("x")};
    assert_store_err(ef_store_flag_create(t->s, B("gone"), &fin, &t->a, &f, &err), err,
                     EF_STORE_NOT_FOUND, "namespace \"gone\" not found");
    tstore_free(t);
}

static void test_flags_and_variants(void **state)
{
    (void)state;
    tstore *t = tstore_new(false);
    ef_store_err err;
    ef_doc_flag f;
    ef_store_flag_in in = {.key = B("new-ui,x_1"), .name = B("New UI"), .enabled = true,
                           .metadata = B("{ \"team\" : \"a\" }")};
    assert_ok(ef_store_flag_create(t->s, NONE, &in, &t->a, &f, &err), err);
    assert_bytes(f.metadata, "{\"team\":\"a\"}");
    assert_int_equal(f.type, EF_DOC_VARIANT_FLAG);
    assert_store_err(ef_store_flag_create(t->s, NONE, &in, &t->a, &f, &err), err,
                     EF_STORE_NOT_UNIQUE, "flag \"default/new-ui,x_1\" is not unique");
    ef_store_flag_in bad = {.key = B("a/b"), .name = B("x")};
    assert_store_err(ef_store_flag_create(t->s, NONE, &bad, &t->a, &f, &err), err,
                     EF_STORE_INVALID, "invalid field key: contains invalid characters");
    bad = (ef_store_flag_in){.key = B("m"), .name = B("x"), .metadata = B("[1]")};
    assert_store_err(ef_store_flag_create(t->s, NONE, &bad, &t->a, &f, &err), err,
                     EF_STORE_INVALID, "invalid field metadata: must be a json object");
    assert_store_err(ef_store_flag_get(t->s, NONE, B("nope"), &t->a, &f, &err), err,
                     EF_STORE_NOT_FOUND, "flag \"default/nope\" not found");

    ef_doc_variant v;
    ef_store_variant_in vin = {.key = B("blue"), .name = B("Blue"),
                               .attachment = B("{ \"color\": \"#00f\",\n \"n\": [1, 2] }")};
    assert_ok(ef_store_variant_create(t->s, NONE, B("new-ui,x_1"), &vin, &t->a, &v, &err), err);
    assert_bytes(v.attachment, "{\"color\":\"#00f\",\"n\":[1,2]}");
    assert_int_equal(v.meta.id.n, 36);
    assert_int_equal(v.meta.id.p[14], '7'); /* time-ordered (sq_new_id) */
    assert_store_err(ef_store_variant_create(t->s, NONE, B("new-ui,x_1"), &vin, &t->a, &v, &err),
                     err, EF_STORE_NOT_UNIQUE,
                     "variant \"blue\" is not unique for flag \"default/new-ui,x_1\"");
    ef_store_variant_in bv = {.key = B("x"), .attachment = B("{nope")};
    assert_store_err(ef_store_variant_create(t->s, NONE, B("new-ui,x_1"), &bv, &t->a, &v, &err),
                     err, EF_STORE_INVALID, "invalid field attachment: must be a json string");
    char *big = malloc(10010);
    big[0] = '"';
    memset(big + 1, 'a', 10005);
    big[10006] = '"';
    bv.attachment = (ef_bytes){big, 10007};
    assert_store_err(ef_store_variant_create(t->s, NONE, B("new-ui,x_1"), &bv, &t->a, &v, &err),
                     err, EF_STORE_INVALID, "invalid field attachment: must be less than 10000 KB");
    free(big);
    bv = (ef_store_variant_in){.key = NONE};
    assert_store_err(ef_store_variant_create(t->s, NONE, B("new-ui,x_1"), &bv, &t->a, &v, &err),
                     err, EF_STORE_INVALID, "invalid field key: must not be empty");
    bv.key = B("k");
    assert_store_err(ef_store_variant_create(t->s, NONE, B("ghost"), &bv, &t->a, &v, &err), err,
                     EF_STORE_NOT_FOUND, "flag \"default/ghost\" not found");
    ef_bytes blue = v.meta.id;
    ef_bytes red = mkvariant(t, "new-ui,x_1", "red");
    /* update: rename to a taken key fails, to a free one works */
    ef_store_variant_in ren = {.key = B("blue"), .name = B("R")};
    assert_store_err(ef_store_variant_update(t->s, NONE, B("new-ui,x_1"), red, &ren, &t->a, &v,
                                             &err),
                     err, EF_STORE_NOT_UNIQUE,
                     "variant \"blue\" is not unique for flag \"default/new-ui,x_1\"");
    ren.key = B("crimson");
    assert_ok(ef_store_variant_update(t->s, NONE, B("new-ui,x_1"), red, &ren, &t->a, &v, &err),
              err);
    assert_bytes(v.key, "crimson");
    assert_store_err(ef_store_variant_update(t->s, NONE, B("new-ui,x_1"), B("no-id"), &ren, &t->a,
                                             &v, &err),
                     err, EF_STORE_NOT_FOUND, "variant \"crimson\" not found"); /* Flipt names the key */
    /* default variant */
    in.default_variant_id = blue;
    in.metadata = NONE;
    assert_ok(ef_store_flag_update(t->s, NONE, &in, &t->a, &f, &err), err);
    assert_int_equal(f.nvariants, 2);
    assert_true(f.variants[0].is_default);
    assert_false(f.variants[1].is_default);
    assert_int_equal(f.metadata.n, 0);
    in.default_variant_id = B("not-a-variant");
    assert_store_err(ef_store_flag_update(t->s, NONE, &in, &t->a, &f, &err), err,
                     EF_STORE_INVALID,
                     "variant \"not-a-variant\" not found for flag \"default/new-ui,x_1\"");
    /* deleting the default variant clears the default */
    assert_ok(ef_store_variant_delete(t->s, NONE, B("new-ui,x_1"), blue, &err), err);
    assert_ok(ef_store_flag_get(t->s, NONE, B("new-ui,x_1"), &t->a, &f, &err), err);
    assert_int_equal(f.nvariants, 1);
    assert_false(f.variants[0].is_default);
    ef_store_flag_in upd = {.key = B("ghost"), .name = B("x")};
    assert_store_err(ef_store_flag_update(t->s, NONE, &upd, &t->a, &f, &err), err,
                     EF_STORE_NOT_FOUND, "flag \"default/ghost\" not found");
    upd = (ef_store_flag_in){.key = B("new-ui,x_1"), .name = NONE};
    assert_store_err(ef_store_flag_update(t->s, NONE, &upd, &t->a, &f, &err), err,
                     EF_STORE_INVALID, "invalid field name: must not be empty");
    tstore_free(t);
}

typedef struct ccase {
    ef_doc_ctype type;
    const char *prop, *op, *value;
    const char *want_err;   /* NULL: accepted */
    const char *want_op, *want_value;
} ccase;

static void test_constraints(void **state)
{
    (void)state;
    tstore *t = tstore_new(false);
    mksegment(t, "seg");
    static const ccase cases[] = {
        {EF_DOC_CT_STRING, "plan", "EQ", "pro", NULL, "eq", "pro"},
        {EF_DOC_CT_STRING, "plan", "empty", "ignored", NULL, "empty", ""},
        {EF_DOC_CT_STRING, "plan", "contains", "p", NULL, "contains", "p"},
        {EF_DOC_CT_STRING, "plan", "lt", "1", "constraint operator \"lt\" is not valid for type string", 0, 0},
        {EF_DOC_CT_STRING, "plan", "eq", "", "invalid field value: must not be empty", 0, 0},
        {EF_DOC_CT_STRING, "", "eq", "x", "invalid field property: must not be empty", 0, 0},
        {EF_DOC_CT_STRING, "p", "", "x", "invalid field operator: must not be empty", 0, 0},
        {EF_DOC_CT_STRING, "plan", "isoneof", "[\"a\",\"b\"]", NULL, "isoneof", "[\"a\",\"b\"]"},
        {EF_DOC_CT_STRING, "plan", "isoneof", "[1]", "invalid value provided for property \"plan\" of type string", 0, 0},
        {EF_DOC_CT_NUMBER, "age", "isnotoneof", "[1, 2.5]", NULL, "isnotoneof", "[1, 2.5]"},
        {EF_DOC_CT_NUMBER, "age", "isoneof", "nope", "invalid value provided for property \"age\" of type number", 0, 0},
        {EF_DOC_CT_NUMBER, "age", "gte", "18", NULL, "gte", "18"},
        {EF_DOC_CT_NUMBER, "age", "prefix", "1", "constraint operator \"prefix\" is not valid for type number", 0, 0},
        {EF_DOC_CT_BOOLEAN, "beta", "TRUE", "", NULL, "true", ""},
        {EF_DOC_CT_BOOLEAN, "beta", "eq", "true", "constraint operator \"eq\" is not valid for type boolean", 0, 0},
        {EF_DOC_CT_DATETIME, "at", "gt", "2024-01-02T03:04:05+02:00", NULL, "gt", "2024-01-02T01:04:05Z"},
        {EF_DOC_CT_DATETIME, "at", "lt", "2024-03-01T00:30:00.123-01:00", NULL, "lt", "2024-03-01T01:30:00Z"},
        {EF_DOC_CT_DATETIME, "at", "eq", "2024-02-29", NULL, "eq", "2024-02-29"},
        {EF_DOC_CT_DATETIME, "at", "eq", "2023-02-29", "parsing datetime from \"2023-02-29\"", 0, 0},
        {EF_DOC_CT_DATETIME, "at", "eq", "yesterday", "parsing datetime from \"yesterday\"", 0, 0},
        {EF_DOC_CT_DATETIME, "at", "present", "", NULL, "present", ""},
        {EF_DOC_CT_ENTITY_ID, "entityId", "neq", "u1", NULL, "neq", "u1"},
        {EF_DOC_CT_ENTITY_ID, "user", "eq", "u1", "property is user instead of \"entityId\"", 0, 0},
        {EF_DOC_CT_ENTITY_ID, "entityId", "gt", "u1", "constraint operator \"gt\" is not valid for type entityId", 0, 0},
        {EF_DOC_CT_UNKNOWN, "p", "eq", "x", "invalid constraint type: \"UNKNOWN_COMPARISON_TYPE\"", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const ccase *c = &cases[i];
        ef_store_err err;
        ef_doc_constraint out;
        ef_store_constraint_in in = {.type = c->type, .property = B(c->prop), .op = B(c->op),
                                     .value = B(c->value)};
        if (c->want_err) {
            assert_store_err(ef_store_constraint_create(t->s, NONE, B("seg"), &in, &t->a, &out,
                                                        &err),
                             err, EF_STORE_INVALID, c->want_err);
            continue;
        }
        assert_ok(ef_store_constraint_create(t->s, NONE, B("seg"), &in, &t->a, &out, &err), err);
        assert_bytes(out.op, c->want_op);
        assert_bytes(out.value, c->want_value);
    }
    /* isoneof lists hold at most 100 items */
    char list[1024] = "[";
    for (int i = 0; i < 101; i++) strcat(list, i ? ",1" : "1");
    strcat(list, "]");
    ef_store_err err;
    ef_doc_constraint out;
    ef_store_constraint_in in = {.type = EF_DOC_CT_NUMBER, .property = B("n"), .op = B("isoneof"),
                                 .value = B(list)};
    assert_store_err(ef_store_constraint_create(t->s, NONE, B("seg"), &in, &t->a, &out, &err), err,
                     EF_STORE_INVALID,
                     "too many values provided for property \"n\" of type number (maximum 100)");
    in.value = B("[1]");
    assert_store_err(ef_store_constraint_create(t->s, NONE, B("ghost"), &in, &t->a, &out, &err),
                     err, EF_STORE_NOT_FOUND, "segment \"default/ghost\" not found");
    /* update and delete */
    in = (ef_store_constraint_in){.type = EF_DOC_CT_STRING, .property = B("a"), .op = B("eq"),
                                  .value = B("1")};
    assert_ok(ef_store_constraint_create(t->s, NONE, B("seg"), &in, &t->a, &out, &err), err);
    in.op = B("NEQ");
    ef_bytes id = out.meta.id;
    assert_ok(ef_store_constraint_update(t->s, NONE, B("seg"), id, &in, &t->a, &out, &err), err);
    assert_bytes(out.op, "neq");
    assert_store_err(ef_store_constraint_update(t->s, NONE, B("seg"), B("x"), &in, &t->a, &out,
                                                &err),
                     err, EF_STORE_NOT_FOUND, "constraint \"x\" not found");
    ef_doc_segment g;
    assert_ok(ef_store_segment_get(t->s, NONE, B("seg"), &t->a, &g, &err), err);
    size_t before = g.nconstraints;
    assert_ok(ef_store_constraint_delete(t->s, NONE, B("seg"), id, &err), err);
    assert_ok(ef_store_segment_get(t->s, NONE, B("seg"), &t->a, &g, &err), err);
    assert_int_equal(g.nconstraints, before - 1);
    /* segment validation and update */
    ef_store_segment_in sin = {.key = B("seg"), .name = B("S"), .match_type = EF_DOC_MATCH_ANY};
    assert_store_err(ef_store_segment_create(t->s, NONE, &sin, &t->a, &g, &err), err,
                     EF_STORE_NOT_UNIQUE, "segment \"default/seg\" is not unique");
    assert_ok(ef_store_segment_update(t->s, NONE, &sin, &t->a, &g, &err), err);
    assert_int_equal(g.match_type, EF_DOC_MATCH_ANY);
    sin.key = B("bad key");
    assert_store_err(ef_store_segment_create(t->s, NONE, &sin, &t->a, &g, &err), err,
                     EF_STORE_INVALID, "invalid field key: contains invalid characters");
    tstore_free(t);
}

static void test_rules_distributions_order(void **state)
{
    (void)state;
    tstore *t = tstore_new(true);
    ef_store_err err;
    mkflag(t, "default", "f", EF_DOC_VARIANT_FLAG);
    ef_bytes va = mkvariant(t, "f", "a");
    mksegment(t, "s1");
    mksegment(t, "s2");
    ef_store_rule r1, r2, r3, r;
    ef_bytes keys[] = {B("s1"), B("s2"), B("s1")};
    ef_store_rule_in in = {.segment_keys = keys, .nsegment_keys = 3, .op = EF_DOC_OP_AND, .rank = 1};
    assert_ok(ef_store_rule_create(t->s, NONE, B("f"), &in, &t->a, &r1, &err), err);
    assert_int_equal(r1.rule.nsegments, 2); /* duplicates removed */
    assert_int_equal(r1.rule.op, EF_DOC_OP_AND);
    ef_store_rule_in one = {.segment_key = B("s1"), .op = EF_DOC_OP_AND, .rank = 2};
    assert_ok(ef_store_rule_create(t->s, NONE, B("f"), &one, &t->a, &r2, &err), err);
    assert_int_equal(r2.rule.op, EF_DOC_OP_OR); /* forced with one segment */
    one.rank = 3;
    assert_ok(ef_store_rule_create(t->s, NONE, B("f"), &one, &t->a, &r3, &err), err);
    ef_store_rule_in bad = {.rank = 1};
    assert_store_err(ef_store_rule_create(t->s, NONE, B("f"), &bad, &t->a, &r, &err), err,
                     EF_STORE_INVALID, "invalid field segmentKey or segmentKeys: must not be empty");
    bad = (ef_store_rule_in){.segment_key = B("s1"), .segment_keys = keys, .nsegment_keys = 1, .rank = 1};
    assert_store_err(ef_store_rule_create(t->s, NONE, B("f"), &bad, &t->a, &r, &err), err,
                     EF_STORE_INVALID,
                     "invalid field segmentKey or segmentKeys: only one can be present");
    bad = (ef_store_rule_in){.segment_key = B("s1"), .rank = 0};
    assert_store_err(ef_store_rule_create(t->s, NONE, B("f"), &bad, &t->a, &r, &err), err,
                     EF_STORE_INVALID, "invalid field rank: must be greater than 0");
    bad = (ef_store_rule_in){.segment_key = B("zz"), .rank = 4};
    assert_store_err(ef_store_rule_create(t->s, NONE, B("f"), &bad, &t->a, &r, &err), err,
                     EF_STORE_NOT_FOUND, "flag \"default/f\" or segment \"default/zz\" not found");
    /* distributions */
    ef_doc_distribution d;
    ef_store_distribution_in din = {.variant_id = va, .rollout = 50.5f};
    assert_ok(ef_store_distribution_create(t->s, NONE, B("f"), r1.rule.meta.id, &din, &t->a, &d,
                                           &err),
              err);
    assert_bytes(d.variant_key, "a");
    din.rollout = 100.5f;
    assert_store_err(ef_store_distribution_create(t->s, NONE, B("f"), r1.rule.meta.id, &din,
                                                  &t->a, &d, &err),
                     err, EF_STORE_INVALID,
                     "invalid field rollout: must be less than or equal to '100'");
    din.rollout = -1;
    assert_store_err(ef_store_distribution_create(t->s, NONE, B("f"), r1.rule.meta.id, &din,
                                                  &t->a, &d, &err),
                     err, EF_STORE_INVALID,
                     "invalid field rollout: must be greater than or equal to '0'");
    din.rollout = 10;
    assert_ok(ef_store_distribution_update(t->s, NONE, B("f"), r1.rule.meta.id, d.meta.id, &din,
                                           &t->a, &d, &err),
              err);
    assert_true(d.rollout == 10.0f);
    assert_ok(ef_store_rule_get(t->s, NONE, B("f"), r1.rule.meta.id, &t->a, &r, &err), err);
    assert_int_equal(r.rule.ndistributions, 1);
    /* a segment in use cannot go */
    assert_store_err(ef_store_segment_delete(t->s, NONE, B("s2"), &err), err, EF_STORE_INVALID,
                     "segment \"default/s2\" is in use");
    /* order: 3, 1, 2 */
    ef_bytes ids[] = {r3.rule.meta.id, r1.rule.meta.id, r2.rule.meta.id};
    assert_store_err(ef_store_rule_order(t->s, NONE, B("f"), ids, 1, &err), err, EF_STORE_INVALID,
                     "invalid field ruleIds: must contain atleast 2 elements");
    assert_ok(ef_store_rule_order(t->s, NONE, B("f"), ids, 3, &err), err);
    ef_store_rule *list;
    size_t n;
    ef_store_page_out po;
    assert_ok(ef_store_rule_list(t->s, NONE, B("f"), NULL, &t->a, &list, &n, &po, &err), err);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(ef_bytes_eq(list[i].rule.meta.id, ids[i]));
        assert_int_equal(list[i].rank, (int)i + 1);
    }
    ef_bytes foreign[] = {r3.rule.meta.id, B("nope")};
    assert_store_err(ef_store_rule_order(t->s, NONE, B("f"), foreign, 2, &err), err,
                     EF_STORE_NOT_FOUND, "rule \"default/nope\" not found");
    /* deleting re-ranks the rest 1..N */
    assert_ok(ef_store_rule_delete(t->s, NONE, B("f"), r3.rule.meta.id, &err), err);
    assert_ok(ef_store_rule_list(t->s, NONE, B("f"), NULL, &t->a, &list, &n, &po, &err), err);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].rank, 1);
    assert_int_equal(list[1].rank, 2);
    assert_true(ef_bytes_eq(list[0].rule.meta.id, r1.rule.meta.id));
    /* update replaces the segments */
    ef_store_rule_in up = {.segment_key = B("s2")};
    assert_ok(ef_store_rule_update(t->s, NONE, B("f"), r1.rule.meta.id, &up, &t->a, &r, &err),
              err);
    assert_int_equal(r.rule.nsegments, 1);
    assert_bytes(r.rule.segment_keys[0], "s2");
    assert_int_equal(r.rule.op, EF_DOC_OP_OR);
    /* deleting the variant removes its distributions */
    assert_ok(ef_store_variant_delete(t->s, NONE, B("f"), va, &err), err);
    assert_ok(ef_store_rule_get(t->s, NONE, B("f"), r1.rule.meta.id, &t->a, &r, &err), err);
    assert_int_equal(r.rule.ndistributions, 0);
    assert_store_err(ef_store_rule_get(t->s, NONE, B("f"), B("x"), &t->a, &r, &err), err,
                     EF_STORE_NOT_FOUND, "rule \"default/x\" not found");
    tstore_free(t);
}

static void test_rollouts(void **state)
{
    (void)state;
    tstore *t = tstore_new(true);
    ef_store_err err;
    mkflag(t, "default", "b", EF_DOC_BOOLEAN_FLAG);
    mksegment(t, "s1");
    ef_store_rollout r1, r2, r;
    ef_store_rollout_in th = {.rank = 1, .type = EF_DOC_ROLLOUT_THRESHOLD, .percentage = 25.5f,
                              .value = true};
    assert_ok(ef_store_rollout_create(t->s, NONE, B("b"), &th, &t->a, &r1, &err), err);
    assert_true(r1.rollout.percentage == 25.5f);
    assert_store_err(ef_store_rollout_create(t->s, NONE, B("b"), &th, &t->a, &r, &err), err,
                     EF_STORE_INVALID, "rank number: 1 already exists");
    th.rank = 9;
    th.percentage = 101;
    assert_store_err(ef_store_rollout_create(t->s, NONE, B("b"), &th, &t->a, &r, &err), err,
                     EF_STORE_INVALID,
                     "invalid field threshold.percentage: must be within range [0, 100]");
    ef_store_rollout_in sg = {.rank = 2, .type = EF_DOC_ROLLOUT_SEGMENT, .segment_key = B("s1"),
                              .value = true, .op = EF_DOC_OP_AND};
    assert_ok(ef_store_rollout_create(t->s, NONE, B("b"), &sg, &t->a, &r2, &err), err);
    assert_int_equal(r2.rollout.nsegments, 1);
    assert_int_equal(r2.rollout.op, EF_DOC_OP_OR);
    ef_store_rollout_in none = {.rank = 3};
    assert_store_err(ef_store_rollout_create(t->s, NONE, B("b"), &none, &t->a, &r, &err), err,
                     EF_STORE_INVALID, "rollout rule is missing");
    /* an update without a rule changes the description only, as Flipt's UpdateRollout */
    ef_store_rollout_in desc = {.description = B("only this")};
    assert_ok(ef_store_rollout_update(t->s, NONE, B("b"), r2.rollout.meta.id, &desc, &t->a, &r, &err), err);
    assert_bytes(r.rollout.description, "only this");
    assert_int_equal(r.rollout.type, EF_DOC_ROLLOUT_SEGMENT);
    assert_int_equal(r.rollout.nsegments, 1);
    assert_bytes(r.rollout.segment_keys[0], "s1");
    assert_true(r.rollout.value);
    assert_store_err(ef_store_rollout_update(t->s, NONE, B("b"), B("nope"), &desc, &t->a, &r, &err), err,
                     EF_STORE_NOT_FOUND, "rollout \"default/nope\" not found");
    th.percentage = 5;
    assert_store_err(ef_store_rollout_update(t->s, NONE, B("b"), r2.rollout.meta.id, &th, &t->a,
                                             &r, &err),
                     err, EF_STORE_INVALID,
                     "cannot change type of rollout: have \"SEGMENT_ROLLOUT_TYPE\" attempted "
                     "\"THRESHOLD_ROLLOUT_TYPE\"");
    th.description = B("five");
    assert_ok(ef_store_rollout_update(t->s, NONE, B("b"), r1.rollout.meta.id, &th, &t->a, &r, &err),
              err);
    assert_true(r.rollout.percentage == 5.0f);
    assert_bytes(r.rollout.description, "five");
    ef_bytes ids[] = {r2.rollout.meta.id, r1.rollout.meta.id};
    assert_ok(ef_store_rollout_order(t->s, NONE, B("b"), ids, 2, &err), err);
    ef_store_rollout *list;
    size_t n;
    ef_store_page_out po;
    assert_ok(ef_store_rollout_list(t->s, NONE, B("b"), NULL, &t->a, &list, &n, &po, &err), err);
    assert_int_equal(n, 2);
    assert_true(ef_bytes_eq(list[0].rollout.meta.id, r2.rollout.meta.id));
    assert_int_equal(list[1].rank, 2);
    assert_ok(ef_store_rollout_delete(t->s, NONE, B("b"), r2.rollout.meta.id, &err), err);
    assert_ok(ef_store_rollout_get(t->s, NONE, B("b"), r1.rollout.meta.id, &t->a, &r, &err), err);
    assert_int_equal(r.rank, 1);
    assert_store_err(ef_store_rollout_get(t->s, NONE, B("b"), B("x"), &t->a, &r, &err), err,
                     EF_STORE_NOT_FOUND, "rollout \"default/x\" not found");
    /* the compiled snapshot evaluates the rollout */
    ef_registry_read_lock(t->reg);
    const ef_snapshot *snap = ef_registry_get(t->reg, B("default"));
    assert_non_null(snap);
    uint64_t seq;
    assert_ok(ef_store_seq(t->s, &seq, NULL, &err), err);
    assert_int_equal(ef_snapshot_version(snap), seq);
    ef_eval_request q = {.flag_key = B("b"), .entity_id = B("e")};
    ef_boolean_result br;
    assert_int_equal(ef_eval_boolean(snap, &q, &br), EF_EVAL_OK);
    ef_registry_read_unlock(t->reg);
    tstore_free(t);
}

static void test_pagination(void **state)
{
    (void)state;
    tstore *t = tstore_new(false);
    ef_store_err err;
    const char *keys[] = {"k0", "k1", "k2", "k3", "k4"};
    for (int i = 0; i < 5; i++) mkflag(t, "default", keys[i], EF_DOC_BOOLEAN_FLAG);
    ef_store_page p = {.limit = 2};
    ef_doc_flag *list;
    size_t n, seen = 0;
    ef_store_page_out po;
    for (int page = 0;; page++) {
        assert_ok(ef_store_flag_list(t->s, NONE, &p, &t->a, &list, &n, &po, &err), err);
        assert_int_equal(po.total_count, 5);
        for (size_t i = 0; i < n; i++) assert_bytes(list[i].key, keys[seen++]);
        if (po.next_page_token.n == 0) break;
        p.page_token = po.next_page_token;
        assert_true(page < 3);
    }
    assert_int_equal(seen, 5);
    /* the first token is base64 of {"key":"k1","offset":2} */
    p = (ef_store_page){.limit = 2};
    assert_ok(ef_store_flag_list(t->s, NONE, &p, &t->a, &list, &n, &po, &err), err);
    assert_bytes(po.next_page_token, "eyJrZXkiOiJrMSIsIm9mZnNldCI6Mn0=");
    p = (ef_store_page){.limit = 0, .offset = 2};
    assert_store_err(ef_store_flag_list(t->s, NONE, &p, &t->a, &list, &n, &po, &err), err,
                     EF_STORE_INVALID, "limit must be set when offset or pageToken is set");
    p = (ef_store_page){.limit = 2, .page_token = B("!!")};
    assert_store_err(ef_store_flag_list(t->s, NONE, &p, &t->a, &list, &n, &po, &err), err,
                     EF_STORE_INVALID, "pageToken is not valid: \"!!\"");
    p = (ef_store_page){.limit = 10, .offset = 3};
    assert_ok(ef_store_flag_list(t->s, NONE, &p, &t->a, &list, &n, &po, &err), err);
    assert_int_equal(n, 2);
    assert_int_equal(po.next_page_token.n, 0);
    for (int i = 0; i < 3; i++) mksegment(t, keys[i]);
    ef_doc_segment *segs;
    p = (ef_store_page){.limit = 2};
    assert_ok(ef_store_segment_list(t->s, NONE, &p, &t->a, &segs, &n, &po, &err), err);
    assert_int_equal(n, 2);
    assert_int_equal(po.total_count, 3);
    assert_true(po.next_page_token.n > 0);
    tstore_free(t);
}

/* token_expire (PUT /auth/v1/self/expire): the expiry is set on the row, by id. */
static void test_token_expire(void **state)
{
    (void)state;
    tstore *t = tstore_new(false);
    ef_store_err err;
    ef_store_token in = {.hashed = B("h1"), .name = B("t1")}, out;
    assert_ok(ef_store_token_create(t->s, &in, &t->a, &out, &err), err);
    assert_int_equal(out.expires_ns, 0);
    assert_ok(ef_store_token_expire(t->s, out.id, 1234567890000000000LL, &err), err);
    ef_store_token *list;
    size_t n;
    ef_store_page_out po;
    ef_store_page page = {0};
    assert_ok(ef_store_token_list(t->s, &page, &t->a, &list, &n, &po, &err), err);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].expires_ns, 1234567890000000000LL);
    assert_true(list[0].updated_ns >= list[0].created_ns);
    assert_store_err(ef_store_token_expire(t->s, B("no-such-id"), 1, &err), err, EF_STORE_NOT_FOUND,
                     "authentication \"no-such-id\" not found");
    tstore_free(t);
}

/* Flipt quotes values with Go's %q; so do the store's messages (page tokens). */
/* Database URLs reach logs and messages only with their secrets replaced. */
static void test_url_redact(void **state)
{
    (void)state;
    char out[256];
    assert_string_equal(ef_store_url_redact("postgres://u:pw@h:5432/db?sslmode=require", out, sizeof(out)),
                        "postgres://u:***@h:5432/db?sslmode=require");
    assert_string_equal(ef_store_url_redact("postgresql://h1,h2/db?user=u&password=pw&x=1", out, sizeof(out)),
                        "postgresql://h1,h2/db?user=u&password=***&x=1");
    assert_string_equal(ef_store_url_redact("libsql://db.turso.io?authToken=tok", out, sizeof(out)),
                        "libsql://db.turso.io?authToken=***");
    assert_string_equal(ef_store_url_redact("mysql://u:@h/db", out, sizeof(out)), "mysql://u:***@h/db");
    /* PostgreSQL on another host is verified unless the URL says otherwise; local ones are left be */
    const char *k[2], *v[2];
    unsetenv("PGSSLMODE");
    unsetenv("PGSSLROOTCERT");
    assert_int_equal(ef_pg_tls_defaults("postgres://u@db1.example:5432/f", k, v), 2);
    assert_string_equal(k[0], "sslmode");
    assert_string_equal(v[0], "verify-full");
    assert_string_equal(k[1], "sslrootcert");
    assert_int_equal(ef_pg_tls_defaults("postgres://u@db1.example/f?sslrootcert=/ca.pem", k, v), 1);
    assert_int_equal(ef_pg_tls_defaults("postgres://u@db1.example/f?sslmode=disable", k, v), 0);
    assert_int_equal(ef_pg_tls_defaults("postgresql://u@127.0.0.1:5,127.0.0.1:6/f", k, v), 0);
    assert_int_equal(ef_pg_tls_defaults("postgresql://u@localhost/f", k, v), 0);
    assert_int_equal(ef_pg_tls_defaults("postgresql:///f?host=/run/postgresql", k, v), 0);
    assert_int_equal(ef_pg_tls_defaults("postgresql://u@127.0.0.1,db2.example/f", k, v), 2);
    setenv("PGSSLMODE", "require", 1);
    assert_int_equal(ef_pg_tls_defaults("postgres://u@db1.example/f", k, v), 0);
    unsetenv("PGSSLMODE");
    assert_string_equal(ef_store_url_redact("mysql://u@h/d:b@x", out, sizeof(out)), "mysql://u@h/d:b@x");
    assert_string_equal(ef_store_url_redact("./data/edgeflag.db", out, sizeof(out)), "./data/edgeflag.db");
    assert_string_equal(ef_store_url_redact("mysql://u:secret@h/db", out, 12), "mysql://u:*");
}

static void test_go_quote(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t n;
        const char *want;
    } cases[] = {
        {"Hello World", 11, "\"Hello World\""},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"\0\xff\n\t\x7f", 5, "\"\\x00\\xff\\n\\t\\x7f\""},
        {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},
        {"\xc3(", 2, "\"\\xc3(\""},
        {"\xed\xa0\x80", 3, "\"\\xed\\xa0\\x80\""}, /* a surrogate is not UTF-8 */
        {"", 0, "\"\""},
    };
    char out[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ef_store_go_quote((ef_bytes){cases[i].in, cases[i].n}, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
    /* truncated, still quoted */
    ef_store_go_quote(EF_BYTES_LIT("abcdefghij"), out, 6);
    assert_string_equal(out, "\"abc\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_and_migrations),
        cmocka_unit_test(test_namespaces),
        cmocka_unit_test(test_flags_and_variants),
        cmocka_unit_test(test_constraints),
        cmocka_unit_test(test_rules_distributions_order),
        cmocka_unit_test(test_rollouts),
        cmocka_unit_test(test_pagination),
        cmocka_unit_test(test_go_quote),
        cmocka_unit_test(test_url_redact),
        cmocka_unit_test(test_token_expire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
