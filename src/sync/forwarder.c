/*
 * forwarder.c - the request hooks of replication: X-Edgeflag-Min-Version waits on every node,
 * and on a replica the forwarding of writes to its upstream (which forwards again along a chain
 * until the primary answers).
 *
 * A forwarded write carries the caller's own credentials, body and exact request target (the raw
 * bytes it sent, so a percent-encoded key reaches the primary as the same key); the caller gets
 * the upstream's status and body. Before answering, the replica waits (at most write-wait) until it
 * has applied the write's version, on the history the upstream named, so the caller reads its own
 * write here. Along a chain the upstream is a replica whose own wait may have run out: its
 * X-Edgeflag-Version is then its own older state, and the write's version is in
 * X-Edgeflag-Write-Version, which is what this replica waits for (and passes on, with
 * X-Edgeflag-Write-Applied: false, when its own wait runs out too).
 *
 * Nothing here holds a server thread: a request that waits (for a version, or for the upstream) is
 * suspended, its transfer runs on the forwarder's one thread (libcurl's multi interface, with
 * keep-alive connections to the upstream), and its version wait is parked in waits.c. How many
 * may wait at once is the server's max_waiting; past it the caller gets a 503 at once.
 *
 * It must never invent an answer for a write the primary may have taken: an unreachable upstream
 * gets a 503 that says whether the write can have been applied, and every outbound call has a
 * connect timeout and a total timeout.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "base/clock.h"
#include "base/cnum.h"
#include "base/log.h"
#include "sync/sync_int.h"
#include "base/thread.h"

#define FORWARD_CONNECT_TIMEOUT_MS 2000
#define FORWARD_TIMEOUT_MS 10000
#define FORWARD_BODY_MAX (16u << 20)

#define FORWARD_MAX_CONNECTIONS 64

/* On the answer to a write: the history its version is on (a primary's, relayed down a chain). */
#define EF_HISTORY_HEADER "X-Edgeflag-History"

/* One write in flight: owned by the forwarder from ef_forward_write until its request is
 * completed (then freed). */
typedef struct fwd {
    ef_sync *s;
    ef_http_req *req;
    ef_buf *out;          /* the request's own response buffer (it is suspended meanwhile) */
    CURL *curl;
    struct curl_slist *hdrs;
    ef_buf url;
    bool too_large;
    uint64_t version;     /* the upstream's X-Edgeflag-Version */
    uint64_t write_version; /* its X-Edgeflag-Write-Version (0: none; it applied the write) */
    char history[EF_STORE_ID_MAX + 1]; /* its X-Edgeflag-History ("" when it did not say) */
    long status;
    char content_type[128];
    char www_auth[256];
    char curl_err[CURL_ERROR_SIZE]; /* libcurl's account of a failed transfer */
    ef_wait wait;         /* read-your-write: until this node has applied the write (want()) */
    struct fwd *next;     /* the queue of new transfers, then the list of active ones */
    struct fwd *prev;
} fwd;

struct ef_forwarder {
    ef_sync *s;
    CURLM *multi;
    pthread_mutex_t mu;
    pthread_cond_t idle_cv; /* signalled when inflight drops */
    fwd *queue;             /* handed over by server threads, added to multi by the thread */
    fwd *active;            /* in the multi handle (the thread's own) */
    unsigned inflight;      /* queued or transferring */
    bool draining, stop, started;
    pthread_t thread;
    char self[72];          /* this replica's name in X-Edgeflag-Forwarded-By (set at start) */
};

static size_t on_fwd_body(char *p, size_t size, size_t nmemb, void *ud)
{
    fwd *w = ud;
    size_t n = size * nmemb;
    if (w->out->len + n > FORWARD_BODY_MAX) {
        w->too_large = true;
        return 0;
    }
    ef_buf_append(w->out, p, n);
    return n;
}

bool ef_sync_header_value(const char *line, size_t n, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0) return false;
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    size_t vn = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
    memcpy(dst, v, vn);
    dst[vn] = '\0';
    return true;
}

/* A version header's value: 0 when it is not a version number. */
static uint64_t version_value(const char *v)
{
    uint64_t x;
    return ef_parse_u64(v, &x) ? x : 0;
}

/* The upstream's X-Edgeflag-History, kept only when it is one (a longer value would be cut). */
static void take_history(fwd *w, const char *v)
{
    size_t n = strlen(v);
    if (!ef_sync_history_valid((ef_bytes){v, n})) return;
    memcpy(w->history, v, n + 1);
}

static size_t on_fwd_header(char *p, size_t size, size_t nmemb, void *ud)
{
    fwd *w = ud;
    size_t n = size * nmemb;
    char v[EF_STORE_ID_MAX + 8];
    if (!strncmp(p, "HTTP/", 5)) { /* a new response (after 100 Continue): forget the last */
        w->version = w->write_version = 0;
        w->content_type[0] = w->www_auth[0] = w->history[0] = '\0';
    } else if (ef_sync_header_value(p, n, "X-Edgeflag-Version", v, sizeof(v))) {
        w->version = version_value(v);
    } else if (ef_sync_header_value(p, n, "X-Edgeflag-Write-Version", v, sizeof(v))) {
        w->write_version = version_value(v);
    } else if (ef_sync_header_value(p, n, EF_HISTORY_HEADER, v, sizeof(v))) {
        take_history(w, v);
    } else {
        (void)(ef_sync_header_value(p, n, "Content-Type", w->content_type, sizeof(w->content_type)) ||
               ef_sync_header_value(p, n, "WWW-Authenticate", w->www_auth, sizeof(w->www_auth)));
    }
    return n;
}

static void count(ef_sync *s, bool ok)
{
    pthread_mutex_lock(&s->mu);
    if (ok)
        s->st.forwarded++;
    else
        s->st.forward_failed++;
    pthread_mutex_unlock(&s->mu);
}

/* Whether a failed transfer can have reached the upstream's handler. */
static bool maybe_applied(CURLcode rc, CURL *c)
{
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_COULDNT_RESOLVE_PROXY)
        return false;
    /* a TLS handshake that failed carried no request (a refused client certificate under TLS 1.3
     * surfaces as a receive error instead, and stays "maybe") */
    if (ef_tls_client_failed((int)rc)) return false;
    curl_off_t sent = 0;
    if (curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK && sent > 0) return true;
    curl_off_t connected = 0;
    curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected);
    return connected > 0;
}


/* The caller's request target, for the upstream: the bytes it sent, with any byte outside
 * RFC 3986's characters percent-encoded (the server decodes both alike, and libcurl refuses some
 * raw ones). Dot segments are kept as they are (CURLOPT_PATH_AS_IS). */
static bool append_target(ef_buf *url, const char *target)
{
    static const char hex[] = "0123456789ABCDEF";
    if (target[0] != '/') return false;
    for (const unsigned char *p = (const unsigned char *)target; *p; p++) {
        unsigned char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("-._~:/?#[]@!$&'()*+,;=", c) != NULL ||
                  (c == '%' && isxdigit(p[1]) && isxdigit(p[2]));
        if (c == '#') ok = false; /* a fragment never reaches a server: keep it in the path */
        if (ok) {
            ef_buf_putc(url, (char)c);
        } else {
            ef_buf_putc(url, '%');
            ef_buf_putc(url, hex[c >> 4]);
            ef_buf_putc(url, hex[c & 15]);
        }
    }
    return true;
}

static void fwd_free(fwd *w)
{
    if (w->curl) curl_easy_cleanup(w->curl);
    curl_slist_free_all(w->hdrs);
    ef_buf_free(&w->url);
    free(w);
}

/* The end of a forwarded write: answer, wake the caller's connection, forget the transfer. */
static void fwd_finish(ef_forwarder *f, fwd *w)
{
    ef_http_resume(w->req);
    fwd_free(w);
    pthread_mutex_lock(&f->mu);
    f->inflight--;
    pthread_cond_broadcast(&f->idle_cv);
    pthread_mutex_unlock(&f->mu);
}

/* The version this node must reach for the write to be read here: the write's own when the
 * upstream says it did not apply it (its X-Edgeflag-Version is then its older state), else the
 * upstream's version, which includes the write. */
static uint64_t want(const fwd *w)
{
    return w->write_version ? w->write_version : w->version;
}

/* The upstream's answer, relayed (after the read-your-write wait, reached or not). */
static void reply_upstream(fwd *w, bool applied)
{
    ef_http_req *req = w->req;
    if (w->history[0]) ef_http_add_header(req, EF_HISTORY_HEADER, w->history);
    if (!applied) {
        char v[24];
        snprintf(v, sizeof(v), "%" PRIu64, want(w));
        /* the write is on the primary; only this node lags: say so instead of failing it */
        ef_http_add_header(req, "X-Edgeflag-Write-Version", v);
        ef_http_add_header(req, "X-Edgeflag-Write-Applied", "false");
        ef_log(EF_LOG_WARN, "forwarded write not applied here within write-wait", "version", v, NULL);
    }
    if (w->content_type[0]) ef_http_add_header(req, "Content-Type", w->content_type);
    if (w->www_auth[0]) ef_http_add_header(req, "WWW-Authenticate", w->www_auth);
    ef_http_reply(req, (int)w->status);
}

static void on_write_applied(ef_wait *x, bool reached)
{
    fwd *w = x->ctx;
    reply_upstream(w, reached);
    fwd_finish(w->s->forwarder, w);
}

/* A transfer ended (on the forwarder thread). */
static void transfer_done(ef_forwarder *f, fwd *w, CURLcode rc)
{
    ef_sync *s = f->s;
    ef_http_req *req = w->req;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->status);
    if (rc != CURLE_OK || w->status < 100) {
        bool maybe = maybe_applied(rc, w->curl);
        count(s, false);
        ef_buf_clear(w->out);
        char why[600]; /* names the primary; a refused certificate says why */
        ef_tls_client_error((int)rc, w->curl_err, s->upstream, why, sizeof(why));
        ef_log(EF_LOG_WARN, "write not forwarded", "upstream", s->upstream, "path",
               ef_http_path(req), "error", why, NULL);
        ef_http_add_header(req, "Retry-After", "1");
        if (w->too_large)
            ef_http_error(req, 502, 13, "the primary's answer to this write was larger than %u bytes",
                          FORWARD_BODY_MAX);
        else if (maybe)
            ef_http_error(req, 503, 14,
                          "the primary did not answer this write (%s); it may or may not "
                          "have been applied: read it back before retrying",
                          why);
        else
            ef_http_error(req, 503, 14,
                          "the primary is unreachable (%s); the write was not applied "
                          "anywhere: retry later",
                          why);
        fwd_finish(f, w);
        return;
    }
    count(s, true);
    if (w->status >= 200 && w->status < 300 && want(w) &&
        !ef_waits_reached(s->waits, want(w), w->history)) {
        w->wait = (ef_wait){.version = want(w),
                            .deadline_ns = ef_clock_mono_ns() + (int64_t)s->cfg.write_wait_ms * 1000000LL,
                            .done = on_write_applied,
                            .ctx = w};
        memcpy(w->wait.history, w->history, sizeof(w->history));
        if (ef_waits_add(s->waits, &w->wait)) return;
        reply_upstream(w, false); /* shutting down: answer without waiting */
        fwd_finish(f, w);
        return;
    }
    reply_upstream(w, true);
    fwd_finish(f, w);
}

/* Ends a transfer that will not run to its end (shutdown). */
static void transfer_abort(ef_forwarder *f, fwd *w)
{
    ef_buf_clear(w->out);
    ef_http_add_header(w->req, "Retry-After", "1");
    ef_http_error(w->req, 503, 14,
                  "this node is shutting down; the write may or may not have been applied by the "
                  "primary: read it back before retrying");
    fwd_finish(f, w);
}

static void unlink_active(ef_forwarder *f, fwd *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        f->active = w->next;
    if (w->next) w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

static void *forwarder_main(void *arg)
{
    ef_thread_name("ef-forwarder");
    ef_forwarder *f = arg;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        bool stop = f->stop;
        fwd *q = f->queue;
        f->queue = NULL;
        pthread_mutex_unlock(&f->mu);
        while (q) {
            fwd *next = q->next;
            if (stop || curl_multi_add_handle(f->multi, q->curl) != CURLM_OK) {
                transfer_abort(f, q);
            } else {
                q->prev = NULL;
                q->next = f->active;
                if (f->active) f->active->prev = q;
                f->active = q;
            }
            q = next;
        }
        if (stop) break;
        int running = 0;
        curl_multi_perform(f->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(f->multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            CURL *e = m->easy_handle;
            CURLcode rc = m->data.result;
            fwd *w = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&w);
            curl_multi_remove_handle(f->multi, e);
            if (!w) continue;
            unlink_active(f, w);
            transfer_done(f, w, rc);
        }
        curl_multi_poll(f->multi, NULL, 0, 1000, NULL);
    }
    while (f->active) { /* what is still transferring ends now */
        fwd *w = f->active;
        unlink_active(f, w);
        curl_multi_remove_handle(f->multi, w->curl);
        transfer_abort(f, w);
    }
    return NULL;
}

ef_forwarder *ef_forwarder_new(ef_sync *s)
{
    ef_forwarder *f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->s = s;
    if (!(f->multi = curl_multi_init())) {
        free(f);
        return NULL;
    }
    curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)FORWARD_MAX_CONNECTIONS);
    curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)FORWARD_MAX_CONNECTIONS);
    pthread_mutex_init(&f->mu, NULL);
    ef_cond_init_monotonic(&f->idle_cv);
    return f;
}

int ef_forwarder_start(ef_forwarder *f)
{
    /* How the primary's change log names this replica ("via"): its node name (`serve --name`,
     * letters, digits, '.', '_', '-': never a comma, which separates the hops); without one, its
     * database's id. */
    const char *name = f->s->node->name;
    if (name && *name) {
        snprintf(f->self, sizeof(f->self), "%s", name);
    } else {
        ef_store_identity id;
        id.db_id[0] = id.history[0] = 0;
        ef_store_err err;
        if (f->s->node->store) ef_store_get_identity(f->s->node->store, &id, &err);
        snprintf(f->self, sizeof(f->self), "replica-%.12s", id.db_id[0] ? id.db_id : "unknown");
    }
    pthread_mutex_lock(&f->mu); /* the thread reads the flags next to it under the lock */
    f->started = true;
    pthread_mutex_unlock(&f->mu);
    if (pthread_create(&f->thread, NULL, forwarder_main, f) == 0) return 0;
    pthread_mutex_lock(&f->mu);
    f->started = false;
    pthread_mutex_unlock(&f->mu);
    return -1;
}

unsigned ef_forwarder_inflight(ef_forwarder *f)
{
    if (!f) return 0;
    pthread_mutex_lock(&f->mu);
    unsigned n = f->inflight;
    pthread_mutex_unlock(&f->mu);
    return n;
}

void ef_forwarder_drain(ef_forwarder *f, unsigned grace_ms)
{
    if (!f) return;
    int64_t end = ef_clock_mono_ns() + (int64_t)grace_ms * 1000000LL;
    pthread_mutex_lock(&f->mu);
    f->draining = true;
    while (f->inflight && ef_clock_mono_ns() < end) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += 20000000L;
        if (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&f->idle_cv, &f->mu, &t);
    }
    f->stop = true;
    bool started = f->started;
    f->started = false;
    pthread_mutex_unlock(&f->mu);
    curl_multi_wakeup(f->multi);
    if (started) pthread_join(f->thread, NULL);
}

void ef_forwarder_free(ef_forwarder *f)
{
    if (!f) return;
    ef_forwarder_drain(f, 0);
    curl_multi_cleanup(f->multi);
    pthread_cond_destroy(&f->idle_cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static void refuse_busy(ef_http_req *req, const char *what)
{
    ef_http_add_header(req, "Retry-After", "1");
    ef_http_error(req, 503, 14,
                  "this node cannot hold another %s now (too many requests are waiting, or it is "
                  "shutting down): retry later",
                  what);
}

/* Whether v is an address as the primary records it: short, printable ASCII (attribution.c). */
static bool address_ok(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > EF_FORWARDED_BY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] > 0x7e) return false;
    return true;
}

/* The caller's address for X-Edgeflag-Forwarded-For: the peer, unless the peer is a replica that
 * follows this node (it sent back its live stream's key, from that stream's address), which
 * reports the address of its own caller. A client's Forwarded-For is never taken: it would need
 * the key of a stream from its own address, i.e. to follow this node itself (with auth on, with a
 * token of the internal class). */
static const char *caller_address(ef_http_req *req, bool from_downstream)
{
    const char *reported = ef_http_header(req, "X-Edgeflag-Forwarded-For");
    return from_downstream && address_ok(reported) ? reported : ef_http_peer(req);
}

bool ef_sync_from_downstream(ef_sync *s, ef_http_req *req)
{
    const char *key = ef_http_header(req, EF_FORWARD_KEY_HEADER);
    return s && key && ef_feed_is_downstream(s->feed, key, ef_http_peer(req));
}

void ef_forward_write(ef_sync *s, ef_http_req *req)
{
    ef_forwarder *f = s->forwarder;
    fwd *w = calloc(1, sizeof(*w));
    if (!w) {
        ef_http_error(req, 500, 13, "out of memory");
        return;
    }
    w->s = s;
    w->req = req;
    w->out = ef_http_out(req);
    ef_buf_init(&w->url);
    ef_buf_puts(&w->url, s->upstream);
    if (!append_target(&w->url, ef_http_target(req))) {
        fwd_free(w);
        ef_http_bad_request(req, "invalid request target");
        return;
    }
    ef_buf_putc(&w->url, '\0');
    char h[1200];
    static const char *const pass[] = {"Authorization", "Content-Type", "Accept", NULL};
    for (int i = 0; pass[i]; i++) {
        const char *v = ef_http_header(req, pass[i]);
        if (!v) continue;
        snprintf(h, sizeof(h), "%s: %s", pass[i], v);
        w->hdrs = curl_slist_append(w->hdrs, h);
    }
    bool from_downstream = ef_sync_from_downstream(s, req);
    snprintf(h, sizeof(h), "X-Edgeflag-Forwarded-For: %s", caller_address(req, from_downstream));
    w->hdrs = curl_slist_append(w->hdrs, h);
    pthread_mutex_lock(&s->mu); /* this replica's own stream key, for its upstream: never the caller's */
    snprintf(h, sizeof(h), "%s: %s", EF_FORWARD_KEY_HEADER, s->forward_key);
    bool has_key = s->forward_key[0] != '\0';
    pthread_mutex_unlock(&s->mu);
    if (has_key) w->hdrs = curl_slist_append(w->hdrs, h);
    /* who forwarded it, nearest the caller first (a chain of replicas adds itself at the end);
     * an incoming value is kept only from a replica that follows this node, and only when short
     * and printable, as the primary keeps it: a client's own is dropped */
    const char *by = from_downstream ? ef_http_header(req, EF_FORWARDED_BY_HEADER) : NULL;
    bool keep = by && *by && strlen(by) + strlen(f->self) + 1 <= EF_FORWARDED_BY_MAX;
    for (const char *p = by; keep && *p; p++) keep = *p >= 0x20 && *p <= 0x7e;
    snprintf(h, sizeof(h), "%s: %s%s%s", EF_FORWARDED_BY_HEADER, keep ? by : "", keep ? "," : "",
             f->self);
    w->hdrs = curl_slist_append(w->hdrs, h);
    w->hdrs = curl_slist_append(w->hdrs, "Expect:"); /* no 100-continue round trip */
    CURL *c = w->curl = curl_easy_init();
    if (!c || !w->hdrs || !ef_buf_ok(&w->url)) {
        fwd_free(w);
        ef_http_error(req, 500, 13, "out of memory");
        return;
    }
    ef_bytes body = ef_http_body(req); /* stays valid: the request is suspended until answered */
    ef_buf_clear(w->out);
    curl_easy_setopt(c, CURLOPT_URL, w->url.data);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    ef_tls_client_apply(c, &f->s->cfg.upstream_tls, w->curl_err);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, ef_http_method_name(req));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, w->hdrs);
    if (body.n || ef_http_method_of(req) != EF_DELETE) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.n);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.n ? body.p : "");
    }
    curl_easy_setopt(c, CURLOPT_USERAGENT, "edgeflag-replica/" EF_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)FORWARD_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)FORWARD_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_fwd_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_fwd_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, w);
    curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)w);
    pthread_mutex_lock(&f->mu);
    bool open = f->started && !f->draining;
    pthread_mutex_unlock(&f->mu);
    if (!open || !ef_http_suspend(req)) {
        fwd_free(w);
        refuse_busy(req, "forwarded write");
        return;
    }
    pthread_mutex_lock(&f->mu);
    f->inflight++;
    if (f->stop) { /* drained between the look and the suspension: answer it here */
        pthread_mutex_unlock(&f->mu);
        transfer_abort(f, w);
        return;
    }
    w->next = f->queue;
    f->queue = w;
    pthread_mutex_unlock(&f->mu);
    curl_multi_wakeup(f->multi);
}

/* ---- X-Edgeflag-Min-Version ------------------------------------------------------------------ */

typedef struct mv_wait {
    ef_wait wait;
    ef_sync *s;
    ef_http_req *req;
} mv_wait;

static void refuse_version(ef_sync *s, ef_http_req *req, uint64_t v)
{
    ef_http_add_header(req, "Retry-After", "1");
    ef_http_error(req, 503, 14,
                  "this node has applied version %" PRIu64 "; version %" PRIu64
                  " was not reached within %u ms",
                  ef_node_version(s->node), v, s->cfg.min_version_wait_ms);
}

static void on_min_version(ef_wait *x, bool reached)
{
    mv_wait *m = (mv_wait *)x;
    if (!reached) refuse_version(m->s, m->req, x->version);
    ef_http_resume(m->req); /* reached: dispatched again, and the version check passes */
}

bool ef_sync_before(ef_sync *s, ef_http_req *req)
{
    if (!s) return false;
    const ef_route *route = ef_http_route(req);
    unsigned flags = route ? route->flags : 0;
    const char *mv = (flags & EF_RF_STATE) ? ef_http_header(req, "X-Edgeflag-Min-Version") : NULL;
    if (mv && *mv) {
        uint64_t v;
        if (!ef_parse_u64(mv, &v)) {
            ef_http_bad_request(req, "invalid X-Edgeflag-Min-Version: want a version number");
            return true;
        }
        if (ef_node_version(s->node) < v) {
            /* resumed once already: the wait ended, this is no time to start another */
            if (ef_http_resumes(req) > 0 || !s->cfg.min_version_wait_ms) {
                refuse_version(s, req, v);
                return true;
            }
            mv_wait *m = ef_arena_alloc(ef_http_arena(req), sizeof(*m));
            if (!m) {
                ef_http_error(req, 500, 13, "out of memory");
                return true;
            }
            *m = (mv_wait){.s = s, .req = req};
            m->wait = (ef_wait){.version = v,
                                .deadline_ns = ef_clock_mono_ns() + (int64_t)s->cfg.min_version_wait_ms * 1000000LL,
                                .done = on_min_version};
            if (!ef_http_suspend(req)) {
                refuse_busy(req, "request waiting for a version");
                return true;
            }
            if (!ef_waits_add(s->waits, &m->wait)) on_min_version(&m->wait, false);
            return true;
        }
    }
    if (s->replica && (flags & EF_RF_WRITE)) {
        ef_forward_write(s, req);
        return true;
    }
    return false;
}

int ef_sync_committed(void *sync, const ef_store_change *c)
{
    ef_sync *s = sync;
    if (s && !s->replica) {
        ef_feed_committed(s->feed, c);
        ef_tree_committed(s->tree, c);
    }
    return 0;
}

void ef_sync_finish(ef_sync *s, ef_http_req *req)
{
    const ef_route *route = ef_http_route(req);
    if (!s || s->replica || !s->node->store || !route || !(route->flags & EF_RF_WRITE)) return;
    /* a write that published no snapshot (tokens, a deleted namespace) still moved the seq */
    uint64_t seq, first;
    ef_store_err err;
    if (ef_store_seq(s->node->store, &seq, &first, &err) == 0) {
        ef_sync_version_raised(s, seq);
        pthread_mutex_lock(&s->mu);
        if (seq > s->st.applied) { /* on a primary, "applied" counts its own commits */
            s->st.applied = seq;
            s->st.last_applied_ns = ef_clock_wall_ns();
            ef_sync_status_changed_locked(s);
        }
        pthread_mutex_unlock(&s->mu);
    }
    /* which history that version is on, for a replica that forwarded the write: it counts the
     * write as applied only on this history (after a primary restarted on a fresh database, the
     * replica's old numbers are higher and mean nothing) */
    if (s->primary_history[0]) ef_http_add_header(req, EF_HISTORY_HEADER, s->primary_history);
    ef_feed_kick_written(s->feed);
}
