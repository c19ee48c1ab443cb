/*
 * history.c - GET /edgeflag/v1/namespaces/{ns}/history[?flag=KEY&limit=N&pageToken=T]: who changed
 * what and when, newest first, read from the node's own change log (a replica serves its copy).
 * Each record is one committed write: seq, the namespace's version, time, actor, the forwarding
 * replicas, Flipt's audit type and action, the entity's key and its rows before and after, and
 * every row the write touched.
 *
 * It must never scan without bound (a request reads at most HISTORY_SCAN_MAX entries and hands
 * back a page token to go on), never hold more entries than the page it writes, never show a
 * token hash, and never write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/node.h"
#include "base/clock.h"
#include "base/cnum.h"
#include "store/entry.h"

#define HISTORY_LIMIT_DEFAULT 20
#define HISTORY_LIMIT_MAX 100
#define HISTORY_WINDOW 256     /* entries read per store call */
#define HISTORY_SCAN_MAX 4096  /* entries read per request, at most */

typedef struct hit {
    uint64_t seq;
    char *text; /* malloc'd: a copy outlives the store's callback */
    size_t len;
} hit;

/* A window is read in the log's order (oldest first) and written newest first, and only the
 * newest `keep` matches of a window can be written (the page's room left): the scan keeps those in
 * a ring, freeing the older copy it overwrites. It used to copy every match of the window into the
 * request's arena (up to HISTORY_WINDOW entries: half a gigabyte with 1 MiB writes, for a page of
 * one record). */
typedef struct scan {
    ef_arena scratch; /* one entry's parse at a time, reset after each */
    ef_bytes ns, flag;
    hit *ring;        /* keep slots; the oldest kept is ring[head] */
    size_t keep, head, kept;
    size_t matched;   /* matches in the window, kept or not */
    bool oom;
} scan;

static void ring_clear(scan *s)
{
    for (size_t j = 0; j < s->kept; j++) free(s->ring[(s->head + j) % s->keep].text);
    s->head = s->kept = s->matched = 0;
}

static int on_change(void *ctx, const ef_store_change *c)
{
    scan *s = ctx;
    ef_entry e;
    char err[128];
    /* an entry this node cannot read is left out of its history, not fatal to it */
    ef_arena_reset(&s->scratch);
    if (ef_entry_parse(c->entry.p, c->entry.n, &s->scratch, &e, err, sizeof(err)) != 0) return 0;
    if (!ef_entry_in_namespace(&e, s->ns, NULL)) return 0;
    if (s->flag.n && !ef_entry_about_flag(&e, s->ns, s->flag)) return 0;
    s->matched++;
    char *t = malloc(c->entry.n ? c->entry.n : 1); /* the entry is valid during the call only */
    if (!t) {
        s->oom = true;
        return 1;
    }
    memcpy(t, c->entry.p, c->entry.n);
    hit h = {c->seq, t, c->entry.n};
    if (s->kept < s->keep) {
        s->ring[(s->head + s->kept++) % s->keep] = h;
    } else { /* the oldest kept can no longer be written: a newer one takes its place */
        free(s->ring[s->head].text);
        s->ring[s->head] = h;
        s->head = (s->head + 1) % s->keep;
    }
    return 0;
}

static ef_bytes entity_key(const ef_entry_change *c)
{
    const ef_json *r = c->row ? c->row : c->old ? c->old : c->pk;
    ef_bytes k = ef_entry_str(r, "key");
    return k.n ? k : ef_entry_str(r, "id");
}

/* Whether a change belongs to namespace ns. An entry that wrote several namespaces (an import)
 * shows each namespace only its own rows: a token scoped to one must not read another's. A row
 * without a namespace (a distribution) cannot be placed, so such an entry leaves it out. */
static bool change_in(const ef_entry *e, const ef_entry_change *c, ef_bytes ns)
{
    if (e->namespaces->len <= 1) return true;
    const ef_json *r = c->row ? c->row : c->old ? c->old : c->pk;
    ef_bytes k = ef_bytes_eq(c->table, EF_BYTES_LIT("namespaces")) ? ef_entry_str(r, "key") : ef_entry_str(r, "namespace_key");
    return k.n && ef_bytes_eq(k, ns);
}

static void put_actor(ef_buf *o, const ef_entry *e)
{
    if (!e->actor) {
        ef_buf_puts(o, "null");
        return;
    }
    ef_entry_put_row(o, e->actor);
}

static void put_record(ef_buf *o, const ef_entry *e, ef_bytes ns)
{
    uint64_t version;
    ef_entry_in_namespace(e, ns, &version);
    char ts[EF_RFC3339_MAX];
    ef_rfc3339_format(e->time_ns, ts);
    ef_buf_printf(o, "{\"seq\":%llu,\"version\":%llu,\"time\":\"%s\",\"actor\":", (unsigned long long)e->seq,
                  (unsigned long long)version, ts);
    put_actor(o, e);
    ef_buf_puts(o, ",\"via\":");
    ef_json_put_str(o, e->via);
    ef_buf_puts(o, ",\"type\":");
    ef_json_put_str(o, e->type);
    ef_buf_puts(o, ",\"action\":");
    ef_json_put_str(o, e->action);
    ef_buf_puts(o, ",\"namespace\":");
    ef_json_put_str(o, ns);
    const ef_entry_change *p = e->nchanges ? &e->changes[e->principal] : NULL;
    if (p && !change_in(e, p, ns)) { /* the first change of this namespace instead */
        p = NULL;
        for (size_t i = 0; i < e->nchanges && !p; i++)
            if (change_in(e, &e->changes[i], ns)) p = &e->changes[i];
    }
    ef_buf_puts(o, ",\"key\":");
    ef_json_put_str(o, p ? entity_key(p) : (ef_bytes){"", 0});
    ef_buf_puts(o, ",\"before\":");
    ef_entry_put_row(o, p ? p->old : NULL);
    ef_buf_puts(o, ",\"after\":");
    ef_entry_put_row(o, p ? p->row : NULL);
    ef_buf_puts(o, ",\"changes\":[");
    bool first = true;
    for (size_t i = 0; i < e->nchanges; i++) {
        const ef_entry_change *c = &e->changes[i];
        if (!change_in(e, c, ns)) continue;
        ef_buf_puts(o, first ? "{\"type\":" : ",{\"type\":");
        first = false;
        ef_json_put_str(o, c->type);
        ef_buf_puts(o, ",\"table\":");
        ef_json_put_str(o, c->table);
        ef_buf_printf(o, ",\"op\":\"%s\",\"key\":", c->del ? "delete" : "upsert");
        ef_json_put_str(o, entity_key(c));
        ef_buf_puts(o, ",\"before\":");
        ef_entry_put_row(o, c->old);
        ef_buf_puts(o, ",\"after\":");
        ef_entry_put_row(o, c->row);
        ef_buf_putc(o, '}');
    }
    ef_buf_puts(o, "]}");
}

static void on_history(ef_http_req *req, void *ctx)
{
    ef_node *node = ctx;
    if (!node->store) {
        ef_http_error(req, 501, 12, "history needs a change log: this node serves no database (--db, --upstream)");
        return;
    }
    ef_bytes ns = ef_api_namespace(ef_http_param(req, "ns"));
    const char *flag = ef_http_query(req, "flag");
    const char *l = ef_http_query(req, "limit");
    const char *pt = ef_http_query(req, "pageToken");
    uint64_t limit = HISTORY_LIMIT_DEFAULT, below = 0;
    if (l && *l && (!ef_parse_u64(l, &limit) || limit == 0 || limit > HISTORY_LIMIT_MAX)) {
        ef_http_bad_request(req, "invalid value for query parameter limit: \"%.32s\" is not 1 to %d", l,
                            HISTORY_LIMIT_MAX);
        return;
    }
    if (pt && *pt && (!ef_parse_u64(pt, &below) || below == 0)) {
        ef_http_bad_request(req, "invalid pageToken \"%.32s\": not one this server gave", pt);
        return;
    }
    uint64_t seq, first;
    ef_store_err err;
    if (ef_store_seq(node->store, &seq, &first, &err) != 0) {
        ef_api_store_error(req, &err);
        return;
    }
    if (!below || below > seq + 1) below = seq + 1; /* exclusive upper bound */
    scan s = {.ns = ns, .flag = flag ? ef_bytes_of(flag) : (ef_bytes){"", 0}};
    s.ring = ef_arena_alloc(ef_http_arena(req), (size_t)limit * sizeof(hit));
    if (!s.ring) {
        ef_http_error(req, 500, 13, "out of memory");
        return;
    }
    ef_arena_init(&s.scratch, 16384);
    ef_buf *o = ef_http_out(req);
    ef_buf_puts(o, "{\"records\":[");
    uint64_t written = 0, scanned = 0, next = 0;
    uint64_t hi = below; /* entries below hi are still to read */
    while (written < limit && hi > first) {
        if (scanned >= HISTORY_SCAN_MAX) {
            next = hi; /* read enough for one request: the client goes on from here */
            break;
        }
        uint64_t lo = hi - first > HISTORY_WINDOW ? hi - HISTORY_WINDOW : first; /* read [lo, hi) */
        s.keep = (size_t)(limit - written);
        int rc = ef_store_changes(node->store, lo - 1, (size_t)(hi - lo), on_change, &s, &err);
        if (s.oom || (rc != 0 && !(rc == -1 && err.code == EF_STORE_TRIMMED))) {
            ring_clear(&s);
            ef_arena_free(&s.scratch);
            if (s.oom)
                ef_http_error(req, 500, 13, "out of memory");
            else
                ef_api_store_error(req, &err);
            return;
        }
        if (rc == -1) { /* trimmed meanwhile: history ends */
            ring_clear(&s);
            break;
        }
        scanned += hi - lo;
        for (size_t j = s.kept; j > 0; j--) { /* newest first */
            const hit *h = &s.ring[(s.head + j - 1) % s.keep];
            ef_entry e;
            char perr[128];
            ef_arena_reset(&s.scratch);
            if (ef_entry_parse(h->text, h->len, &s.scratch, &e, perr, sizeof(perr)) != 0) continue;
            if (written++) ef_buf_putc(o, ',');
            put_record(o, &e, ns);
            next = h->seq;
        }
        bool all = s.matched == s.kept; /* every match of the window was written */
        ring_clear(&s);
        if (written == limit) {
            if (all && lo == first) next = 0; /* nothing older is left */
            break;
        }
        hi = lo;
        next = 0;
    }
    ef_arena_free(&s.scratch);
    ef_buf_puts(o, "],\"nextPageToken\":");
    if (next) {
        ef_buf_printf(o, "\"%llu\"", (unsigned long long)next);
    } else {
        ef_buf_puts(o, "\"\"");
    }
    ef_buf_putc(o, '}');
    ef_http_reply(req, 200);
}

int ef_api_register_history(ef_router *r, ef_node *node)
{
    /* Management data (who changed what), read from this node's state; a token scoped to the
     * namespace may read it, as it may read the namespace's flags. */
    return ef_router_add_route(r, &(ef_route){.methods = EF_GET, .pattern = "/edgeflag/v1/namespaces/{ns}/history",
                                              .fn = on_history, .ctx = node, .cls = EF_ROUTE_MANAGEMENT,
                                              .ns = EF_NS_PATH, .ns_param = "ns", .flags = EF_RF_STATE});
}
