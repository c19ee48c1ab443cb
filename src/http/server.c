/*
 * server.c - libmicrohttpd glue (see http.h).
 *
 * Each connection owns one ef_http_req that is reset between keep-alive requests, so a warm
 * connection allocates nothing for its arena and buffers. Responses are queued on the second call
 * of the access handler (queueing on the first call makes libmicrohttpd 0.9.75 close keep-alive
 * connections). Bodies are accumulated up to max_body; a larger declared Content-Length is refused
 * at once with 413, and one that would take the bodies held at once past max_body_total with 503.
 * A request with a body is admitted (the admit hook: authentication) before any of it is read. Streams suspend their connection while they have nothing to send, so an idle
 * subscriber costs a file descriptor, not a thread; so do requests that wait for something else
 * (ef_http_suspend), up to max_waiting of them.
 *
 * Slow clients: one client address may hold max_per_ip connections; a request's header and body
 * must arrive within request_timeout_s (the first one counted from the connection's accept, the
 * next ones from the previous response plus the keep-alive idle timeout, the body from the end of
 * the headers). A reaper thread shuts down the socket of a connection past its deadline, since
 * libmicrohttpd's own timeout only measures inactivity and a client trickling bytes resets it.
 *
 * Must never: answer without a JSON body on its own routes, or let a request outlive its connection.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "base/clock.h"
#include "base/cnum.h"
#include "base/hash.h"
#include "http/epoll_guard.h"
#include "http/router_internal.h"
#include "http/tls.h"
#include "base/thread.h"

#define MAX_PARAMS 8
#define MAX_RESP_HEADERS 16
/* what collect_headers() may add to a handler's: Date, Content-Type, four for CORS, Vary, Connection */
#define MAX_SENT_HEADERS (MAX_RESP_HEADERS + 8)
#define REUSE_TEXT 512
#define REUSE_SLOTS 2

/* The headers a response goes out with, in order, before they are attached. */
typedef struct sent_header {
    const char *name, *value;
    uint32_t name_len, value_len;
} sent_header;
typedef struct sent_headers {
    unsigned n;
    sent_header h[MAX_SENT_HEADERS];
} sent_headers;

/* A connection's last plain answers, kept for the next ones (see answer()). libmicrohttpd makes a
 * response an object with its headers copied into allocations of their own: creating one, adding
 * the four headers an evaluation carries and freeing it all again was ~5,100 instructions of every
 * request, more than parsing, evaluating and writing the answer together. The next answer on the
 * connection usually has the same headers and length, from the same buffer (req->out): the kept
 * object is queued again, as it is. Two are kept: an evaluation's answer is one byte shorter
 * whenever its duration in milliseconds ends in a zero (the shortest decimal drops it), and with
 * one kept, one answer in five made two new objects. The record is laid out for the compare: what
 * it reads of an evaluation's (the fields, four lengths, ~100 bytes of text) is three cache lines,
 * cold when a connection's next request comes. */
typedef struct reuse {
    struct MHD_Response *resp; /* our reference, released with the connection; NULL: none */
    const void *data;          /* the body it sends (not owned) and its length */
    size_t len;
    uint64_t used;             /* when it was last queued, in the connection's answers */
    uint16_t nheaders;
    struct {
        uint16_t name, value;
    } lens[MAX_SENT_HEADERS];
    char text[REUSE_TEXT];     /* its headers' names and values, one after the other, in order */
} reuse;

struct ef_http_stream {
    ef_http_server *srv;
    struct MHD_Connection *conn;
    ef_http_req *req;     /* its connection's, for the block deadline (alive while the stream is) */
    uint64_t pace_rate;   /* ef_http_stream_pace: bytes per second a block must go at (0: none) */
    int64_t pace_grace_ns;
    int64_t block_due_ns; /* when the block must have been taken (the deadlines' coarse clock) */
    bool too_slow;        /* set as it is freed: it ended with a block past its due time */
    bool aborted;         /* under mu: ef_http_stream_abort: nothing more is sent, the reaper
                           * shuts the connection down */
    ef_http_stream_ops ops;
    void *state;
    ef_buf pending; /* bytes produced but not yet handed to MHD */
    size_t sent;
    ef_shared *block; /* a shared block fill() handed over, sent before fill() is called again */
    size_t block_sent;
    pthread_mutex_t mu;
    bool suspended, woken, finished;
    ef_http_stream *prev, *next; /* the server's list, for shutdown */
};

struct ef_http_req {
    ef_http_server *srv;
    struct MHD_Connection *conn;
    ef_http_req *cprev, *cnext; /* the server's list of connections, for the reaper */
    int fd;
    int64_t deadline_ns;        /* atomic; 0: none (being answered, suspended, streaming) */
    const char *target;         /* the raw request target, in the arena */
    bool suspend_asked;         /* a hook or handler suspended the request (server thread only) */
    bool suspended;             /* on_access returned with the connection suspended */
    unsigned resumes;
    ef_http_method method;
    const char *method_name;
    const char *url;
    const ef_route *route;
    bool method_not_allowed;    /* no route: the path is known, the method is not */
    unsigned allowed;           /* then: the methods the path takes (the 405's Allow header) */
    bool admitted;              /* the admit hook has run (it may have answered) */
    route_param params[MAX_PARAMS];
    unsigned nparams;
    ef_buf body;
    bool too_large;
    bool busy;                  /* its body would pass max_body_total: answered 503 */
    size_t reserved;            /* bytes of max_body_total this request holds (server thread) */
    bool no_client_cert;        /* HTTPS with a client CA, and the client presented no certificate */
    const char *malformed;      /* why the header block cannot be trusted, or NULL */
    bool started;
    size_t header_bytes;
    ef_arena arena;
    ef_buf out;
    struct {
        const char *name, *value;
        size_t name_len; /* compared before the name: most lookups miss on the length */
        size_t value_len;
    } headers[MAX_RESP_HEADERS];
    unsigned nheaders;
    int status;
    bool replied;
    bool preflight;             /* answered as a CORS preflight */
    bool stream;                /* a streaming response (never compressed) */
    struct MHD_Response *response;
    const void *plain;          /* else the answer is this body, not copied: see reuse */
    size_t plain_len;
    bool plain_set;
    reuse reuse[REUSE_SLOTS];
    uint64_t answers;           /* plain answers made on this connection (reuse.used's clock) */
    const char *content_type;
    int64_t t0;
    int64_t finished_ns;        /* ef_http_set_finished_ns; 0: not handed over */
    char peer[64];
    const void *user; /* per-request data of the application's hooks */
    ef_http_tls_conn tls;       /* HTTPS: the certificate generation this connection uses */
};

/* The CORS settings, normalised once at start (see http.h): origins lower-cased, "Origin" always
 * among the allowed headers (as go-chi/cors appends it). */
/* Compressed bodies of responses that carry an ETag (snapshot documents, UI files), by path and
 * ETag: the same representation is compressed once, not on every request. A strong ETag names
 * the bytes, so a hit is the same body; a few entries, replaced round-robin. */
#define GZ_CACHE_SLOTS 16
#define GZ_CACHE_MAX_KEY 512
typedef struct gz_entry {
    char key[GZ_CACHE_MAX_KEY]; /* path '\n' etag; "" when free */
    size_t plain_len;
    unsigned char *data;
    size_t len;
} gz_entry;

typedef struct gz_cache {
    pthread_mutex_t mu;
    gz_entry e[GZ_CACHE_SLOTS];
    unsigned next;
} gz_cache;

typedef struct cors_rules {
    bool all_origins, all_headers;
    char **origins; /* NULL-terminated, owned */
    char **headers; /* NULL-terminated, owned */
} cors_rules;

struct ef_http_server {
    struct MHD_Daemon *d;
    cors_rules cors;
    gz_cache gz;
    ef_router *router;
    ef_http_config cfg;
    uint16_t port;
    int stopping;  /* read and written with __atomic builtins */
    int quiesced_fd; /* the listening socket libmicrohttpd gave back at quiesce; -1: none */
    size_t body_bytes; /* atomic: request body bytes reserved now (max_body_total) */
    pthread_mutex_t streams_mu;
    ef_http_stream *streams;
    unsigned waiting;            /* suspended requests (atomic) */
    pthread_mutex_t conns_mu;    /* guards the connection list and the reaper's state */
    pthread_cond_t reaper_cv;
    ef_http_req *conns;
    bool reaper_stop, reaper_started;
    pthread_t reaper;
};

/* ---- request accessors ---------------------------------------------------------------------- */

ef_http_method ef_http_method_of(const ef_http_req *req) { return req->method; }
const char *ef_http_method_name(const ef_http_req *req) { return req->method_name; }
const char *ef_http_path(const ef_http_req *req) { return req->url; }
const char *ef_http_target(const ef_http_req *req) { return req->target ? req->target : req->url; }
const ef_route *ef_http_route(const ef_http_req *req) { return req->route; }
ef_bytes ef_http_body(const ef_http_req *req) { return (ef_bytes){req->body.data ? req->body.data : "", req->body.len}; }
ef_arena *ef_http_arena(ef_http_req *req) { return &req->arena; }
ef_buf *ef_http_out(ef_http_req *req) { return &req->out; }
const char *ef_http_peer(const ef_http_req *req) { return req->peer; }
void *ef_http_app(const ef_http_req *req) { return req->srv->cfg.app; }
void ef_http_set_user(ef_http_req *req, const void *user) { req->user = user; }
const void *ef_http_user(const ef_http_req *req) { return req->user; }
int64_t ef_http_started_ns(const ef_http_req *req) { return req->t0; }
int64_t ef_http_finished_ns(const ef_http_req *req) { return req->finished_ns ? req->finished_ns : ef_clock_mono_ns(); }
void ef_http_set_finished_ns(ef_http_req *req, int64_t mono_ns) { req->finished_ns = mono_ns; }
unsigned ef_http_max_json_depth(const ef_http_req *req) { return req->srv->cfg.max_json_depth; }

ef_bytes ef_http_param(const ef_http_req *req, const char *name)
{
    for (unsigned i = 0; i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0) return req->params[i].value;
    return (ef_bytes){"", 0};
}

const char *ef_http_query(const ef_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct query_walk {
    void (*fn)(const char *name, const char *value, void *ctx);
    void *ctx;
} query_walk;

static enum MHD_Result query_each(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    query_walk *w = cls;
    w->fn(key, value ? value : "", w->ctx);
    return MHD_YES;
}

void ef_http_query_each(const ef_http_req *req, void (*fn)(const char *name, const char *value, void *ctx),
                        void *ctx)
{
    query_walk w = {fn, ctx};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_each, &w);
}

const char *ef_http_header(const ef_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static void add_header_n(ef_http_req *req, const char *name, const char *value, size_t value_len)
{
    if (req->nheaders == MAX_RESP_HEADERS || !value) return;
    req->headers[req->nheaders].name = name;
    req->headers[req->nheaders].value = value;
    req->headers[req->nheaders].name_len = strlen(name);
    req->headers[req->nheaders].value_len = value_len;
    req->nheaders++;
}

void ef_http_add_header_static(ef_http_req *req, const char *name, const char *value)
{
    add_header_n(req, name, value, value ? strlen(value) : 0);
}

void ef_http_add_header(ef_http_req *req, const char *name, const char *value)
{
    size_t n = strlen(value); /* measured once: the copy and the record both need it */
    add_header_n(req, name, ef_arena_memdup(&req->arena, value, n), n);
}

/* The value of the response header a handler added with this name (any case), or NULL. The
 * same spelling is tried first: edgeflag's handlers and hooks spell a name alike, and the byte-wise
 * case-insensitive compare of "X-Edgeflag-Version" was ~270 instructions of every evaluation. */
static const char *added_header(const ef_http_req *req, ef_bytes name)
{
    for (unsigned i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == name.n && (ef_mem_eq(req->headers[i].name, name.p, name.n) ||
                                                   ef_ascii_ncasecmp(req->headers[i].name, name.p, name.n) == 0))
            return req->headers[i].value;
    return NULL;
}

bool ef_http_has_header(const ef_http_req *req, const char *name)
{
    return added_header(req, ef_bytes_of(name)) != NULL;
}

/* Records the response; its headers are collected in collect_headers() just before it is queued,
 * so the server's finish hook can still add some (the node's version header). */
static void finish_response(ef_http_req *req, struct MHD_Response *resp, int status,
                            const char *content_type)
{
    if (!resp) {
        req->replied = true;
        req->status = 500;
        return;
    }
    req->content_type = content_type;
    req->response = resp;
    req->status = status;
    req->replied = true;
}

/* Records a plain answer: the body as it is, which must stay as it is until the response is sent
 * (req->out, or data that outlives the request); answer() makes or reuses its response. */
static void finish_plain(ef_http_req *req, const void *data, size_t len, int status, const char *content_type)
{
    req->plain = data;
    req->plain_len = len;
    req->plain_set = true;
    req->content_type = content_type;
    req->status = status;
    req->replied = true;
}

static bool cors_origin_allowed(const cors_rules *c, const char *origin);
static const char *response_type(const ef_http_req *req, const char *dflt);
static bool compressible(const char *type);

/* The methods Flipt allows cross-origin (its go-chi/cors options). */
static bool cors_method_allowed(const char *m)
{
    static const char *const ok[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcasecmp(m, ok[i]) == 0) return true;
    return false;
}

static void sent_add_n(sent_headers *sh, const char *name, size_t name_len, const char *value, size_t value_len)
{
    /* room for every header it is given: see MAX_SENT_HEADERS */
    sh->h[sh->n++] = (sent_header){name, value, (uint32_t)name_len, (uint32_t)value_len};
}

static void sent_add(sent_headers *sh, const char *name, const char *value)
{
    sent_add_n(sh, name, strlen(name), value, strlen(value));
}

/* literals: their lengths at compile time */
#define SENT_LIT(sh, name, value) sent_add_n((sh), (name), sizeof(name) - 1, (value), sizeof(value) - 1)

/* CORS headers on an actual (not preflight) response. */
static void cors_actual(ef_http_req *req, sent_headers *sh)
{
    const cors_rules *c = &req->srv->cors;
    SENT_LIT(sh, "Vary", "Origin");
    const char *origin = ef_http_header(req, "Origin");
    if (!origin || !*origin || !cors_origin_allowed(c, origin) || !cors_method_allowed(req->method_name)) return;
    sent_add(sh, "Access-Control-Allow-Origin", c->all_origins ? "*" : origin);
    SENT_LIT(sh, "Access-Control-Expose-Headers", "Link");
    SENT_LIT(sh, "Access-Control-Allow-Credentials", "true");
}

/* The Date header's value for now, made once a second per thread. libmicrohttpd adds one to every
 * response that has none, from gmtime_r, whose time zone lock and conversion were 2 % of an
 * evaluation's time; a response with one of its own is left alone (its Date replaces any other
 * by that name). The coarse clock may show the previous second for a tick (a few ms) after it
 * turns. */
static const char *http_date_now(void)
{
    static _Thread_local int64_t at = -1;
    static _Thread_local char text[EF_HTTP_DATE_LEN + 1];
    int64_t now = ef_clock_wall_coarse_ns() / 1000000000;
    if (now != at) {
        ef_http_date(now, text);
        at = now;
    }
    return text;
}

/* The headers the response goes out with: the handler's and the server's own. */
static void collect_headers(ef_http_req *req, sent_headers *sh)
{
    sh->n = 0;
    sent_add_n(sh, "Date", 4, http_date_now(), EF_HTTP_DATE_LEN);
    if (req->content_type && !added_header(req, EF_BYTES_LIT("Content-Type")))
        sent_add_n(sh, "Content-Type", 12, req->content_type, strlen(req->content_type));
    for (unsigned i = 0; i < req->nheaders; i++)
        sent_add_n(sh, req->headers[i].name, req->headers[i].name_len, req->headers[i].value, req->headers[i].value_len);
    if (req->srv->cfg.cors_enabled && !req->preflight) cors_actual(req, sh);
    if (req->srv->cfg.gzip_min_bytes != SIZE_MAX && !req->stream && compressible(response_type(req, req->content_type)))
        SENT_LIT(sh, "Vary", "Accept-Encoding");
    if (__atomic_load_n(&req->srv->stopping, __ATOMIC_ACQUIRE)) SENT_LIT(sh, "Connection", "close");
}

static void attach_headers(struct MHD_Response *resp, const sent_headers *sh)
{
    for (unsigned i = 0; i < sh->n; i++) MHD_add_response_header(resp, sh->h[i].name, sh->h[i].value);
}

/* Whether the kept response has exactly these headers, in this order: lengths first, then the
 * bytes, by word (a byte loop over an evaluation's ~100 bytes of headers was ~850 instructions). */
static bool reuse_same_headers(const reuse *ru, const sent_headers *sh)
{
    if (ru->nheaders != sh->n) return false;
    const char *t = ru->text;
    for (unsigned i = 0; i < sh->n; i++) {
        const sent_header *h = &sh->h[i];
        if (ru->lens[i].name != h->name_len || ru->lens[i].value != h->value_len ||
            !ef_mem_eq(t, h->name, h->name_len) || !ef_mem_eq(t + h->name_len, h->value, h->value_len))
            return false;
        t += h->name_len + h->value_len;
    }
    return true;
}

/* Keeps resp, with these headers, for the next answers on the connection; false when they do
 * not fit the record (the response is then used once, as any other). */
static bool reuse_keep(reuse *ru, struct MHD_Response *resp, const void *data, size_t len, const sent_headers *sh)
{
    size_t at = 0;
    for (unsigned i = 0; i < sh->n; i++) {
        const sent_header *h = &sh->h[i];
        if ((size_t)h->name_len + h->value_len > sizeof(ru->text) - at) return false; /* so each < 2^16 */
        memcpy(ru->text + at, h->name, h->name_len);
        memcpy(ru->text + at + h->name_len, h->value, h->value_len);
        at += h->name_len + h->value_len;
        ru->lens[i].name = (uint16_t)h->name_len;
        ru->lens[i].value = (uint16_t)h->value_len;
    }
    ru->resp = resp;
    ru->data = data;
    ru->len = len;
    ru->nheaders = sh->n;
    return true;
}

static void reuse_release(reuse *ru)
{
    if (ru->resp) MHD_destroy_response(ru->resp);
    ru->resp = NULL;
}

/* The response for a plain answer: the connection's kept one when it sends the same bytes with
 * the same headers, else a new one, kept in its place if it can be. *kept: the connection holds
 * it (the caller must not release it). NULL when out of memory. */
static struct MHD_Response *plain_response(ef_http_req *req, const sent_headers *sh, bool *kept)
{
    *kept = true;
    req->answers++;
    for (unsigned i = 0; i < REUSE_SLOTS; i++) {
        reuse *r = &req->reuse[i];
        if (r->resp && r->data == req->plain && r->len == req->plain_len && reuse_same_headers(r, sh)) {
            r->used = req->answers;
            return r->resp;
        }
    }
    reuse *ru = &req->reuse[0]; /* the least recently used (or an empty one) goes */
    for (unsigned i = 1; i < REUSE_SLOTS; i++)
        if (req->reuse[i].used < ru->used) ru = &req->reuse[i];
    reuse_release(ru);
    ru->used = req->answers;
    struct MHD_Response *resp = MHD_create_response_from_buffer(req->plain_len, (void *)req->plain, MHD_RESPMEM_PERSISTENT);
    if (!resp) return NULL;
    attach_headers(resp, sh);
    *kept = reuse_keep(ru, resp, req->plain, req->plain_len, sh);
    return resp;
}

/* ---- gzip ------------------------------------------------------------------------------------- */

const char *const ef_http_cors_default_headers[] = {
    "Accept", "Authorization", "Content-Type", "X-CSRF-Token", "X-Fern-Language", "X-Fern-SDK-Name",
    "X-Fern-SDK-Version", "X-Flipt-Namespace", "X-Flipt-Accept-Server-Version", NULL};

/* The type a response will be sent with: a handler's Content-Type header wins. */
static const char *response_type(const ef_http_req *req, const char *dflt)
{
    const char *t = added_header(req, EF_BYTES_LIT("Content-Type"));
    return t ? t : dflt;
}

/* Types worth compressing (what chi's Compress middleware in Flipt compresses by default). */
static bool compressible(const char *type)
{
    return type && (strncasecmp(type, "application/json", 16) == 0 || strncasecmp(type, "text/", 5) == 0 ||
                    strncasecmp(type, "application/javascript", 22) == 0 ||
                    strncasecmp(type, "image/svg+xml", 13) == 0);
}

/* Whether Accept-Encoding accepts gzip: a "gzip", "x-gzip" or "*" member without q=0. */
static bool accepts_gzip(const char *ae)
{
    if (!ae) return false;
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *name = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t') p++;
        size_t n = (size_t)(p - name);
        bool want = (n == 4 && strncasecmp(name, "gzip", 4) == 0) || (n == 6 && strncasecmp(name, "x-gzip", 6) == 0) ||
                    (n == 1 && name[0] == '*');
        double q = 1;
        while (*p && *p != ',') { /* parameters: only q matters */
            if (*p == ';') {
                p++;
                while (*p == ' ' || *p == '\t') p++;
                if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') q = strtod(p + 2, NULL);
            } else {
                p++;
            }
        }
        if (want && q > 0) return true;
    }
    return false;
}

/* A gzip response for a body the client accepts compressed, or NULL to send it as it is. Bodies
 * below gzip_min_bytes are not worth the CPU (most evaluation answers); HEAD, 204 and 304 carry
 * none. Adds Content-Encoding; Vary: Accept-Encoding is added to every compressible response in
 * collect_headers, whatever was chosen, so a cache never serves one client's choice to another. */
static struct MHD_Response *gzip_response(ef_http_req *req, int status, const char *type, const void *data,
                                          size_t len)
{
    ef_http_server *srv = req->srv;
    /* zlib counts input in uInt: a body past that is sent as it is (none is near it) */
    if (srv->cfg.gzip_min_bytes == SIZE_MAX || len < srv->cfg.gzip_min_bytes || len > UINT32_MAX) return NULL;
    if (status == 204 || status == 304 || status < 200 || req->method == EF_HEAD) return NULL;
    if (!compressible(type) || ef_http_has_header(req, "Content-Encoding")) return NULL;
    if (!accepts_gzip(MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Accept-Encoding"))) return NULL;
    /* the cache key: path and ETag, when the response has one */
    char key[GZ_CACHE_MAX_KEY] = "";
    for (unsigned i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, "ETag") == 0 &&
            (size_t)snprintf(key, sizeof(key), "%s\n%s", req->url, req->headers[i].value) >= sizeof(key))
            key[0] = '\0';
    gz_cache *gc = &srv->gz;
    if (key[0]) {
        struct MHD_Response *hit = NULL;
        pthread_mutex_lock(&gc->mu);
        for (unsigned i = 0; i < GZ_CACHE_SLOTS; i++)
            if (gc->e[i].data && gc->e[i].plain_len == len && strcmp(gc->e[i].key, key) == 0) {
                hit = MHD_create_response_from_buffer(gc->e[i].len, gc->e[i].data, MHD_RESPMEM_MUST_COPY);
                break;
            }
        pthread_mutex_unlock(&gc->mu);
        if (hit) {
            MHD_add_response_header(hit, "Content-Encoding", "gzip");
            return hit;
        }
    }
    z_stream z;
    memset(&z, 0, sizeof(z));
    /* 15 + 16: a gzip wrapper; level 6 (zlib's default, Go's gzip.DefaultCompression) */
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    uLong cap = deflateBound(&z, (uLong)len);
    unsigned char *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t out = (size_t)z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return NULL;
    }
    if (key[0]) { /* keep a copy for the next request for the same representation */
        unsigned char *copy = malloc(out);
        if (copy) {
            memcpy(copy, buf, out);
            pthread_mutex_lock(&gc->mu);
            gz_entry *e = &gc->e[gc->next++ % GZ_CACHE_SLOTS];
            free(e->data);
            memcpy(e->key, key, sizeof(e->key));
            e->plain_len = len;
            e->data = copy;
            e->len = out;
            pthread_mutex_unlock(&gc->mu);
        }
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(out, buf, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(buf);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Encoding", "gzip");
    return resp;
}

void ef_http_reply(ef_http_req *req, int status)
{
    if (req->replied) return;
    if (!ef_buf_ok(&req->out)) {
        ef_buf_clear(&req->out);
        ef_buf_puts(&req->out, "{\"code\":13,\"message\":\"out of memory\",\"details\":[]}");
        status = 500;
    }
    const void *data = req->out.data ? req->out.data : (void *)"";
    struct MHD_Response *resp =
        gzip_response(req, status, response_type(req, "application/json"), data, req->out.len);
    /* Not copied: req->out is left alone until the next request on this connection starts
     * (request_reset), which libmicrohttpd begins only after this response is sent, and it is
     * freed only with the connection. A copy was a malloc, a memcpy and a free per request. */
    if (resp)
        finish_response(req, resp, status, "application/json");
    else
        finish_plain(req, data, req->out.len, status, "application/json");
}

void ef_http_reply_static(ef_http_req *req, int status, const char *content_type, const void *data,
                          size_t len)
{
    if (req->replied) return;
    struct MHD_Response *resp = gzip_response(req, status, response_type(req, content_type), data, len);
    ef_buf_clear(&req->out);
    req->out.len = 0;
    if (resp)
        finish_response(req, resp, status, content_type);
    else
        finish_plain(req, data, len, status, content_type);
    /* remember the size for the access log */
    req->out.len = len;
}

void ef_http_error(ef_http_req *req, int status, int grpc_code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ef_buf_clear(&req->out);
    ef_buf_printf(&req->out, "{\"code\":%d,\"message\":", grpc_code);
    ef_json_put_cstr(&req->out, msg);
    ef_buf_puts(&req->out, ",\"details\":[]}");
    if (status == 401) {
        ef_http_add_header(req, "WWW-Authenticate", msg);
    }
    ef_http_reply(req, status);
}

/* ---- streams ----------------------------------------------------------------------------------- */

static void set_deadline(ef_http_req *req, int64_t after_ns);

/* The time a client is given to take a block of len bytes at the stream's pace (0: no pace). */
static int64_t block_allowance_ns(const ef_http_stream *s, size_t len)
{
    if (!s->pace_rate) return 0;
    double ns = (double)s->pace_grace_ns + (double)len / (double)s->pace_rate * 1e9;
    return ns < 9e18 ? (int64_t)ns : INT64_MAX / 2;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    ef_http_stream *s = cls;
    (void)pos;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->aborted) {
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (s->block && __atomic_load_n(&s->srv->stopping, __ATOMIC_ACQUIRE)) {
            ef_shared_unref(s->block); /* shutting down: a dump is not worth finishing */
            s->block = NULL;
        }
        if (s->block) {
            size_t n = s->block->len - s->block_sent;
            if (n > max) n = max;
            if (n) memcpy(buf, s->block->data + s->block_sent, n);
            s->block_sent += n;
            if (s->block_sent == s->block->len) {
                ef_shared_unref(s->block); /* the last stream to send a dump frees it */
                s->block = NULL;
                s->block_sent = 0;
                if (s->pace_rate) set_deadline(s->req, 0); /* taken in time */
            }
            if (n == 0 && s->block) { /* no room offered: never spin here holding the lock */
                pthread_mutex_unlock(&s->mu);
                return 0;
            }
            if (n == 0) continue; /* an empty block, gone */
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)n;
        }
        if (s->sent < s->pending.len) {
            size_t n = s->pending.len - s->sent;
            if (n > max) n = max;
            memcpy(buf, s->pending.data + s->sent, n);
            s->sent += n;
            if (s->sent == s->pending.len) {
                ef_buf_clear_shrink(&s->pending, EF_BUF_KEEP); /* a dump sent: its memory back */
                s->sent = 0;
            }
            pthread_mutex_unlock(&s->mu);
            return (ssize_t)n;
        }
        if (s->finished || __atomic_load_n(&s->srv->stopping, __ATOMIC_ACQUIRE)) {
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        ef_shared *block = NULL;
        int r = s->ops.fill(s->state, &s->pending, &block);
        if (block) {
            if (s->pending.len) { /* the contract: bytes or a block, not both */
                ef_shared_unref(block);
                s->pending.failed = true;
            } else {
                s->block = block;
                s->block_sent = 0;
                /* a streaming connection has no deadline of its own: this one is the block's */
                if (s->pace_rate) {
                    int64_t allowance = block_allowance_ns(s, block->len);
                    s->block_due_ns = ef_clock_mono_coarse_ns() + allowance;
                    set_deadline(s->req, allowance);
                }
            }
        }
        if (r < 0 || !ef_buf_ok(&s->pending)) {
            s->finished = true;
            if ((s->pending.len || s->block) && ef_buf_ok(&s->pending)) continue; /* flush what was produced */
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (s->pending.len || s->block) continue;
        if (r == 0) {
            if (s->woken) { /* a wake raced with fill(): try again instead of sleeping */
                s->woken = false;
                continue;
            }
            s->suspended = true;
            MHD_suspend_connection(s->conn);
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
    }
}

static void stream_free(void *cls)
{
    ef_http_stream *s = cls;
    s->too_slow = s->block && s->pace_rate && ef_clock_mono_coarse_ns() >= s->block_due_ns;
    if (s->ops.done) s->ops.done(s->state);
    ef_http_server *srv = s->srv;
    pthread_mutex_lock(&srv->streams_mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    pthread_mutex_unlock(&srv->streams_mu);
    ef_buf_free(&s->pending);
    ef_shared_unref(s->block);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

ef_http_stream *ef_http_reply_stream(ef_http_req *req, int status, const char *content_type,
                                     const ef_http_stream_ops *ops, void *state)
{
    if (req->replied) return NULL;
    ef_http_stream *s = calloc(1, sizeof(*s));
    if (!s) {
        ef_http_error(req, 500, 13, "out of memory");
        return NULL;
    }
    s->srv = req->srv;
    s->conn = req->conn;
    s->req = req;
    s->ops = *ops;
    s->state = state;
    ef_buf_init(&s->pending);
    pthread_mutex_init(&s->mu, NULL);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_free);
    if (!resp) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        ef_http_error(req, 500, 13, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&req->srv->streams_mu);
    s->next = req->srv->streams;
    if (s->next) s->next->prev = s;
    req->srv->streams = s;
    pthread_mutex_unlock(&req->srv->streams_mu);
    ef_http_add_header(req, "Cache-Control", "no-cache");
    ef_http_add_header(req, "X-Accel-Buffering", "no");
    req->stream = true;
    finish_response(req, resp, status, content_type);
    return s;
}

void ef_http_stream_pace(ef_http_stream *s, uint64_t min_bytes_per_s, unsigned grace_s)
{
    pthread_mutex_lock(&s->mu);
    s->pace_rate = grace_s ? min_bytes_per_s : 0;
    s->pace_grace_ns = (int64_t)grace_s * 1000000000LL;
    pthread_mutex_unlock(&s->mu);
}

void ef_http_stream_abort(ef_http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->aborted = true;
    set_deadline(s->req, 1); /* past at the reaper's next look */
    pthread_mutex_unlock(&s->mu);
    ef_http_stream_wake(s);
}

bool ef_http_stream_too_slow(const ef_http_stream *s)
{
    return s->too_slow;
}

void ef_http_stream_wake(ef_http_stream *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    } else {
        s->woken = true;
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---- waiting without a thread ----------------------------------------------------------------- */

bool ef_http_suspend(ef_http_req *req)
{
    ef_http_server *srv = req->srv;
    if (__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE)) return false;
    if (__atomic_add_fetch(&srv->waiting, 1, __ATOMIC_ACQ_REL) > srv->cfg.max_waiting) {
        __atomic_sub_fetch(&srv->waiting, 1, __ATOMIC_ACQ_REL);
        return false;
    }
    /* suspended here, inside the access handler, before anyone else can resume it */
    __atomic_store_n(&req->deadline_ns, 0, __ATOMIC_RELAXED);
    MHD_suspend_connection(req->conn);
    req->suspend_asked = true;
    return true;
}

void ef_http_resume(ef_http_req *req)
{
    ef_http_server *srv = req->srv;
    struct MHD_Connection *conn = req->conn;
    __atomic_sub_fetch(&srv->waiting, 1, __ATOMIC_ACQ_REL);
    /* from here on req belongs to the server thread that libmicrohttpd resumes it on */
    MHD_resume_connection(conn);
}

unsigned ef_http_resumes(const ef_http_req *req) { return req->resumes; }

bool ef_http_stopping(const ef_http_req *req)
{
    return __atomic_load_n(&req->srv->stopping, __ATOMIC_ACQUIRE) != 0;
}

unsigned ef_http_server_waiting(const ef_http_server *s)
{
    return __atomic_load_n(&s->waiting, __ATOMIC_ACQUIRE);
}

/* ---- deadlines for slow clients ---------------------------------------------------------------- */

/* Deadlines are seconds away and checked twice a second: the coarse clock is precise enough, and
 * set on every request (three times) it saves two precise reads per request. */
static void set_deadline(ef_http_req *req, int64_t after_ns)
{
    __atomic_store_n(&req->deadline_ns, after_ns ? ef_clock_mono_coarse_ns() + after_ns : 0,
                     __ATOMIC_RELAXED);
}

static int64_t request_timeout_ns(const ef_http_server *srv)
{
    return (int64_t)srv->cfg.request_timeout_s * 1000000000LL;
}

/* Ends the streams whose request is no longer allowed (ef_http_config.still_allowed), as
 * ef_http_stream_abort does: at once, whether or not the client reads. A stream's request and
 * what admit recorded on it stay as they are while the stream is listed: its connection's next
 * request starts only after stream_free unlisted it. */
static void recheck_streams(ef_http_server *srv)
{
    pthread_mutex_lock(&srv->streams_mu);
    for (ef_http_stream *st = srv->streams; st; st = st->next) {
        pthread_mutex_lock(&st->mu);
        bool aborted = st->aborted;
        pthread_mutex_unlock(&st->mu);
        if (!aborted && !srv->cfg.still_allowed(st->req, srv->cfg.app)) ef_http_stream_abort(st);
    }
    pthread_mutex_unlock(&srv->streams_mu);
}

/* Shuts down the sockets of connections past their deadline, twice a second. shutdown() (not
 * close) lets libmicrohttpd see the end of the connection and clean up as usual; the list lock is
 * held meanwhile, and a connection leaves the list before its descriptor is closed, so the fd
 * cannot belong to another connection yet. */
static void *reaper_main(void *arg)
{
    ef_thread_name("ef-reaper");
    ef_http_server *srv = arg;
    pthread_mutex_lock(&srv->conns_mu);
    while (!srv->reaper_stop) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += 500000000L;
        if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&srv->reaper_cv, &srv->conns_mu, &t);
        int64_t now = ef_clock_mono_coarse_ns(); /* the clock set_deadline counts on */
        for (ef_http_req *c = srv->conns; c; c = c->cnext) {
            int64_t d = __atomic_load_n(&c->deadline_ns, __ATOMIC_RELAXED);
            if (d && d < now && c->fd >= 0) {
                shutdown(c->fd, SHUT_RDWR);
                __atomic_store_n(&c->deadline_ns, 0, __ATOMIC_RELAXED);
            }
        }
        if (srv->cfg.still_allowed && !srv->reaper_stop) {
            pthread_mutex_unlock(&srv->conns_mu); /* the streams' locks are never taken under it */
            recheck_streams(srv);
            pthread_mutex_lock(&srv->conns_mu);
        }
    }
    pthread_mutex_unlock(&srv->conns_mu);
    return NULL;
}

/* ---- the access handler ---------------------------------------------------------------------- */

static ef_http_method parse_method(const char *m)
{
    static const struct {
        const char *name;
        ef_http_method m;
    } t[] = {{"GET", EF_GET},         {"POST", EF_POST}, {"PUT", EF_PUT},         {"DELETE", EF_DELETE},
             {"PATCH", EF_PATCH},     {"HEAD", EF_HEAD}, {"OPTIONS", EF_OPTIONS}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(m, t[i].name) == 0) return t[i].m;
    return EF_METHOD_OTHER;
}

/* Sizes the header block, and looks for what libmicrohttpd 0.9.75 passes on silently: a repeated
 * Authorization (which one a proxy in front checked is unknowable), and a NUL byte in a name or
 * value where libmicrohttpd reports it. (It cuts a header value or the request target at a raw NUL
 * byte before we see it, and reports the cut length: docs/security.md says so.) */
typedef struct header_scan {
    size_t bytes;
    unsigned authorizations;
    const char *malformed;
    const char *content_length; /* the first Content-Length, found on the way */
    bool transfer_encoding;     /* a body of a length not declared (chunked) */
} header_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    header_scan *h = cls;
    h->bytes += key_size + value_size + 4;
    if (strlen(key) != key_size || (value && strlen(value) != value_size))
        h->malformed = "a NUL byte in a request header";
    if (key_size == 13 && strcasecmp(key, "Authorization") == 0 && ++h->authorizations > 1)
        h->malformed = "more than one Authorization header";
    if (key_size == 14 && !h->content_length && strcasecmp(key, "Content-Length") == 0)
        h->content_length = value;
    if (key_size == 17 && strcasecmp(key, "Transfer-Encoding") == 0) h->transfer_encoding = true;
    return MHD_YES;
}

/* A Content-Length value as strtoull reads it: digits alone (what libmicrohttpd lets through) by
 * ef_parse_u64, without the library's locale and sign handling; anything else, or a value past
 * 64 bits (strtoull's ULLONG_MAX), by strtoull as before. */
static unsigned long long content_length(const char *s)
{
    uint64_t v;
    return ef_parse_u64(s, &v) ? v : strtoull(s, NULL, 10);
}

static enum MHD_Result scan_argument(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                     const char *value, size_t value_size)
{
    (void)kind;
    header_scan *h = cls;
    if (strlen(key) != key_size || (value && strlen(value) != value_size))
        h->malformed = "a NUL byte in a query parameter";
    return MHD_YES;
}

static void request_reset(ef_http_req *req)
{
    ef_arena_reset(&req->arena);
    ef_buf_clear(&req->body);
    ef_buf_clear(&req->out);
    req->too_large = false;
    req->busy = false;
    req->no_client_cert = false;
    req->malformed = NULL;
    __atomic_store_n(&req->started, false, __ATOMIC_RELEASE);
    req->nparams = 0;
    req->nheaders = 0;
    req->status = 0;
    req->replied = false;
    req->preflight = req->stream = false;
    req->response = NULL;
    req->plain_set = false;
    req->finished_ns = 0;
    req->route = NULL;
    req->method_not_allowed = req->admitted = false;
    req->user = NULL;
    req->target = NULL;
    req->suspend_asked = req->suspended = false;
    req->resumes = 0;
}

static void set_peer(ef_http_req *req, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    req->peer[0] = '\0';
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    char ip[INET6_ADDRSTRLEN] = "";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(req->peer, sizeof(req->peer), "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(req->peer, sizeof(req->peer), "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    }
}

/* ---- CORS ----------------------------------------------------------------------------------------- */

static bool cors_origin_allowed(const cors_rules *c, const char *origin)
{
    if (c->all_origins) return true;
    size_t n = strlen(origin);
    for (char **o = c->origins; o && *o; o++) {
        const char *star = strchr(*o, '*');
        if (!star) {
            if (strcasecmp(*o, origin) == 0) return true;
            continue;
        }
        /* one wildcard: the parts before and after it must both fit */
        size_t pre = (size_t)(star - *o), post = strlen(star + 1);
        if (n >= pre + post && strncasecmp(origin, *o, pre) == 0 && strcasecmp(origin + n - post, star + 1) == 0)
            return true;
    }
    return false;
}

/* Go's canonical header spelling (http.CanonicalHeaderKey): what the preflight echoes. */
static void header_canonical(char *h)
{
    bool upper = true;
    for (char *p = h; *p; p++) {
        *p = upper ? (char)toupper((unsigned char)*p) : (char)tolower((unsigned char)*p);
        upper = *p == '-';
    }
}

/* OPTIONS with Access-Control-Request-Method, as go-chi/cors answers it with Flipt's options:
 * always 200 and no body; the Allow headers only when origin, method and headers are all
 * allowed (the browser then refuses the request itself). */
static void cors_preflight(ef_http_req *req, const char *method)
{
    const cors_rules *c = &req->srv->cors;
    req->preflight = true;
    ef_http_add_header(req, "Vary", "Origin");
    ef_http_add_header(req, "Vary", "Access-Control-Request-Method");
    ef_http_add_header(req, "Vary", "Access-Control-Request-Headers");
    const char *origin = ef_http_header(req, "Origin");
    const char *rh = ef_http_header(req, "Access-Control-Request-Headers");
    ef_buf list;
    ef_buf_init(&list);
    bool ok = origin && *origin && cors_origin_allowed(c, origin) && cors_method_allowed(method);
    for (const char *p = rh ? rh : ""; ok && *p;) {
        while (*p == ',' || *p == ' ' || *p == '\t') p++;
        const char *b = p;
        while (*p && *p != ',' && *p != ' ' && *p != '\t') p++;
        size_t n = (size_t)(p - b);
        if (!n) continue;
        char name[128];
        if (n >= sizeof(name)) {
            ok = false;
            break;
        }
        memcpy(name, b, n);
        name[n] = '\0';
        header_canonical(name);
        bool found = c->all_headers;
        for (char **h = c->headers; !found && h && *h; h++) found = strcasecmp(*h, name) == 0;
        if (!found) ok = false;
        if (list.len) ef_buf_puts(&list, ", ");
        ef_buf_puts(&list, name);
    }
    if (ok && ef_buf_ok(&list)) {
        char m[32];
        snprintf(m, sizeof(m), "%s", method);
        for (char *p = m; *p; p++) *p = (char)toupper((unsigned char)*p);
        ef_http_add_header(req, "Access-Control-Allow-Origin", c->all_origins ? "*" : origin);
        ef_http_add_header(req, "Access-Control-Allow-Methods", m);
        if (list.len) {
            ef_buf_putc(&list, '\0');
            ef_http_add_header(req, "Access-Control-Allow-Headers", list.data);
        }
        ef_http_add_header(req, "Access-Control-Allow-Credentials", "true");
        ef_http_add_header(req, "Access-Control-Max-Age", "300");
    }
    ef_buf_free(&list);
    ef_http_reply_static(req, 200, NULL, "", 0);
}

static void strv_free(char **v)
{
    for (char **p = v; p && *p; p++) free(*p);
    free(v);
}

/* Copies a NULL-terminated list (dflt when NULL), plus extra when not NULL; *all when "*" is in it. */
static char **strv_copy(const char *const *v, const char *const *dflt, const char *extra, bool *all)
{
    const char *const *src = v ? v : dflt;
    size_t n = 0;
    while (src[n]) n++;
    char **out = calloc(n + 2, sizeof(char *));
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(src[i], "*") == 0) *all = true;
        if (!(out[k++] = strdup(src[i]))) {
            strv_free(out);
            return NULL;
        }
    }
    if (extra && !(out[k++] = strdup(extra))) {
        strv_free(out);
        return NULL;
    }
    return out;
}

static bool is_preflight(const ef_http_server *srv, const ef_http_req *req)
{
    if (!srv->cfg.cors_enabled || req->method != EF_OPTIONS) return false;
    const char *rm = ef_http_header(req, "Access-Control-Request-Method");
    return rm && *rm;
}

/* The answers the server gives before routing, from what it knows of the request's header
 * block; false when it is to be routed. */
static bool refused_unrouted(const ef_http_server *srv, const ef_http_req *req)
{
    return req->no_client_cert || req->too_large || req->malformed ||
           (srv->cfg.max_header && req->header_bytes > srv->cfg.max_header);
}

/* The first BODY_SMALL bytes of every body are not counted against max_body_total, so that the
 * requests clients make all day (an evaluation is a few hundred bytes) are served while large
 * bodies wait their turn; those bytes are bounded by max_connections instead. A connection kept
 * alive keeps a buffer of at most that size, or 4,096 idle connections could keep a megabyte each. */
#define BODY_SMALL ((size_t)16 << 10)

/* Holds what a body of len bytes needs of max_body_total (its bytes past BODY_SMALL) for req;
 * false, holding nothing more, when that does not fit. */
static bool body_hold(ef_http_server *srv, ef_http_req *req, size_t len)
{
    size_t need = len > BODY_SMALL ? len - BODY_SMALL : 0;
    if (need <= req->reserved) return true;
    size_t more = need - req->reserved;
    if (__atomic_add_fetch(&srv->body_bytes, more, __ATOMIC_RELAXED) > srv->cfg.max_body_total) {
        __atomic_sub_fetch(&srv->body_bytes, more, __ATOMIC_RELAXED);
        return false;
    }
    req->reserved = need;
    return true;
}

/* Gives back what req held of max_body_total, and the memory of a large body. */
static void body_release(ef_http_server *srv, ef_http_req *req)
{
    if (req->reserved) __atomic_sub_fetch(&srv->body_bytes, req->reserved, __ATOMIC_RELAXED);
    req->reserved = 0;
    ef_buf_clear_shrink(&req->body, BODY_SMALL);
}

/* The authority of an origin ("http://host:port" -> "host:port"), or NULL. */
static const char *origin_authority(const char *origin)
{
    const char *p = strstr(origin, "://");
    return p && p[3] ? p + 3 : NULL;
}

/* Whether a write comes from a page of another site that the browser sent on its own. A browser
 * attaches no bearer token by itself, and a session cookie needs X-CSRF-Token (api/auth.c); but
 * with authentication off (the default), any page a person opens could otherwise POST
 * text/plain JSON to a node their browser reaches (no preflight: a "simple" request). Browsers
 * say where a request comes from: Sec-Fetch-Site, else Origin (compared with Host, or the
 * X-Forwarded-Host a proxy that rewrites Host sets). SDKs and curl send neither, and a request
 * with an Authorization header is the caller's own. Origins allowed by the CORS settings pass. */
static bool cross_site_write(const ef_http_server *srv, const ef_http_req *req)
{
    if (!req->route || !(req->route->flags & EF_RF_WRITE) || ef_http_header(req, "Authorization")) return false;
    const char *origin = ef_http_header(req, "Origin");
    if (origin && *origin && srv->cfg.cors_enabled && cors_origin_allowed(&srv->cors, origin)) return false;
    const char *site = ef_http_header(req, "Sec-Fetch-Site");
    if (site && *site) return strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0;
    if (!origin || !*origin) return false;
    const char *auth = origin_authority(origin);
    if (!auth) return true; /* "null": a sandboxed frame, a file */
    const char *host = ef_http_header(req, "Host"), *fwd = ef_http_header(req, "X-Forwarded-Host");
    return !(host && strcasecmp(auth, host) == 0) && !(fwd && strcasecmp(auth, fwd) == 0);
}

/* Whether the path of a raw request target has an encoded '/' (%2F). libmicrohttpd decodes the
 * path before routing, so /api/v1/namespaces/secret%2Fflags would reach secret's flags: a proxy
 * that allows or refuses by path prefix would be bypassed. No key may hold a '/', and Flipt keeps
 * %2F inside the segment (a key that does not exist), so such a path routes nowhere. */
static bool encoded_slash(const char *target)
{
    if (!target) return false;
    /* every request passes here: the C library's scans, not a loop a byte at a time */
    const char *query = strchr(target, '?');
    for (const char *p = strchr(target, '%'); p && (!query || p < query); p = strchr(p + 1, '%'))
        if (p[1] == '2' && (p[2] == 'F' || p[2] == 'f')) return true;
    return false;
}

/* The admit hook, once per request, after the cross-site write check; true when either answered. */
static bool admit(ef_http_server *srv, ef_http_req *req)
{
    req->admitted = true;
    if (cross_site_write(srv, req)) {
        ef_http_error(req, 403, 7, "a write from another site's page is refused (Origin/Sec-Fetch-Site); "
                      "send it with an Authorization header, or allow the origin with cors.allowed_origins");
        return true;
    }
    return srv->cfg.admit && srv->cfg.admit(req, srv->cfg.app);
}

static void dispatch(ef_http_server *srv, ef_http_req *req)
{
    req->replied = false;
    if (req->no_client_cert) {
        ef_http_error(req, 401, 16, "this server requires a client certificate signed by its client CA; "
                      "the connection presented none");
        return;
    }
    if (req->too_large) {
        ef_http_error(req, 413, 3, "request body too large (limit %zu bytes)", srv->cfg.max_body);
        return;
    }
    if (req->malformed) {
        ef_http_error(req, 400, 3, "malformed request: %s", req->malformed);
        return;
    }
    if (srv->cfg.max_header && req->header_bytes > srv->cfg.max_header) {
        ef_http_error(req, 431, 3, "request headers too large (limit %zu bytes)", srv->cfg.max_header);
        return;
    }
    if (is_preflight(srv, req)) { /* answered here, before routing and authentication */
        cors_preflight(req, ef_http_header(req, "Access-Control-Request-Method"));
        return;
    }
    if (!req->admitted && admit(srv, req)) return;
    if (req->busy) {
        ef_http_add_header(req, "Retry-After", "1");
        ef_http_error(req, 503, 14, "server busy: request bodies in flight take all of max-body-total "
                      "(%zu bytes); retry", srv->cfg.max_body_total);
        return;
    }
    if (srv->cfg.before && srv->cfg.before(req, srv->cfg.app)) return;
    if (req->suspend_asked) return;
    if (req->route) {
        req->route->fn(req, req->route->ctx);
    } else if (req->method_not_allowed) {
        char allow[EF_ROUTER_ALLOW_MAX];
        ef_router_allow_text(req->allowed, allow);
        ef_http_add_header(req, "Allow", allow);
        ef_http_error(req, 405, 12, "Method Not Allowed");
    } else if (srv->router->fallback) {
        srv->router->fallback(req, srv->router->fallback_ctx);
    } else {
        ef_http_error(req, 404, 5, "Not Found");
    }
    /* suspend_asked first: once a handler suspended req, whoever took it may be answering it on
     * another thread right now (ef_http_reply writes replied), so this thread reads nothing of
     * req that party writes; suspend_asked is this thread's own */
    if (!req->suspend_asked && !req->replied) ef_http_error(req, 500, 13, "handler produced no response");
}

/* The request target as sent, before libmicrohttpd decodes it in place: libmicrohttpd calls this
 * first for every request, and what it returns becomes the request's context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    ef_http_req *req = ci ? ci->socket_context : NULL;
    if (!req) return NULL;
    request_reset(req);
    req->target = uri ? ef_arena_memdup(&req->arena, uri, strlen(uri) + 1) : NULL;
    return req;
}

/* Dispatches (or, resumed, finishes) the request and queues its answer. */
static enum MHD_Result answer(ef_http_server *srv, ef_http_req *req, struct MHD_Connection *conn)
{
    set_deadline(req, 0); /* the request is in; answering it has limits of its own */
    if (req->suspended) { /* resumed: answered by whoever took it, or to be dispatched again */
        req->suspended = false;
        req->resumes++;
        if (!req->replied) dispatch(srv, req);
    } else if (!req->replied) { /* else refused as it was admitted: the answer is made */
        dispatch(srv, req);
    }
    if (req->suspend_asked) { /* someone else has req now: touch nothing but our own flags */
        req->suspend_asked = false;
        req->suspended = true;
        return MHD_YES;
    }
    if (!req->response && !req->plain_set) return MHD_NO;
    if (srv->cfg.finish) srv->cfg.finish(req, srv->cfg.app);
    sent_headers sh;
    collect_headers(req, &sh);
    if (req->plain_set) {
        bool kept;
        struct MHD_Response *resp = plain_response(req, &sh, &kept);
        if (!resp) return MHD_NO;
        enum MHD_Result r = MHD_queue_response(conn, (unsigned)req->status, resp);
        if (!kept) MHD_destroy_response(resp);
        return r;
    }
    attach_headers(req->response, &sh);
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)req->status, req->response);
    MHD_destroy_response(req->response);
    req->response = NULL;
    return r;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    ef_http_server *srv = cls;
    ef_http_req *req = *con_cls;
    (void)version;
    if (!req) return MHD_NO;
    if (!req->started) { /* the headers are in */
        req->conn = conn;
        __atomic_store_n(&req->started, true, __ATOMIC_RELEASE); /* in flight (inflight()) */
        req->t0 = ef_clock_mono_ns();
        set_deadline(req, request_timeout_ns(srv)); /* now the body */
        req->url = url;
        req->method_name = method;
        req->method = parse_method(method);
        header_scan hs = {0, 0, NULL, NULL, false};
        MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_header, &hs);
        MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, scan_argument, &hs);
        req->header_bytes = hs.bytes;
        req->malformed = hs.malformed;
        unsigned long long declared = hs.content_length ? content_length(hs.content_length) : 0;
        if (declared > srv->cfg.max_body) req->too_large = true;
        /* Refused before the body is read (no "100 Continue", no waiting for bytes a client
         * declared but may never send); libmicrohttpd then closes the connection, which is right
         * for a body left unread. */
        req->no_client_cert = srv->cfg.tls && !ef_http_tls_client_ok(&req->tls, conn);
        if (refused_unrouted(srv, req)) return answer(srv, req, conn);
        router_match m = {0};
        if (!encoded_slash(req->target))
            m = ef_router_match(srv->router, req->method, req->url, req->params, &req->nparams);
        req->route = m.route;
        req->method_not_allowed = m.method_not_allowed;
        req->allowed = m.allowed;
        if (is_preflight(srv, req)) return MHD_YES;
        /* A request with a body is admitted now, and refused before anything of it is read; one
         * without is admitted as it is dispatched, because an answer queued this early closes a
         * keep-alive connection (above), which only a body left unread calls for. */
        if ((declared || hs.transfer_encoding) && admit(srv, req)) return answer(srv, req, conn);
        /* a declared body is held for at once: the connections that would pass the budget are
         * refused before any of them sends a byte */
        if (declared && !body_hold(srv, req, (size_t)declared)) {
            req->busy = true;
            return answer(srv, req, conn);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->too_large && !req->busy && !req->replied) {
            size_t len = req->body.len + *upload_data_size;
            if (len > srv->cfg.max_body)
                req->too_large = true;
            else if (!body_hold(srv, req, len))
                req->busy = true; /* a chunked body, or more than was declared */
            else
                ef_buf_append(&req->body, upload_data, *upload_data_size);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->replied && !req->suspended) return MHD_YES; /* refused early: the rest is discarded */
    return answer(srv, req, conn);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ef_http_server *srv = cls;
    ef_http_req *req = *con_cls;
    if (!req) return;
    if (req->started && req->replied && srv->cfg.after)
        srv->cfg.after(req, req->status, req->out.len, srv->cfg.app);
    body_release(srv, req);
    /* the next request on this connection: the keep-alive idle time, then its own deadline. A
     * request that ended in error (a stream ended by ef_http_stream_abort) closes its connection,
     * but libmicrohttpd does so at its thread's next wake, seconds away on a quiet thread: the
     * client would go on waiting; the reaper shuts the socket down at its next look instead. */
    set_deadline(req, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK
                          ? (int64_t)srv->cfg.idle_timeout_s * 1000000000LL + request_timeout_ns(srv)
                          : 1);
    if (req->response) {
        MHD_destroy_response(req->response);
        req->response = NULL;
    }
    __atomic_store_n(&req->started, false, __ATOMIC_RELEASE);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    ef_http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        ef_http_req *req = calloc(1, sizeof(*req));
        if (srv->cfg.tls) { /* before the first byte is read; without req the handshake fails */
            const union MHD_ConnectionInfo *fi = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            ef_http_tls_attach(srv->cfg.tls, conn, fi ? fi->connect_fd : -1, req ? &req->tls : NULL);
        }
        if (!req) return;
        req->srv = srv;
        ef_arena_init(&req->arena, 8192);
        ef_buf_init(&req->body);
        ef_buf_init(&req->out);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        req->fd = ci ? ci->connect_fd : -1;
        set_peer(req, conn); /* a connection's peer never changes: formatted once, not per request */
        set_deadline(req, request_timeout_ns(srv)); /* the first request's headers */
        pthread_mutex_lock(&srv->conns_mu);
        req->cnext = srv->conns;
        if (req->cnext) req->cnext->cprev = req;
        srv->conns = req;
        pthread_mutex_unlock(&srv->conns_mu);
        *socket_context = req;
    } else {
        ef_http_req *req = *socket_context;
        if (!req) return;
        pthread_mutex_lock(&srv->conns_mu);
        if (req->cprev)
            req->cprev->cnext = req->cnext;
        else
            srv->conns = req->cnext;
        if (req->cnext) req->cnext->cprev = req->cprev;
        pthread_mutex_unlock(&srv->conns_mu);
        ef_http_tls_detach(&req->tls);
        for (unsigned i = 0; i < REUSE_SLOTS; i++) reuse_release(&req->reuse[i]);
        ef_arena_free(&req->arena);
        ef_buf_free(&req->body);
        ef_buf_free(&req->out);
        free(req);
        *socket_context = NULL;
    }
}

/* Percent-decoding of paths and query values, except %00: a decoded NUL would silently cut the
 * C string libmicrohttpd hands us, so "/flags/%00" would become "/flags/". Left encoded, it is
 * just a key that does not exist. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    /* most paths have no escape at all: nothing to move (a byte loop was ~180 instructions of
     * every evaluation's "/evaluate/v1/variant") */
    char *r = strchr(s, '%'), *w;
    if (!r) return strlen(s);
    w = r;
    while (*r) {
        if (r[0] == '%' && isxdigit((unsigned char)r[1]) && isxdigit((unsigned char)r[2]) &&
            !(r[1] == '0' && r[2] == '0')) {
            char hex[3] = {r[1], r[2], 0};
            *w++ = (char)strtol(hex, NULL, 16);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap; /* libmicrohttpd's own chatter (client resets, timeouts) is not an event of ours */
}

/* One descriptor per connection, plus the database, upstream links and logs: the soft limit is
 * often 1024, far below max_connections, and accept() failing is worse than a clear limit. */
static void raise_fd_limit(unsigned max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t want = (rlim_t)max_connections + 512;
    if (rl.rlim_cur >= want) return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static void server_free(ef_http_server *srv)
{
    for (unsigned i = 0; i < GZ_CACHE_SLOTS; i++) free(srv->gz.e[i].data);
    pthread_mutex_destroy(&srv->gz.mu);
    strv_free(srv->cors.origins);
    strv_free(srv->cors.headers);
    pthread_mutex_destroy(&srv->streams_mu);
    pthread_mutex_destroy(&srv->conns_mu);
    pthread_cond_destroy(&srv->reaper_cv);
    free(srv);
}

size_t ef_http_mhd_pool_size(size_t max_header)
{
    /* libmicrohttpd needs about 1.5x a header block to hold it with its read buffer */
    size_t p = max_header * 2 + 4096;
    return p < 8192 ? 8192 : p;
}

unsigned ef_http_mhd_flags(void)
{
    /* TURBO: optimistic reads and no shutdown() before close; with epoll it saves system calls
     * on every request, and nothing here relies on what it skips. epoll only with epoll_guard.c's
     * epoll_wait in place: without it, libmicrohttpd's loop sleeps on 128 ready connections at
     * a time (see there), and poll(), slower with many connections, is the safe choice. */
    unsigned loop = ef_epoll_guard_active() ? MHD_USE_EPOLL : MHD_USE_POLL;
    return MHD_USE_INTERNAL_POLLING_THREAD | loop | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
           MHD_USE_ERROR_LOG | MHD_USE_TURBO;
}

ef_http_server *ef_http_server_start(const ef_http_config *cfg, ef_router *router, char *err,
                                     size_t errlen)
{
    ef_http_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->quiesced_fd = -1;
    srv->cfg = *cfg;
    srv->router = router;
    if (!srv->cfg.threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        srv->cfg.threads = n > 0 ? (unsigned)n : 1;
    }
    if (!srv->cfg.max_body) srv->cfg.max_body = 1 << 20;
    if (!srv->cfg.max_body_total) srv->cfg.max_body_total = (size_t)64 << 20;
    if (srv->cfg.max_body_total < srv->cfg.max_body) srv->cfg.max_body_total = srv->cfg.max_body;
    if (!srv->cfg.max_connections) srv->cfg.max_connections = 4096;
    if (!srv->cfg.idle_timeout_s) srv->cfg.idle_timeout_s = 30;
    if (!srv->cfg.request_timeout_s) srv->cfg.request_timeout_s = 10;
    if (!srv->cfg.max_per_ip) srv->cfg.max_per_ip = 256;
    if (!srv->cfg.max_waiting) srv->cfg.max_waiting = 2048;
    if (!srv->cfg.gzip_min_bytes) srv->cfg.gzip_min_bytes = 1024;
    static const char *const any[] = {"*", NULL};
    if (srv->cfg.cors_enabled &&
        (!(srv->cors.origins = strv_copy(cfg->cors_origins, any, NULL, &srv->cors.all_origins)) ||
         !(srv->cors.headers = strv_copy(cfg->cors_headers, ef_http_cors_default_headers, "Origin",
                                         &srv->cors.all_headers)))) {
        snprintf(err, errlen, "out of memory");
        strv_free(srv->cors.origins);
        strv_free(srv->cors.headers);
        free(srv);
        return NULL;
    }
    raise_fd_limit(srv->cfg.max_connections);
    pthread_mutex_init(&srv->gz.mu, NULL);
    pthread_mutex_init(&srv->streams_mu, NULL);
    pthread_mutex_init(&srv->conns_mu, NULL);
    ef_cond_init_monotonic(&srv->reaper_cv);

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    const char *host = cfg->host && *cfg->host ? cfg->host : "127.0.0.1";
    unsigned flags = ef_http_mhd_flags();
    /* HTTPS (tls.h): the certificate comes from a callback, so a reload needs no restart */
    struct MHD_OptionItem tls_opts[8];
    size_t ntls = 0;
    if (cfg->tls) {
        flags |= MHD_USE_TLS;
        ntls = ef_http_tls_mhd_options(cfg->tls, tls_opts);
    }
    tls_opts[ntls] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(cfg->port);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(cfg->port);
        flags |= MHD_USE_IPv6;
    } else if (strcmp(host, "localhost") == 0) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(cfg->port);
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        snprintf(err, errlen, "invalid listen host '%s' (use an IP address)", host);
        server_free(srv);
        return NULL;
    }
    srv->d = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_access, srv,
        /* the logger first: libmicrohttpd reads options in order and writes its complaints about
         * later ones to stderr itself otherwise */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        /* one worker is the daemon's own thread, not a pool of one (which it warns about) */
        MHD_OPTION_THREAD_POOL_SIZE, srv->cfg.threads > 1 ? srv->cfg.threads : 0u,
        MHD_OPTION_CONNECTION_TIMEOUT,
        srv->cfg.idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT, srv->cfg.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, srv->cfg.max_per_ip, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        /* Room for headers up to about 1.3x max_header, so moderately oversized ones reach
         * dispatch() and get our JSON 431. Not more: libmicrohttpd zeroes the pool (and half of
         * it again) between requests, so every extra kilobyte costs on every keep-alive request
         * (hence the modest default max_header of 4 KiB). */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, ef_http_mhd_pool_size(srv->cfg.max_header),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
        MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!srv->d) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, (unsigned)cfg->port,
                 errno ? strerror(errno) : "libmicrohttpd failed to start");
        server_free(srv);
        return NULL;
    }
    if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
        snprintf(err, errlen, "cannot start a thread");
        MHD_stop_daemon(srv->d);
        server_free(srv);
        return NULL;
    }
    pthread_mutex_lock(&srv->conns_mu); /* the reaper reads the flags next to it under the lock */
    srv->reaper_started = true;
    pthread_mutex_unlock(&srv->conns_mu);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : cfg->port;
    return srv;
}

uint16_t ef_http_server_port(const ef_http_server *s)
{
    return s->port;
}

void ef_http_server_quiesce(ef_http_server *s)
{
    if (__atomic_exchange_n(&s->stopping, 1, __ATOMIC_ACQ_REL)) return;
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd == MHD_INVALID_SOCKET) return;
    /* Not closed yet: libmicrohttpd's worker threads take the socket out of their epoll sets on
     * their own time after quiesce, and a close here raced with that (ThreadSanitizer, make tsan:
     * close against a worker's epoll_ctl on the same descriptor, whose number another socket could
     * have taken by then). shutdown() ends the listening at once (new connections are refused
     * while the server drains); the descriptor is closed once the workers are joined. */
    shutdown(fd, SHUT_RDWR);
    s->quiesced_fd = fd;
}

/* Requests started and not completed: the connections' own flags, looked at only while stopping
 * (a shared counter was two locked read-modify-writes on every request). */
static unsigned inflight(ef_http_server *s)
{
    unsigned n = 0;
    pthread_mutex_lock(&s->conns_mu);
    for (ef_http_req *r = s->conns; r; r = r->cnext) n += __atomic_load_n(&r->started, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&s->conns_mu);
    return n;
}

void ef_http_server_stop(ef_http_server *s, unsigned grace_ms)
{
    if (!s) return;
    ef_http_server_quiesce(s);
    /* end every stream: they would otherwise keep their connections forever */
    pthread_mutex_lock(&s->streams_mu);
    for (ef_http_stream *st = s->streams; st; st = st->next) ef_http_stream_wake(st);
    pthread_mutex_unlock(&s->streams_mu);
    int64_t deadline = ef_clock_mono_ns() + (int64_t)grace_ms * 1000000;
    /* in-flight requests finish; idle keep-alive connections are simply closed by stop */
    while (ef_clock_mono_ns() < deadline) {
        bool streams_left;
        pthread_mutex_lock(&s->streams_mu);
        streams_left = s->streams != NULL;
        pthread_mutex_unlock(&s->streams_mu);
        if (!streams_left && inflight(s) == 0) break;
        usleep(5000);
    }
    if (__atomic_load_n(&s->waiting, __ATOMIC_ACQUIRE))
        fprintf(stderr, "edgeflag: stopping with %u suspended requests\n", ef_http_server_waiting(s));
    pthread_mutex_lock(&s->conns_mu);
    s->reaper_stop = true;
    bool reaper = s->reaper_started;
    pthread_cond_signal(&s->reaper_cv);
    pthread_mutex_unlock(&s->conns_mu);
    if (reaper) pthread_join(s->reaper, NULL);
    MHD_stop_daemon(s->d);
    if (s->quiesced_fd >= 0) close(s->quiesced_fd); /* the workers are gone: see quiesce */
    server_free(s);
}
