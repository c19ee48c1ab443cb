/*
 * store_err.c - the one way every store backend reports an error (see ef_store_fail in store.h).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

/* Go's %q (strconv.Quote), for the values Flipt's messages quote: printable ASCII as is, '"' and
 * '\\' escaped, control bytes as \a \b \f \n \r \t \v or \xNN, well-formed multi-byte
 * UTF-8 kept, any other byte as \xNN. Truncates (still closed by a quote) when cap is short. */
void ef_store_go_quote(ef_bytes in, char *out, size_t cap)
{
    static const char esc[] = {'\a', 'a', '\b', 'b', '\f', 'f', '\n', 'n', '\r', 'r', '\t', 't', '\v', 'v'};
    size_t o = 0;
    if (cap < 3) {
        if (cap) out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < in.n;) {
        unsigned char c = (unsigned char)in.p[i];
        char tmp[8];
        size_t tl = 0, used = 1;
        if (c == '"' || c == '\\') {
            tmp[tl++] = '\\';
            tmp[tl++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[tl++] = (char)c;
        } else if (c >= 0xc2 && c <= 0xf4) {
            /* a well-formed sequence (no overlongs or surrogates) is kept whole */
            size_t need = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
            bool ok = i + need <= in.n;
            for (size_t k = 1; ok && k < need; k++) ok = ((unsigned char)in.p[i + k] & 0xc0) == 0x80;
            if (ok && need == 3) {
                unsigned char d = (unsigned char)in.p[i + 1];
                ok = !(c == 0xe0 && d < 0xa0) && !(c == 0xed && d >= 0xa0);
            }
            if (ok && need == 4) {
                unsigned char d = (unsigned char)in.p[i + 1];
                ok = !(c == 0xf0 && d < 0x90) && !(c == 0xf4 && d >= 0x90);
            }
            if (ok) {
                memcpy(tmp, in.p + i, need);
                tl = used = need;
            } else {
                tl = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
            }
        } else {
            const char *e = memchr(esc, (int)c, sizeof(esc));
            if (e && ((e - esc) % 2) == 0) {
                tmp[tl++] = '\\';
                tmp[tl++] = e[1];
            } else {
                tl = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
            }
        }
        if (o + tl + 2 > cap) break;
        memcpy(out + o, tmp, tl);
        o += tl;
        i += used;
    }
    out[o++] = '"';
    out[o] = '\0';
}
