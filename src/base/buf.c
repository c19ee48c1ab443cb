/*
 * buf.c - growable buffer and JSON writer (see buf.h). Never writes past cap; a failed buffer stays
 * failed until cleared.
 */
#include "base/buf.h"

#include "base/cnum.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ef_buf_init(ef_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

void ef_buf_free(ef_buf *b)
{
    free(b->data);
    ef_buf_init(b);
}

void ef_buf_take(ef_buf *b, ef_buf *from)
{
    if (from->failed) {
        b->failed = true;
    } else if (b->len == 0 && !b->failed) {
        ef_buf t = *b;
        *b = *from;
        *from = t;
    } else {
        ef_buf_append(b, from->data, from->len);
    }
    ef_buf_clear(from);
}

bool ef_buf_reserve_slow(ef_buf *b, size_t extra)
{
    if (b->failed) return false;
    if (b->cap - b->len > extra) return true; /* keep one byte for a NUL terminator */
    size_t need = b->len + extra + 1;
    if (need < b->len) {
        b->failed = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}


size_t ef_buf_sink_write(char *p, size_t size, size_t n, void *sink)
{
    ef_buf_sink *k = sink;
    size_t len = size * n;
    if (k->out->len > k->max || len > k->max - k->out->len) {
        k->over = true;
        return 0;
    }
    ef_buf_append(k->out, p, len);
    return ef_buf_ok(k->out) ? len : 0;
}

void ef_buf_printf(ef_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    /* the "C" locale: JSON, metrics and logs never write a decimal comma */
    int n = ef_vsnprintf_c(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(tmp)) {
        ef_buf_append(b, tmp, (size_t)n);
        return;
    }
    if (!ef_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    ef_vsnprintf_c(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ef_json_put_str(ef_buf *b, ef_bytes s)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX (6 bytes) or U+FFFD (3 bytes). */
    if (!ef_buf_reserve(b, s.n * 6 + 2)) return;
    char *o = b->data + b->len;
    *o++ = '"';
    /* an empty ef_bytes may carry a NULL pointer, and NULL + 0 is undefined behaviour */
    const unsigned char *p = s.n ? (const unsigned char *)s.p : (const unsigned char *)"", *end = p + s.n;
    while (p < end) {
        size_t plain = ef_json_plain_run((const char *)p, (const char *)end);
        ef_copy_short(o, (const char *)p, plain);
        o += plain;
        p += plain;
        if (p >= end) break;
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t k = ef_utf8_seq(p, (size_t)(end - p));
            if (k) {
                memcpy(o, p, k);
                o += k;
                p += k;
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3);
                o += 3;
                p++;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        p++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
}

void ef_json_put_bool(ef_buf *b, bool v)
{
    if (v)
        ef_buf_append(b, "true", 4);
    else
        ef_buf_append(b, "false", 5);
}

void ef_json_put_int(ef_buf *b, int64_t v)
{
    ef_buf_printf(b, "%lld", (long long)v);
}

void ef_json_put_uint(ef_buf *b, uint64_t v)
{
    char d[24]; /* not printf: every flag of a snapshot document writes one */
    ef_buf_append(b, d, ef_u64_dec(v, d));
}

/* Writes the shortest decimal that reads back as v, in the style of JavaScript's Number#toString
 * (plain digits for exponents -7..20, else d.ddde±x). sig is the precision that round-trips. */
static void put_shortest(ef_buf *b, double v, int sig)
{
    char e[40];
    ef_snprintf_c(e, sizeof(e), "%.*e", sig - 1, v); /* -d.ddde±x, whatever the locale */
    const char *p = e;
    char out[64];
    size_t n = 0;
    if (*p == '-') out[n++] = *p++;
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (exp >= -7 && exp < 21) {
        if (exp < 0) {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = -1; i > exp; i--) out[n++] = '0';
            for (size_t i = 0; i < nd; i++) out[n++] = digits[i];
        } else {
            for (int i = 0; i <= exp; i++) out[n++] = (size_t)i < nd ? digits[i] : '0';
            if (nd > (size_t)exp + 1) {
                out[n++] = '.';
                for (size_t i = (size_t)exp + 1; i < nd; i++) out[n++] = digits[i];
            }
        }
        ef_buf_append(b, out, n);
        return;
    }
    out[n++] = digits[0];
    if (nd > 1) {
        out[n++] = '.';
        for (size_t i = 1; i < nd; i++) out[n++] = digits[i];
    }
    n += (size_t)ef_snprintf_c(out + n, sizeof(out) - n, "e%+d", exp);
    ef_buf_append(b, out, n);
}

/* Writes v as a plain decimal with k <= 9 decimals when one reads back as v, without printf: most
 * doubles edgeflag writes are such (a percentage, milliseconds from a nanosecond clock). m / 10^k
 * with m < 2^53 and 10^k exact is one correctly rounded division, so it is the double strtod would
 * read from "m e-k" (needs no excess precision: FLT_EVAL_METHOD 0). While |v| * 10^k < 2^52 a
 * double's spacing near v is below 10^-k, so at most one k-decimal reads back as v, which is
 * therefore the shortest form put_shortest would write: the first k that works is the answer. */
static bool put_few_decimals(ef_buf *b, double v)
{
#ifndef FLT_EVAL_METHOD
#error "float.h must be included: the fast path depends on FLT_EVAL_METHOD"
#endif
#if FLT_EVAL_METHOD == 0
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    double a = fabs(v);
    if (a < 1e-9) return false;
    for (unsigned k = 0; k < sizeof(pow10) / sizeof(pow10[0]); k++) {
        double scaled = a * pow10[k];
        if (scaled >= 4503599627370496.0) return false; /* 2^52 */
        uint64_t m = (uint64_t)(scaled + 0.5);
        if ((double)m / pow10[k] != a) continue;
        uint64_t unit = (uint64_t)pow10[k];
        char d[48];
        size_t n = 0;
        if (v < 0) d[n++] = '-';
        n += ef_u64_dec(m / unit, d + n);
        if (k) {
            d[n++] = '.';
            n += ef_u64_dec_pad(m % unit, k, d + n);
        }
        ef_buf_append(b, d, n);
        return true;
    }
#else
    (void)b;
    (void)v;
#endif
    return false;
}

/* Two digits per division, from the right, into a scratch buffer: a change-log entry writes a
 * 19-digit timestamp per row, where the padded form's two passes of one digit each cost four
 * times as many instructions. */
size_t ef_u64_dec(uint64_t v, char *out)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char tmp[20];
    char *p = tmp + sizeof(tmp);
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    size_t n = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

size_t ef_i64_dec(int64_t v, char *out)
{
    if (v >= 0) return ef_u64_dec((uint64_t)v, out);
    out[0] = '-';
    return 1 + ef_u64_dec((uint64_t)0 - (uint64_t)v, out + 1);
}

void ef_json_put_double(ef_buf *b, double v)
{
    if (!isfinite(v)) {
        ef_buf_append(b, "0", 1);
        return;
    }
    if (v == 0) {
        ef_buf_append(b, "0", 1);
        return;
    }
    if (put_few_decimals(b, v)) return;
    /* The shortest decimal that reads back as v has at most 17 significant digits. When one of 15
     * or fewer does, the correctly rounded 15-digit form is that decimal padded with zeros (15
     * digits are spaced wider than doubles, so nothing else rounds to v that closely), and
     * put_shortest drops the zeros: so 15, 16, 17 are the only precisions worth trying. */
    char tmp[40];
    int prec = 15;
    for (; prec < 17; prec++) {
        ef_snprintf_c(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (ef_strtod_c(tmp, NULL) == v) break;
    }
    put_shortest(b, v, prec);
}

/* The significant digits ef_json_put_float writes v with (finite, not a small whole number): the
 * fewest whose "%.*e" text reads back as v, 9 at most. */
static int float_sig(float v)
{
    char tmp[40];
    int prec = 1;
    for (; prec < 9; prec++) {
        ef_snprintf_c(tmp, sizeof(tmp), "%.*e", prec - 1, (double)v);
        if (ef_strtof_c(tmp, NULL) == v) break;
    }
    return prec;
}

void ef_json_put_float(ef_buf *b, float v)
{
    if (!isfinite(v) || v == 0) {
        ef_buf_append(b, "0", 1);
        return;
    }
    /* A whole number below 2^23 (a rollout of 50, a percentage of 100) is its own shortest
     * form: floats that close together are less than 1 apart, so no shorter decimal maps to it.
     * Written directly, as the loop below would, without up to 9 printf/strtof rounds. */
    if (fabsf(v) < 8388608.0f && v == truncf(v)) {
        char d[24];
        ef_buf_append(b, d, ef_i64_dec((int64_t)v, d));
        return;
    }
    put_shortest(b, (double)v, float_sig(v));
}

float ef_json_float_read(float v)
{
    if (!isfinite(v) || v == 0) return 0.0f;          /* written as 0 */
    if (fabsf(v) < 8388608.0f && v == truncf(v)) return v; /* written as its digits: exact */
    /* the decimal ef_json_put_float writes (put_shortest only moves its point), parsed as a
     * double (correctly rounded, as the JSON reader's) then narrowed: a second rounding that can
     * differ from v only in theory, so it is done, not assumed */
    char e[40];
    ef_snprintf_c(e, sizeof(e), "%.*e", float_sig(v) - 1, (double)v);
    return (float)ef_strtod_c(e, NULL);
}

void ef_json_put_member_opt(ef_buf *b, const char *name, ef_bytes v, bool *first)
{
    if (!v.n) return;
    ef_buf_printf(b, "%s\"%s\":", *first ? "" : ",", name);
    ef_json_put_str(b, v);
    *first = false;
}
