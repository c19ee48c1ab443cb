/*
 * fuzz_eval_request.c - libFuzzer target: an evaluation request body as the HTTP API and
 * `edgeflag eval` decode it, evaluated against a fixed snapshot and written back as a response.
 * The decoded request block must answer every context key as the JSON object does (the last
 * string value of that key; nulls skipped), or the target aborts. The one-pass decoder
 * (ef_eval_input_fast) must decline every body the tree decoder refuses and, for a body it takes,
 * give the same input field for field and a block that answers every key alike, or the target
 * aborts. The RFC 3339 reader DATETIME
 * constraints use (it reads words) must agree with its byte-by-byte form on the whole input and on
 * every context value, or the target aborts.
 */
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "api/eval_json.h"
#include "eval/model.h"

static void same_time(ef_bytes s)
{
    int64_t a = 0, b = 0;
    bool fa = ef_rfc3339_parse(s, &a), fb = ef_rfc3339_parse_scalar(s, &b);
    if (fa != fb || (fa && a != b)) abort();
}

/* Every key of the context object, looked up in the block, against a scan of the object. */
static void check_block(const ef_json *body, const ef_eval_request *req)
{
    const ef_json *ctx = ef_json_get(body, "context");
    if (!ctx || ctx->type != EF_JSON_OBJECT) {
        if (ef_context_count(req->context) != 0) abort();
        return;
    }
    for (const ef_json *c = ctx->child; c; c = c->next) {
        ef_bytes want = {"", 0};
        for (const ef_json *d = ctx->child; d; d = d->next)
            if (d->type == EF_JSON_STRING && ef_bytes_eq(d->key, c->key)) want = d->str;
        ef_bytes got = ef_context_find(req->context, c->key, ef_context_hash(c->key.p, c->key.n));
        if (!ef_bytes_eq(got, want)) abort();
        if (c->type == EF_JSON_STRING) same_time(c->str);
    }
}

static const char snapshot_doc[] =
    "{\"namespace\":{\"key\":\"default\"},\"flags\":[{\"key\":\"f\",\"name\":\"f\",\"enabled\":true,"
    "\"rules\":[{\"segmentOperator\":\"AND_SEGMENT_OPERATOR\",\"segments\":[{\"key\":\"s\",\"matchType\":"
    "\"ANY_SEGMENT_MATCH_TYPE\",\"constraints\":[{\"type\":\"DATETIME_CONSTRAINT_COMPARISON_TYPE\","
    "\"property\":\"d\",\"operator\":\"gt\",\"value\":\"2024-01-01T00:00:00Z\"},{\"type\":"
    "\"NUMBER_CONSTRAINT_COMPARISON_TYPE\",\"property\":\"n\",\"operator\":\"isoneof\",\"value\":\"[1,2,3]\"}]}],"
    "\"distributions\":[{\"variantKey\":\"a\",\"rollout\":50},{\"variantKey\":\"b\",\"rollout\":50}]}]},"
    "{\"key\":\"b\",\"name\":\"b\",\"enabled\":false,\"type\":\"BOOLEAN_FLAG_TYPE\",\"rollouts\":"
    "[{\"threshold\":{\"percentage\":50,\"value\":true}}]}]}";

static void same_input(const ef_eval_input *x, const ef_eval_input *y)
{
    if (!ef_bytes_eq(x->request_id, y->request_id) || !ef_bytes_eq(x->namespace_key, y->namespace_key) ||
        !ef_bytes_eq(x->reference, y->reference) || !ef_bytes_eq(x->req.flag_key, y->req.flag_key) ||
        !ef_bytes_eq(x->req.entity_id, y->req.entity_id) || x->req.flag_hash != y->req.flag_hash)
        abort();
    size_t n = ef_context_count(x->req.context);
    if (n != ef_context_count(y->req.context)) abort();
    for (size_t i = 0; i < n; i++)
        if (!ef_bytes_eq(ef_context_key(x->req.context, i), ef_context_key(y->req.context, i)) ||
            !ef_bytes_eq(ef_context_value(x->req.context, i), ef_context_value(y->req.context, i)))
            abort();
}

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
    same_time((ef_bytes){(const char *)data, size});
    ef_arena a;
    ef_arena_init(&a, 4096);
    ef_json_error e;
    ef_json *v = ef_json_parse((const char *)data, size, &a, NULL, &e);
    ef_eval_input in;
    char err[256];
    ef_eval_input fast;
    int took = ef_eval_input_fast((ef_bytes){(const char *)data, size}, &a, &fast);
    int slow_ok = v && ef_eval_input_decode(v, &a, &in, err, sizeof(err)) == 0;
    if (took && !slow_ok) abort();
    if (took) {
        same_input(&fast, &in);
        check_block(v, &fast.req); /* the fast block's own index and hashes */
    }
    if (slow_ok) {
        check_block(v, &in.req);
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
