/*
 * objects.c - writers for Flipt's management-API object JSON (see objects.h).
 *
 * Field order follows the proto field numbers because jsonpb emits fields in that order and
 * clients diffing raw bodies against Flipt's should see no difference. Nothing here may validate,
 * look up or reorder data: it prints exactly what the store returned.
 */
#include "api/objects.h"

#include "base/clock.h"

typedef struct enum_table {
    const char *const *names;
    int n;
} enum_table;

static const char *const flag_types[] = {"VARIANT_FLAG_TYPE", "BOOLEAN_FLAG_TYPE"};
static const char *const match_types[] = {"ALL_MATCH_TYPE", "ANY_MATCH_TYPE"};
static const char *const comparison_types[] = {
    "UNKNOWN_COMPARISON_TYPE", "STRING_COMPARISON_TYPE",   "NUMBER_COMPARISON_TYPE",
    "BOOLEAN_COMPARISON_TYPE", "DATETIME_COMPARISON_TYPE", "ENTITY_ID_COMPARISON_TYPE"};
static const char *const segment_ops[] = {"OR_SEGMENT_OPERATOR", "AND_SEGMENT_OPERATOR"};
static const char *const rollout_types[] = {"UNKNOWN_ROLLOUT_TYPE", "SEGMENT_ROLLOUT_TYPE",
                                            "THRESHOLD_ROLLOUT_TYPE"};

#define TABLE(a) {(a), (int)(sizeof(a) / sizeof((a)[0]))}

static enum_table table_of(ef_obj_enum e)
{
    switch (e) {
    case EF_OBJ_FLAG_TYPE: return (enum_table)TABLE(flag_types);
    case EF_OBJ_MATCH_TYPE: return (enum_table)TABLE(match_types);
    case EF_OBJ_COMPARISON_TYPE: return (enum_table)TABLE(comparison_types);
    case EF_OBJ_SEGMENT_OP: return (enum_table)TABLE(segment_ops);
    case EF_OBJ_ROLLOUT_TYPE: return (enum_table)TABLE(rollout_types);
    }
    return (enum_table){NULL, 0};
}

const char *ef_obj_enum_name(ef_obj_enum e, int v)
{
    enum_table t = table_of(e);
    return v >= 0 && v < t.n ? t.names[v] : NULL;
}

bool ef_obj_enum_value(ef_obj_enum e, ef_bytes name, int *v)
{
    enum_table t = table_of(e);
    for (int i = 0; i < t.n; i++) {
        if (ef_bytes_eq(name, ef_bytes_of(t.names[i]))) {
            *v = i;
            return true;
        }
    }
    return false;
}

void ef_obj_put_enum(ef_buf *b, ef_obj_enum e, int v)
{
    const char *name = ef_obj_enum_name(e, v);
    if (name)
        ef_json_put_cstr(b, name);
    else
        ef_json_put_int(b, v);
}

/* `,"name":` - every object opens with its first field written inline, the rest go through here. */
static void key(ef_buf *b, const char *name)
{
    ef_buf_putc(b, ',');
    ef_json_put_cstr(b, name);
    ef_buf_putc(b, ':');
}

static void put_time(ef_buf *b, int64_t unix_ns)
{
    /* An entity without a timestamp is a message field left unset, which jsonpb prints as null. */
    if (unix_ns == 0) {
        ef_buf_puts(b, "null");
        return;
    }
    char text[EF_RFC3339_MAX];
    size_t n = ef_rfc3339_format(unix_ns, text);
    ef_json_put_str(b, (ef_bytes){text, n});
}

static void put_times(ef_buf *b, const ef_doc_meta *m)
{
    key(b, "createdAt");
    put_time(b, m->created_ns);
    key(b, "updatedAt");
    put_time(b, m->updated_ns);
}

static void put_str_array(ef_buf *b, const ef_bytes *a, size_t n)
{
    ef_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) ef_buf_putc(b, ',');
        ef_json_put_str(b, a[i]);
    }
    ef_buf_putc(b, ']');
}

/* Flipt's SQL store answers a single segment in the deprecated `segmentKey` and several in
 * `segmentKeys`, for rules and segment rollouts alike. */
static void put_segment_keys(ef_buf *b, const char *field, const ef_bytes *keys, size_t n)
{
    key(b, field);
    if (n == 1)
        put_str_array(b, NULL, 0);
    else
        put_str_array(b, keys, n);
}

static void put_single_segment_key(ef_buf *b, const ef_bytes *keys, size_t n)
{
    ef_json_put_str(b, n == 1 ? keys[0] : (ef_bytes){"", 0});
}

void ef_obj_namespace(ef_buf *b, const ef_doc_namespace *ns)
{
    ef_buf_puts(b, "{\"key\":");
    ef_json_put_str(b, ns->key);
    key(b, "name");
    ef_json_put_str(b, ns->name);
    key(b, "description");
    ef_json_put_str(b, ns->description);
    key(b, "protected");
    ef_json_put_bool(b, ns->protected_);
    put_times(b, &ns->meta);
    ef_buf_putc(b, '}');
}

void ef_obj_variant(ef_buf *b, ef_bytes ns, ef_bytes flag_key, const ef_doc_variant *v)
{
    ef_buf_puts(b, "{\"id\":");
    ef_json_put_str(b, v->meta.id);
    key(b, "flagKey");
    ef_json_put_str(b, flag_key);
    key(b, "key");
    ef_json_put_str(b, v->key);
    key(b, "name");
    ef_json_put_str(b, v->name);
    key(b, "description");
    ef_json_put_str(b, v->description);
    put_times(b, &v->meta);
    key(b, "attachment");
    ef_json_put_str(b, v->attachment);
    key(b, "namespaceKey");
    ef_json_put_str(b, ns);
    ef_buf_putc(b, '}');
}

static const ef_doc_variant *default_variant(const ef_doc_flag *f)
{
    for (size_t i = 0; i < f->nvariants; i++)
        if (f->variants[i].is_default) return &f->variants[i];
    return NULL;
}

void ef_obj_flag(ef_buf *b, ef_bytes ns, const ef_doc_flag *f, ef_obj_metadata md)
{
    ef_buf_puts(b, "{\"key\":");
    ef_json_put_str(b, f->key);
    key(b, "name");
    ef_json_put_str(b, f->name);
    key(b, "description");
    ef_json_put_str(b, f->description);
    key(b, "enabled");
    ef_json_put_bool(b, f->enabled);
    put_times(b, &f->meta);
    key(b, "variants");
    ef_buf_putc(b, '[');
    for (size_t i = 0; i < f->nvariants; i++) {
        if (i) ef_buf_putc(b, ',');
        ef_obj_variant(b, ns, f->key, &f->variants[i]);
    }
    ef_buf_putc(b, ']');
    key(b, "namespaceKey");
    ef_json_put_str(b, ns);
    key(b, "type");
    ef_obj_put_enum(b, EF_OBJ_FLAG_TYPE, (int)f->type);
    /* defaultVariant and metadata are proto3 optional fields: absent when unset. */
    const ef_doc_variant *dv = default_variant(f);
    if (dv) {
        key(b, "defaultVariant");
        ef_obj_variant(b, ns, f->key, dv);
    }
    if (f->metadata.n) {
        key(b, "metadata");
        ef_buf_append(b, f->metadata.p, f->metadata.n); /* compact JSON object text */
    } else if (md == EF_OBJ_METADATA_ALWAYS) {
        key(b, "metadata");
        ef_buf_puts(b, "{}");
    }
    ef_buf_putc(b, '}');
}

void ef_obj_constraint(ef_buf *b, ef_bytes ns, ef_bytes segment_key, const ef_doc_constraint *c)
{
    ef_buf_puts(b, "{\"id\":");
    ef_json_put_str(b, c->meta.id);
    key(b, "segmentKey");
    ef_json_put_str(b, segment_key);
    key(b, "type");
    ef_obj_put_enum(b, EF_OBJ_COMPARISON_TYPE, (int)c->type);
    key(b, "property");
    ef_json_put_str(b, c->property);
    key(b, "operator");
    ef_json_put_str(b, c->op);
    key(b, "value");
    ef_json_put_str(b, c->value);
    put_times(b, &c->meta);
    key(b, "namespaceKey");
    ef_json_put_str(b, ns);
    key(b, "description");
    ef_json_put_str(b, c->description);
    ef_buf_putc(b, '}');
}

void ef_obj_segment(ef_buf *b, ef_bytes ns, const ef_doc_segment *s)
{
    ef_buf_puts(b, "{\"key\":");
    ef_json_put_str(b, s->key);
    key(b, "name");
    ef_json_put_str(b, s->name);
    key(b, "description");
    ef_json_put_str(b, s->description);
    put_times(b, &s->meta);
    key(b, "constraints");
    ef_buf_putc(b, '[');
    for (size_t i = 0; i < s->nconstraints; i++) {
        if (i) ef_buf_putc(b, ',');
        ef_obj_constraint(b, ns, s->key, &s->constraints[i]);
    }
    ef_buf_putc(b, ']');
    key(b, "matchType");
    ef_obj_put_enum(b, EF_OBJ_MATCH_TYPE, (int)s->match_type);
    key(b, "namespaceKey");
    ef_json_put_str(b, ns);
    ef_buf_putc(b, '}');
}

void ef_obj_distribution(ef_buf *b, ef_bytes rule_id, const ef_doc_distribution *d)
{
    ef_buf_puts(b, "{\"id\":");
    ef_json_put_str(b, d->meta.id);
    key(b, "ruleId");
    ef_json_put_str(b, rule_id);
    key(b, "variantId");
    ef_json_put_str(b, d->variant_id);
    key(b, "rollout");
    ef_json_put_float(b, d->rollout);
    put_times(b, &d->meta);
    ef_buf_putc(b, '}');
}

void ef_obj_rule(ef_buf *b, ef_bytes ns, ef_bytes flag_key, const ef_store_rule *r)
{
    const ef_doc_rule *dr = &r->rule;
    ef_buf_puts(b, "{\"id\":");
    ef_json_put_str(b, dr->meta.id);
    key(b, "flagKey");
    ef_json_put_str(b, flag_key);
    key(b, "segmentKey");
    put_single_segment_key(b, dr->segment_keys, dr->nsegments);
    key(b, "distributions");
    ef_buf_putc(b, '[');
    for (size_t i = 0; i < dr->ndistributions; i++) {
        if (i) ef_buf_putc(b, ',');
        ef_obj_distribution(b, dr->meta.id, &dr->distributions[i]);
    }
    ef_buf_putc(b, ']');
    key(b, "rank");
    ef_json_put_int(b, r->rank);
    put_times(b, &dr->meta);
    key(b, "namespaceKey");
    ef_json_put_str(b, ns);
    put_segment_keys(b, "segmentKeys", dr->segment_keys, dr->nsegments);
    key(b, "segmentOperator");
    ef_obj_put_enum(b, EF_OBJ_SEGMENT_OP, (int)dr->op);
    ef_buf_putc(b, '}');
}

static void put_rollout_rule(ef_buf *b, const ef_doc_rollout *ro)
{
    /* A oneof: only the member that is set appears. */
    if (ro->type == EF_DOC_ROLLOUT_SEGMENT) {
        key(b, "segment");
        ef_buf_puts(b, "{\"segmentKey\":");
        put_single_segment_key(b, ro->segment_keys, ro->nsegments);
        key(b, "value");
        ef_json_put_bool(b, ro->value);
        put_segment_keys(b, "segmentKeys", ro->segment_keys, ro->nsegments);
        key(b, "segmentOperator");
        ef_obj_put_enum(b, EF_OBJ_SEGMENT_OP, (int)ro->op);
        ef_buf_putc(b, '}');
    } else if (ro->type == EF_DOC_ROLLOUT_THRESHOLD) {
        key(b, "threshold");
        ef_buf_puts(b, "{\"percentage\":");
        ef_json_put_float(b, ro->percentage);
        key(b, "value");
        ef_json_put_bool(b, ro->value);
        ef_buf_putc(b, '}');
    }
}

void ef_obj_rollout(ef_buf *b, ef_bytes ns, ef_bytes flag_key, const ef_store_rollout *r)
{
    const ef_doc_rollout *ro = &r->rollout;
    ef_buf_puts(b, "{\"id\":");
    ef_json_put_str(b, ro->meta.id);
    key(b, "namespaceKey");
    ef_json_put_str(b, ns);
    key(b, "flagKey");
    ef_json_put_str(b, flag_key);
    key(b, "type");
    ef_obj_put_enum(b, EF_OBJ_ROLLOUT_TYPE, (int)ro->type);
    key(b, "rank");
    ef_json_put_int(b, r->rank);
    key(b, "description");
    ef_json_put_str(b, ro->description);
    put_times(b, &ro->meta);
    put_rollout_rule(b, ro);
    ef_buf_putc(b, '}');
}

void ef_obj_list_begin(ef_buf *b, const char *list_key)
{
    ef_buf_putc(b, '{');
    ef_json_put_cstr(b, list_key);
    ef_buf_puts(b, ":[");
}

void ef_obj_list_sep(ef_buf *b, size_t i)
{
    if (i) ef_buf_putc(b, ',');
}

void ef_obj_list_end(ef_buf *b, const ef_store_page_out *po)
{
    ef_buf_putc(b, ']');
    key(b, "nextPageToken");
    ef_json_put_str(b, po->next_page_token);
    key(b, "totalCount");
    ef_json_put_uint(b, po->total_count);
    ef_buf_putc(b, '}');
}
