/*
 * eval_json.h - Flipt's evaluation API on the wire: decoding EvaluationRequest JSON and writing
 * the response bodies of /evaluate/v1/{variant,boolean,batch} and Flipt's error body.
 *
 * Shared by the HTTP handlers and `edgeflag eval`, so both answer byte-for-byte alike. Field names,
 * order and enum spellings follow Flipt's protobuf JSON (camelCase, every field present).
 */
#ifndef EF_API_EVAL_JSON_H
#define EF_API_EVAL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"
#include "eval/eval.h"

/* gRPC status codes used in Flipt's error body. */
enum {
    EF_CODE_INVALID_ARGUMENT = 3,
    EF_CODE_NOT_FOUND = 5,
    EF_CODE_INTERNAL = 13,
};

typedef struct ef_eval_input {
    ef_bytes request_id;
    ef_bytes namespace_key; /* "" when absent: the caller picks the default */
    ef_bytes reference;
    ef_eval_request req;
} ef_eval_input;

/* Decodes one EvaluationRequest object (camelCase or snake_case keys, unknown keys ignored, null
 * treated as absent). Context values must be strings; a null value is skipped. Returns 0, or -1
 * with a message for an InvalidArgument error in err. Context storage comes from the arena. */
int ef_eval_input_decode(const ef_json *obj, ef_arena *a, ef_eval_input *in, char *err,
                         size_t errlen);

/* The same from the body's bytes in one pass, without a JSON tree, for the shape clients send: one
 * object of the fields above (each once, either spelling) with string values, a context object
 * of strings, JSON whitespace anywhere. Plain strings and one-letter escapes are decoded in the
 * pass, anything else (\u escapes, UTF-8) by the JSON reader's own string code; every string goes
 * straight into the request block, and the string fields of *in point into it too. Returns 1 with
 * *in filled exactly as parsing the body and ef_eval_input_decode would fill it, or 0 for any
 * other body, valid or not, which the caller then decodes the slow way (and so gets the same
 * errors). The block takes about the body's length from the arena, whether or not the body is
 * taken. */
int ef_eval_input_fast(ef_bytes body, ef_arena *a, ef_eval_input *in);

/* Timing of one evaluation, as Flipt reports it. */
typedef struct ef_eval_timing {
    int64_t duration_ns; /* written as requestDurationMillis */
    int64_t timestamp_ns;
} ef_eval_timing;

void ef_write_variant_response(ef_buf *b, const ef_variant_result *r, ef_bytes request_id,
                               const ef_eval_timing *t);
void ef_write_boolean_response(ef_buf *b, const ef_boolean_result *r, ef_bytes request_id,
                               const ef_eval_timing *t);
/* One element of a batch response's "responses" array. */
void ef_write_batch_variant(ef_buf *b, const ef_variant_result *r, ef_bytes request_id,
                            const ef_eval_timing *t);
void ef_write_batch_boolean(ef_buf *b, const ef_boolean_result *r, ef_bytes request_id,
                            const ef_eval_timing *t);
void ef_write_batch_not_found(ef_buf *b, ef_bytes flag_key, ef_bytes namespace_key);

/* {"code":code,"message":message,"details":[]} */
void ef_write_error(ef_buf *b, int code, ef_bytes message);
/* The error for an evaluation status other than EF_EVAL_OK, with Flipt's code and message. */
void ef_write_eval_error(ef_buf *b, ef_eval_status st, ef_bytes namespace_key, ef_bytes flag_key,
                         const ef_snapshot *snap);

#endif
