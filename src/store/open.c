/*
 * open.c - picks the store backend for a --db value (see open.h). Adds no behaviour of its own.
 */
#include "store/open.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef ef_store *(*backend_open)(const char *url, const ef_store_open_opts *o, ef_store_err *err);

static ef_store *open_sqlite(const char *url, const ef_store_open_opts *o, ef_store_err *err)
{
    ef_sqlite_opts so = {.registry = o ? o->registry : NULL,
                         .log_keep_entries = o ? o->log_keep_entries : 0,
                         .log_max_age_ns = o ? o->log_max_age_ns : 0,
                         .no_lock = o ? o->reader : false,
                         .sync_ms = o ? o->sync_ms : 0,
                         .follower = o ? o->follower : false,
                         .boot_id = o ? o->boot_id : NULL,
                         .may_have_lost = o ? o->may_have_lost : NULL};
    return ef_sqlite_open(url, &so, err);
}

/* Scheme prefixes and their backends; anything without a known scheme is a SQLite path. */
static const struct {
    const char *prefix;
    backend_open open;
} backends[] = {
    {"file:", open_sqlite},
    /* further backends (one line each) */
    {"libsql://", ef_libsql_open},
    {"http://", ef_libsql_open},
    {"https://", ef_libsql_open},
    {"postgres://", ef_pg_open},
    {"postgresql://", ef_pg_open},
    {"cockroach://", ef_pg_open},
    {"mysql://", ef_mysql_open},
};

ef_store *ef_store_open(const char *url, const ef_store_open_opts *opts, ef_store_err *err)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strncmp(url, backends[i].prefix, strlen(backends[i].prefix)) == 0)
            return backends[i].open(url, opts, err);
    const char *colon = strstr(url, "://");
    if (colon) {
        err->code = EF_STORE_INVALID;
        snprintf(err->message, sizeof(err->message), "unknown database URL scheme '%.*s'",
                 (int)(colon - url), url);
        return NULL;
    }
    return open_sqlite(url, opts, err);
}

const char *ef_store_url_redact(const char *url, char *out, size_t n)
{
    size_t o = 0;
    const char *p = url, *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : NULL;
    const char *at = host ? strchr(host, '@') : NULL;
    const char *slash = host ? host + strcspn(host, "/?#") : NULL;
    const char *colon = at && at < slash ? memchr(host, ':', (size_t)(at - host)) : NULL;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 < n) out[o++] = (c);                                                             \
    } while (0)
    while (*p) {
        if (colon && p == colon + 1) { /* the password of the user information */
            for (const char *m = "***"; *m; m++) PUT(*m);
            p = at;
            colon = NULL; /* once: an empty password ends where it starts */
            continue;
        }
        bool param = (p > url && (p[-1] == '?' || p[-1] == '&'));
        if (param && (!strncmp(p, "authToken=", 10) || !strncmp(p, "password=", 9))) {
            size_t k = (size_t)(strchr(p, '=') - p) + 1;
            for (size_t i = 0; i < k; i++) PUT(p[i]);
            for (const char *m = "***"; *m; m++) PUT(*m);
            p += k + strcspn(p + k, "&#");
            continue;
        }
        PUT(*p);
        p++;
    }
#undef PUT
    if (n) out[o < n ? o : n - 1] = '\0';
    return out;
}
