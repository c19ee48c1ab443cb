/*
 * bytes.h - byte strings with an explicit length.
 *
 * Flag keys, entity ids and context values may contain NUL bytes and any UTF-8, so everything that
 * hashes or compares them goes through ef_bytes, never through C-string functions. An ef_bytes never
 * owns its memory: whoever made it (an arena, a request buffer, a snapshot) keeps it alive.
 */
#ifndef EF_BASE_BYTES_H
#define EF_BASE_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef struct ef_bytes {
    const char *p;
    size_t n;
} ef_bytes;

#define EF_BYTES_LIT(s) ((ef_bytes){(s), sizeof(s) - 1})

/* n bytes, w <= n <= 2w, as two moves of w bytes that overlap in the middle (w a constant once
 * inlined: 4 or 8, so each move is one load and one store). */
static inline void ef_copy_ends(char *dst, const char *src, size_t n, size_t w)
{
    uint64_t a = 0, b = 0;
    memcpy(&a, src, w);
    memcpy(&b, src + n - w, w);
    memcpy(dst, &a, w);
    memcpy(dst + n - w, &b, w);
}

/* memcpy for the short strings requests and responses are made of, inline: two overlapping moves
 * of the widest word that fits (both stay inside [dst, dst + n)), and the library call only past
 * 16 bytes. A call into memcpy costs more than the copy of a key or an id. */
static inline void ef_copy_short(char *dst, const char *src, size_t n)
{
    if (n > 16) {
        memcpy(dst, src, n);
    } else if (n >= 8) {
        ef_copy_ends(dst, src, n, 8);
    } else if (n >= 4) {
        ef_copy_ends(dst, src, n, 4);
    } else if (n > 0) { /* 1-3 bytes: first, middle, last */
        char a = src[0], b = src[n / 2], c = src[n - 1];
        dst[0] = a;
        dst[n / 2] = b;
        dst[n - 1] = c;
    }
}

/* How many bytes from p on (at most end - p) are plain printable ASCII other than '"' and '\\':
 * the bytes a JSON string holds and writes as they are. Many bytes at a time, because the JSON
 * reader and writer spend most of their time on runs of such bytes (keys, ids, names). */
static inline __attribute__((always_inline)) size_t ef_json_plain_run(const char *p, const char *end)
{
    const char *s = p;
#if defined(__SSE2__)
    /* Sixteen at a time where SSE2 is (every x86-64): a signed compare with 0x20 flags both the
     * control bytes and those >= 0x80, so three compares cover all four rules. */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - s >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                   _mm_cmplt_epi8(v, space));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m) return (size_t)(s - p) + (size_t)__builtin_ctz(m);
        s += 16;
    }
#endif
    const unsigned long long ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - s >= 8) {
        unsigned long long w;
        memcpy(&w, s, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w); /* the lowest flag below must belong to the first byte */
#endif
        unsigned long long q = w ^ (ones * '"'), b = w ^ (ones * '\\');
        /* a flag in a byte's high bit for: a byte >= 0x80, < 0x20, == '"', == '\\'. Each test
         * may also flag bytes after a true hit (borrows run upward), never before one. */
        unsigned long long hit = (w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) |
                                  ((b - ones) & ~b)) & highs;
        if (hit) return (size_t)(s - p) + (size_t)(__builtin_ctzll(hit) >> 3);
        s += 8;
    }
    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
        s++;
    }
    return (size_t)(s - p);
}

/* Length of the UTF-8 sequence at s (1..4, 1 for ASCII), or 0 if it is not valid (overlong,
 * surrogate, past U+10FFFF, or cut short by left): the one rule the JSON reader checks and the
 * writer replaces by U+FFFD. */
static inline size_t ef_utf8_seq(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned cp, min;
    if ((c & 0xE0) == 0xC0) {
        n = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (left < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static inline ef_bytes ef_bytes_of(const char *cstr)
{
    return (ef_bytes){cstr, cstr ? strlen(cstr) : 0};
}

static inline bool ef_bytes_eq(ef_bytes a, ef_bytes b)
{
    /* Comparing the first byte before calling memcmp settles most mismatches inline: keys and
     * property names usually differ in length or first byte. */
    return a.n == b.n && (a.n == 0 || (a.p[0] == b.p[0] && memcmp(a.p, b.p, a.n) == 0));
}

static inline bool ef_bytes_eq_lit(ef_bytes a, const char *lit, size_t n)
{
    return a.n == n && memcmp(a.p, lit, n) == 0;
}

static inline bool ef_bytes_has_prefix(ef_bytes s, ef_bytes pre)
{
    return s.n >= pre.n && (pre.n == 0 || memcmp(s.p, pre.p, pre.n) == 0);
}

static inline bool ef_bytes_has_suffix(ef_bytes s, ef_bytes suf)
{
    return s.n >= suf.n && (suf.n == 0 || memcmp(s.p + s.n - suf.n, suf.p, suf.n) == 0);
}

/* True if needle occurs in hay (an empty needle occurs everywhere). A context value is short: up
 * to 64 bytes a scan for the first byte beats memmem's setup (120 instructions a call on the
 * benchmark's workload); longer ones keep memmem's linear worst case. */
static inline bool ef_bytes_contains(ef_bytes hay, ef_bytes needle)
{
    if (needle.n == 0) return true;
    if (needle.n > hay.n) return false;
    if (hay.n <= 64) {
        for (size_t i = 0, last = hay.n - needle.n; i <= last; i++)
            if (hay.p[i] == needle.p[0] && memcmp(hay.p + i + 1, needle.p + 1, needle.n - 1) == 0)
                return true;
        return false;
    }
    return memmem(hay.p, hay.n, needle.p, needle.n) != NULL;
}

/* Whether k is a key in Flipt's key alphabet ([-_,A-Za-z0-9]+): every namespace, flag, segment
 * and variant key a store accepts is. */
static inline bool ef_key_valid(ef_bytes k)
{
    if (k.n == 0) return false;
    for (size_t i = 0; i < k.n; i++) {
        unsigned char c = (unsigned char)k.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == ','))
            return false;
    }
    return true;
}

#endif
