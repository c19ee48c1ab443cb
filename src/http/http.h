/*
 * http.h - the HTTP server: libmicrohttpd glue, request limits, routing, and what a handler sees.
 *
 * Handlers get an ef_http_req: method, path parameters, query, headers, the whole body (already
 * size-checked), a per-request arena and a response buffer. They answer with ef_http_reply or one of
 * the error helpers, which write Flipt's error body. Nothing here knows about flags or stores.
 *
 * Threading: requests run on libmicrohttpd's thread pool (epoll). A handler must not block for
 * long; streaming handlers suspend their connection instead of holding a thread (see
 * ef_http_stream_*).
 */
#ifndef EF_HTTP_HTTP_H
#define EF_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/shared.h"
#include "base/bytes.h"

typedef struct ef_http_req ef_http_req;
typedef struct ef_http_server ef_http_server;
typedef struct ef_router ef_router;

/* A handler returns nothing: it must have called ef_http_reply or an error helper. */
typedef void (*ef_http_handler)(ef_http_req *req, void *ctx);

typedef enum ef_http_method {
    EF_GET = 1,
    EF_POST = 2,
    EF_PUT = 4,
    EF_DELETE = 8,
    EF_PATCH = 16,
    EF_HEAD = 32,
    EF_OPTIONS = 64,
    EF_METHOD_OTHER = 128,
} ef_http_method;

/* --- routing --------------------------------------------------------------------------------- */

/* Route classes, for authentication and metrics. */
typedef enum ef_route_class {
    EF_ROUTE_OPEN = 0,       /* health, metrics, UI: never authenticated */
    EF_ROUTE_MANAGEMENT = 1, /* /api/v1 */
    EF_ROUTE_EVALUATION = 2, /* /evaluate/v1, snapshot endpoint, legacy evaluate */
    EF_ROUTE_OFREP = 3,      /* /ofrep/v1 */
    EF_ROUTE_AUTH = 4,       /* /auth/v1 */
    EF_ROUTE_INTERNAL = 5,   /* replication feed and cluster routes */
} ef_route_class;

/* Where a route's namespace comes from, for token scopes. Authentication checks it centrally
 * from this declaration (src/api/auth.c); a handler never guesses it from parameter names. */
typedef enum ef_route_ns {
    EF_NS_NONE = 0,   /* not about one namespace (health, tokens, cluster, lists of namespaces):
                       * a token scoped to a namespace may not use it (as Flipt refuses it) */
    EF_NS_PATH = 1,   /* the path parameter named ns_param ("" means "default") */
    EF_NS_HEADER = 2, /* the X-Flipt-Namespace header (OFREP); absent means "default" */
    EF_NS_BODY = 3,   /* the request's fields (the body, or the query parameters Flipt's gateway
                       * binds to fields, else "default"): only the handler can read them, so it
                       * calls ef_auth_namespace_allowed for each namespace before acting */
} ef_route_ns;

/* What a route does, declared once in its table entry (bits of ef_route.flags). */
enum ef_route_flag {
    EF_RF_WRITE = 1u << 0, /* changes the store: a replica forwards it; a primary wakes its feed */
    EF_RF_STATE = 1u << 1, /* answers from the node's state: X-Edgeflag-Min-Version applies */
    EF_RF_STREAM = 1u << 2, /* a long-lived response (server-sent events) */
    /* The namespace path parameter (EF_NS_PATH) may be an empty segment, which means "default":
     * Flipt's gateway binds "/api/v1/namespaces//flags" (its Go SDK sends it for an empty
     * namespace) and its servers read an empty namespaceKey as default. Other parameters never
     * match an empty segment. */
    EF_RF_NS_EMPTY = 1u << 3,
};

typedef struct ef_route {
    unsigned methods;    /* ef_http_method bits */
    const char *pattern; /* "/api/v1/namespaces/{namespaceKey}/flags/{key}" */
    ef_http_handler fn;
    void *ctx;
    ef_route_class cls;  /* authentication class */
    ef_route_ns ns;      /* where the namespace comes from */
    const char *ns_param; /* with EF_NS_PATH: the parameter's name */
    unsigned flags;      /* ef_route_flag bits */
    unsigned id;         /* index, for metrics (set by the router) */
} ef_route;

ef_router *ef_router_new(void);
void ef_router_free(ef_router *r);
/* Adds a route (copied; id is assigned; the pattern must outlive the router). Patterns are
 * literal segments and {name} parameters. Returns 0, or -1 when the declaration contradicts
 * itself: an invalid pattern, no method, an EF_NS_PATH route naming no parameter of its pattern
 * (or ns_param set on another source), an open route declaring a namespace, a write reachable
 * by GET/HEAD, or a stream that is also a write. */
int ef_router_add_route(ef_router *r, const ef_route *route);
/* Names used in the route table's JSON (`edgeflag routes`) and in configuration: "open",
 * "management", "evaluation", "ofrep", "auth", "internal"; "none", "path", "header", "body". */
const char *ef_route_class_name(ef_route_class cls);
const char *ef_route_ns_name(ef_route_ns ns);
/* Appends the route table as a JSON array, one object per route in registration order:
 * {"pattern","methods":[...],"class","ns","nsParam","write","state","stream","nsEmpty"}. */
void ef_router_write_json(const ef_router *r, ef_buf *out);
/* The fallback for paths no route matches (e.g. the UI's static files); NULL means a JSON 404. */
void ef_router_set_fallback(ef_router *r, ef_http_handler fn, void *ctx);
unsigned ef_router_count(const ef_router *r);
const ef_route *ef_router_route(const ef_router *r, unsigned id);

/* --- the request, as a handler sees it --------------------------------------------------------- */

ef_http_method ef_http_method_of(const ef_http_req *req);
const char *ef_http_method_name(const ef_http_req *req);
const char *ef_http_path(const ef_http_req *req);
/* The request target exactly as the client sent it: path and query, still percent-encoded
 * (what a replica forwards, so the primary sees the same request). */
const char *ef_http_target(const ef_http_req *req);
const ef_route *ef_http_route(const ef_http_req *req);
/* Path parameter by name (percent-decoded); empty if absent. */
ef_bytes ef_http_param(const ef_http_req *req, const char *name);
/* Query parameter (first value) or NULL. */
const char *ef_http_query(const ef_http_req *req, const char *name);
/* Every query parameter, decoded, in order (for handlers that pass a request on). */
void ef_http_query_each(const ef_http_req *req, void (*fn)(const char *name, const char *value, void *ctx),
                        void *ctx);
/* Request header (case-insensitive) or NULL. */
const char *ef_http_header(const ef_http_req *req, const char *name);
ef_bytes ef_http_body(const ef_http_req *req);
ef_arena *ef_http_arena(ef_http_req *req);
/* The response body buffer; handlers append to it then call ef_http_reply. */
ef_buf *ef_http_out(ef_http_req *req);
/* Remote address as text: "ip:port", "[ipv6]:port". */
const char *ef_http_peer(const ef_http_req *req);
/* Opaque value the server attached (the node), and per-request user data for middlewares. */
void *ef_http_app(const ef_http_req *req);
/* One pointer of per-request data for the application's hooks (cleared between requests). */
void ef_http_set_user(ef_http_req *req, const void *user);
const void *ef_http_user(const ef_http_req *req);
/* Monotonic start time of the request in ns. */
int64_t ef_http_started_ns(const ef_http_req *req);
/* When the handler finished, for the after hook's duration: what a handler that read the
 * monotonic clock as it finished handed over with ef_http_set_finished_ns, else the clock now. */
int64_t ef_http_finished_ns(const ef_http_req *req);
void ef_http_set_finished_ns(ef_http_req *req, int64_t mono_ns);
/* The JSON depth limit the server was configured with. */
unsigned ef_http_max_json_depth(const ef_http_req *req);

/* Whether a response header was added already (case-insensitive). */
bool ef_http_has_header(const ef_http_req *req, const char *name);
/* Adds a response header. The value is copied; the name is not, and must outlive the request
 * (every caller passes a literal): copying it was a strlen and an arena copy per header. */
void ef_http_add_header(ef_http_req *req, const char *name, const char *value);
/* The same with neither copied: both must outlive the request (literals, the node's name). */
void ef_http_add_header_static(ef_http_req *req, const char *name, const char *value);
/* Sends the buffer as the response with this status and Content-Type application/json
 * (unless a Content-Type header was added). */
void ef_http_reply(ef_http_req *req, int status);
/* Sends a static byte range (not copied; must outlive the response) with a content type. */
void ef_http_reply_static(ef_http_req *req, int status, const char *content_type, const void *data,
                          size_t len);
/* Flipt's error body {"code":grpc,"message":...,"details":[]} with an HTTP status. */
void ef_http_error(ef_http_req *req, int status, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Common cases (status and gRPC code as Flipt maps them). */
#define ef_http_bad_request(req, ...) ef_http_error((req), 400, 3, __VA_ARGS__)
#define ef_http_not_found(req, ...) ef_http_error((req), 404, 5, __VA_ARGS__)

/* --- waiting without a thread ------------------------------------------------------------------ */

/* A hook or handler that must wait for something outside the request (a version to be reached,
 * the upstream's answer) suspends the request instead of blocking a server thread:
 * ef_http_suspend() returns true, and the caller hands req to whoever completes it and returns at
 * once without touching req again. The connection then holds no thread and no deadline.
 * The party that took req completes it exactly once, from any thread, with ef_http_resume():
 * if it answered first (ef_http_reply, ef_http_error), that answer is sent; if not, the request is
 * dispatched again from the start (hooks included) on a server thread.
 * Returns false, suspending nothing, when max_waiting requests are suspended already or the
 * server is stopping; the caller answers the request itself then (503). */
bool ef_http_suspend(ef_http_req *req);
void ef_http_resume(ef_http_req *req);
/* How many times this request was resumed (0 on its first dispatch). */
unsigned ef_http_resumes(const ef_http_req *req);
/* Whether the server of a request is stopping (ef_http_server_quiesce was called): for a caller
 * that ef_http_suspend turned away and that answers a stop differently from max_waiting. It is
 * no way to learn of a stop while holding a suspended request: the composition root drains the
 * modules that hold them (ef_sync_drain, ef_auth_drain) before ef_http_server_stop. */
bool ef_http_stopping(const ef_http_req *req);

/* --- streaming (server-sent events) ------------------------------------------------------------ */

/* A stream produces body bytes on demand. fill() appends what is ready to out and returns
 * 1 (more may come: keep the connection), 0 (nothing now: the connection is suspended until
 * ef_http_stream_wake), or -1 (end of stream). Instead of bytes in out (left empty), it may hand
 * over one shared block in *block, with its reference: the stream sends the block's bytes next,
 * copied out of it as the socket takes them, and drops the reference when done (a dump many
 * followers read at once is held once). done() runs once when the connection ends. */
typedef struct ef_http_stream_ops {
    int (*fill)(void *state, ef_buf *out, ef_shared **block);
    void (*done)(void *state);
} ef_http_stream_ops;
typedef struct ef_http_stream ef_http_stream;
/* Starts a streaming response; returns the stream handle (owned by the server). */
ef_http_stream *ef_http_reply_stream(ef_http_req *req, int status, const char *content_type,
                                     const ef_http_stream_ops *ops, void *state);
/* Resumes a suspended stream so fill() is called again. Thread-safe. */
void ef_http_stream_wake(ef_http_stream *s);
/* A pace for the shared blocks this stream is handed: each one must be taken by the client within
 * grace_s seconds plus its length at min_bytes_per_s, or the connection is shut down (the
 * server's deadline reaper, twice a second). Without it, a client reading a few bytes now and
 * then holds a block, and the memory under it, for as long as it likes. 0 for either: no pace.
 * Call right after ef_http_reply_stream, from the handler. */
void ef_http_stream_pace(ef_http_stream *s, uint64_t min_bytes_per_s, unsigned grace_s);
/* Ends the stream now, whether or not its client reads: nothing more is sent, and the connection
 * is shut down by the deadline reaper within about half a second (a client that never reads would
 * otherwise hold what was queued to it). Thread-safe; done() runs as usual. */
void ef_http_stream_abort(ef_http_stream *s);
/* Inside done(): whether the stream ended holding a block past that allowance (its connection was
 * closed for being too slow, or the client left as it ran out). */
bool ef_http_stream_too_slow(const ef_http_stream *s);

/* What the server asks of libmicrohttpd: its daemon flags (before TLS and IPv6 are added) and
 * each connection's memory pool for a header limit. bench/bench_mhd_floor.c measures
 * libmicrohttpd alone with them. */
#define EF_HTTP_MAX_HEADER_DEFAULT 4096
unsigned ef_http_mhd_flags(void);
size_t ef_http_mhd_pool_size(size_t max_header);

/* --- the server ---------------------------------------------------------------------------------- */

typedef struct ef_http_config {
    const char *host;            /* "127.0.0.1", "0.0.0.0", "::" */
    uint16_t port;               /* 0 picks a free port */
    unsigned threads;            /* 0 = number of cores */
    size_t max_body;             /* bytes; larger bodies get 413 */
    /* bytes of request bodies held at once, over all connections (0: 64 MiB, and never below
     * max_body): a body that would go past it gets 503 with Retry-After. Without it, connections
     * that each declare max_body and stall hold max_body each (4 GiB at 4,096 connections). */
    size_t max_body_total;
    size_t max_header;           /* bytes of all request headers; larger get 431
                                  * (EF_HTTP_MAX_HEADER_DEFAULT is serve's default) */
    unsigned idle_timeout_s;     /* idle connections are closed after this */
    unsigned request_timeout_s;  /* a request's header and body must arrive within this (0: 10) */
    unsigned max_connections;    /* 0: 4096 */
    unsigned max_per_ip;         /* connections from one client address (0: 256) */
    unsigned max_waiting;        /* suspended requests at once (0: 2048) */
    unsigned max_json_depth;
    bool access_log;
    /* CORS as Flipt's cors.* settings (go-chi/cors with Flipt's options): off unless enabled;
     * NULL lists mean Flipt's defaults (every origin; ef_http_cors_default_headers). Preflights
     * (OPTIONS with Access-Control-Request-Method) are answered before routing and
     * authentication, for every path; every other response gets the headers. */
    bool cors_enabled;
    const char *const *cors_origins;  /* NULL-terminated; "*" anywhere: every origin */
    const char *const *cors_headers;  /* NULL-terminated; "*" anywhere: every header */
    /* gzip for JSON and text bodies of at least gzip_min_bytes when the client accepts it
     * (0: 1024; SIZE_MAX: never); never for streams. */
    size_t gzip_min_bytes;
    /* HTTPS with this certificate (http/tls.h; borrowed, must outlive the server); NULL: plain HTTP */
    struct ef_http_tls *tls;
    void *app;                   /* handed to handlers via ef_http_app */
    /* Called once the headers are in and the request is routed, before its body is read;
     * returns true if it answered (e.g. 401), and the body is then never read. For checks that
     * need no body (authentication), so that a client without a credential cannot make the
     * server hold a body. Not called for CORS preflights. */
    bool (*admit)(ef_http_req *req, void *app);
    /* Called with the body in, before the handler (again after a resume); returns true if it
     * answered. */
    bool (*before)(ef_http_req *req, void *app);
    /* Asked about every open stream about twice a second, on the server's reaper thread: false
     * ends the stream (as if its producer finished), e.g. once the credential it was admitted
     * with is revoked or expires. req is the stream's request as admit and the handler left it
     * (ef_http_route, ef_http_user); must not block. */
    bool (*still_allowed)(const ef_http_req *req, void *app);
    /* Called after the handler, before the response is sent: may add headers. */
    void (*finish)(ef_http_req *req, void *app);
    /* Called after every response (metrics, access log). */
    void (*after)(ef_http_req *req, int status, size_t bytes, void *app);
} ef_http_config;

/* Flipt's default cors.allowed_headers (NULL-terminated). */
extern const char *const ef_http_cors_default_headers[];

ef_http_server *ef_http_server_start(const ef_http_config *cfg, ef_router *router, char *err,
                                     size_t errlen);
uint16_t ef_http_server_port(const ef_http_server *s);
/* Requests suspended now (ef_http_suspend), for metrics. */
unsigned ef_http_server_waiting(const ef_http_server *s);
/* Stops accepting new connections (the first step of ef_http_server_stop, for callers that must
 * end their suspended requests before the server stops). */
void ef_http_server_quiesce(ef_http_server *s);
/* Stops accepting, lets in-flight requests finish (up to grace_ms), then closes everything. */
void ef_http_server_stop(ef_http_server *s, unsigned grace_ms);

#endif
