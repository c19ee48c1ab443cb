/*
 * hash.h - the table hash of short byte strings (flag keys, namespace keys, context keys) and an
 * inline equality for short strings.
 *
 * One function so that a request decoder can hash a key once and every table it is looked up in
 * (a snapshot's flags, a request's context) can use that hash. Not a bucketing hash (that is
 * CRC-32, fixed by Flipt). It has no secret seed, so a client can compute keys that collide:
 * every table it indexes is either built from the operator's data (flags, namespaces, routes),
 * where a client's key only chooses where a lookup starts, or a request's own context, which
 * gives its index up past EF_CONTEXT_MAX_PROBE probes and is scanned (eval/request.h).
 */
#ifndef EF_BASE_HASH_H
#define EF_BASE_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/bytes.h"

static inline uint64_t ef_hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    /* the last 0-7 bytes without a variable-length copy (a call): two overlapping loads, or three
     * bytes; the length is already in h, so the overlap cannot make two strings collide */
    uint64_t w = 0;
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        w = lo | (uint64_t)hi << 32;
    } else if (n > 0) {
        w = (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n / 2] << 8 |
            (uint64_t)(unsigned char)p[n - 1] << 16;
    }
    /* The finish mixes the high half back into the low bits twice (murmur3's finaliser): tables
     * index by the low bits, and after one multiply those depend only on the low bits of the
     * last word, so keys that differ only in their last bytes (flag-1, flag-2, ...) fell on a
     * few slots: with the finish of one shift before, 100,000 such flags took 11 probes per
     * lookup at a load of 0.38, now 1.3 (ideal: about 1.3). */
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* A set of byte strings, for finding a repeated key in one pass: slots is a zeroed array of cap
 * entries (a power of two, more than twice the keys to be added), owned by the caller. Adds key
 * and returns false, or returns true when it was added before. A key's bytes must stay put while
 * the set is in use. */
static inline bool ef_bytes_set_add(ef_bytes *slots, size_t cap, ef_bytes key)
{
    if (!key.p) key.p = ""; /* an empty slot is one with no pointer */
    for (size_t s = (size_t)ef_hash_bytes(key.p, key.n) & (cap - 1);; s = (s + 1) & (cap - 1)) {
        if (!slots[s].p) {
            slots[s] = key;
            return false;
        }
        if (slots[s].n == key.n && memcmp(slots[s].p, key.p, key.n) == 0) return true;
    }
}

/* The capacity ef_bytes_set_add needs for n keys. */
static inline size_t ef_bytes_set_cap(size_t n)
{
    size_t cap = 16;
    while (cap < n * 2 + 1) cap *= 2;
    return cap;
}

/* a[0..n) == b[0..n), inline: keys are short, and after a hash hit a call into memcmp costs more
 * than the comparison itself. Words at a time; the last word overlaps the one before it rather
 * than reading a byte past either string. */
static inline bool ef_mem_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8) {
        uint64_t x, y;
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y) return false;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, a, 4);
        memcpy(&y0, b, 4);
        memcpy(&x1, a + n - 4, 4);
        memcpy(&y1, b + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    /* 0-3 bytes: first, middle and last cover them all */
    return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
}

/* ef_bytes_eq with the inline compare, for hot paths (short names and keys). */
static inline bool ef_bytes_same(ef_bytes a, ef_bytes b)
{
    return a.n == b.n && ef_mem_eq(a.p, b.p, a.n);
}

/* ef_bytes_has_prefix and ef_bytes_has_suffix with the inline compare, for the same paths. */
static inline bool ef_bytes_prefix_same(ef_bytes s, ef_bytes pre)
{
    return s.n >= pre.n && ef_mem_eq(s.p, pre.p, pre.n);
}

static inline bool ef_bytes_suffix_same(ef_bytes s, ef_bytes suf)
{
    return s.n >= suf.n && ef_mem_eq(s.p + s.n - suf.n, suf.p, suf.n);
}

#endif
