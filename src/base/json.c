/*
 * json.c - strict, length-preserving JSON reader (see json.h). Recursive descent with an explicit
 * depth limit so hostile input cannot exhaust the stack. Must never read past src+len.
 */
#include "base/json.h"

#include "base/buf.h"
#include "base/cnum.h"
#include "base/hash.h"

#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *src;
    const char *p;
    const char *end;
    ef_arena *arena;
    unsigned depth;
    unsigned max_depth;
    ef_json_error *err;
    bool failed;
} parser;

static void fail(parser *ps, const char *at, const char *msg)
{
    if (ps->failed) return;
    ps->failed = true;
    if (!ps->err) return;
    ps->err->offset = (size_t)(at - ps->src);
    ef_json_position(ps->src, (size_t)(ps->end - ps->src), ps->err->offset, &ps->err->line,
                     &ps->err->column);
    snprintf(ps->err->message, sizeof(ps->err->message), "%s", msg);
}

void ef_json_position(const char *src, size_t len, size_t offset, unsigned *line, unsigned *column)
{
    unsigned l = 1, c = 1;
    if (offset > len) offset = len;
    for (size_t i = 0; i < offset; i++) {
        if (src[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *column = c;
}

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            ps->p++;
        else
            break;
    }
}

bool ef_utf8_valid(const char *s, size_t n)
{
    if (n == 0) return true; /* s may be NULL then, and NULL + 0 is undefined */
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        while (end - p >= 8) { /* ASCII eight bytes at a time: most strings are nothing else */
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ull) break;
            p += 8;
        }
        if (p >= end) break;
        size_t k = ef_utf8_seq(p, (size_t)(end - p));
        if (!k) return false;
        p += k;
    }
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(parser *ps, const char *at)
{
    if (ps->end - at < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(at[i]);
        if (h < 0) return -1;
        v = (v << 4) | h;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string starting at the opening quote; fills *out. */
static bool parse_string(parser *ps, ef_bytes *out)
{
    const char *start = ++ps->p; /* after the quote */
    const char *q = start;
    bool escaped = false;
    /* First pass: validate and find the end. */
    while (q < ps->end) {
        q += ef_json_plain_run(q, ps->end);
        if (q >= ps->end) break;
        unsigned char c = (unsigned char)*q;
        if (c == '"') break;
        if (c < 0x20) {
            fail(ps, q, "control character in string");
            return false;
        }
        if (c == '\\') {
            escaped = true;
            if (q + 1 >= ps->end) {
                fail(ps, start - 1, "unterminated string");
                return false;
            }
            char e = q[1];
            if (e == 'u') {
                int v = read_hex4(ps, q + 2);
                if (v < 0) {
                    fail(ps, q, "invalid \\u escape");
                    return false;
                }
                if (v >= 0xD800 && v <= 0xDBFF) {
                    int lo = (q + 7 < ps->end && q[6] == '\\' && q[7] == 'u') ? read_hex4(ps, q + 8) : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        fail(ps, q, "lone surrogate in \\u escape");
                        return false;
                    }
                    q += 12;
                } else if (v >= 0xDC00 && v <= 0xDFFF) {
                    fail(ps, q, "lone surrogate in \\u escape");
                    return false;
                } else {
                    q += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                fail(ps, q, "invalid escape in string");
                return false;
            }
            q += 2;
            continue;
        }
        if (c < 0x80) {
            q++;
            continue;
        }
        size_t k = ef_utf8_seq((const unsigned char *)q, (size_t)(ps->end - q));
        if (!k) {
            fail(ps, q, "invalid UTF-8 in string");
            return false;
        }
        q += k;
    }
    if (q >= ps->end) {
        fail(ps, start - 1, "unterminated string");
        return false;
    }
    ps->p = q + 1;
    if (!escaped) {
        *out = (ef_bytes){start, (size_t)(q - start)};
        return true;
    }
    /* Second pass: decode escapes; the decoded form is never longer than the source. */
    char *o = ef_arena_alloc(ps->arena, (size_t)(q - start) + 1);
    if (!o) {
        fail(ps, start, "out of memory");
        return false;
    }
    size_t n = 0;
    for (const char *s = start; s < q;) {
        if (*s != '\\') {
            o[n++] = *s++;
            continue;
        }
        char e = s[1];
        switch (e) {
        case '"': o[n++] = '"'; s += 2; break;
        case '\\': o[n++] = '\\'; s += 2; break;
        case '/': o[n++] = '/'; s += 2; break;
        case 'b': o[n++] = '\b'; s += 2; break;
        case 'f': o[n++] = '\f'; s += 2; break;
        case 'n': o[n++] = '\n'; s += 2; break;
        case 'r': o[n++] = '\r'; s += 2; break;
        case 't': o[n++] = '\t'; s += 2; break;
        default: { /* 'u', validated above */
            unsigned v = (unsigned)read_hex4(ps, s + 2);
            s += 6;
            if (v >= 0xD800 && v <= 0xDBFF) {
                unsigned lo = (unsigned)read_hex4(ps, s + 2);
                s += 6;
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(o + n, v);
        }
        }
    }
    o[n] = '\0';
    *out = (ef_bytes){o, n};
    return true;
}

bool ef_json_read_string_any(const char **p, const char *end, ef_arena *a, ef_bytes *out)
{
    if (*p >= end || **p != '"') return false;
    parser ps = {.src = *p, .p = *p, .end = end, .arena = a};
    if (!parse_string(&ps, out)) return false;
    *p = ps.p;
    return true;
}

/* Reads an already validated JSON number of at most 15 significant digits and a decimal exponent
 * within 10^±22 without strtod: both the digits and the power of ten are exact doubles, so one
 * multiplication or division rounds correctly and gives what strtod gives (Clinger's fast path;
 * needs no excess precision, FLT_EVAL_METHOD 0). Anything else returns false for strtod. */
static bool fast_number(const char *s, const char *end, double *out)
{
#ifndef FLT_EVAL_METHOD
#error "float.h must be included: the fast path depends on FLT_EVAL_METHOD"
#endif
#if FLT_EVAL_METHOD == 0
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *p = s;
    bool neg = *p == '-';
    if (neg) p++;
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (m || *p != '0') digits++; /* leading zeros are not significant */
        m = m * 10 + (uint64_t)(*p - '0');
        if (digits > 15) return false;
    }
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
            if (m || *p != '0') digits++;
            m = m * 10 + (uint64_t)(*p - '0');
            exp10--;
            if (digits > 15) return false;
        }
    }
    if (p < end) { /* an exponent: short ones only */
        p++;
        bool eneg = p < end && *p == '-';
        if (p < end && (*p == '-' || *p == '+')) p++;
        int e = 0;
        for (; p < end; p++) {
            e = e * 10 + (*p - '0');
            if (e > 400) return false;
        }
        exp10 += eneg ? -e : e;
    }
    double d = (double)m;
    if (exp10 < -22 || exp10 > 22) return false;
    d = exp10 < 0 ? d / pow10[-exp10] : d * pow10[exp10];
    *out = neg ? -d : d;
    return true;
#else
    (void)s;
    (void)end;
    (void)out;
    return false;
#endif
}

static bool parse_number(parser *ps, ef_json *v)
{
    const char *s = ps->p, *q = s;
    if (q < ps->end && *q == '-') q++;
    if (q >= ps->end) goto bad;
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    } else {
        goto bad;
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || *q < '0' || *q > '9') goto bad;
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || *q < '0' || *q > '9') goto bad;
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (fast_number(s, q, &v->num)) {
        v->str = (ef_bytes){s, (size_t)(q - s)};
        v->type = EF_JSON_NUMBER;
        ps->p = q;
        return true;
    }
    {
        size_t n = (size_t)(q - s);
        char tmp[64];
        char *buf = n < sizeof(tmp) ? tmp : ef_arena_alloc(ps->arena, n + 1);
        if (!buf) {
            fail(ps, s, "out of memory");
            return false;
        }
        memcpy(buf, s, n);
        buf[n] = '\0';
        v->num = ef_strtod_c(buf, NULL); /* JSON's '.' in any locale */
        v->str = (ef_bytes){s, n};
        v->type = EF_JSON_NUMBER;
        ps->p = q;
        return true;
    }
bad:
    fail(ps, s, "invalid number");
    return false;
}

static ef_json *parse_value(parser *ps);

static ef_json *new_node(parser *ps, ef_json_type t)
{
    ef_json *v = ef_arena_alloc(ps->arena, sizeof(*v));
    if (!v) {
        fail(ps, ps->p, "out of memory");
        return NULL;
    }
    memset(v, 0, sizeof(*v));
    v->type = t;
    v->offset = (size_t)(ps->p - ps->src);
    return v;
}

static bool literal(parser *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, word, n) == 0) {
        ps->p += n;
        return true;
    }
    fail(ps, ps->p, "invalid literal");
    return false;
}

static ef_json *parse_container(parser *ps, bool is_object)
{
    ef_json *v = new_node(ps, is_object ? EF_JSON_OBJECT : EF_JSON_ARRAY);
    if (!v) return NULL;
    if (++ps->depth > ps->max_depth) {
        fail(ps, ps->p, "nesting too deep");
        return NULL;
    }
    char close = is_object ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    ef_json **tail = &v->child;
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return v;
    }
    for (;;) {
        skip_ws(ps);
        ef_bytes key = {0};
        if (is_object) {
            if (ps->p >= ps->end || *ps->p != '"') {
                fail(ps, ps->p, "expected string key");
                return NULL;
            }
            if (!parse_string(ps, &key)) return NULL;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                fail(ps, ps->p, "expected ':'");
                return NULL;
            }
            ps->p++;
        }
        ef_json *c = parse_value(ps);
        if (!c) return NULL;
        c->key = key;
        *tail = c;
        tail = &c->next;
        v->len++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            break;
        }
        fail(ps, ps->p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        return NULL;
    }
    ps->depth--;
    return v;
}

static ef_json *parse_value(parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, ps->p, "unexpected end of input");
        return NULL;
    }
    ef_json *v;
    switch (*ps->p) {
    case '{': return parse_container(ps, true);
    case '[': return parse_container(ps, false);
    case '"':
        v = new_node(ps, EF_JSON_STRING);
        if (!v || !parse_string(ps, &v->str)) return NULL;
        return v;
    case 't':
        v = new_node(ps, EF_JSON_TRUE);
        return v && literal(ps, "true", 4) ? v : NULL;
    case 'f':
        v = new_node(ps, EF_JSON_FALSE);
        return v && literal(ps, "false", 5) ? v : NULL;
    case 'n':
        v = new_node(ps, EF_JSON_NULL);
        return v && literal(ps, "null", 4) ? v : NULL;
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
            v = new_node(ps, EF_JSON_NUMBER);
            return v && parse_number(ps, v) ? v : NULL;
        }
        fail(ps, ps->p, "unexpected character");
        return NULL;
    }
}

ef_json *ef_json_parse(const char *src, size_t len, ef_arena *arena, const ef_json_opts *opts,
                       ef_json_error *err)
{
    parser ps = {.src = src, .p = src, .end = src + len, .arena = arena, .err = err};
    ps.max_depth = opts && opts->max_depth ? opts->max_depth : 512;
    ef_json *root = parse_value(&ps);
    if (root) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            fail(&ps, ps.p, "unexpected data after the JSON value");
            root = NULL;
        }
    }
    return ps.failed ? NULL : root;
}

const ef_json *ef_json_get(const ef_json *obj, const char *name)
{
    if (!obj || obj->type != EF_JSON_OBJECT) return NULL;
    size_t n = strlen(name);
    const ef_json *found = NULL;
    for (const ef_json *c = obj->child; c; c = c->next)
        if (ef_bytes_eq_lit(c->key, name, n)) found = c;
    return found;
}

const ef_json *ef_json_get2(const ef_json *obj, const char *camel, const char *snake)
{
    if (!obj || obj->type != EF_JSON_OBJECT) return NULL;
    size_t n1 = strlen(camel), n2 = strlen(snake);
    const ef_json *found = NULL;
    for (const ef_json *c = obj->child; c; c = c->next)
        if (ef_bytes_eq_lit(c->key, camel, n1) || ef_bytes_eq_lit(c->key, snake, n2)) found = c;
    return found;
}

bool ef_json_u64(const ef_json *v, uint64_t *out)
{
    if (!v || v->type != EF_JSON_NUMBER || v->str.n == 0 || v->str.n > 20) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < v->str.n; i++) {
        char c = v->str.p[i];
        if (c < '0' || c > '9') return false;
        unsigned d = (unsigned)(c - '0');
        if (x > (UINT64_MAX - d) / 10) return false;
        x = x * 10 + d;
    }
    *out = x;
    return true;
}

bool ef_json_i64(const ef_json *v, int64_t *out)
{
    if (!v || v->type != EF_JSON_NUMBER || v->str.n == 0) return false;
    bool neg = v->str.p[0] == '-';
    ef_json digits = *v;
    digits.str.p += neg;
    digits.str.n -= neg;
    uint64_t x;
    if (!ef_json_u64(&digits, &x)) return false;
    if (neg ? x > (uint64_t)INT64_MAX + 1 : x > (uint64_t)INT64_MAX) return false;
    *out = neg ? (int64_t)(0 - x) : (int64_t)x;
    return true;
}

void ef_json_write_compact(ef_buf *out, const ef_json *v, ef_bytes skip)
{
    switch (v->type) {
    case EF_JSON_NULL: ef_buf_puts(out, "null"); return;
    case EF_JSON_TRUE: ef_buf_puts(out, "true"); return;
    case EF_JSON_FALSE: ef_buf_puts(out, "false"); return;
    case EF_JSON_NUMBER: ef_buf_append(out, v->str.p, v->str.n); return;
    case EF_JSON_STRING: ef_json_put_str(out, v->str); return;
    case EF_JSON_ARRAY:
    case EF_JSON_OBJECT: {
        bool obj = v->type == EF_JSON_OBJECT, first = true;
        ef_buf_putc(out, obj ? '{' : '[');
        for (const ef_json *c = v->child; c; c = c->next) {
            if (obj && skip.n && ef_bytes_eq(c->key, skip)) continue;
            if (!first) ef_buf_putc(out, ',');
            first = false;
            if (obj) {
                ef_json_put_str(out, c->key);
                ef_buf_putc(out, ':');
            }
            ef_json_write_compact(out, c, skip);
        }
        ef_buf_putc(out, obj ? '}' : ']');
        return;
    }
    }
}

long ef_json_shadowed(const ef_json *obj, ef_arena *tmp, bool **shadowed)
{
    size_t n = obj->len;
    *shadowed = NULL;
    if (n == 0) return 0;
    const ef_json **members = ef_arena_alloc(tmp, n * sizeof(*members));
    size_t cap = ef_bytes_set_cap(n);
    ef_bytes *seen = ef_arena_calloc(tmp, cap * sizeof(*seen));
    bool *out = ef_arena_calloc(tmp, n * sizeof(*out));
    if (!members || !seen || !out) return -1;
    size_t i = 0;
    for (const ef_json *k = obj->child; k && i < n; k = k->next) members[i++] = k;
    long count = 0;
    while (i-- > 0) /* from the last: a key met before is overridden here */
        if (ef_bytes_set_add(seen, cap, members[i]->key)) {
            out[i] = true;
            count++;
        }
    *shadowed = out;
    return count;
}
