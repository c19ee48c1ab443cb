/*
 * objects.h - Flipt's management-API object JSON (reference/flipt-v1.md 4.2): Namespace, Flag,
 * Variant, Segment, Constraint, Rule, Distribution, Rollout and the list wrappers, plus the enum
 * names the management API speaks.
 *
 * The writers emit what Flipt's gateway emits (golang/protobuf jsonpb with EmitDefaults): camelCase
 * keys in proto field order, every non-optional field present (empty strings, false, 0, [] and null
 * for unset timestamps), enums by name, timestamps as RFC 3339 UTC with 0/3/6/9 fraction digits.
 * They only format: they must never look anything up, validate or allocate outside the buffer.
 */
#ifndef EF_API_OBJECTS_H
#define EF_API_OBJECTS_H

#include <stdbool.h>

#include "base/buf.h"
#include "base/bytes.h"
#include "store/doc.h"
#include "store/store.h"

/* The management API's enums (proto names; numbering is ef_doc_*'s). */
typedef enum ef_obj_enum {
    EF_OBJ_FLAG_TYPE,       /* VARIANT_FLAG_TYPE, BOOLEAN_FLAG_TYPE */
    EF_OBJ_MATCH_TYPE,      /* ALL_MATCH_TYPE, ANY_MATCH_TYPE */
    EF_OBJ_COMPARISON_TYPE, /* UNKNOWN_COMPARISON_TYPE .. ENTITY_ID_COMPARISON_TYPE */
    EF_OBJ_SEGMENT_OP,      /* OR_SEGMENT_OPERATOR, AND_SEGMENT_OPERATOR */
    EF_OBJ_ROLLOUT_TYPE,    /* UNKNOWN_ROLLOUT_TYPE, SEGMENT_ROLLOUT_TYPE, THRESHOLD_ROLLOUT_TYPE */
} ef_obj_enum;

/* The name of value v, or NULL when v has none (jsonpb then prints the number). */
const char *ef_obj_enum_name(ef_obj_enum e, int v);
/* The value named `name` (exact, as protobuf JSON requires); false if there is none. */
bool ef_obj_enum_value(ef_obj_enum e, ef_bytes name, int *v);
/* Writes an enum value: its name, or the bare number when it has none. */
void ef_obj_put_enum(ef_buf *b, ef_obj_enum e, int v);

/* Whether a Flag object carries `metadata` when the flag has none: Flipt's SQL ListFlags writes
 * {} then, while GetFlag/CreateFlag/UpdateFlag leave the field out. */
typedef enum ef_obj_metadata { EF_OBJ_METADATA_IF_SET, EF_OBJ_METADATA_ALWAYS } ef_obj_metadata;

void ef_obj_namespace(ef_buf *b, const ef_doc_namespace *ns);
/* ns is the namespace key the flag lives in (objects carry it as namespaceKey). */
void ef_obj_flag(ef_buf *b, ef_bytes ns, const ef_doc_flag *f, ef_obj_metadata md);
void ef_obj_variant(ef_buf *b, ef_bytes ns, ef_bytes flag_key, const ef_doc_variant *v);
void ef_obj_segment(ef_buf *b, ef_bytes ns, const ef_doc_segment *s);
void ef_obj_constraint(ef_buf *b, ef_bytes ns, ef_bytes segment_key, const ef_doc_constraint *c);
void ef_obj_rule(ef_buf *b, ef_bytes ns, ef_bytes flag_key, const ef_store_rule *r);
void ef_obj_distribution(ef_buf *b, ef_bytes rule_id, const ef_doc_distribution *d);
void ef_obj_rollout(ef_buf *b, ef_bytes ns, ef_bytes flag_key, const ef_store_rollout *r);

/* List wrappers: {"<key>":[ ...items... ],"nextPageToken":"…","totalCount":n}. Call begin, then
 * ef_obj_list_sep before every item but the first (i is the item's index), then end. */
void ef_obj_list_begin(ef_buf *b, const char *key);
void ef_obj_list_sep(ef_buf *b, size_t i);
void ef_obj_list_end(ef_buf *b, const ef_store_page_out *po);

#endif
