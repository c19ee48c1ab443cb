/*
 * fuzz_eval_request.c - libFuzzer target: an evaluation request body as the HTTP API and
 * `edgeflag eval` decode it, evaluated against a fixed snapshot and written back as a response.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/eval_json.h"

static const char snapshot_doc[] =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":[{\"key\":\"f\",\"name\":\"f\",\"enabled\":true,"
    "\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"segments\":[{\"key\":\"s\",\"matchType\":"
    "\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":[{\"type\":\"DATETIME_CONSTRAINT_COMPARISON_TYPE\","
    "\"property\":\"d\",\"operator\":\"gt\",\"value\":\"2024-01-01T00:00:00Z\"},{\"type\":"
    "\"NUMBER_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"n\",\"operator\":\"isoneof\",\"value\":\"[1,2,3]\"}]}],"
    "\"distributions\":[{\"variantKey\":\"a\",\"rollout\":50},{\"variantKey\":\"b\",\"rollout\":50}]}]},"
    "{\"key\":\"b\",\"name\":\"b\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":"
    "[{\"threshold\":{\"percentage\":50,\"value\":true}}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ef_snapshot *snap;
    if (!snap) {
        ef_arena a;
        ef_arena_init(&a, 4096);
        ef_json_error e;
        ef_json *doc = ef_json_parse(snapshot_doc, strlen(snapshot_doc), &a, NULL, &e);
        ef_compile_error ce;
        snap = ef_snapshot_compile(doc, &ce);
        ef_arena_free(&a);
    }
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error e;
    ef_json *v = ef_json_parse((const char *)data, size, &a, NULL, &e);
    ef_eval_input in;
    char err[256];
    if (v && ef_eval_input_decode(v, &a, &in, err, sizeof(err)) == 0) {
        ef_buf out;
        ef_buf_init(&out);
        ef_eval_timing t = {1000, 0};
        ef_variant_result vr;
        ef_boolean_result br;
        ef_eval_status st = ef_eval_variant(snap, &in.req, &vr);
        if (st == EF_EVAL_OK)
            ef_write_variant_response(&out, &vr, in.request_id, &t);
        else
            ef_write_eval_error(&out, st, in.namespace_key, in.req.flag_key, snap);
        if (ef_eval_boolean(snap, &in.req, &br) == EF_EVAL_OK) ef_write_boolean_response(&out, &br, in.request_id, &t);
        ef_buf_free(&out);
    }
    ef_arena_free(&a);
    return 0;
}
