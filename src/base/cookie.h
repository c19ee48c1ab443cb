/*
 * cookie.h - reading one cookie from a Cookie request header (RFC 6265 section 4.2: name=value
 * pairs separated by "; "). Pure and bounded: it never allocates and never writes past cap.
 */
#ifndef EF_BASE_COOKIE_H
#define EF_BASE_COOKIE_H

#include <stdbool.h>
#include <stddef.h>

/* The value of the first cookie called name in header (NULL: none), copied NUL-terminated into
 * out; false when absent, or when the value does not fit in cap - 1 bytes. */
bool ef_cookie_get(const char *header, const char *name, char *out, size_t cap);

#endif
