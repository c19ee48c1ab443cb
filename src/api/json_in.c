/*
 * json_in.c - request field readers (see json_in.h). Never trusts a value's type.
 */
#include "api/json_in.h"
#include "base/cnum.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const ef_json *ef_jin_field(const ef_json *obj, const char *camel)
{
    char snake[96];
    size_t n = 0;
    for (const char *p = camel; *p && n + 2 < sizeof(snake); p++) {
        if (isupper((unsigned char)*p)) {
            snake[n++] = '_';
            snake[n++] = (char)tolower((unsigned char)*p);
        } else {
            snake[n++] = *p;
        }
    }
    snake[n] = '\0';
    return ef_json_get2(obj, camel, snake);
}

static bool type_error(ef_jin_err *e, const char *field, const char *want)
{
    snprintf(e->message, sizeof(e->message), "invalid value for field %s: expected %s", field, want);
    return false;
}

static const ef_json *lookup(const ef_json *obj, const char *camel, bool *present)
{
    const ef_json *v = ef_jin_field(obj, camel);
    if (ef_json_is_null(v)) v = NULL;
    if (present) *present = v != NULL;
    return v;
}

bool ef_jin_str(const ef_json *obj, const char *camel, ef_bytes *out, bool *present, ef_jin_err *e)
{
    const ef_json *v = lookup(obj, camel, present);
    if (!v) return true;
    if (v->type != EF_JSON_STRING) return type_error(e, camel, "a string");
    *out = v->str;
    return true;
}

bool ef_jin_bool(const ef_json *obj, const char *camel, bool *out, bool *present, ef_jin_err *e)
{
    const ef_json *v = lookup(obj, camel, present);
    if (!v) return true;
    if (v->type == EF_JSON_TRUE || v->type == EF_JSON_FALSE) {
        *out = v->type == EF_JSON_TRUE;
        return true;
    }
    return type_error(e, camel, "a boolean");
}

bool ef_jin_i32(const ef_json *obj, const char *camel, int32_t *out, bool *present, ef_jin_err *e)
{
    const ef_json *v = lookup(obj, camel, present);
    if (!v) return true;
    double d;
    if (v->type == EF_JSON_NUMBER) {
        d = v->num;
    } else if (v->type == EF_JSON_STRING && v->str.n > 0 && v->str.n < 32) {
        /* Only what protobuf JSON takes in a string: an optional '-' and decimal digits. A strtod
         * would also take " 5", "0x10", "1e3" and "inf". */
        bool neg = v->str.p[0] == '-';
        size_t i = neg ? 1 : 0;
        if (i == v->str.n) return type_error(e, camel, "an integer");
        d = 0;
        for (; i < v->str.n; i++) {
            char ch = v->str.p[i];
            if (ch < '0' || ch > '9') return type_error(e, camel, "an integer");
            d = d * 10 + (ch - '0'); /* under 32 digits: exact enough for the range check below */
        }
        if (neg) d = -d;
    } else {
        return type_error(e, camel, "an integer");
    }
    if (d != floor(d) || d < -2147483648.0 || d > 2147483647.0)
        return type_error(e, camel, "a 32-bit integer");
    *out = (int32_t)d;
    return true;
}

bool ef_jin_f32(const ef_json *obj, const char *camel, float *out, bool *present, ef_jin_err *e)
{
    const ef_json *v = lookup(obj, camel, present);
    if (!v) return true;
    if (v->type != EF_JSON_NUMBER || !isfinite(v->num)) return type_error(e, camel, "a number");
    /* converting a double outside float's range is undefined behaviour, not infinity */
    if (fabs(v->num) > FLT_MAX) return type_error(e, camel, "a 32-bit float");
    *out = (float)v->num;
    return true;
}

bool ef_jin_str_array(const ef_json *obj, const char *camel, ef_arena *a, ef_bytes **out, size_t *n,
                      bool *present, ef_jin_err *e)
{
    const ef_json *v = lookup(obj, camel, present);
    *n = 0;
    *out = NULL;
    if (!v) return true;
    if (v->type != EF_JSON_ARRAY) return type_error(e, camel, "an array of strings");
    ef_bytes *arr = ef_arena_alloc(a, (v->len ? v->len : 1) * sizeof(ef_bytes));
    if (!arr) return type_error(e, camel, "a smaller array");
    size_t i = 0;
    for (const ef_json *c = v->child; c; c = c->next) {
        if (c->type != EF_JSON_STRING) return type_error(e, camel, "an array of strings");
        arr[i++] = c->str;
    }
    *out = arr;
    *n = i;
    return true;
}

void ef_jin_write_compact(ef_buf *out, const ef_json *v)
{
    ef_json_write_compact(out, v, (ef_bytes){"", 0});
}
