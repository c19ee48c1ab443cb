/*
 * forwarder.c - the request hooks of replication: X-Edgeflag-Min-Version waits on every node,
 * and on a replica the forwarding of writes to its upstream (which forwards again along a chain
 * until the primary answers).
 *
 * A forwarded write carries the caller's own credentials and body; the caller gets the upstream's
 * status and body. Before answering, the replica waits (at most write-wait) until it has applied
 * the version the upstream reported, so the caller reads its own write here. It must never
 * invent an answer for a write the primary may have taken: an unreachable upstream gets a 503 that
 * says whether the write can have been applied, and every outbound call has a connect timeout and
 * a total timeout.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "base/clock.h"
#include "base/log.h"
#include "sync/sync_int.h"

#define FORWARD_CONNECT_TIMEOUT_MS 2000
#define FORWARD_TIMEOUT_MS 10000
#define FORWARD_BODY_MAX (16u << 20)

/* Query parameters Flipt's write routes read (the gateway accepts both spellings). */
/* Appends one query parameter, escaped again, to the forwarded URL. */
typedef struct query_out {
    CURL *curl;
    ef_buf *url;
    bool first;
} query_out;

static void append_query(const char *name, const char *value, void *ctx)
{
    query_out *q = ctx;
    char *n = curl_easy_escape(q->curl, name, 0), *v = curl_easy_escape(q->curl, value, 0);
    if (n && v) {
        ef_buf_printf(q->url, "%c%s=%s", q->first ? '?' : '&', n, v);
        q->first = false;
    }
    curl_free(n);
    curl_free(v);
}

static bool is_write(ef_http_method m)
{
    return m == EF_POST || m == EF_PUT || m == EF_DELETE || m == EF_PATCH;
}

static bool forwardable(const ef_route *r)
{
    return r && (r->cls == EF_ROUTE_MANAGEMENT || r->cls == EF_ROUTE_AUTH);
}

typedef struct fwd {
    ef_http_req *req;
    ef_buf *out;
    bool too_large;
    uint64_t version;     /* the upstream's X-Edgeflag-Version */
    char content_type[128];
    char www_auth[256];
} fwd;

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

/* Copies the value of "Name: value\r\n" when the header is `name`. */
static bool header_value(const char *line, size_t n, const char *name, char *dst, size_t cap)
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

static size_t on_fwd_header(char *p, size_t size, size_t nmemb, void *ud)
{
    fwd *w = ud;
    size_t n = size * nmemb;
    char v[32];
    if (!strncmp(p, "HTTP/", 5)) { /* a new response (after 100 Continue): forget the last */
        w->version = 0;
        w->content_type[0] = w->www_auth[0] = '\0';
    } else if (header_value(p, n, "X-Edgeflag-Version", v, sizeof(v))) {
        w->version = strtoull(v, NULL, 10);
    } else {
        (void)(header_value(p, n, "Content-Type", w->content_type, sizeof(w->content_type)) ||
               header_value(p, n, "WWW-Authenticate", w->www_auth, sizeof(w->www_auth)));
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
    curl_off_t sent = 0;
    if (curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK && sent > 0) return true;
    curl_off_t connected = 0;
    curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected);
    return connected > 0;
}

void ef_forward_write(ef_sync *s, ef_http_req *req)
{
    ef_buf url;
    ef_buf_init(&url);
    ef_buf_puts(&url, s->upstream);
    ef_buf_puts(&url, ef_http_path(req));
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char h[1200];
    if (c) { /* every query parameter goes along, as the caller wrote it */
        query_out q = {c, &url, true};
        ef_http_query_each(req, append_query, &q);
    }
    ef_buf_putc(&url, '\0');
    static const char *const pass[] = {"Authorization", "Content-Type", "Accept", NULL};
    for (int i = 0; pass[i]; i++) {
        const char *v = ef_http_header(req, pass[i]);
        if (!v) continue;
        snprintf(h, sizeof(h), "%s: %s", pass[i], v);
        hdrs = curl_slist_append(hdrs, h);
    }
    snprintf(h, sizeof(h), "X-Edgeflag-Forwarded-For: %s", ef_http_peer(req));
    hdrs = curl_slist_append(hdrs, h);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    if (!c || !hdrs || !ef_buf_ok(&url)) {
        ef_http_error(req, 500, 13, "out of memory");
        goto out;
    }
    ef_bytes body = ef_http_body(req);
    fwd w = {.req = req, .out = ef_http_out(req)};
    ef_buf_clear(w.out);
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, ef_http_method_name(req));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (body.n || ef_http_method_of(req) != EF_DELETE) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.n);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.n ? body.p : "");
    }
    curl_easy_setopt(c, CURLOPT_USERAGENT, "edgeflag-replica/" EF_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)FORWARD_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)FORWARD_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_fwd_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_fwd_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &w);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status < 100) {
        bool maybe = maybe_applied(rc, c);
        count(s, false);
        ef_buf_clear(w.out);
        ef_log(EF_LOG_WARN, "write not forwarded", "upstream", s->upstream, "path",
               ef_http_path(req), "error", curl_easy_strerror(rc), NULL);
        ef_http_add_header(req, "Retry-After", "1");
        if (maybe)
            ef_http_error(req, 503, 14,
                          "the primary did not answer this write (via %s: %s); it may or may not "
                          "have been applied: read it back before retrying",
                          s->upstream, curl_easy_strerror(rc));
        else
            ef_http_error(req, 503, 14,
                          "the primary is unreachable (via %s: %s); the write was not applied "
                          "anywhere: retry later",
                          s->upstream, curl_easy_strerror(rc));
        goto out;
    }
    count(s, true);
    if (status >= 200 && status < 300 && w.version &&
        !ef_sync_wait_version(s, w.version, s->cfg.write_wait_ms)) {
        char v[24];
        snprintf(v, sizeof(v), "%" PRIu64, w.version);
        /* the write is on the primary; only this node lags: say so instead of failing it */
        ef_http_add_header(req, "X-Edgeflag-Write-Version", v);
        ef_http_add_header(req, "X-Edgeflag-Write-Applied", "false");
        ef_log(EF_LOG_WARN, "forwarded write not applied here within write-wait", "version", v, NULL);
    }
    if (w.content_type[0]) ef_http_add_header(req, "Content-Type", w.content_type);
    if (w.www_auth[0]) ef_http_add_header(req, "WWW-Authenticate", w.www_auth);
    ef_http_reply(req, (int)status);
out:
    curl_slist_free_all(hdrs);
    if (c) curl_easy_cleanup(c);
    ef_buf_free(&url);
}

bool ef_sync_before(ef_sync *s, ef_http_req *req)
{
    if (!s) return false;
    const char *mv = ef_http_header(req, "X-Edgeflag-Min-Version");
    if (mv && *mv) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(mv, &end, 10);
        if (errno || *end || mv[0] == '-') {
            ef_http_bad_request(req, "invalid X-Edgeflag-Min-Version '%s': want a version number", mv);
            return true;
        }
        if (!ef_sync_wait_version(s, v, s->cfg.min_version_wait_ms)) {
            ef_http_add_header(req, "Retry-After", "1");
            ef_http_error(req, 503, 14,
                          "this node has applied version %" PRIu64 "; version %llu was not reached "
                          "within %u ms",
                          ef_node_version(s->node), v, s->cfg.min_version_wait_ms);
            return true;
        }
    }
    if (s->replica && is_write(ef_http_method_of(req)) && forwardable(ef_http_route(req))) {
        ef_forward_write(s, req);
        return true;
    }
    return false;
}

void ef_sync_finish(ef_sync *s, ef_http_req *req)
{
    if (!s || s->replica || !s->node->store || !is_write(ef_http_method_of(req))) return;
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
    ef_feed_kick(s->feed);
}
