/*
 * json_in.h - reading request fields the way Flipt's gateway does: a field may be written in
 * camelCase or snake_case, null means absent, unknown fields are ignored, and a value of the wrong
 * JSON type is an InvalidArgument error naming the field.
 *
 * Each reader returns true when the request is still good (the field was absent, or present with
 * the right type) and false after writing an error message to err. *present tells which.
 */
#ifndef EF_API_JSON_IN_H
#define EF_API_JSON_IN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/json.h"

typedef struct ef_jin_err {
    char message[256];
} ef_jin_err;

/* The member for a camelCase name, also found under its snake_case spelling. */
const ef_json *ef_jin_field(const ef_json *obj, const char *camel);

bool ef_jin_str(const ef_json *obj, const char *camel, ef_bytes *out, bool *present, ef_jin_err *e);
bool ef_jin_bool(const ef_json *obj, const char *camel, bool *out, bool *present, ef_jin_err *e);
/* Integers may be JSON numbers or decimal strings (protobuf JSON allows both for int32). */
bool ef_jin_i32(const ef_json *obj, const char *camel, int32_t *out, bool *present, ef_jin_err *e);
bool ef_jin_f32(const ef_json *obj, const char *camel, float *out, bool *present, ef_jin_err *e);
/* An array of strings; *out points into the arena. */
bool ef_jin_str_array(const ef_json *obj, const char *camel, ef_arena *a, ef_bytes **out, size_t *n,
                      bool *present, ef_jin_err *e);
/* Any JSON value re-serialised compactly (metadata objects, attachments given as objects). */
void ef_jin_write_compact(ef_buf *out, const ef_json *v);

#endif
