/*
 * cnum.h - numbers read and written the same way in every locale.
 *
 * JSON, metrics, logs and the wire formats always use '.' as the decimal separator, but the C
 * library's strtod and printf follow LC_NUMERIC, which an application embedding libedgeflag may set
 * to a decimal-comma locale (de_DE, fr_FR, ...): strtod("50.5") then reads 50. Every conversion of
 * a number in src/base, src/eval and src/client goes through these functions, which use the "C"
 * locale whatever the process or thread has selected. They must never change the caller's locale
 * (uselocale is per thread and is restored before returning) and never allocate.
 */
#ifndef EF_BASE_CNUM_H
#define EF_BASE_CNUM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* strtod / strtof in the "C" locale. */
double ef_strtod_c(const char *s, char **end);
float ef_strtof_c(const char *s, char **end);
/* vsnprintf / snprintf in the "C" locale (same return value). */
int ef_vsnprintf_c(char *out, size_t n, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
int ef_snprintf_c(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* ASCII-only case-insensitive comparison of n bytes (HTTP header names): strncasecmp follows
 * LC_CTYPE, and in a Turkish locale 'I' is not the upper case of 'i'. */
int ef_ascii_ncasecmp(const char *a, const char *b, size_t n);
/* A decimal unsigned integer written as ASCII digits only (no sign, no space, no "0x"), that fits
 * 64 bits: what a version or a position in a header or a query parameter must be. strtoull skips
 * white space and takes a sign ("-1" is 2^64-1), which a request must not be able to use. */
bool ef_parse_u64(const char *s, uint64_t *out);
/* The same for the n bytes at s (a header value, a JSON number's text), which need no NUL. */
bool ef_parse_u64_n(const char *s, size_t n, uint64_t *out);

#endif
