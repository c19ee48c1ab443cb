/*
 * store_err.c - the one way every store backend reports an error (see ef_store_fail in store.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "store/store.h"

int ef_store_fail(ef_store_err *err, ef_store_code code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return -1;
}
