/*
 * clock.c - time and ids (see clock.h). getrandom never blocks after boot; if it fails, the UUID
 * falls back to time and address entropy rather than failing a request.
 */
#include "base/clock.h"
#include "base/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static int64_t clock_ns(clockid_t which)
{
    struct timespec ts;
    clock_gettime(which, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ef_clock_wall_ns(void) { return clock_ns(CLOCK_REALTIME); }
int64_t ef_clock_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t ef_clock_mono_coarse_ns(void) { return clock_ns(CLOCK_MONOTONIC_COARSE); }
int64_t ef_clock_wall_coarse_ns(void) { return clock_ns(CLOCK_REALTIME_COARSE); }

/* Per thread, so readers share nothing; sampled_at 0: never read (the monotonic clock does not
 * read 0 after boot's first instants, and a spurious read is harmless). */
static _Thread_local int64_t wall_offset, wall_sampled_at;

int64_t ef_clock_wall_at(int64_t mono_ns)
{
    if (!wall_sampled_at || mono_ns - wall_sampled_at >= 10000000 || mono_ns < wall_sampled_at) {
        wall_offset = ef_clock_wall_ns() - ef_clock_mono_ns();
        wall_sampled_at = mono_ns;
    }
    return mono_ns + wall_offset;
}

/* Civil date from days since 1970-01-01 (proleptic Gregorian). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* "00" to "99", side by side */
static const char two_digits[201] = "0001020304050607080910111213141516171819"
                                     "2021222324252627282930313233343536373839"
                                     "4041424344454647484950515253545556575859"
                                     "6061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

/* Exactly n digits of v (a fixed-width field of a timestamp: not ef_u64_dec_pad, which counts
 * digits first; this runs for every evaluation response). */
static char *put_digits(char *o, unsigned v, unsigned n)
{
    unsigned i = n;
    for (; i >= 2; v /= 100) { /* two digits a division: a timestamp's nine take five */
        i -= 2;
        memcpy(o + i, two_digits + 2 * (v % 100), 2);
    }
    if (i) o[0] = (char)('0' + v % 10);
    return o + n;
}

/* The date and time of day change once a second, and responses carry them thousands of times a
 * second: each thread keeps the text of the last second it formatted (a cache of a pure function,
 * so never stale: the key is the second itself). */
static _Thread_local int64_t rfc3339_secs = INT64_MIN;
static _Thread_local char rfc3339_text[20]; /* "YYYY-MM-DDTHH:MM:SS" */

/* A second since the epoch as a UTC calendar date and time of day (years clamped to 0-9999, the
 * four digits both formats have room for). */
typedef struct civil {
    int64_t days; /* since 1970-01-01 */
    int y;
    unsigned m, d;
    int64_t rem; /* seconds into the day */
} civil;

static civil civil_of(int64_t secs)
{
    civil c = {secs / 86400, 0, 0, 0, secs % 86400};
    if (c.rem < 0) {
        c.rem += 86400;
        c.days -= 1;
    }
    civil_from_days(c.days, &c.y, &c.m, &c.d);
    if (c.y < 0 || c.y > 9999) c.y = c.y < 0 ? 0 : 9999;
    return c;
}

/* "HH:MM:SS" */
static char *put_clock(char *o, int64_t rem)
{
    o = put_digits(o, (unsigned)(rem / 3600), 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)(rem / 60 % 60), 2);
    *o++ = ':';
    return put_digits(o, (unsigned)(rem % 60), 2);
}

size_t ef_http_date(int64_t unix_s, char out[EF_HTTP_DATE_LEN + 1])
{
    static const char wday[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"}; /* from 1970-01-01 */
    static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    civil c = civil_of(unix_s);
    char *o = out;
    memcpy(o, wday[((c.days % 7) + 7) % 7], 3);
    o[3] = ',';
    o[4] = ' ';
    o = put_digits(o + 5, c.d, 2);
    *o++ = ' ';
    memcpy(o, mon[c.m - 1], 3);
    o[3] = ' ';
    o = put_digits(o + 4, (unsigned)c.y, 4);
    *o++ = ' ';
    o = put_clock(o, c.rem);
    memcpy(o, " GMT", 5);
    return EF_HTTP_DATE_LEN;
}

static void rfc3339_second(int64_t secs, char *o)
{
    civil c = civil_of(secs);
    o = put_digits(o, (unsigned)c.y, 4);
    *o++ = '-';
    o = put_digits(o, c.m, 2);
    *o++ = '-';
    o = put_digits(o, c.d, 2);
    *o++ = 'T';
    put_clock(o, c.rem);
}

size_t ef_rfc3339_format(int64_t unix_ns, char *out)
{
    /* by hand, not strftime: this runs for every evaluation response */
    int64_t secs = unix_ns / 1000000000;
    int64_t nanos = unix_ns % 1000000000;
    if (nanos < 0) {
        nanos += 1000000000;
        secs -= 1;
    }
    if (secs != rfc3339_secs) {
        rfc3339_second(secs, rfc3339_text);
        rfc3339_secs = secs;
    }
    memcpy(out, rfc3339_text, 19);
    char *o = out + 19;
    if (nanos) {
        *o++ = '.';
        if (nanos % 1000000 == 0)
            o = put_digits(o, (unsigned)(nanos / 1000000), 3);
        else if (nanos % 1000 == 0)
            o = put_digits(o, (unsigned)(nanos / 1000), 6);
        else
            o = put_digits(o, (unsigned)nanos, 9);
    }
    *o++ = 'Z';
    *o = '\0';
    return (size_t)(o - out);
}

/* Request ids need to be unique, not secret: a per-thread xoshiro256** seeded once from
 * getrandom saves a system call per request. */
static _Thread_local uint64_t rng[4];
static _Thread_local int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
    if (!rng_seeded) {
        if (getrandom(rng, sizeof(rng), 0) != (ssize_t)sizeof(rng)) {
            uint64_t x = (uint64_t)ef_clock_mono_ns() ^ (uint64_t)(uintptr_t)&rng_seeded;
            for (int i = 0; i < 4; i++) rng[i] = x = x * 6364136223846793005ull + 1442695040888963407ull;
        }
        rng_seeded = 1;
    }
    uint64_t result = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

/* 32 hex digits cut into the 8-4-4-4-12 groups of a UUID's text, NUL-terminated. */
static void uuid_groups(const char d[32], char out[EF_UUID_LEN + 1])
{
    memcpy(out, d, 8);
    out[8] = '-';
    memcpy(out + 9, d + 8, 4);
    out[13] = '-';
    memcpy(out + 14, d + 12, 4);
    out[18] = '-';
    memcpy(out + 19, d + 16, 4);
    out[23] = '-';
    memcpy(out + 24, d + 20, 12);
    out[36] = '\0';
}

/* 16 bytes as a UUID's text: one per evaluation response. The 32 digits are made all at once
 * where SSE2 is (every x86-64), from a register (see ef_uuid_v4). */
#if defined(__SSE2__)
static void uuid_format_vec(__m128i v, char out[EF_UUID_LEN + 1])
{
    char d[32];
    const __m128i low = _mm_set1_epi8(0x0F);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low), lo = _mm_and_si128(v, low);
    __m128i n0 = _mm_unpacklo_epi8(hi, lo), n1 = _mm_unpackhi_epi8(hi, lo); /* nibbles in order */
    /* '0' + n, and 'a' - '0' - 10 more for the nibbles above 9 */
    const __m128i nine = _mm_set1_epi8(9), zero = _mm_set1_epi8('0'), gap = _mm_set1_epi8('a' - '0' - 10);
    n0 = _mm_add_epi8(_mm_add_epi8(n0, zero), _mm_and_si128(_mm_cmpgt_epi8(n0, nine), gap));
    n1 = _mm_add_epi8(_mm_add_epi8(n1, zero), _mm_and_si128(_mm_cmpgt_epi8(n1, nine), gap));
    _mm_storeu_si128((__m128i *)(void *)d, n0);
    _mm_storeu_si128((__m128i *)(void *)(d + 16), n1);
    uuid_groups(d, out);
}

static void uuid_format(const unsigned char r[16], char out[EF_UUID_LEN + 1])
{
    uuid_format_vec(_mm_loadu_si128((const __m128i *)(const void *)r), out);
}
#else
static void uuid_format(const unsigned char r[16], char out[EF_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    char d[32];
    for (int i = 0; i < 16; i++) {
        d[2 * i] = hex[r[i] >> 4];
        d[2 * i + 1] = hex[r[i] & 15];
    }
    uuid_groups(d, out);
}
#endif

void ef_uuid_v4(char out[EF_UUID_LEN + 1])
{
#if defined(__SSE2__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* in registers: the bytes stored as two words, set bit by bit and read back as one vector
     * would wait on stores the CPU cannot forward into one load. Byte 6 is a's seventh, byte 8
     * b's first. */
    uint64_t a = rng_next(), b = rng_next();
    a = (a & ~(0xF0ull << 48)) | 0x40ull << 48; /* version 4 */
    b = (b & ~0xC0ull) | 0x80ull;               /* variant 10 */
    uuid_format_vec(_mm_set_epi64x((long long)b, (long long)a), out);
#else
    unsigned char r[16];
    uint64_t a = rng_next(), b = rng_next();
    memcpy(r, &a, 8);
    memcpy(r + 8, &b, 8);
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);
    uuid_format(r, out);
#endif
}

void ef_uuid_v7(char out[EF_UUID_LEN + 1], int64_t wall_ns)
{
    unsigned char r[16];
    uint64_t ms = (uint64_t)wall_ns / 1000000, sub = ((uint64_t)wall_ns % 1000000) * 4096 / 1000000;
    uint64_t b = rng_next();
    for (int i = 0; i < 6; i++)
        r[i] = (unsigned char)(ms >> (40 - 8 * i));
    r[6] = (unsigned char)(0x70 | (sub >> 8));
    r[7] = (unsigned char)sub;
    memcpy(r + 8, &b, 8);
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);
    uuid_format(r, out);
}

size_t ef_millis_format(int64_t ns, char *out)
{
    char *o = out;
    if (ns < 0) {
        *o++ = '-';
        ns = -ns;
    }
    uint64_t whole = (uint64_t)ns / 1000000, frac = (uint64_t)ns % 1000000;
    o += ef_u64_dec(whole, o);
    if (frac) {
        *o++ = '.';
        o = put_digits(o, (unsigned)frac, 6);
        while (o[-1] == '0') o--; /* frac has a digit other than 0: this stops before the '.' */
    }
    *o = '\0';
    return (size_t)(o - out);
}

int ef_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}
