/*
 * entry.c - reads change-log entries for the history API and audit events (see entry.h). It must
 * never trust an entry's shape (each member is type-checked) and never copy a token hash out.
 */
#include "store/entry.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *table, *type;
} nouns[] = {
    {"namespaces", "namespace"},  {"flags", "flag"},
    {"variants", "variant"},      {"segments", "segment"},
    {"constraints", "constraint"}, {"rules", "rule"},
    {"rule_segments", "rule"},    {"distributions", "distribution"},
    {"rollouts", "rollout"},      {"rollout_segments", "rollout"},
    {"tokens", "token"},
};

static ef_bytes noun_of(ef_bytes table)
{
    for (size_t i = 0; i < sizeof(nouns) / sizeof(nouns[0]); i++)
        if (ef_bytes_eq(table, ef_bytes_of(nouns[i].table))) return ef_bytes_of(nouns[i].type);
    return (ef_bytes){"", 0};
}

ef_bytes ef_entry_str(const ef_json *obj, const char *name)
{
    const ef_json *v = obj && obj->type == EF_JSON_OBJECT ? ef_json_get(obj, name) : NULL;
    return v && v->type == EF_JSON_STRING ? v->str : (ef_bytes){"", 0};
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "change-log entry: %s", msg);
    return -1;
}

static const ef_json *object_or_null(const ef_json *o, const char *name, bool *bad)
{
    const ef_json *v = ef_json_get(o, name);
    if (ef_json_is_null(v)) return NULL;
    if (v->type != EF_JSON_OBJECT) *bad = true;
    return v;
}

int ef_entry_parse(const char *text, size_t len, ef_arena *a, ef_entry *out, char *err, size_t errlen)
{
    *out = (ef_entry){0};
    ef_json_error je;
    const ef_json *root = ef_json_parse(text, len, a, &(ef_json_opts){.max_depth = 16}, &je);
    if (!root) return fail(err, errlen, je.message);
    if (root->type != EF_JSON_OBJECT) return fail(err, errlen, "not an object");
    int64_t t;
    if (!ef_json_u64(ef_json_get(root, "seq"), &out->seq) || !ef_json_i64(ef_json_get(root, "time"), &t))
        return fail(err, errlen, "seq and time must be integers");
    out->time_ns = t;
    const ef_json *ns = ef_json_get(root, "namespaces"), *ch = ef_json_get(root, "changes");
    if (!ns || ns->type != EF_JSON_ARRAY || !ch || ch->type != EF_JSON_ARRAY)
        return fail(err, errlen, "namespaces and changes must be arrays");
    out->namespaces = ns;
    out->changes = ch->len ? ef_arena_alloc(a, ch->len * sizeof(ef_entry_change)) : NULL;
    if (ch->len && !out->changes) return fail(err, errlen, "out of memory");
    for (const ef_json *c = ch->child; c; c = c->next) {
        if (c->type != EF_JSON_OBJECT) return fail(err, errlen, "a change is not an object");
        ef_entry_change *x = &out->changes[out->nchanges];
        bool bad = false;
        x->table = ef_entry_str(c, "table");
        x->type = noun_of(x->table);
        x->del = ef_bytes_eq(ef_entry_str(c, "op"), EF_BYTES_LIT("delete"));
        x->pk = object_or_null(c, "pk", &bad);
        x->row = object_or_null(c, "row", &bad);
        x->old = object_or_null(c, "old", &bad);
        if (bad || !x->table.n || !x->pk) return fail(err, errlen, "a change needs table, pk and object rows");
        out->nchanges++;
    }
    const ef_json *au = ef_json_get(root, "audit");
    if (!ef_json_is_null(au)) {
        if (au->type != EF_JSON_OBJECT) return fail(err, errlen, "audit must be an object");
        const ef_json *actor = ef_json_get(au, "actor");
        out->actor = actor && actor->type == EF_JSON_OBJECT ? actor : NULL;
        out->via = ef_entry_str(au, "via");
        out->type = ef_entry_str(au, "type");
        out->action = ef_entry_str(au, "action");
        out->ns = ef_entry_str(au, "namespace");
        out->flag = ef_entry_str(au, "flag");
    }
    /* the change the write is about: the first of its type (the first change without one) */
    for (size_t i = 0; i < out->nchanges; i++)
        if (!out->type.n || ef_bytes_eq(out->changes[i].type, out->type)) {
            out->principal = i;
            break;
        }
    if (out->nchanges) {
        const ef_entry_change *p = &out->changes[out->principal];
        if (!out->type.n) out->type = p->type;
        if (!out->action.n)
            out->action = p->del ? EF_BYTES_LIT("deleted") : p->old ? EF_BYTES_LIT("updated") : EF_BYTES_LIT("created");
    }
    return 0;
}

bool ef_entry_in_namespace(const ef_entry *e, ef_bytes ns, uint64_t *version)
{
    for (const ef_json *n = e->namespaces->child; n; n = n->next)
        if (ef_bytes_eq(ef_entry_str(n, "key"), ns)) {
            if (version && !ef_json_u64(ef_json_get(n, "version"), version)) *version = 0;
            return true;
        }
    if (version) *version = 0;
    return false;
}

static bool row_about_flag(const ef_entry_change *c, const ef_json *row, ef_bytes ns, ef_bytes flag)
{
    if (!row || !ef_bytes_eq(ef_entry_str(row, "namespace_key"), ns)) return false;
    if (ef_bytes_eq(c->table, EF_BYTES_LIT("flags"))) return ef_bytes_eq(ef_entry_str(row, "key"), flag);
    return ef_bytes_eq(ef_entry_str(row, "flag_key"), flag);
}

bool ef_entry_about_flag(const ef_entry *e, ef_bytes ns, ef_bytes flag)
{
    /* the request named the flag; its namespace is the path's, or (a /api/v1/... route that takes
     * it from the body) whichever namespace the write touched */
    if (e->flag.n && ef_bytes_eq(e->flag, flag) && (!e->ns.n || ef_bytes_eq(e->ns, ns)) &&
        ef_entry_in_namespace(e, ns, NULL))
        return true;
    for (size_t i = 0; i < e->nchanges; i++) {
        const ef_entry_change *c = &e->changes[i];
        if (row_about_flag(c, c->row, ns, flag) || row_about_flag(c, c->old, ns, flag) ||
            row_about_flag(c, c->pk, ns, flag))
            return true;
    }
    return false;
}

void ef_entry_put_row(ef_buf *out, const ef_json *row)
{
    if (ef_json_is_null(row)) {
        ef_buf_puts(out, "null");
        return;
    }
    ef_json_write_compact(out, row, EF_BYTES_LIT("hashed_token")); /* a token hash is never shown */
}
