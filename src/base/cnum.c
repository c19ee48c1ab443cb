/*
 * cnum.c - locale-independent number conversions (see cnum.h).
 *
 * The "C" locale object is created once per process (pthread_once) and never freed: it is
 * immutable, so sharing it between threads and clients is safe and is not hidden mutable state.
 * If it cannot be created (out of memory at the first call), the functions fall back to the plain
 * C library calls, which are right whenever the process runs in the "C" locale anyway.
 */
#include "base/cnum.h"

#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t c_once = PTHREAD_ONCE_INIT;
static locale_t c_locale = (locale_t)0;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t c_loc(void)
{
    pthread_once(&c_once, c_locale_init);
    return c_locale;
}

double ef_strtod_c(const char *s, char **end)
{
    locale_t l = c_loc();
    return l ? strtod_l(s, end, l) : strtod(s, end);
}

float ef_strtof_c(const char *s, char **end)
{
    locale_t l = c_loc();
    return l ? strtof_l(s, end, l) : strtof(s, end);
}

int ef_vsnprintf_c(char *out, size_t n, const char *fmt, va_list ap)
{
    locale_t l = c_loc();
    locale_t old = l ? uselocale(l) : (locale_t)0;
    int r = vsnprintf(out, n, fmt, ap);
    if (old) uselocale(old);
    return r;
}

int ef_snprintf_c(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = ef_vsnprintf_c(out, n, fmt, ap);
    va_end(ap);
    return r;
}

int ef_ascii_ncasecmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y - 'A' + 'a');
        if (x != y) return x < y ? -1 : 1;
        if (!x) return 0;
    }
    return 0;
}

bool ef_parse_u64_n(const char *s, size_t n, uint64_t *out)
{
    if (!s || !n) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool ef_parse_u64(const char *s, uint64_t *out)
{
    return s && ef_parse_u64_n(s, strlen(s), out);
}
