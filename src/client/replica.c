/*
 * replica.c - the client's background thread: follows one namespace of a node with libcurl.
 *
 * Two transfers share one curl multi handle on this thread:
 *   fetch   GET /internal/v1/evaluation/snapshot/namespace/{ns} with If-None-Match: a 200 is
 *           compiled and published (then saved to the cache file and announced), a 304 confirms;
 *   stream  GET /edgeflag/v1/namespaces/{ns}/stream (server-sent events, src/api/ns_stream.c):
 *           each `change` event whose version or ETag differs from ours triggers a fetch.
 * Without a stream (404 from an older node or a Flipt server, disable_stream, or while it is down)
 * the loop polls with ETags every poll interval. Failures back off exponentially with jitter.
 *
 * It must never touch the evaluation path except through ef_client_apply (registry publication),
 * never block close for longer than one wake-up (curl_multi_wakeup), and never let a transfer run
 * without a timeout: fetches have a total timeout, the stream a low-speed limit of three heartbeats
 * and, for bytes that trickle in without ever ending a line, the same limit on whole lines.
 * Nothing the node sends is held without a bound: a snapshot is at most MAX_BODY, a stream line or
 * event at most STREAM_MAX_LINE / STREAM_MAX_EVENT (base/sse.c); past them the transfer is a
 * failure (EF_EPROTOCOL for the stream). A stream that fails that way, or a snapshot that does not
 * compile, is retried with the same exponential backoff as an unreachable node: receiving bytes
 * is not enough to count as working again.
 *
 * libcurl's process-wide initialisation is the one piece of shared state: curl_global_init runs
 * exactly once, through pthread_once, the first time any client is opened.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/cnum.h"
#include "base/json.h"
#include "base/sse.h"
#include "client/client_int.h"
#include "base/thread.h"

#define MAX_BODY EF_CACHE_MAX_DOC /* a cache file must be able to hold any snapshot taken */
#define STREAM_MAX_LINE 4096            /* comments (heartbeats), ids, event names */
#define STREAM_MAX_EVENT (64u << 10)    /* a `change` event is a version and an ETag */
#define HEARTBEAT_LIMIT_S 15      /* the node sends a heartbeat every 5 s */
#define BEHIND_POLLS 3            /* poll intervals a node may answer an older state before it is taken */
#define STREAM_WORKED_S 5         /* a stream that ends sooner has not shown it works */
#define STREAM_MISSING_RETRY_MS 60000
#define BACKOFF_BASE_MS 100
#define BACKOFF_MAX_MS 30000
#define MS ((int64_t)1000000)

typedef struct xfer {
    CURL *easy;
    struct curl_slist *hdrs;
    ef_buf body; /* fetch: the response body; stream: bytes not yet split into lines */
    char etag[EF_CACHE_MAX_ETAG + 1];
    uint64_t version;
    bool active;
    int failures;
    int64_t retry_at;
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's account of a failed transfer */
} xfer;

struct ef_replica {
    ef_client *c;
    CURLM *multi;
    int stopping; /* atomic */
    xfer fetch, stream;
    char *snapshot_url, *stream_url, *auth;
    bool need_fetch;
    bool stream_up;      /* the current stream delivered data */
    bool stream_bad;     /* the current stream broke the protocol (a bound) */
    bool stream_missing; /* the node has no stream route: poll */
    int64_t stream_started; /* when the current stream was started */
    uint64_t stream_lines;  /* sse.lines when the stream last showed life */
    int64_t stream_line_ns; /* when that was (or when the stream started) */
    int64_t next_poll;
    int64_t behind_since; /* the first of the node's answers older than our state (0: none since) */
    uint64_t rng;
    ef_sse sse;          /* the stream reader (bounded) */
    ef_buf data;         /* SSE: the current event's data (filled by sse) */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t now_ns(void)
{
    return ef_clock_mono_ns();
}

/* Exponential backoff with jitter in [d/2, d], so many clients do not reconnect in step. */
static int64_t backoff(ef_replica *r, int failures)
{
    int64_t d = BACKOFF_BASE_MS;
    for (int i = 1; i < failures && d < BACKOFF_MAX_MS; i++) d *= 2;
    if (d > BACKOFF_MAX_MS) d = BACKOFF_MAX_MS;
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return (d / 2 + (int64_t)(r->rng % (uint64_t)(d / 2 + 1))) * MS;
}

/* text: the failure in words (naming the node), or NULL to describe err by its code. */
static void set_status_text(ef_replica *r, bool connected, int err, const char *text)
{
    ef_client *c = r->c;
    pthread_mutex_lock(&c->mu);
    c->connected = connected;
    if (err != EF_OK) {
        c->last_error = err;
        if (text)
            snprintf(c->error_text, sizeof(c->error_text), "%s", text);
        else
            snprintf(c->error_text, sizeof(c->error_text), "%s: %s", c->url, ef_strerror(err));
    }
    c->streaming = r->stream_up;
    pthread_mutex_unlock(&c->mu);
}

static void set_status(ef_replica *r, bool connected, int err)
{
    set_status_text(r, connected, err, NULL);
}

/* A transfer that failed below HTTP: EF_ETLS when TLS refused it, else EF_ECONNECT; *text names
 * the node and the reason. */
static int transfer_error(ef_replica *r, xfer *x, CURLcode res, char *text, size_t cap)
{
    ef_tls_client_error((int)res, x->errbuf, r->c->url, text, cap);
    return ef_tls_client_is_tls((int)res, x->errbuf) ? EF_ETLS : EF_ECONNECT;
}

/* The node confirmed our state is current (a 304, or a live stream with no change pending).
 * version: the version the node says that state has now (a 304's X-Edgeflag-Version; 0 when it
 * did not say). A write that leaves the document as it was (a segment no rule uses) moves the
 * version on with the same ETag, so the node answers 304 with a newer version: the state we hold
 * is that version's, and ef_client_wait for it must return (it timed out, the state current). Only
 * ever forwards: a node behind the one we heard from last does not take our version back. */
static void confirm(ef_replica *r, uint64_t version)
{
    ef_client *c = r->c;
    pthread_mutex_lock(&c->mu);
    c->connected = true;
    c->streaming = r->stream_up;
    if (c->source != EF_SOURCE_NONE) {
        c->source = EF_SOURCE_NODE;
        c->confirmed_mono_ns = now_ns();
        if (version > c->version) {
            c->version = version;
            pthread_cond_broadcast(&c->cv);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- curl callbacks ------------------------------------------------------------------------------ */

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    ef_bytes line = {p, len};
    while (line.n && (line.p[line.n - 1] == '\n' || line.p[line.n - 1] == '\r' || line.p[line.n - 1] == ' '))
        line.n--;
    if (line.n > 5 && ef_ascii_ncasecmp(line.p, "ETag:", 5) == 0) {
        ef_bytes v = {line.p + 5, line.n - 5};
        while (v.n && *v.p == ' ') v.p++, v.n--;
        /* libcurl ends a header line at LF only: a bare CR (or any control byte) stays in the
         * value and would go back to the node, and to any proxy before it, in If-None-Match. Such
         * an ETag is not kept: the next fetch simply asks without one. */
        if (ef_cache_etag_ok(v.p, v.n)) {
            memcpy(x->etag, v.p, v.n);
            x->etag[v.n] = '\0';
        }
    } else if (line.n > 19 && ef_ascii_ncasecmp(line.p, "X-Edgeflag-Version:", 19) == 0) {
        /* exactly one u64 in decimal, or no version (0): the old parser took every digit in the
         * value and let the number wrap, so "9, 9" (two copies joined by a proxy) read as 99 and
         * 2^64 + 9 as 9, versions the node never had (test_client_hostile, node_bad_version) */
        size_t i = 19;
        while (i < line.n && (line.p[i] == ' ' || line.p[i] == '\t')) i++;
        uint64_t v;
        x->version = ef_parse_u64_n(line.p + i, line.n - i, &v) ? v : 0;
    }
    return len;
}

static size_t on_fetch_body(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (x->body.len + len > MAX_BODY) return 0; /* aborts the transfer */
    ef_buf_append(&x->body, p, len);
    return ef_buf_ok(&x->body) ? len : 0;
}

/* A JSON number that is a version: a u64 written as digits alone, read from its text. Converting
 * the double instead was undefined past 2^64 (a node's 1e300) and lost the low digits past 2^53,
 * where another version could read as ours and its change go unfetched. */
static bool json_version(const ef_json *v, uint64_t *out)
{
    return v && v->type == EF_JSON_NUMBER && ef_parse_u64_n(v->str.p, v->str.n, out);
}

/* A complete SSE event: a change whose version or ETag differs from ours asks for a fetch, and so
 * does one whose version is not a version at all (the fetch checks what the node serves). */
static int on_event(void *ud, const char *event, ef_sse *p)
{
    ef_replica *r = ud;
    if (strcmp(event, "change") != 0) return 0;
    ef_arena a;
    ef_arena_init(&a, 1024);
    ef_json_error je;
    const ef_json *v = ef_json_parse(p->data->data, p->data->len, &a, NULL, &je);
    const ef_json *ver = v ? ef_json_get(v, "version") : NULL;
    const ef_json *etag = v ? ef_json_get(v, "etag") : NULL;
    ef_client *c = r->c;
    /* this thread is the only writer of c->version and c->etag after open, so reading them
     * without the status lock is safe here */
    uint64_t version;
    bool same = json_version(ver, &version) && etag && etag->type == EF_JSON_STRING &&
                c->source != EF_SOURCE_NONE && version == c->version &&
                ef_bytes_eq(etag->str, ef_bytes_of(c->etag));
    ef_arena_free(&a);
    if (!same) r->need_fetch = true;
    return 0;
}

static size_t on_stream_body(char *p, size_t size, size_t n, void *ud)
{
    ef_replica *r = ud;
    size_t len = size * n;
    if (ef_sse_feed(&r->sse, p, len) < 0) {
        r->stream_bad = true; /* a line or event past its bound: abort, back off */
        return 0;
    }
    /* Only a whole line is a sign of life (the node ends one every 5 s: a heartbeat): bytes that
     * never end a line satisfy libcurl's low-speed limit, and the old client, taking them as life,
     * kept "streaming", confirmed its state and stopped polling while the node's changes went
     * unseen until the line bound (~7 minutes at ten bytes a second). Past the heartbeat limit
     * without one, the stream is dropped like a silent one (test_client_stream_bounds, drip). */
    int64_t now = now_ns();
    if (r->sse.lines == r->stream_lines) {
        if (now - r->stream_line_ns > HEARTBEAT_LIMIT_S * 1000 * MS) {
            r->stream_bad = true;
            return 0;
        }
        return len;
    }
    r->stream_lines = r->sse.lines;
    r->stream_line_ns = now;
    r->stream_up = true;
    /* live stream: nothing changed that we have not been told about */
    if (!r->need_fetch && !r->fetch.active) confirm(r, 0);
    else set_status(r, true, EF_OK);
    return len;
}

/* ---- transfers ----------------------------------------------------------------------------------- */

static int common_opts(ef_replica *r, xfer *x)
{
    x->easy = curl_easy_init();
    if (!x->easy) return EF_ENOMEM;
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)r->c->timeout_ms);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->easy, CURLOPT_ACCEPT_ENCODING, "");
    ef_tls_client_apply(x->easy, &r->c->tls, x->errbuf);
    ef_buf_init(&x->body);
    return EF_OK;
}

static struct curl_slist *headers(ef_replica *r, const char *if_none_match, bool stream)
{
    struct curl_slist *h = NULL, *t;
    char inm[EF_CACHE_MAX_ETAG + 32];
#define ADD(s)                                                                                    \
    do {                                                                                          \
        if (!(t = curl_slist_append(h, (s)))) goto oom;                                           \
        h = t;                                                                                    \
    } while (0)
    ADD("X-Flipt-Accept-Server-Version: 1.47.0");
    if (r->auth) ADD(r->auth);
    if (stream) ADD("Accept: text/event-stream");
    if (if_none_match && if_none_match[0]) {
        snprintf(inm, sizeof(inm), "If-None-Match: %s", if_none_match);
        ADD(inm);
    }
#undef ADD
    return h;
oom:
    curl_slist_free_all(h);
    return NULL;
}

static void start_fetch(ef_replica *r)
{
    xfer *x = &r->fetch;
    curl_slist_free_all(x->hdrs);
    x->hdrs = headers(r, r->c->etag, false);
    ef_buf_clear(&x->body);
    x->etag[0] = '\0';
    x->version = 0;
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    if (!x->hdrs || curl_multi_add_handle(r->multi, x->easy) != CURLM_OK) {
        x->failures++;
        x->retry_at = now_ns() + backoff(r, x->failures);
        return;
    }
    x->active = true;
    r->need_fetch = false; /* a change announced from now on asks for another fetch */
}

static void start_stream(ef_replica *r)
{
    xfer *x = &r->stream;
    curl_slist_free_all(x->hdrs);
    x->hdrs = headers(r, NULL, true);
    ef_buf_clear(&x->body);
    ef_sse_reset(&r->sse);
    r->stream_bad = false;
    r->stream_started = now_ns();
    r->stream_lines = 0; /* ef_sse_reset above counts lines from 0 again */
    r->stream_line_ns = r->stream_started;
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
    if (!x->hdrs || curl_multi_add_handle(r->multi, x->easy) != CURLM_OK) {
        x->failures++;
        x->retry_at = now_ns() + backoff(r, x->failures);
        return;
    }
    x->active = true;
}

/* True when a 200 of the given version must not replace our state yet. A node behind the one we
 * heard from last (a replica still catching up, another node behind the same load balancer)
 * would take the application's flags back and then forward again: its answer is kept away, and
 * asked again with the backoff. Only for so long: a node that still answers an older state
 * BEHIND_POLLS poll intervals (30 s by default) after its first such answer went back for good
 * (a primary restored from a backup) and is followed. A version of 0 (none said: a Flipt
 * server) and a state from the cache file (the node is its authority) never hold anything back.
 * This thread is the only writer of c->version and c->source after open. */
static bool hold_back(ef_replica *r, uint64_t version)
{
    ef_client *c = r->c;
    if (version == 0 || c->source != EF_SOURCE_NODE || version >= c->version) {
        r->behind_since = 0;
        return false;
    }
    int64_t now = now_ns();
    if (!r->behind_since) r->behind_since = now;
    return now - r->behind_since < BEHIND_POLLS * (int64_t)c->poll_ms * MS;
}

static void fetch_done(ef_replica *r, CURLcode res)
{
    xfer *x = &r->fetch;
    ef_client *c = r->c;
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    int err = EF_OK;
    char text[600] = "";
    if (res != CURLE_OK) {
        err = transfer_error(r, x, res, text, sizeof(text));
    } else if (code == 200 && hold_back(r, x->version)) {
        err = EF_EBEHIND;
        snprintf(text, sizeof(text), "%s answered version %llu, older than the state held (%llu): kept",
                 c->url, (unsigned long long)x->version, (unsigned long long)c->version);
    } else if (code == 200) {
        err = ef_client_apply(c, x->body.data ? x->body.data : "", x->body.len, x->version,
                              x->etag, EF_SOURCE_NODE, 0);
        if (err == EF_OK) {
            set_status(r, true, EF_OK);
            if (c->cache_path) {
                int werr = ef_cache_write(c->cache_path, x->version, x->etag, x->body.data,
                                          x->body.len, ef_clock_wall_ns());
                if (werr != EF_OK) set_status(r, true, werr);
            }
            if (c->on_change) c->on_change(c, x->version, c->userdata);
        }
    } else if (code == 304) {
        confirm(r, x->version);
    } else {
        err = (code == 401 || code == 403) ? EF_EAUTH : EF_EHTTP;
        snprintf(text, sizeof(text), "%s answered %ld to the snapshot request", c->url, code);
    }
    if (err == EF_OK) {
        x->failures = 0;
        return;
    }
    set_status_text(r, err == EF_EBEHIND, err, text[0] ? text : NULL); /* that node did answer */
    x->failures++;
    x->retry_at = now_ns() + backoff(r, x->failures);
    r->need_fetch = true;
}

static void stream_done(ef_replica *r, CURLcode res)
{
    xfer *x = &r->stream;
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    /* a stream that worked (read at least one whole line, broke no bound, and stayed up at
     * least STREAM_WORKED_S) starts the backoff over; one that broke a bound keeps counting,
     * however much it delivered before. Lines alone are not enough: a node or proxy that sends the
     * connect-time change event and ends the response had the client reconnecting every
     * 50-100 ms for ever (test_client_stream_bounds, ends-at-once). */
    if (r->stream_bad) {
        x->failures++;
        x->retry_at = now_ns() + backoff(r, x->failures);
        r->stream_up = false;
        set_status(r, false, EF_EPROTOCOL);
        return;
    }
    if (r->sse.lines > 0 && now_ns() - r->stream_started >= STREAM_WORKED_S * 1000 * MS)
        x->failures = 0;
    r->stream_up = false;
    if (code == 404 || code == 405 || code == 501) {
        /* an older node or a Flipt server: poll, and look again now and then (it may upgrade) */
        r->stream_missing = true;
        x->retry_at = now_ns() + STREAM_MISSING_RETRY_MS * MS;
        set_status(r, r->c->connected, EF_OK);
        return;
    }
    r->stream_missing = false;
    int err = (code == 401 || code == 403) ? EF_EAUTH : code >= 300 ? EF_EHTTP : EF_ECONNECT;
    char text[600] = "";
    /* the status code tells all we act on, except a TLS refusal; a clean end is a failure too */
    if (res != CURLE_OK && code < 300) err = transfer_error(r, x, res, text, sizeof(text));
    else if (code >= 300) snprintf(text, sizeof(text), "%s answered %ld to the change stream", r->c->url, code);
    x->failures++;
    x->retry_at = now_ns() + backoff(r, x->failures);
    set_status_text(r, false, err, text[0] ? text : NULL);
}

/* ---- the loop ------------------------------------------------------------------------------------ */

static char *url_join(const char *base, const char *path1, const char *ns, const char *path2)
{
    size_t n = strlen(base) + strlen(path1) + strlen(ns) + strlen(path2) + 1;
    char *u = malloc(n);
    if (u) snprintf(u, n, "%s%s%s%s", base, path1, ns, path2);
    return u;
}

int ef_replica_new(ef_client *c, ef_replica **out)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) return EF_ENOMEM;
    ef_replica *r = calloc(1, sizeof(*r));
    if (!r) return EF_ENOMEM;
    r->c = c;
    ef_buf_init(&r->data);
    ef_sse_config sc = {.default_max_data = STREAM_MAX_EVENT, .max_line = STREAM_MAX_LINE,
                        .on_event = on_event, .ud = r};
    ef_sse_init(&r->sse, &r->data, &sc);
    *out = r;
    r->rng = (uint64_t)now_ns() ^ (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ull;
    if (!r->rng) r->rng = 1;
    char *ns = curl_easy_escape(NULL, c->ns.p, (int)c->ns.n);
    if (!ns) return EF_ENOMEM;
    r->snapshot_url = url_join(c->url, "/internal/v1/evaluation/snapshot/namespace/", ns, "");
    r->stream_url = url_join(c->url, "/edgeflag/v1/namespaces/", ns, "/stream");
    curl_free(ns);
    if (c->token) {
        size_t n = strlen(c->token) + 32;
        if ((r->auth = malloc(n))) snprintf(r->auth, n, "Authorization: Bearer %s", c->token);
    }
    r->multi = curl_multi_init();
    if (!r->snapshot_url || !r->stream_url || (c->token && !r->auth) || !r->multi ||
        common_opts(r, &r->fetch) != EF_OK || common_opts(r, &r->stream) != EF_OK)
        return EF_ENOMEM;
    curl_easy_setopt(r->fetch.easy, CURLOPT_URL, r->snapshot_url);
    curl_easy_setopt(r->fetch.easy, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(r->fetch.easy, CURLOPT_WRITEFUNCTION, on_fetch_body);
    curl_easy_setopt(r->fetch.easy, CURLOPT_WRITEDATA, &r->fetch);
    curl_easy_setopt(r->stream.easy, CURLOPT_URL, r->stream_url);
    curl_easy_setopt(r->stream.easy, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(r->stream.easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(r->stream.easy, CURLOPT_LOW_SPEED_TIME, (long)HEARTBEAT_LIMIT_S);
    curl_easy_setopt(r->stream.easy, CURLOPT_WRITEFUNCTION, on_stream_body);
    curl_easy_setopt(r->stream.easy, CURLOPT_WRITEDATA, r);
    r->need_fetch = true;
    return EF_OK;
}

void ef_replica_stop(ef_replica *r)
{
    __atomic_store_n(&r->stopping, 1, __ATOMIC_RELEASE);
    curl_multi_wakeup(r->multi);
}

static void xfer_free(ef_replica *r, xfer *x)
{
    if (x->easy) {
#if LIBCURL_VERSION_NUM >= 0x075700 /* 7.87.0 */
        /* Removing a transfer that is still resolving the node's name joins libcurl's resolver
         * thread, i.e. waits out getaddrinfo: a silent name server held ef_client_close for its
         * timeouts (test_client_close_resolving: 10 s). Told to exit quickly, libcurl leaves the
         * thread to finish alone; it frees its own data when getaddrinfo returns. */
        curl_easy_setopt(x->easy, CURLOPT_QUICK_EXIT, 1L);
#endif
        if (x->active) curl_multi_remove_handle(r->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->hdrs);
    ef_buf_free(&x->body);
}

void ef_replica_free(ef_replica *r)
{
    if (!r) return;
    xfer_free(r, &r->fetch);
    xfer_free(r, &r->stream);
    if (r->multi) curl_multi_cleanup(r->multi);
    ef_buf_free(&r->data);
    free(r->snapshot_url);
    free(r->stream_url);
    free(r->auth);
    free(r);
}

static int64_t earliest(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

void *ef_replica_main(void *arg)
{
    ef_thread_name("ef-client");
    ef_client *c = arg;
    ef_replica *r = c->replica;
    r->next_poll = now_ns() + (int64_t)c->poll_ms * MS;
    while (!__atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE)) {
        int64_t now = now_ns();
        bool want_stream = !c->disable_stream;
        if (!r->stream_up && now >= r->next_poll) {
            r->need_fetch = true;
            r->next_poll = now + (int64_t)c->poll_ms * MS;
        }
        if (r->need_fetch && !r->fetch.active && now >= r->fetch.retry_at) start_fetch(r);
        if (want_stream && !r->stream.active && now >= r->stream.retry_at) start_stream(r);

        int64_t wake = now + 1000 * MS;
        if (!r->stream_up) wake = earliest(wake, r->next_poll);
        if (r->need_fetch && !r->fetch.active) wake = earliest(wake, r->fetch.retry_at);
        if (want_stream && !r->stream.active) wake = earliest(wake, r->stream.retry_at);
        int timeout_ms = wake <= now ? 0 : (int)((wake - now + MS - 1) / MS);
        curl_multi_poll(r->multi, NULL, 0, timeout_ms, NULL);
        int running;
        curl_multi_perform(r->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(r->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *e = m->easy_handle;
            CURLcode res = m->data.result;
            curl_multi_remove_handle(r->multi, e);
            if (e == r->fetch.easy) {
                r->fetch.active = false;
                fetch_done(r, res);
            } else if (e == r->stream.easy) {
                r->stream.active = false;
                stream_done(r, res);
            }
        }
    }
    return NULL;
}
