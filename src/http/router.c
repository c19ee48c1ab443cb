/*
 * router.c - matches a method and path to a route. Patterns are split into segments once; a path
 * is matched without allocating. Trailing slashes are ignored (as Flipt's gateway ignores them).
 * When several patterns fit, the one with a literal segment at the first place where they differ
 * wins, so /rules/order beats /rules/{id}.
 *
 * Each route carries its declared facts (auth class, namespace source, write/state/stream); the
 * router refuses a declaration that contradicts itself and never guesses a fact that is missing.
 */
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "http/router_internal.h"

ef_router *ef_router_new(void)
{
    return calloc(1, sizeof(ef_router));
}

void ef_router_free(ef_router *r)
{
    if (!r) return;
    for (unsigned i = 0; i < r->n; i++) {
        free(r->entries[i].text);
        free(r->entries[i].literal);
    }
    free(r->literal_slots);
    for (unsigned k = 0; k <= EF_ROUTE_MAX_SEGMENTS; k++) free(r->by_len[k]);
    free(r->entries);
    free(r);
}

/* Whether a route's declared facts agree with each other (see ef_router_add_route). */
static bool route_consistent(const ef_route *route)
{
    if (!route->methods || !route->fn || !route->pattern || route->pattern[0] != '/') return false;
    if (route->ns > EF_NS_BODY || route->cls > EF_ROUTE_INTERNAL) return false;
    if ((route->ns == EF_NS_PATH) != (route->ns_param != NULL)) return false;
    if (route->cls == EF_ROUTE_OPEN && route->ns != EF_NS_NONE) return false; /* nothing to scope */
    if ((route->flags & EF_RF_WRITE) && (route->methods & (EF_GET | EF_HEAD))) return false;
    if ((route->flags & EF_RF_WRITE) && (route->flags & EF_RF_STREAM)) return false;
    if ((route->flags & EF_RF_NS_EMPTY) && route->ns != EF_NS_PATH) return false;
    return true;
}

/* A route without parameters keeps its path written plainly ("/a/b/c"), for literal_find. */
static int literal_init(route_entry *e)
{
    e->literal = NULL;
    e->literal_len = 0;
    e->same_next = 0;
    if (e->nseg == 0) return 0; /* "/": the general match handles it */
    size_t len = 0;
    for (unsigned i = 0; i < e->nseg; i++) {
        if (e->seg[i].param) return 0;
        len += 1 + e->seg[i].len;
    }
    char *t = malloc(len + 1), *o = t;
    if (!t) return -1;
    for (unsigned i = 0; i < e->nseg; i++) {
        *o++ = '/';
        memcpy(o, e->seg[i].text, e->seg[i].len);
        o += e->seg[i].len;
    }
    *o = '\0';
    e->literal = t;
    e->literal_len = len;
    return 0;
}

/* Builds the table of literal paths again with routes 0..last (routes are added at start-up only,
 * so rebuilding on each is simpler than growing and cheaper than anything per request). Routes
 * with the same path are chained in the order they were added, the order the scan prefers. */
static int literal_rebuild(ef_router *r, unsigned last)
{
    unsigned count = 0;
    for (unsigned i = 0; i <= last; i++) count += r->entries[i].literal != NULL;
    unsigned slots = 64;
    while (slots < 2 * count) slots *= 2;
    unsigned *t = calloc(slots, sizeof(*t));
    if (!t) return -1;
    for (unsigned i = 0; i <= last; i++) {
        route_entry *x = &r->entries[i];
        x->same_next = 0;
        if (!x->literal) continue;
        for (unsigned k = (unsigned)ef_hash_bytes(x->literal, x->literal_len) & (slots - 1);;
             k = (k + 1) & (slots - 1)) {
            if (!t[k]) {
                t[k] = i + 1;
                break;
            }
            route_entry *y = &r->entries[t[k] - 1];
            if (y->literal_len == x->literal_len && memcmp(y->literal, x->literal, x->literal_len) == 0) {
                while (y->same_next) y = &r->entries[y->same_next - 1];
                y->same_next = i + 1;
                break;
            }
        }
    }
    free(r->literal_slots);
    r->literal_slots = t;
    r->literal_mask = slots - 1;
    return 0;
}

int ef_router_add_route(ef_router *r, const ef_route *route)
{
    if (!route_consistent(route)) return -1;
    const char *pattern = route->pattern;
    if (r->n == r->cap) {
        unsigned cap = r->cap ? r->cap * 2 : 64;
        route_entry *e = realloc(r->entries, cap * sizeof(*e));
        if (!e) return -1;
        r->entries = e;
        r->cap = cap;
    }
    route_entry *e = &r->entries[r->n];
    memset(e, 0, sizeof(*e));
    e->empty_ok = -1;
    e->text = strdup(pattern);
    if (!e->text) return -1;
    /* split "/a/{b}/c" into segments, in place */
    char *p = e->text;
    while (*p == '/') p++;
    while (*p) {
        if (e->nseg == EF_ROUTE_MAX_SEGMENTS) {
            free(e->text);
            return -1;
        }
        char *end = strchr(p, '/');
        if (end) *end = '\0';
        segment *s = &e->seg[e->nseg++];
        size_t n = strlen(p);
        if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
            s->param = true;
            p[n - 1] = '\0';
            s->text = p + 1;
        } else {
            s->text = p;
        }
        s->len = strlen(s->text);
        if (!end) break;
        p = end + 1;
    }
    if (route->ns == EF_NS_PATH) { /* the declared namespace parameter must exist */
        bool found = false;
        for (unsigned i = 0; i < e->nseg; i++)
            if (e->seg[i].param && route->ns_param && strcmp(e->seg[i].text, route->ns_param) == 0) {
                found = true;
                if (route->flags & EF_RF_NS_EMPTY) e->empty_ok = (int)i;
            }
        if (!found) {
            free(e->text);
            return -1;
        }
    }
    unsigned *ids = realloc(r->by_len[e->nseg], (r->nby_len[e->nseg] + 1) * sizeof(*ids));
    if (!ids) {
        free(e->text);
        return -1;
    }
    r->by_len[e->nseg] = ids; /* room for one more; the id goes in once nothing can fail */
    /* a failed rebuild leaves the old table, which names only routes already added */
    if (literal_init(e) != 0 || (e->literal && literal_rebuild(r, r->n) != 0)) {
        free(e->text);
        free(e->literal);
        return -1;
    }
    ids[r->nby_len[e->nseg]++] = r->n;
    e->route = *route;
    e->route.id = r->n;
    r->n++;
    return 0;
}

const char *ef_route_class_name(ef_route_class cls)
{
    switch (cls) {
    case EF_ROUTE_OPEN: return "open";
    case EF_ROUTE_MANAGEMENT: return "management";
    case EF_ROUTE_EVALUATION: return "evaluation";
    case EF_ROUTE_OFREP: return "ofrep";
    case EF_ROUTE_AUTH: return "auth";
    case EF_ROUTE_INTERNAL: return "internal";
    }
    return "unknown";
}

const char *ef_route_ns_name(ef_route_ns ns)
{
    switch (ns) {
    case EF_NS_NONE: return "none";
    case EF_NS_PATH: return "path";
    case EF_NS_HEADER: return "header";
    case EF_NS_BODY: return "body";
    }
    return "unknown";
}

static const struct {
    unsigned bit;
    const char *name;
} methods[] = {{EF_GET, "GET"},       {EF_POST, "POST"},   {EF_PUT, "PUT"},        {EF_DELETE, "DELETE"},
               {EF_PATCH, "PATCH"},   {EF_HEAD, "HEAD"},   {EF_OPTIONS, "OPTIONS"}};

void ef_router_allow_text(unsigned bits, char *out)
{
    /* the seven names with their separators take 46 bytes: within EF_ROUTER_ALLOW_MAX */
    size_t n = 0;
    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        if (!(bits & methods[m].bit)) continue;
        if (n) {
            memcpy(out + n, ", ", 2);
            n += 2;
        }
        size_t k = strlen(methods[m].name);
        memcpy(out + n, methods[m].name, k);
        n += k;
    }
    out[n] = '\0';
}

void ef_router_write_json(const ef_router *r, ef_buf *out)
{
    ef_buf_putc(out, '[');
    for (unsigned i = 0; i < r->n; i++) {
        const ef_route *rt = &r->entries[i].route;
        ef_buf_puts(out, i ? ",\n{\"pattern\":" : "\n{\"pattern\":");
        ef_json_put_cstr(out, rt->pattern);
        ef_buf_puts(out, ",\"methods\":[");
        bool first = true;
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            if (!(rt->methods & methods[m].bit)) continue;
            ef_buf_printf(out, "%s\"%s\"", first ? "" : ",", methods[m].name);
            first = false;
        }
        ef_buf_printf(out, "],\"class\":\"%s\",\"ns\":\"%s\",\"nsParam\":",
                      ef_route_class_name(rt->cls), ef_route_ns_name(rt->ns));
        if (rt->ns_param)
            ef_json_put_cstr(out, rt->ns_param);
        else
            ef_buf_puts(out, "null");
        ef_buf_printf(out, ",\"write\":%s,\"state\":%s,\"stream\":%s,\"nsEmpty\":%s}",
                      rt->flags & EF_RF_WRITE ? "true" : "false",
                      rt->flags & EF_RF_STATE ? "true" : "false",
                      rt->flags & EF_RF_STREAM ? "true" : "false",
                      rt->flags & EF_RF_NS_EMPTY ? "true" : "false");
    }
    ef_buf_puts(out, "\n]\n");
}

void ef_router_set_fallback(ef_router *r, ef_http_handler fn, void *ctx)
{
    r->fallback = fn;
    r->fallback_ctx = ctx;
}

unsigned ef_router_count(const ef_router *r)
{
    return r->n;
}

const ef_route *ef_router_route(const ef_router *r, unsigned id)
{
    return id < r->n ? &r->entries[id].route : NULL;
}

/* Splits path into segments (pointers into path); returns the count or -1 if too many. */
static int split_path(const char *path, ef_bytes *out)
{
    int n = 0;
    const char *p = path;
    while (*p == '/') p++;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == EF_ROUTE_MAX_SEGMENTS) return -1;
        out[n++] = (ef_bytes){p, len};
        if (!end) break;
        p = end + 1;
        if (*p == '\0') break; /* trailing slash */
    }
    return n;
}

static bool entry_matches(const route_entry *e, const ef_bytes *segs, int n)
{
    if (e->nseg != (unsigned)n) return false;
    for (int i = 0; i < n; i++) {
        const segment *s = &e->seg[i];
        if (s->param) {
            if (segs[i].n == 0 && e->empty_ok != i) return false;
        } else if (!ef_bytes_eq(segs[i], (ef_bytes){s->text, s->len})) {
            return false;
        }
    }
    return true;
}

/* true if a is more specific than b: a literal where b has a parameter, first difference wins */
static bool more_specific(const route_entry *a, const route_entry *b)
{
    for (unsigned i = 0; i < a->nseg; i++) {
        if (a->seg[i].param != b->seg[i].param) return !a->seg[i].param;
    }
    return false;
}

/* The first route of literals named by path, written plainly (one '/' before each segment, none
 * at the end), that takes method; NULL when there is none or path is written otherwise. */
static const route_entry *literal_find(const ef_router *r, unsigned method, const char *path)
{
    if (!r->literal_slots || path[0] != '/') return NULL;
    size_t n = 1;
    for (char prev = '/', c; (c = path[n]) != '\0'; prev = c, n++)
        if (c == '/' && prev == '/') return NULL;
    if (path[n - 1] == '/') return NULL; /* "/" or a trailing slash */
    unsigned k = (unsigned)ef_hash_bytes(path, n) & r->literal_mask;
    for (;; k = (k + 1) & r->literal_mask) {
        unsigned s = r->literal_slots[k];
        if (!s) return NULL;
        const route_entry *e = &r->entries[s - 1];
        if (e->literal_len != n || !ef_mem_eq(e->literal, path, n)) continue;
        for (;;) {
            if (e->route.methods & method) return e;
            if (!e->same_next) return NULL; /* the path exists, not with this method: the scan says */
            e = &r->entries[e->same_next - 1];
        }
    }
}

router_match ef_router_match(const ef_router *r, unsigned method, const char *path,
                             route_param *params, unsigned *nparams)
{
    ef_bytes segs[EF_ROUTE_MAX_SEGMENTS];
    router_match m = {NULL, false, 0};
    *nparams = 0;
    const route_entry *lit = literal_find(r, method, path);
    if (lit) {
        m.route = &lit->route;
        return m;
    }
    int n = split_path(path, segs);
    if (n < 0) return m;
    const route_entry *best = NULL, *best_any = NULL;
    for (unsigned i = 0; i < r->nby_len[n]; i++) {
        const route_entry *e = &r->entries[r->by_len[n][i]];
        if (!entry_matches(e, segs, n)) continue;
        m.allowed |= e->route.methods; /* a method any matching route takes is not refused */
        if (!best_any || more_specific(e, best_any)) best_any = e;
        if (!(e->route.methods & method)) continue;
        if (!best || more_specific(e, best)) best = e;
    }
    if (!best) {
        m.method_not_allowed = best_any != NULL;
        return m;
    }
    for (unsigned i = 0; i < best->nseg; i++) {
        if (!best->seg[i].param) continue;
        params[*nparams].name = best->seg[i].text;
        params[*nparams].value = segs[i];
        (*nparams)++;
    }
    m.route = &best->route;
    return m;
}
