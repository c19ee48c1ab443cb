/*
 * rfc3339.c - the RFC 3339 reader Flipt's engine uses for DATETIME constraints (Rust chrono's
 * DateTime::parse_from_rfc3339), reduced to whole seconds since the Unix epoch because the engine
 * compares timestamps to the second.
 *
 * Accepted: YYYY-MM-DD, then 'T', 't' or a space, then HH:MM:SS, an optional '.' with one or more
 * digits (dropped by the engine; ef_rfc3339_parse_ns keeps the first nine), then 'Z', 'z' or
 * +HH:MM / -HH:MM. Anything else, a date-only string or a missing offset is rejected. A leap
 * second (:60) reads as :59, as chrono's timestamp does.
 */
#include <string.h>

#include "eval/model.h"

static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). Inlined, as fixed_words below: called,
 * their out-arguments went through memory (a DATETIME constraint reads a date per evaluation). */
static inline __attribute__((always_inline)) int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The fixed part, "YYYY-MM-DD?HH:MM:SS" (? checked by the caller), byte by byte. */
static bool fixed_scalar(const char *p, int *Y, int *M, int *D, int *h, int *mi, int *sec)
{
    return digits(p, 4, Y) && p[4] == '-' && digits(p + 5, 2, M) && p[7] == '-' &&
           digits(p + 8, 2, D) && digits(p + 11, 2, h) && p[13] == ':' && digits(p + 14, 2, mi) &&
           p[16] == ':' && digits(p + 17, 2, sec);
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Byte i of a little-endian word. */
#define BYTE_AT(w, i) ((unsigned)((w) >> (8 * (i))) & 0xFF)

/* The same, three words at a time: a DATETIME constraint reads its context value on every
 * evaluation, and the loop above was a tenth of the engine's instructions. A byte b is a digit
 * when x = b ^ '0' is below 10: its high nibble is 0 and x + 6 stays below 16. The + 6 cannot
 * carry into the next byte unless x >= 0xFA, which no digit and no expected separator gives (a
 * byte that does fails the separator check, or the nibble check itself). */
static inline __attribute__((always_inline)) bool fixed_words(const char *p, int *Y, int *M, int *D,
                                                              int *h, int *mi, int *sec)
{
    uint64_t w0, w1, w2;
    memcpy(&w0, p, 8);      /* "YYYY-MM-" */
    memcpy(&w1, p + 8, 8);  /* "DD?HH:MM": its first two bytes (? at 10 is the caller's) */
    memcpy(&w2, p + 11, 8); /* "HH:MM:SS" */
    const uint64_t d0 = 0x00FFFF00FFFFFFFFull, d1 = 0xFFFFull, d2 = 0xFFFF00FFFF00FFFFull;
    const uint64_t zeros = 0x3030303030303030ull, six = 0x0606060606060606ull,
                   hi = 0xF0F0F0F0F0F0F0F0ull;
    uint64_t x0 = w0 ^ zeros, x1 = w1 ^ zeros, x2 = w2 ^ zeros;
    if (((x0 | (x0 + six)) & hi & d0) | ((x1 | (x1 + six)) & hi & d1) |
        ((x2 | (x2 + six)) & hi & d2))
        return false;
    if ((w0 & ~d0) != 0x2D00002D00000000ull || (w2 & ~d2) != 0x00003A00003A0000ull) return false;
    /* Digits to numbers two at a time: with the separators zeroed, byte i of x * 10 + (x >> 8)
     * is digit i * 10 + digit i+1 (at most 99: no carry). */
    x0 &= d0;
    x1 &= d1;
    x2 &= d2;
    uint64_t t0 = x0 * 10 + (x0 >> 8), t1 = x1 * 10 + (x1 >> 8), t2 = x2 * 10 + (x2 >> 8);
    *Y = (int)(BYTE_AT(t0, 0) * 100 + BYTE_AT(t0, 2));
    *M = (int)BYTE_AT(t0, 5);
    *D = (int)BYTE_AT(t1, 0);
    *h = (int)BYTE_AT(t2, 0);
    *mi = (int)BYTE_AT(t2, 3);
    *sec = (int)BYTE_AT(t2, 6);
    return true;
}
#undef BYTE_AT
#else
#define fixed_words fixed_scalar
#endif

/* Inlined into each caller, so the engine's (no nanoseconds, words) does not sum a fraction it
 * drops. */
static inline __attribute__((always_inline)) bool parse(ef_bytes s, int64_t *secs, int32_t *nanos,
                                                        bool words)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s.p, *end = s.p + s.n;
    int Y, M, D, h, mi, sec;
    if (s.n < 20) return false; /* shortest form: 2006-01-02T15:04:05Z */
    if (!(words ? fixed_words(p, &Y, &M, &D, &h, &mi, &sec)
                : fixed_scalar(p, &Y, &M, &D, &h, &mi, &sec)))
        return false;
    if (p[10] != 'T' && p[10] != 't' && p[10] != ' ') return false;
    p += 19;
    int32_t ns = 0;
    if (p < end && *p == '.') {
        p++;
        const char *f = p;
        int32_t scale = 100000000;
        for (; p < end && *p >= '0' && *p <= '9'; p++, scale /= 10)
            if (nanos) ns += (*p - '0') * scale;
        if (p == f) return false;
    }
    if (p >= end) return false;
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (end - p < 6 || !digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om))
            return false;
        if (om >= 60) return false;
        off = oh * 3600 + om * 60;
        if (off >= 86400) return false;
        if (*p == '-') off = -off;
        p += 6;
    } else {
        return false;
    }
    if (p != end) return false;
    if (M < 1 || M > 12 || D < 1) return false;
    int dim = mdays[M - 1] + (M == 2 && leap(Y));
    if (D > dim) return false;
    if (h > 23 || mi > 59 || sec > 60) return false;
    if (sec == 60) sec = 59;
    *secs = days_from_civil(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec - off;
    if (nanos) *nanos = ns;
    return true;
}

bool ef_rfc3339_parse(ef_bytes s, int64_t *secs)
{
    return parse(s, secs, NULL, true);
}

bool ef_rfc3339_parse_ns(ef_bytes s, int64_t *secs, int32_t *nanos)
{
    return parse(s, secs, nanos, true);
}

bool ef_rfc3339_parse_scalar(ef_bytes s, int64_t *secs)
{
    return parse(s, secs, NULL, false);
}
