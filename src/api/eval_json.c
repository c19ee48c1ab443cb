/*
 * eval_json.c - evaluation requests and responses in Flipt's JSON (see eval_json.h). Writes into a
 * caller-owned buffer; allocates only context arrays, from the caller's arena.
 */
#include "api/eval_json.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/hash.h"

static int bad(char *err, size_t errlen, const char *msg, ef_bytes field)
{
    snprintf(err, errlen, msg, (int)field.n, field.p);
    return -1;
}

/* A request's fields, as both decoders know them. The string ones come in either spelling:
 * Flipt's JSON (camelCase) and its protobuf field names (snake_case), which it also accepts. */
enum { F_REQUEST_ID, F_NAMESPACE, F_FLAG, F_ENTITY, F_REFERENCE, F_CONTEXT, F_COUNT };
static const struct {
    ef_bytes camel, snake; /* NUL-terminated too */
} field_names[F_CONTEXT] = {
    [F_REQUEST_ID] = {{"requestId", 9}, {"request_id", 10}},
    [F_NAMESPACE] = {{"namespaceKey", 12}, {"namespace_key", 13}},
    [F_FLAG] = {{"flagKey", 7}, {"flag_key", 8}},
    [F_ENTITY] = {{"entityId", 8}, {"entity_id", 9}},
    [F_REFERENCE] = {{"reference", 9}, {"reference", 9}},
};

static int get_string_field(const ef_json *obj, const char *camel, const char *snake, ef_bytes *out,
                            char *err, size_t errlen)
{
    const ef_json *v = ef_json_get2(obj, camel, snake);
    *out = (ef_bytes){"", 0};
    if (ef_json_is_null(v)) return 0;
    if (v->type != EF_JSON_STRING)
        return bad(err, errlen, "invalid value for string field %.*s", ef_bytes_of(camel));
    *out = v->str;
    return 0;
}

int ef_eval_input_decode(const ef_json *obj, ef_arena *a, ef_eval_input *in, char *err,
                         size_t errlen)
{
    memset(in, 0, sizeof(*in));
    if (!obj || obj->type != EF_JSON_OBJECT) {
        snprintf(err, errlen, "request body must be a JSON object");
        return -1;
    }
    ef_bytes str[F_CONTEXT];
    for (int f = 0; f < F_CONTEXT; f++)
        if (get_string_field(obj, field_names[f].camel.p, field_names[f].snake.p, &str[f], err,
                             errlen))
            return -1;
    ef_bytes flag_key = str[F_FLAG], entity_id = str[F_ENTITY];
    in->request_id = str[F_REQUEST_ID];
    in->namespace_key = str[F_NAMESPACE];
    in->reference = str[F_REFERENCE];
    const ef_json *ctx = ef_json_get(obj, "context");
    if (!ef_json_is_null(ctx) && ctx->type != EF_JSON_OBJECT) {
        snprintf(err, errlen, "invalid value for map field context: expected an object of strings");
        return -1;
    }
    /* first pass: check every value and size the block; second: copy into it */
    size_t n = 0, text = flag_key.n + entity_id.n;
    for (const ef_json *c = ef_json_is_null(ctx) ? NULL : ctx->child; c; c = c->next) {
        if (c->type == EF_JSON_NULL) continue;
        if (c->type != EF_JSON_STRING)
            return bad(err, errlen, "invalid value for map field context: value of key %.*s is not a string",
                       c->key);
        n++;
        text += c->key.n + c->str.n;
    }
    size_t size = ef_request_size(n, text);
    void *mem = size ? ef_arena_alloc(a, size) : NULL;
    if (!mem) {
        snprintf(err, errlen, size ? "out of memory" : "request too large");
        return -1;
    }
    ef_context *block = ef_request_init(&in->req, mem, n, text, flag_key, entity_id);
    for (const ef_json *c = n ? ctx->child : NULL; c; c = c->next)
        if (c->type == EF_JSON_STRING) ef_request_add_context(block, c->key, c->str);
    return 0;
}

/* ---- the fast path: one pass over the bytes, for the shape clients send ---- */

#define FAST_MAX_PAIRS 64

/* JSON whitespace is four bytes, all below '!': one compare settles the usual case (none). */
static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Past a ':' and the whitespace around it; false when there is none. Compact JSON (what clients
 * send) has none, and is settled by the first test. */
static inline bool colon(const char **pp, const char *end)
{
    const char *p = *pp;
    if (__builtin_expect(end - p >= 2 && p[0] == ':' && p[1] == '"', 1)) {
        *pp = p + 1;
        return true;
    }
    p = skip_ws(p, end);
    if (p >= end || *p != ':') return false;
    *pp = skip_ws(p + 1, end);
    return true;
}

/* After an object's member: 1 past a ',' (another member follows), 0 past the closing '}', -1 for
 * anything else. The compact forms first, as in colon(). */
static inline int member_end(const char **pp, const char *end)
{
    const char *p = *pp;
    if (__builtin_expect(end - p >= 2 && p[0] == ',' && p[1] == '"', 1)) {
        *pp = p + 1;
        return 1;
    }
    p = skip_ws(p, end);
    if (p < end && *p == ',') {
        *pp = skip_ws(p + 1, end);
        return 1;
    }
    if (p < end && *p == '}') {
        *pp = p + 1;
        return 0;
    }
    return -1;
}

/* Which field a member's name is, or -1 (a name the fast path does not take). Lengths first, and
 * the inline compare: a member name is short, and a call into memcmp cost more than the test. */
static inline int field_of(ef_bytes k)
{
    if (ef_bytes_same(k, EF_BYTES_LIT("context"))) return F_CONTEXT;
    for (int f = 0; f < F_CONTEXT; f++)
        if (ef_bytes_same(k, field_names[f].camel) || ef_bytes_same(k, field_names[f].snake)) return f;
    return -1;
}

int ef_eval_input_fast(ef_bytes body, ef_arena *a, ef_eval_input *in)
{
    const char *p = body.p, *end = body.p + body.n;
    ef_bytes str[F_COUNT] = {{"", 0}, {"", 0}, {"", 0}, {"", 0}, {"", 0}, {"", 0}};
    ef_kv kv[FAST_MAX_PAIRS];
    size_t n = 0, text = 0;
    unsigned seen = 0;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{') return 0;
    p = skip_ws(p, end);
    if (p < end && *p == '}') return 0; /* {}: rare, and the slow path's */
    int more;
    do {
        ef_bytes k;
        if (!ef_json_read_string(&p, end, a, &k) || !colon(&p, end)) return 0;
        int f = field_of(k);
        if (f < 0 || (seen & 1u << f)) return 0; /* unknown or repeated: the slow path's rules apply */
        seen |= 1u << f;
        if (f != F_CONTEXT) {
            if (!ef_json_read_string(&p, end, a, &str[f])) return 0;
        } else {
            if (p >= end || *p++ != '{') return 0;
            p = skip_ws(p, end);
            if (p < end && *p == '}') {
                p++;
            } else {
                int pairs;
                do {
                    if (n == FAST_MAX_PAIRS || !ef_json_read_string(&p, end, a, &kv[n].key) ||
                        !colon(&p, end) || !ef_json_read_string(&p, end, a, &kv[n].value))
                        return 0;
                    text += kv[n].key.n + kv[n].value.n;
                    n++;
                } while ((pairs = member_end(&p, end)) == 1);
                if (pairs < 0) return 0;
            }
        }
    } while ((more = member_end(&p, end)) == 1);
    if (more < 0) return 0;
    if (skip_ws(p, end) != end) return 0;
    text += str[F_FLAG].n + str[F_ENTITY].n;
    size_t size = ef_request_size(n, text);
    void *mem = size ? ef_arena_alloc(a, size) : NULL;
    if (!mem) return 0;
    memset(in, 0, sizeof(*in));
    in->request_id = str[F_REQUEST_ID];
    in->namespace_key = str[F_NAMESPACE];
    in->reference = str[F_REFERENCE];
    ef_context *block = ef_request_init(&in->req, mem, n, text, str[F_FLAG], str[F_ENTITY]);
    ef_request_add_pairs(block, kv, n);
    return 1;
}

static void put_segment_keys(ef_buf *b, const ef_matched_segments *m)
{
    ef_buf_putc(b, '[');
    bool first = true;
    for (int i = ef_matched_next(m, 0); i >= 0; i = ef_matched_next(m, i + 1)) {
        if (!first) ef_buf_putc(b, ',');
        first = false;
        ef_json_put_str(b, ef_matched_key(m, i));
    }
    ef_buf_putc(b, ']');
}

static void put_timing(ef_buf *b, ef_bytes request_id, const ef_eval_timing *t)
{
    char ts[EF_RFC3339_MAX], ms[32];
    ef_rfc3339_format(t->timestamp_ns, ts);
    ef_millis_format(t->duration_ns, ms);
    ef_buf_puts(b, ",\"requestId\":");
    ef_json_put_str(b, request_id);
    ef_buf_puts(b, ",\"requestDurationMillis\":");
    ef_buf_puts(b, ms);
    ef_buf_puts(b, ",\"timestamp\":\"");
    ef_buf_puts(b, ts);
    ef_buf_putc(b, '"');
}

void ef_write_variant_response(ef_buf *b, const ef_variant_result *r, ef_bytes request_id,
                               const ef_eval_timing *t)
{
    ef_buf_puts(b, "{\"match\":");
    ef_json_put_bool(b, r->match);
    ef_buf_puts(b, ",\"segmentKeys\":");
    put_segment_keys(b, &r->segments);
    ef_buf_puts(b, ",\"reason\":\"");
    ef_buf_puts(b, ef_reason_name(r->reason));
    ef_buf_puts(b, "\",\"variantKey\":");
    ef_json_put_str(b, r->variant_key);
    ef_buf_puts(b, ",\"variantAttachment\":");
    if (r->attachment_json.n) /* escaped at compile time (eval.h) */
        ef_buf_append(b, r->attachment_json.p, r->attachment_json.n);
    else
        ef_json_put_str(b, r->has_attachment ? r->attachment : (ef_bytes){"", 0});
    put_timing(b, request_id, t);
    ef_buf_puts(b, ",\"flagKey\":");
    ef_json_put_str(b, r->flag_key);
    ef_buf_putc(b, '}');
}

void ef_write_boolean_response(ef_buf *b, const ef_boolean_result *r, ef_bytes request_id,
                               const ef_eval_timing *t)
{
    ef_buf_puts(b, "{\"enabled\":");
    ef_json_put_bool(b, r->enabled);
    ef_buf_puts(b, ",\"reason\":\"");
    ef_buf_puts(b, ef_reason_name(r->reason));
    ef_buf_putc(b, '"');
    put_timing(b, request_id, t);
    ef_buf_puts(b, ",\"flagKey\":");
    ef_json_put_str(b, r->flag_key);
    ef_buf_puts(b, ",\"segmentKeys\":");
    put_segment_keys(b, &r->segments);
    ef_buf_putc(b, '}');
}

void ef_write_batch_variant(ef_buf *b, const ef_variant_result *r, ef_bytes request_id,
                            const ef_eval_timing *t)
{
    ef_buf_puts(b, "{\"type\":\"VARIANT_EVALUATION_RESPONSE_TYPE\",\"variantResponse\":");
    ef_write_variant_response(b, r, request_id, t);
    ef_buf_putc(b, '}');
}

void ef_write_batch_boolean(ef_buf *b, const ef_boolean_result *r, ef_bytes request_id,
                            const ef_eval_timing *t)
{
    ef_buf_puts(b, "{\"type\":\"BOOLEAN_EVALUATION_RESPONSE_TYPE\",\"booleanResponse\":");
    ef_write_boolean_response(b, r, request_id, t);
    ef_buf_putc(b, '}');
}

void ef_write_batch_not_found(ef_buf *b, ef_bytes flag_key, ef_bytes namespace_key)
{
    ef_buf_puts(b, "{\"type\":\"ERROR_EVALUATION_RESPONSE_TYPE\",\"errorResponse\":{\"flagKey\":");
    ef_json_put_str(b, flag_key);
    ef_buf_puts(b, ",\"namespaceKey\":");
    ef_json_put_str(b, namespace_key);
    ef_buf_puts(b, ",\"reason\":\"NOT_FOUND_ERROR_EVALUATION_REASON\"}}");
}

void ef_write_error(ef_buf *b, int code, ef_bytes message)
{
    ef_buf_printf(b, "{\"code\":%d,\"message\":", code);
    ef_json_put_str(b, message);
    ef_buf_puts(b, ",\"details\":[]}");
}

void ef_write_eval_error(ef_buf *b, ef_eval_status st, ef_bytes namespace_key, ef_bytes flag_key,
                         const ef_snapshot *snap)
{
    ef_buf msg;
    ef_buf_init(&msg);
    if (st == EF_EVAL_WRONG_TYPE) {
        const ef_flag *f = snap ? ef_snapshot_find_flag(snap, flag_key) : NULL;
        bool is_bool = f && ef_flag_get_type(f) == EF_FLAG_BOOLEAN;
        ef_buf_puts(&msg, is_bool ? "flag type BOOLEAN_FLAG_TYPE invalid"
                                  : "flag type VARIANT_FLAG_TYPE invalid");
        ef_write_error(b, EF_CODE_INVALID_ARGUMENT, (ef_bytes){msg.data, msg.len});
    } else {
        ef_buf_puts(&msg, "flag \"");
        ef_buf_append(&msg, namespace_key.p, namespace_key.n);
        ef_buf_putc(&msg, '/');
        ef_buf_append(&msg, flag_key.p, flag_key.n);
        ef_buf_puts(&msg, "\" not found");
        ef_write_error(b, EF_CODE_NOT_FOUND, (ef_bytes){msg.data, msg.len});
    }
    if (!ef_buf_ok(&msg)) b->failed = true;
    ef_buf_free(&msg);
}
