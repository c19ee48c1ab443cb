/*
 * cookie.c - one cookie out of a Cookie header (see cookie.h). It must never read past the
 * header's NUL, never write past cap, and never match a name that is only a prefix of another.
 */
#include "base/cookie.h"

#include <string.h>

bool ef_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    if (!header || !nl || !cap) return false;
    for (const char *p = header; *p;) {
        while (*p == ' ' || *p == ';') p++;
        size_t len = strcspn(p, ";");
        if (len > nl && p[nl] == '=' && !strncmp(p, name, nl)) {
            size_t vl = len - nl - 1;
            if (vl >= cap) return false;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return true;
        }
        p += len;
    }
    return false;
}
