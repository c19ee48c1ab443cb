/*
 * ui_http.c - serves the embedded web UI: `/` and the asset files from memory (ef_ui_assets.c,
 * generated at build time by ui/embed.cmake), with ETag, Cache-Control and the right Content-Type;
 * any other GET path that is not API-looking gets index.html (the UI routes in the browser).
 *
 * It must never touch the filesystem or the network: a path is only ever looked up in the compiled
 * table, so no request can reach a file outside it (paths with "..", backslashes or control
 * characters are refused outright). It must never answer an API-looking path (/api/, /evaluate/,
 * /edgeflag/, ...) with HTML: clients there get Flipt's JSON 404. The UI's data calls are
 * authenticated by the API routes themselves; these static routes are EF_ROUTE_OPEN.
 */
#include <string.h>

#include "api/node.h"
#include "ef_ui_assets.h"

/* Path prefixes that belong to APIs: an unknown path under them is a JSON 404, never the UI. */
static const char *const api_prefixes[] = {"/api/",     "/evaluate/", "/edgeflag/", "/auth/",
                                           "/meta/",    "/ofrep/",    "/internal/", "/debug/",
                                           "/metrics/", "/health/",   "/v1/",       "/v2/"};

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool api_looking(const char *path)
{
    for (size_t i = 0; i < sizeof(api_prefixes) / sizeof(api_prefixes[0]); i++) {
        const char *p = api_prefixes[i];
        size_t n = strlen(p) - 1; /* "/api" alone counts too */
        if (has_prefix(path, p) || (strncmp(path, p, n) == 0 && path[n] == '\0')) return true;
    }
    return false;
}

/* A path the UI may answer: absolute, printable, no backslash, no "." or ".." segment. */
static bool safe_path(const char *path)
{
    if (path[0] != '/') return false;
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == '\\') return false;
        if (c == '/' && p[1] == '.' && (p[2] == '/' || p[2] == '\0' ||
                                        (p[2] == '.' && (p[3] == '/' || p[3] == '\0'))))
            return false;
    }
    return true;
}

static const ef_ui_asset *find_asset(const char *path)
{
    if (strcmp(path, "/") == 0) path = "/index.html";
    for (size_t i = 0; i < ef_ui_asset_count; i++)
        if (strcmp(ef_ui_assets[i].path, path) == 0) return &ef_ui_assets[i];
    return NULL;
}

/* True if the last path segment looks like a file name (has a dot): such paths never fall back. */
static bool looks_like_file(const char *path)
{
    const char *last = strrchr(path, '/');
    return last && strchr(last, '.') != NULL;
}

/* If-None-Match holds this ETag (a list, or "*"). */
static bool etag_matches(const char *inm, const char *etag)
{
    if (!inm) return false;
    if (strcmp(inm, "*") == 0) return true;
    size_t n = strlen(etag);
    for (const char *p = strstr(inm, etag); p; p = strstr(p + 1, etag)) {
        bool start = p == inm || p[-1] == ' ' || p[-1] == ',' || (p - inm >= 2 && p[-2] == 'W' && p[-1] == '/');
        bool end = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
        if (start && end) return true;
    }
    return false;
}

static void send_asset(ef_http_req *req, const ef_ui_asset *a)
{
    ef_http_add_header(req, "ETag", a->etag);
    /* no hashed file names, so the browser revalidates every time (a 304 costs a few bytes) */
    ef_http_add_header(req, "Cache-Control", "no-cache");
    ef_http_add_header(req, "X-Content-Type-Options", "nosniff");
    ef_http_add_header(req, "Referrer-Policy", "no-referrer");
    ef_http_add_header(req, "Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                       "base-uri 'none'; form-action 'self'");
    if (etag_matches(ef_http_header(req, "If-None-Match"), a->etag)) {
        ef_http_reply_static(req, 304, a->content_type, "", 0);
        return;
    }
    ef_http_reply_static(req, 200, a->content_type, a->data, a->len);
}

static void on_asset(ef_http_req *req, void *ctx)
{
    send_asset(req, ctx);
}

/* Everything no route matched. */
static void on_fallback(ef_http_req *req, void *ctx)
{
    (void)ctx;
    const char *path = ef_http_path(req);
    ef_http_method m = ef_http_method_of(req);
    if (api_looking(path) || (m != EF_GET && m != EF_HEAD)) {
        ef_http_not_found(req, "Not Found");
        return;
    }
    if (!safe_path(path)) {
        ef_http_error(req, 400, 3, "invalid path");
        return;
    }
    const ef_ui_asset *a = find_asset(path);
    if (!a && !looks_like_file(path)) a = find_asset("/index.html");
    if (!a) {
        ef_http_not_found(req, "Not Found");
        return;
    }
    send_asset(req, a);
}

int ef_api_register_ui(ef_router *r, ef_node *node)
{
    (void)node;
    const ef_ui_asset *index = find_asset("/index.html");
    if (!index) return -1;
    /* static files: open (the UI asks for a token itself), no namespace, no state */
    if (ef_router_add_route(r, &(ef_route){.methods = EF_GET | EF_HEAD, .pattern = "/", .fn = on_asset,
                                           .ctx = (void *)index, .cls = EF_ROUTE_OPEN}))
        return -1;
    for (size_t i = 0; i < ef_ui_asset_count; i++)
        if (ef_router_add_route(r, &(ef_route){.methods = EF_GET | EF_HEAD, .pattern = ef_ui_assets[i].path,
                                               .fn = on_asset, .ctx = (void *)&ef_ui_assets[i],
                                               .cls = EF_ROUTE_OPEN}))
            return -1;
    ef_router_set_fallback(r, on_fallback, NULL);
    return 0;
}
