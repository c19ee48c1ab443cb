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

/* Each string is read once: its bytes are copied into the request block while the scan for its
 * closing quote reads them, 16 at a time, so no string is scanned and then copied, and nothing
 * is staged between the body and the block. The block is therefore taken from the arena before
 * the body is read, sized by what the body's length allows (eval/request.h, ef_request_open):
 * decoded text is never longer than its source (16 bytes more, as whole blocks are stored), and
 * a context pair takes at least 6 bytes ("":"" and a ',' or '}'). */

/* JSON whitespace is four bytes, all below '!': one compare settles the usual case (none). */
static inline const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* Past whitespace, the byte c and whitespace again; NULL when c is not there. */
static inline const char *past(const char *p, const char *end, char c)
{
    p = skip_ws(p, end);
    if (p >= end || *p != c) return NULL;
    return skip_ws(p + 1, end);
}

/* Past a ':' and the opening quote of the string that follows, whitespace allowed around the
 * ':'; false when they are not there. Compact JSON (what clients send) has no whitespace, and is
 * settled by the first test. */
static inline __attribute__((always_inline)) bool colon_quote(const char **pp, const char *end)
{
    const char *p = *pp;
    if (__builtin_expect(end - p >= 2 && p[0] == ':' && p[1] == '"', 1)) {
        *pp = p + 2;
        return true;
    }
    p = past(p, end, ':');
    if (!p || p >= end || *p != '"') return false;
    *pp = p + 1;
    return true;
}

/* After an object's member: 1 past a ',' and the opening quote of the next member's name, 0 past
 * the closing '}', -1 for anything else. The compact forms first, as in colon_quote(). */
static inline __attribute__((always_inline)) int member_end(const char **pp, const char *end)
{
    const char *p = *pp;
    if (__builtin_expect(end - p >= 2 && p[0] == ',' && p[1] == '"', 1)) {
        *pp = p + 2;
        return 1;
    }
    p = skip_ws(p, end);
    if (p < end && *p == '}') {
        *pp = p + 1;
        return 0;
    }
    p = past(p, end, ',');
    if (!p || p >= end || *p != '"') return -1;
    *pp = p + 1;
    return 1;
}

/* Which field a member's name is, or -1 (a name the fast path does not take). By length first,
 * then the inline compare with the names of that length in field_names: a member name is short,
 * and a call into memcmp, or a loop over every name, cost more than the test. */
static inline int field_of(ef_bytes k)
{
#define IS(f, spelling) ef_bytes_same(k, field_names[f].spelling) ? f
    switch (k.n) {
    case 7: return IS(F_FLAG, camel) : ef_bytes_same(k, EF_BYTES_LIT("context")) ? F_CONTEXT : -1;
    case 8: return IS(F_ENTITY, camel) : IS(F_FLAG, snake) : -1;
    case 9: return IS(F_REQUEST_ID, camel) : IS(F_ENTITY, snake) : IS(F_REFERENCE, camel) : -1;
    case 10: return IS(F_REQUEST_ID, snake) : -1;
    case 12: return IS(F_NAMESPACE, camel) : -1;
    case 13: return IS(F_NAMESPACE, snake) : -1;
    default: return -1;
    }
#undef IS
}

/* A string read: where the body goes on (past its closing quote; NULL when the fast path does
 * not take it) and its decoded length. Returned by value, so that the position stays in a
 * register instead of going through memory at every string. */
typedef struct str_read {
    const char *p;
    size_t n;
} str_read;

typedef struct reader {
    const char *end;  /* the body's */
    uintptr_t last;   /* a block read at s <= last ends before the body's last byte; 0 for a
                       * body under 17 bytes, read from tail only */
    uintptr_t last64; /* 64 bytes can be read at p <= last64 (member_fast); 0 for a body under 64 */
    ef_arena *a;      /* for the JSON reader's own string code (escaped strings) */
    /* The body's last min(16, length) bytes, ending at tail + 16, then zeros: a block that
     * would not end before the body's last byte is read from here, so no load leaves the body,
     * the byte after any byte of a block can be read, and a string cut short by the body's end
     * meets a zero (a control byte) there. */
    char tail[32];
} reader;

/* A plain string byte is printable ASCII other than '"' and '\\' (ef_json_plain_run's rule). */
#if defined(__SSE2__)
/* The bytes of v that are not plain, bit i for byte i. Two compares: flipping bit 1 turns '"'
 * into ' ' and keeps the control bytes below it, so one signed compare above ' ' leaves out '"',
 * the control bytes and those >= 0x80 at once; '\\' has its own. */
static inline __attribute__((always_inline)) unsigned not_plain(__m128i v)
{
    /* the plain bytes' mask, inverted after pmovmskb: a "less than" would cost the compiler an
     * inverting compare more */
    __m128i above = _mm_cmpgt_epi8(_mm_xor_si128(v, _mm_set1_epi8(0x02)), _mm_set1_epi8(0x20));
    __m128i plain = _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')), above);
    return (unsigned)_mm_movemask_epi8(plain) ^ 0xffffu;
}
#endif

/* Copies 16 bytes from src to dst and returns a mask of those that are not plain. */
static inline __attribute__((always_inline)) unsigned copy_block(const char *src, char *dst)
{
#if defined(__SSE2__)
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)src);
    _mm_storeu_si128((__m128i *)(void *)dst, v);
    return not_plain(v);
#else
    memcpy(dst, src, 16);
    unsigned m = 0;
    for (unsigned i = 0; i < 16; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') m |= 1u << i;
    }
    return m;
#endif
}

/* What a one-letter escape stands for; 0 for \u (left to the JSON reader) and for what is no
 * escape. */
static const char unescaped[256] = {
    ['"'] = '"', ['\\'] = '\\', ['/'] = '/', ['b'] = '\b', ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t',
};

/* The string whose opening quote is at quote, whatever it holds, by the JSON reader's own code
 * (so with its rules for UTF-8 and \u escapes), copied to dst. Rare: out of line. */
static __attribute__((noinline)) str_read read_string_slow(const char *quote, const reader *r, char *dst)
{
    ef_bytes s;
    if (!ef_json_read_string(&quote, r->end, r->a, &s)) return (str_read){NULL, 0};
    if (s.n) memcpy(dst, s.p, s.n);
    return (str_read){quote, s.n};
}

/* Reads the string literal whose opening quote is at s[-1] into dst, decoded as ef_json_parse
 * decodes it. Plain bytes and one-letter escapes are done here; a string with anything else (\u,
 * UTF-8, a control byte, the body's end) is read again from its start by read_string_slow. dst
 * must have room for 16 bytes past the string's source length: whole blocks are stored before
 * the quote is looked for. */
static inline __attribute__((always_inline)) str_read read_string(const char *s, const reader *r,
                                                                  char *dst)
{
    const char *start = s;
    char *o = dst;
    for (;;) {
        const char *src = s;
        if (__builtin_expect((uintptr_t)s > r->last, 0)) src = r->tail + 16 - (r->end - s);
        unsigned m = copy_block(src, o);
        if (!m) {
            s += 16; /* never from tail: its zeros are not plain */
            o += 16;
            continue;
        }
        unsigned i = (unsigned)__builtin_ctz(m);
        char c = src[i];
        s += i;
        o += i;
        if (c == '"') return (str_read){s + 1, (size_t)(o - dst)};
        if (c == '\\' && (c = unescaped[(unsigned char)src[i + 1]]) != 0) {
            *o++ = c;
            s += 2;
            continue;
        }
        return read_string_slow(start - 1, r, dst);
    }
}

/* A member whose value is a string, read: where the body goes on (past the value's closing quote,
 * or past the ',"' that follows it when next is set; NULL when not read) and the lengths of the
 * key and the value, which are in dst one after the other. With p NULL, kn > 0 says that the key
 * alone was read, and ends kn bytes on (the value is no string, or there is whitespace). */
typedef struct member_read {
    const char *p;
    size_t kn, vn;
    bool next;     /* a ',' and the next member's opening quote followed, and p is past them */
    uint32_t hash; /* the key's ef_context_hash, when p is set */
} member_read;

/* The usual member, "key":"value" in compact JSON with a plain key of at most 16 bytes, read
 * from two 16-byte blocks whose masks find its quotes: the key is one block (stored whole, and
 * hashed by the caller from what was stored), and a plain value that ends within the same 32
 * bytes is stored as two more blocks without a loop (over what follows the key), with the ","
 * after it checked in passing. Another value is read by read_string. p is past the key's opening
 * quote; NULL when the member is not of that shape (the caller then reads it string by string;
 * dst may have been written). */
static inline __attribute__((always_inline)) member_read member_fast(const char *p, const reader *r,
                                                                     char *dst)
{
    member_read no = {NULL, 0, 0, false, 0};
#if defined(__SSE2__)
    if ((uintptr_t)p > r->last64) return no; /* every load below stays within p + 64 */
    __m128i k0 = _mm_loadu_si128((const __m128i *)(const void *)p);
    unsigned m = not_plain(k0);
    unsigned q1 = (unsigned)__builtin_ctz(m | 1u << 16); /* the key's closing quote, if plain */
    unsigned rest = m >> (q1 + 3);                       /* the value's bytes, after its quote */
    if (!rest) { /* the key or the value goes on into the second block (short members do not) */
        m |= not_plain(_mm_loadu_si128((const __m128i *)(const void *)(p + 16))) << 16;
        q1 = (unsigned)__builtin_ctz(m | 1u << 31);
        rest = m >> (q1 + 3 < 32 ? q1 + 3 : 31);
    }
    if (q1 > 16 || p[q1] != '"') return no;
    _mm_storeu_si128((__m128i *)(void *)dst, k0);
    if (memcmp(p + q1 + 1, ":\"", 2) != 0) /* a value that is no string: the key alone is read */
        return (member_read){NULL, q1, 0, false, 0};
    uint32_t hash = ef_context_hash_vec(k0, q1); /* from the register: see ef_context_hash_vec */
    const char *v = p + q1 + 3;
    unsigned q3 = rest ? (unsigned)__builtin_ctz(rest) : 32;
    if (q3 < 32 && v[q3] == '"') { /* then q3 < 29: v + q3 is in the blocks */
        _mm_storeu_si128((__m128i *)(void *)(dst + q1), _mm_loadu_si128((const __m128i *)(const void *)v));
        _mm_storeu_si128((__m128i *)(void *)(dst + q1 + 16), _mm_loadu_si128((const __m128i *)(const void *)(v + 16)));
        if (memcmp(v + q3 + 1, ",\"", 2) == 0) return (member_read){v + q3 + 3, q1, q3, true, hash};
        return (member_read){v + q3 + 1, q1, q3, false, hash};
    }
    str_read s = read_string(v, r, dst + q1); /* escapes, UTF-8, or longer */
    return s.p ? (member_read){s.p, q1, s.n, false, hash} : no;
#else
    (void)p, (void)r, (void)dst;
    return no;
#endif
}

/* A member whose value is a string, either way: member_fast or string by string. */
static inline __attribute__((always_inline)) member_read read_member(const char *p, const reader *r,
                                                                     char *dst)
{
    member_read m = member_fast(p, r, dst);
    if (m.p) return m;
    str_read k = m.kn ? (str_read){p + m.kn + 1, m.kn} : read_string(p, r, dst), v;
    if (!(p = k.p) || !colon_quote(&p, r->end) || !(v = read_string(p, r, dst + k.n)).p)
        return (member_read){NULL, 0, 0, false, 0};
    return (member_read){v.p, k.n, v.n, false, ef_context_hash_padded(dst, k.n)};
}

/* An entry as two 64-bit stores where the byte order allows: written field by field, the
 * compiler packed the four into one vector store with five shuffles. */
static inline __attribute__((always_inline)) void put_entry(ef_ctx_entry *e, uint32_t hash, size_t kn,
                                                          size_t vn, size_t off)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    _Static_assert(offsetof(ef_ctx_entry, key_len) == 4 && offsetof(ef_ctx_entry, off) == 12, "entry layout");
    uint64_t w0 = hash | (uint64_t)kn << 32, w1 = (uint32_t)vn | (uint64_t)off << 32;
    memcpy(e, &w0, 8);
    memcpy((char *)e + 8, &w1, 8);
#else
    *e = (ef_ctx_entry){hash, (uint32_t)kn, (uint32_t)vn, (uint32_t)off};
#endif
}

int ef_eval_input_fast(ef_bytes body, ef_arena *a, ef_eval_input *in)
{
    const char *p = body.p, *end = body.p + body.n;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{') return 0;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '"') return 0; /* {} (rare, and the slow path's) or not an object */
    size_t n_max = body.n / 6 < EF_CONTEXT_INDEXED ? body.n / 6 : EF_CONTEXT_INDEXED;
    ef_context *block = ef_request_open(a, n_max, body.n + 16);
    if (!block) return 0;
    ef_ctx_entry *e = ef_request_entries(block);
    char *text = ef_request_text(block), *o = text;
    reader r = {.end = end,
                .last = body.n > 16 ? (uintptr_t)(end - 17) : 0,
                .last64 = body.n >= 64 ? (uintptr_t)(end - 64) : 0,
                .a = a,
                .tail = {0}};
    size_t t = body.n < 16 ? body.n : 16;
    ef_copy_short(r.tail + 16 - t, end - t, t);

    ef_bytes str[F_CONTEXT] = {{"", 0}, {"", 0}, {"", 0}, {"", 0}, {"", 0}};
    size_t n = 0;
    unsigned seen = 0;
    for (;;) { /* p is past the opening quote of a member's name */
        /* The name is compared where the body has it when it is plain (member_fast read it, or
         * its key alone): reading it back from o, just stored over by the value's blocks, stalls
         * on a store the CPU cannot forward (as in ef_context_hash_vec). */
        const char *name = p;
        char *value = NULL;
        size_t name_n, value_n = 0;
        member_read m = member_fast(p, &r, o);
        if (m.p) {
            name_n = m.kn;
            value = o + m.kn;
            value_n = m.vn;
            p = m.p;
        } else {
            str_read k = m.kn ? (str_read){p + m.kn + 1, m.kn} : read_string(p, &r, o);
            if (!(p = k.p)) return 0;
            if (!m.kn) name = o; /* decoded: escapes, UTF-8 */
            name_n = k.n;
        }
        int f = field_of((ef_bytes){name, name_n});
        if (f < 0 || (seen & 1u << f)) return 0; /* unknown or repeated: the slow path's rules apply */
        seen |= 1u << f;
        if (f != F_CONTEXT) {
            if (!value) { /* over the name, which is not kept */
                str_read v;
                if (!colon_quote(&p, end) || !(p = (v = read_string(p, &r, o)).p)) return 0;
                value = o;
                value_n = v.n;
            }
            str[f] = (ef_bytes){value, value_n};
            o = value + value_n;
        } else {
            if (value || !(p = past(p, end, ':')) || p >= end || *p++ != '{') return 0;
            p = skip_ws(p, end);
            if (p < end && *p == '}') {
                p++;
            } else {
                if (p >= end || *p++ != '"') return 0;
                int pairs = 1;
                do { /* the key, and its value right after it in the text */
                    if (n == n_max) return 0;
                    m = read_member(p, &r, o);
                    if (!(p = m.p)) return 0;
                    put_entry(&e[n], m.hash, m.kn, m.vn, (size_t)(o - text));
                    ef_request_put(block, (uint32_t)n, (ef_bytes){o, m.kn}, m.hash);
                    o += m.kn + m.vn;
                    n++;
                } while (m.next || (pairs = member_end(&p, end)) == 1);
                if (pairs < 0) return 0;
                m.next = false;
            }
        }
        if (!m.next) { /* else member_fast has read the ',"' that follows */
            int more = member_end(&p, end);
            if (more < 0) return 0;
            if (!more) break;
        }
    }
    if (skip_ws(p, end) != end) return 0;
    in->request_id = str[F_REQUEST_ID];
    in->namespace_key = str[F_NAMESPACE];
    in->reference = str[F_REFERENCE];
    ef_request_close(&in->req, block, n, (size_t)(o - text), str[F_FLAG], str[F_ENTITY]);
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
