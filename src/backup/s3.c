/*
 * s3.c - the S3 client (s3.h) over libcurl: path-style requests signed with AWS Signature V4 by
 * libcurl (CURLOPT_AWS_SIGV4), the payload's SHA-256 sent as x-amz-content-sha256 (S3 requires
 * it and signs it).
 *
 * Query parameters are written already sorted and encoded as SigV4's canonical form wants them,
 * so the signature holds whatever libcurl does with the query. Answers are read up to a bound,
 * every request has a timeout, redirects are never followed, and only http and https are spoken.
 */
#include "backup/s3.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup/format.h"
#include "base/sha256.h"

struct ef_s3 {
    CURL *c;
    char *endpoint; /* without a trailing '/' */
    char *region;
    char *bucket;
    char *prefix; /* "" or ending in '/' */
    char *url;    /* s3://bucket/prefix as given, for messages */
    char *access_key, *secret_key, *session_token;
    char sigv4[160];
    unsigned timeout_ms;
    unsigned get_retries;
    bool transport_failed; /* the last request() got no answer at all (a connection or timeout error) */
    bool (*cancelled)(void *ctx); /* ef_s3_set_cancel; NULL: never */
    void *cancel_ctx;
};

void ef_s3_config_env(ef_s3_config *c)
{
    if (!c->access_key) c->access_key = getenv("AWS_ACCESS_KEY_ID");
    if (!c->secret_key) c->secret_key = getenv("AWS_SECRET_ACCESS_KEY");
    if (!c->session_token) c->session_token = getenv("AWS_SESSION_TOKEN");
    if (!c->region) c->region = getenv("AWS_REGION");
    if (!c->region) c->region = getenv("AWS_DEFAULT_REGION");
    if (!c->endpoint) c->endpoint = getenv("AWS_ENDPOINT_URL_S3");
    if (!c->endpoint) c->endpoint = getenv("AWS_ENDPOINT_URL");
}

static int s3_fail(ef_s3_err *e, long status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s3_fail(ef_s3_err *e, long status, const char *fmt, ...)
{
    if (e) {
        e->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool bucket_ok(const char *b, size_t n)
{
    if (n < 1 || n > 63) return false;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}

static bool prefix_ok(const char *p)
{
    if (strlen(p) > 512 || p[0] == '/') return false;
    for (const char *q = p; *q; q++) {
        if ((unsigned char)*q < 0x20 || *q == 0x7f || *q == '\\') return false;
        if (q[0] == '/' && q[1] == '/') return false;
    }
    /* no "." or ".." path segment: an object store keeps them, a file system path would not */
    for (const char *seg = p; *seg;) {
        size_t n = strcspn(seg, "/");
        if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.')) return false;
        seg += n;
        if (*seg == '/') seg++;
    }
    return true;
}

/* libcurl's process-wide initialisation is not thread-safe: once, before the first handle. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

ef_s3 *ef_s3_new(const ef_s3_config *cfg, ef_s3_err *err)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        s3_fail(err, 0, "libcurl could not be initialised");
        return NULL;
    }
    const char *u = cfg->url;
    if (!u || strncmp(u, "s3://", 5) != 0) {
        s3_fail(err, 0, "backup target %s is not an s3://BUCKET[/PREFIX] URL", u ? u : "(none)");
        return NULL;
    }
    const char *b = u + 5, *slash = strchr(b, '/');
    size_t bn = slash ? (size_t)(slash - b) : strlen(b);
    if (!bucket_ok(b, bn)) {
        s3_fail(err, 0, "backup target %s: bad bucket name (1 to 63 of a-z, 0-9, '.', '-', '_')", u);
        return NULL;
    }
    const char *prefix = slash ? slash + 1 : "";
    if (!prefix_ok(prefix)) {
        s3_fail(err, 0, "backup target %s: bad prefix (at most 512 bytes, no control characters, "
                        "no empty, '.' or '..' segment)", u);
        return NULL;
    }
    const char *ep = cfg->endpoint && *cfg->endpoint ? cfg->endpoint : NULL;
    const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
    for (const char *q = region; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-') || q - region > 40) {
            s3_fail(err, 0, "bad S3 region '%s'", region);
            return NULL;
        }
    if (ep && strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) {
        s3_fail(err, 0, "S3 endpoint %s is not an http:// or https:// URL", ep);
        return NULL;
    }
    if ((cfg->access_key && *cfg->access_key) != (cfg->secret_key && *cfg->secret_key)) {
        s3_fail(err, 0, "S3 credentials need both an access key and a secret key");
        return NULL;
    }
    ef_s3 *s = calloc(1, sizeof(*s));
    if (!s) {
        s3_fail(err, 0, "out of memory");
        return NULL;
    }
    char defep[128];
    snprintf(defep, sizeof(defep), "https://s3.%s.amazonaws.com", region);
    s->endpoint = strdup(ep ? ep : defep);
    s->region = strdup(region);
    s->bucket = strndup(b, bn);
    size_t pn = strlen(prefix);
    s->prefix = malloc(pn + 2);
    s->url = strdup(u);
    s->access_key = strdup(cfg->access_key ? cfg->access_key : "");
    s->secret_key = strdup(cfg->secret_key ? cfg->secret_key : "");
    s->session_token = cfg->session_token && *cfg->session_token ? strdup(cfg->session_token) : NULL;
    s->c = curl_easy_init();
    s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 30000;
    s->get_retries = cfg->get_retries;
    if (!s->endpoint || !s->region || !s->bucket || !s->prefix || !s->url || !s->access_key ||
        !s->secret_key || (cfg->session_token && *cfg->session_token && !s->session_token) || !s->c) {
        ef_s3_free(s);
        s3_fail(err, 0, "out of memory");
        return NULL;
    }
    memcpy(s->prefix, prefix, pn + 1);
    if (pn && prefix[pn - 1] != '/') memcpy(s->prefix + pn, "/", 2);
    size_t en = strlen(s->endpoint);
    while (en > 0 && s->endpoint[en - 1] == '/') s->endpoint[--en] = '\0';
    snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", s->region);
    return s;
}

void ef_s3_free(ef_s3 *s)
{
    if (!s) return;
    if (s->c) curl_easy_cleanup(s->c);
    free(s->endpoint);
    free(s->region);
    free(s->bucket);
    free(s->prefix);
    free(s->url);
    if (s->secret_key) memset(s->secret_key, 0, strlen(s->secret_key));
    free(s->access_key);
    free(s->secret_key);
    free(s->session_token);
    free(s);
}

void ef_s3_set_cancel(ef_s3 *s, bool (*cancelled)(void *ctx), void *ctx)
{
    s->cancelled = cancelled;
    s->cancel_ctx = ctx;
}

static bool is_cancelled(ef_s3 *s)
{
    return s->cancelled && s->cancelled(s->cancel_ctx);
}

/* libcurl's progress callback: non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). Without
 * it a request only ends at its timeout, however long its owner has been waiting to stop. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return is_cancelled(ud) ? 1 : 0;
}

const char *ef_s3_url(const ef_s3 *s)
{
    return s->url;
}

const char *ef_s3_prefix(const ef_s3 *s)
{
    return s->prefix;
}

/* SigV4's URI encoding: everything but A-Z a-z 0-9 - _ . ~ (and '/' in a path) as %XX. */
static void uri_encode(ef_buf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_' || c == '.' || c == '~' || (keep_slash && c == '/'))
            ef_buf_putc(b, (char)c);
        else
            ef_buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
    }
}

/* One signed request. method "PUT" sends body; answer (up to max) goes to out. Returns the HTTP
 * status, or -1 with err when there was no usable answer. */
static long request(ef_s3 *s, const char *method, const char *url, const void *body, size_t blen,
                    ef_buf *out, size_t max, ef_s3_err *err)
{
    CURL *c = s->c;
    s->transport_failed = false;
    curl_easy_reset(c); /* keeps the connection cache: one keep-alive connection per ef_s3 */
    uint8_t h[32];
    char hex[65], hdr[160];
    ef_sha256(body ? body : "", blen, h);
    ef_bk_hex(h, 32, hex);
    struct curl_slist *hdrs = NULL, *t;
    snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", hex);
    hdrs = curl_slist_append(hdrs, hdr);
    if (hdrs && (t = curl_slist_append(hdrs, "Expect:"))) hdrs = t;
    if (hdrs && body && (t = curl_slist_append(hdrs, "Content-Type: application/octet-stream"))) hdrs = t;
    char *tok = NULL;
    if (hdrs && s->session_token) {
        size_t n = strlen(s->session_token) + 32;
        tok = malloc(n);
        if (tok) {
            snprintf(tok, n, "x-amz-security-token: %s", s->session_token);
            if ((t = curl_slist_append(hdrs, tok))) hdrs = t;
        }
    }
    if (!hdrs) return s3_fail(err, 0, "out of memory");
    if (is_cancelled(s)) {
        curl_slist_free_all(hdrs);
        free(tok);
        return s3_fail(err, 0, "%s %s: cancelled (stopping)", method, url);
    }
    ef_buf_sink k = {out, max, false};
    ef_buf_clear(out);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "edgeflag-backup/" EF_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* timeout_ms bounds a request that moves no data (under 1 KiB/s that long: a silent or
     * dripping bucket); a transfer that moves gets timeout_ms plus 4 s a MiB it may carry (256
     * KiB/s). With timeout_ms alone for the whole transfer, a snapshot that took longer to upload
     * failed at every try, and a store past a few hundred MB could never be snapshotted. */
    size_t carry = strcmp(method, "PUT") == 0 ? blen : max;
    uint64_t total_ms = (uint64_t)s->timeout_ms + (uint64_t)(carry >> 20) * 4000u;
    if (total_ms > (uint64_t)24 * 3600 * 1000) total_ms = (uint64_t)24 * 3600 * 1000;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)total_ms);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)(s->timeout_ms < 2000 ? 1 : s->timeout_ms / 1000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(s->timeout_ms < 5000 ? s->timeout_ms : 5000));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ef_buf_sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &k);
    if (s->cancelled) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    }
    if (s->access_key[0]) {
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
        curl_easy_setopt(c, CURLOPT_USERNAME, s->access_key);
        curl_easy_setopt(c, CURLOPT_PASSWORD, s->secret_key);
    }
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    free(tok);
    if (k.over)
        return s3_fail(err, status, "%s %s: the answer is larger than %zu bytes", method, url, max);
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return s3_fail(err, 0, "%s %s: cancelled (stopping)", method, url);
    if (rc != CURLE_OK) {
        s->transport_failed = true;
        return s3_fail(err, 0, "%s %s: %s", method, url, curl_easy_strerror(rc));
    }
    return status;
}

/* A GET, tried again (get_retries times at most) while it fails in passing: S3 asks clients to
 * retry 500 and 503 (SlowDown), and a connection cut or a timeout says nothing about the object.
 * Anything else (an answer too large, a cancel, 403, 404) is final at once. */
static long request_get(ef_s3 *s, const char *url, ef_buf *out, size_t max, ef_s3_err *err)
{
    unsigned delay_ms = 250;
    for (unsigned tries = 0;; tries++) {
        long st = request(s, "GET", url, NULL, 0, out, max, err);
        bool passing = (st < 0 && s->transport_failed) || st == 500 || st == 502 || st == 503 || st == 504;
        if (!passing || tries >= s->get_retries || is_cancelled(s)) return st;
        struct timespec d = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&d, NULL);
        delay_ms = delay_ms >= 2000 ? 4000 : delay_ms * 2;
    }
}

/* An error answer as "STATUS Code: Message". */
static int answer_fail(ef_s3 *s, const char *method, const char *what, long status, ef_buf *body,
                       ef_s3_err *err)
{
    char code[128], msg[300];
    ef_s3_xml_error(body->data ? body->data : "", body->len, code, sizeof(code), msg, sizeof(msg));
    return s3_fail(err, status, "%s s3://%s/%s%s: HTTP %ld%s%s%s%s", method, s->bucket, s->prefix,
                   what, status, code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
}

static void object_url(ef_s3 *s, ef_buf *u, const char *key)
{
    ef_buf_printf(u, "%s/", s->endpoint);
    uri_encode(u, s->bucket, false);
    ef_buf_putc(u, '/');
    uri_encode(u, s->prefix, true);
    uri_encode(u, key, true);
    ef_buf_putc(u, '\0');
}

int ef_s3_put(ef_s3 *s, const char *key, const void *data, size_t len, ef_s3_err *err)
{
    ef_buf u, body;
    ef_buf_init(&u);
    ef_buf_init(&body);
    object_url(s, &u, key);
    int rc = -1;
    long st = ef_buf_ok(&u) ? request(s, "PUT", u.data, data, len, &body, 65536, err)
                            : s3_fail(err, 0, "out of memory");
    if (st >= 200 && st < 300)
        rc = 0;
    else if (st > 0)
        answer_fail(s, "PUT", key, st, &body, err);
    ef_buf_free(&u);
    ef_buf_free(&body);
    return rc;
}

int ef_s3_get(ef_s3 *s, const char *key, size_t max, ef_buf *out, ef_s3_err *err)
{
    ef_buf u;
    ef_buf_init(&u);
    object_url(s, &u, key);
    int rc = -1;
    long st = ef_buf_ok(&u) ? request_get(s, u.data, out, max, err)
                            : s3_fail(err, 0, "out of memory");
    if (st == 200) {
        rc = 0;
    } else if (st > 0) {
        answer_fail(s, "GET", key, st, out, err);
        ef_buf_clear(out);
    }
    ef_buf_free(&u);
    return rc;
}

typedef struct list_ctx {
    ef_s3 *s;
    ef_s3_key_fn fn;
    void *ctx;
    char last[1025]; /* the last name listed, across pages ("" before the first) */
    size_t last_n;
    bool disorder;
    char bad[201]; /* the first name out of order, cut for the message */
} list_ctx;

#define LIST_DISORDER (-2)

static int on_key(void *ud, ef_bytes key, uint64_t size)
{
    list_ctx *l = ud;
    /* S3 lists in UTF-8 binary order and each name once. A listing that goes back (a page
     * handed out again, continuation tokens that loop A, B, A, ...) is a server that would
     * otherwise have us read the same names until a page or name limit (100000 pages, or 10
     * million names in memory in restore); refused at the first name out of order. */
    size_t m = key.n < l->last_n ? key.n : l->last_n;
    int c = memcmp(key.p, l->last, m);
    if (l->last_n && (c < 0 || (c == 0 && key.n <= l->last_n))) {
        l->disorder = true;
        snprintf(l->bad, sizeof(l->bad), "%.*s", (int)(key.n < 200 ? key.n : 200), key.p);
        return LIST_DISORDER;
    }
    memcpy(l->last, key.p, key.n); /* key.n <= 1024: ef_s3_xml_list refuses longer names */
    l->last_n = key.n;
    size_t pn = strlen(l->s->prefix);
    /* a server that lists names outside what was asked for is not believed */
    if (key.n < pn || memcmp(key.p, l->s->prefix, pn) != 0) return 0;
    return l->fn(l->ctx, (ef_bytes){key.p + pn, key.n - pn}, size);
}

int ef_s3_list(ef_s3 *s, const char *under, ef_s3_key_fn fn, void *ctx, ef_s3_err *err)
{
    ef_buf u, body;
    ef_buf_init(&u);
    ef_buf_init(&body);
    char token[1025] = "";
    int rc = 0;
    list_ctx l = {.s = s, .fn = fn, .ctx = ctx};
    for (int page = 0;; page++) {
        /* each page is quick, but 100000 of them are not: a listing that never ends would
         * otherwise run its whole course after its owner asked to stop */
        if (is_cancelled(s)) {
            rc = s3_fail(err, 0, "listing s3://%s/%s%s: cancelled (stopping)", s->bucket,
                         s->prefix, under);
            break;
        }
        if (page > 100000) {
            rc = s3_fail(err, 0, "listing s3://%s/%s%s: more than 100000 pages", s->bucket, s->prefix, under);
            break;
        }
        ef_buf_clear(&u);
        /* parameters in SigV4's canonical order: continuation-token, list-type, prefix */
        ef_buf_printf(&u, "%s/", s->endpoint);
        uri_encode(&u, s->bucket, false);
        ef_buf_putc(&u, '?');
        if (token[0]) {
            ef_buf_puts(&u, "continuation-token=");
            uri_encode(&u, token, false);
            ef_buf_putc(&u, '&');
        }
        ef_buf_puts(&u, "list-type=2&prefix=");
        uri_encode(&u, s->prefix, false);
        uri_encode(&u, under, false);
        ef_buf_putc(&u, '\0');
        if (!ef_buf_ok(&u)) {
            rc = s3_fail(err, 0, "out of memory");
            break;
        }
        long st = request_get(s, u.data, &body, (size_t)16 << 20, err);
        if (st < 0) {
            rc = -1;
            break;
        }
        if (st != 200) {
            char what[600];
            snprintf(what, sizeof(what), "%s (listing)", under);
            rc = answer_fail(s, "GET", what, st, &body, err);
            break;
        }
        ef_s3_list_page pg;
        char perr[200];
        rc = ef_s3_xml_list(body.data ? body.data : "", body.len, on_key, &l, &pg, perr, sizeof(perr));
        if (l.disorder) {
            rc = s3_fail(err, st, "listing s3://%s/%s%s: the server lists %s again or out of order "
                         "(not in name order: a repeated or looping listing)", s->bucket, s->prefix,
                         under, l.bad);
            break;
        }
        if (rc < 0) {
            s3_fail(err, st, "listing s3://%s/%s%s: %s", s->bucket, s->prefix, under, perr);
            break;
        }
        if (rc || !pg.truncated) break;
        if (strcmp(token, pg.next_token) == 0) {
            rc = s3_fail(err, st, "listing s3://%s/%s%s: the server repeats its continuation token",
                         s->bucket, s->prefix, under);
            break;
        }
        memcpy(token, pg.next_token, sizeof(token));
    }
    ef_buf_free(&u);
    ef_buf_free(&body);
    return rc;
}
