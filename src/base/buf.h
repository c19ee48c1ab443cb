/*
 * buf.h - a growable byte buffer and the JSON writer built on it.
 *
 * Responses on hot paths (evaluation, snapshots, metrics) are written straight into a reused buffer
 * instead of building a DOM. Every append either succeeds or marks the buffer as failed (out of
 * memory); callers check ef_buf_ok once at the end instead of after every call.
 */
#ifndef EF_BASE_BUF_H
#define EF_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/bytes.h"

typedef struct ef_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
} ef_buf;

void ef_buf_init(ef_buf *b);
void ef_buf_free(ef_buf *b);
static inline void ef_buf_clear(ef_buf *b)
{
    b->len = 0;
    b->failed = false;
}
/* Empties b, and gives its memory back when it holds more than keep bytes: a long-lived buffer
 * that once carried a dump (140 MB for 100,000 flags) should not keep that much for good. */
static inline void ef_buf_clear_shrink(ef_buf *b, size_t keep)
{
    if (b->cap > keep) {
        ef_buf_free(b);
        ef_buf_init(b);
    } else {
        ef_buf_clear(b);
    }
}
/* What a buffer reused between requests or events keeps (ef_buf_clear_shrink). */
#define EF_BUF_KEEP ((size_t)1 << 20)
static inline bool ef_buf_ok(const ef_buf *b)
{
    return !b->failed;
}
bool ef_buf_reserve_slow(ef_buf *b, size_t extra);
/* Inline: the writers of JSON and metrics call these for every few bytes they write. */
static inline bool ef_buf_reserve(ef_buf *b, size_t extra)
{
    /* keep one byte for the NUL terminator */
    return (!b->failed && b->cap - b->len > extra) || ef_buf_reserve_slow(b, extra);
}
static inline void ef_buf_append(ef_buf *b, const void *p, size_t n)
{
    if (!ef_buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}
static inline void ef_buf_puts(ef_buf *b, const char *s)
{
    ef_buf_append(b, s, strlen(s));
}
static inline void ef_buf_putc(ef_buf *b, char c)
{
    if (!ef_buf_reserve(b, 1)) return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}
void ef_buf_printf(ef_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Moves from's bytes to the end of b and empties from. An empty b trades memory with from
 * instead, so the move costs the same for 8 MiB as for 8 bytes: a stream's fill() takes a
 * subscriber's queue this way, under a lock that the primary's writer may be waiting for. A
 * failed from fails b, since what it holds has a hole. */
void ef_buf_take(ef_buf *b, ef_buf *from);

/* A body received in pieces (a libcurl write callback) into out, at most max bytes: past that the
 * callback returns 0, which aborts the transfer, and over says why. */
typedef struct ef_buf_sink {
    ef_buf *out;
    size_t max;
    bool over;
} ef_buf_sink;
size_t ef_buf_sink_write(char *p, size_t size, size_t n, void *sink);

/* JSON pieces. Strings are escaped as JSON requires; invalid UTF-8 becomes U+FFFD so the output
 * is always valid JSON. */
void ef_json_put_str(ef_buf *b, ef_bytes s);
static inline void ef_json_put_cstr(ef_buf *b, const char *s)
{
    ef_json_put_str(b, ef_bytes_of(s));
}
void ef_json_put_bool(ef_buf *b, bool v);
/* An optional string member of an object being written: `"name":"v"`, after a comma unless *first
 * (then cleared); nothing at all when v is empty. */
void ef_json_put_member_opt(ef_buf *b, const char *name, ef_bytes v, bool *first);
void ef_json_put_int(ef_buf *b, int64_t v);
void ef_json_put_uint(ef_buf *b, uint64_t v);
/* Shortest text that reads back as the same double (like Go's strconv 'g' -1 and JavaScript). */
/* Writes v in decimal into out (at least 21 bytes, NUL-terminated) without printf; returns the
 * length. The _pad form writes at least width digits, zeros first (a width above 20 counts as
 * 20, so the 21 bytes always suffice); the i64 form a '-' first when v < 0 (22 bytes). The
 * project's decimal writer (clock.c keeps its own for a timestamp's fixed-width fields). */
size_t ef_u64_dec(uint64_t v, char *out);
size_t ef_i64_dec(int64_t v, char *out);
static inline size_t ef_u64_dec_pad(uint64_t v, unsigned width, char *out)
{
    size_t n = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    if (n < width) n = width < 20 ? width : 20;
    out[n] = '\0';
    for (size_t i = n; i-- > 0; v /= 10)
        out[i] = (char)('0' + v % 10);
    return n;
}
void ef_json_put_double(ef_buf *b, double v);
/* Shortest text that reads back as the same float32 (how Flipt prints rollout percentages). */
void ef_json_put_float(ef_buf *b, float v);
/* The float a reader of ef_json_put_float(v)'s text gets when it parses a double and narrows it,
 * as the engine's compile does: a value compiled without the text is the value compiled from it. */
float ef_json_float_read(float v);

#endif
