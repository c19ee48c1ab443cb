/*
 * json.h - a strict JSON reader that keeps byte lengths.
 *
 * Why not cJSON: strings here may contain NUL (a flag key or context value can be "a\u0000b"), and
 * C-string based DOMs silently truncate them. Nodes and decoded strings live in an ef_arena; strings
 * without escapes point straight into the source, so the source must outlive the tree.
 *
 * The reader accepts exactly RFC 8259: no comments, no trailing commas, no NaN, valid UTF-8 only,
 * no lone surrogates. It never aborts on bad input: it returns NULL and fills ef_json_error with the
 * byte offset, line and column of the problem.
 */
#ifndef EF_BASE_JSON_H
#define EF_BASE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/bytes.h"

typedef enum ef_json_type {
    EF_JSON_NULL,
    EF_JSON_FALSE,
    EF_JSON_TRUE,
    EF_JSON_NUMBER,
    EF_JSON_STRING,
    EF_JSON_ARRAY,
    EF_JSON_OBJECT,
} ef_json_type;

typedef struct ef_json ef_json;
struct ef_json {
    ef_json_type type;
    uint32_t len;     /* ARRAY/OBJECT: number of children */
    size_t offset;    /* byte offset of the value in the source, for error messages */
    ef_bytes key;     /* member name when the parent is an object */
    ef_bytes str;     /* STRING: decoded bytes; NUMBER: the literal text */
    double num;       /* NUMBER: the value as a double */
    ef_json *child;   /* ARRAY/OBJECT: first child */
    ef_json *next;    /* next sibling */
};

typedef struct ef_json_error {
    size_t offset;
    unsigned line, column; /* 1-based; column counts bytes */
    char message[96];
} ef_json_error;

typedef struct ef_json_opts {
    unsigned max_depth; /* 0 means 512 */
} ef_json_opts;

/* Reads the string literal at *p ('"' expected) exactly as ef_json_parse reads strings: escapes
 * decoded (into the arena when there are any; else *out points into the source), UTF-8 checked.
 * Advances *p past the closing quote; false, *p unchanged, for what ef_json_parse would refuse.
 * Inline for the common literal (printable ASCII, no escape: its bytes are its value), which a
 * request decoder meets several times per request; anything else goes to the reader's own code. */
bool ef_json_read_string_any(const char **p, const char *end, ef_arena *arena, ef_bytes *out);
static inline __attribute__((always_inline)) bool
ef_json_read_string(const char **pp, const char *end, ef_arena *arena, ef_bytes *out)
{
    const char *p = *pp;
    if (p < end && *p == '"') {
        const char *q = p + 1;
        q += ef_json_plain_run(q, end);
        if (q < end && *q == '"') {
            *out = (ef_bytes){p + 1, (size_t)(q - p - 1)};
            *pp = q + 1;
            return true;
        }
    }
    return ef_json_read_string_any(pp, end, arena, out);
}

/* Parses src[0..len). Returns the root, or NULL with *err filled (also on out-of-memory). */
ef_json *ef_json_parse(const char *src, size_t len, ef_arena *arena, const ef_json_opts *opts,
                       ef_json_error *err);

/* Object member by name; the last one wins when a name repeats (as JavaScript's JSON.parse does). */
const ef_json *ef_json_get(const ef_json *obj, const char *name);
/* Like ef_json_get, trying a camelCase then a snake_case spelling (Flipt accepts both). */
const ef_json *ef_json_get2(const ef_json *obj, const char *camel, const char *snake);
/* The members of object obj that a later member with the same key overrides: a reader that
 * keeps the last of a repeated key (Go's encoding/json, so Flipt's exporter) never sees them.
 * Sets (*shadowed)[i] for the i-th member, in an array from tmp (NULL when obj has no members).
 * Returns how many, or -1 when out of memory. Linear in the members' number and key lengths. */
long ef_json_shadowed(const ef_json *obj, ef_arena *tmp, bool **shadowed);

/* A NUMBER written as an integer (no fraction, no exponent) that fits the type: the exact value
 * of a position, a version or a time in ns, which a double cannot hold past 2^53 and a cast from an
 * out-of-range double would make undefined. False for anything else. */
bool ef_json_i64(const ef_json *v, int64_t *out);
bool ef_json_u64(const ef_json *v, uint64_t *out);

static inline bool ef_json_is_null(const ef_json *v)
{
    return v == NULL || v->type == EF_JSON_NULL;
}

/* Writes v back as compact JSON (numbers as their literal text), leaving out every object member
 * named skip at any depth (skip.n == 0: none). */
struct ef_buf;
void ef_json_write_compact(struct ef_buf *out, const ef_json *v, ef_bytes skip);

/* Line and column (1-based) of a byte offset in src. */
void ef_json_position(const char *src, size_t len, size_t offset, unsigned *line, unsigned *column);

/* Validates UTF-8 (no overlongs, no surrogates, max U+10FFFF). */
bool ef_utf8_valid(const char *s, size_t n);

#endif
