/*
 * hrana.c - the Hrana-over-HTTP client (see hrana.h): request writing, one kept-alive libcurl
 * handle per client, baton and base_url handling, error messages, value decoding and typing by
 * decltype.
 *
 * It must never retry a request whose outcome is unknown (a timeout after sending may have
 * committed): only requests the server provably did not run (an expired or unknown stream, which
 * the server rejects before running anything) are sent again. It must never send the bearer token
 * to another origin than the configured one (a server's base_url is followed on that origin only),
 * never buffer an answer past its cap, and never convert a server's number with undefined
 * behaviour: every integer, float-to-integer and time conversion is range-checked.
 */
#include "store/hrana.h"

#include <ctype.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/tls_client.h"

enum { OPEN_NONE, OPEN_EXEC, OPEN_BATCH, OPEN_STEP };

struct ef_hrana {
    pthread_mutex_t mu; /* one request at a time: the baton chains them */
    CURL *curl;
    struct curl_slist *headers;
    char curl_err[CURL_ERROR_SIZE]; /* libcurl's account of a failed exchange (a refused certificate) */
    char *base;     /* as given, without a trailing '/' */
    char *base_url; /* where the stream lives (the server's base_url, else base) */
    char *baton;    /* the open stream, or NULL */
    int version;    /* 0 unknown, 2 or 3 */
    int timeout_ms;
    uint64_t requests;
    size_t max_answer;   /* bytes; a longer answer is cut */
    bool too_large;      /* the last answer passed max_answer and was cut */
    bool warned_base;    /* a foreign base_url was refused once already (logged once) */
    ef_buf resp;
};

/* ---- writing ---- */

void ef_hrana_req_init(ef_hrana_req *r)
{
    memset(r, 0, sizeof(*r));
    ef_buf_init(&r->b);
}

void ef_hrana_req_free(ef_hrana_req *r)
{
    ef_buf_free(&r->b);
}

static void close_open(ef_hrana_req *r)
{
    if (r->open == OPEN_STEP) {
        ef_buf_puts(&r->b, "]}}");
        r->open = OPEN_BATCH;
    }
    if (r->open == OPEN_BATCH) ef_buf_puts(&r->b, "]}}");
    if (r->open == OPEN_EXEC) ef_buf_puts(&r->b, "]}}");
    r->open = OPEN_NONE;
}

static void stmt_open(ef_hrana_req *r, const char *sql)
{
    ef_buf_puts(&r->b, "{\"sql\":");
    ef_json_put_cstr(&r->b, sql);
    ef_buf_puts(&r->b, ",\"args\":[");
    r->first_arg = true;
}

int ef_hrana_execute(ef_hrana_req *r, const char *sql)
{
    close_open(r);
    ef_buf_puts(&r->b, r->nreq ? ",{\"type\":\"execute\",\"stmt\":" : "{\"type\":\"execute\",\"stmt\":");
    stmt_open(r, sql);
    r->open = OPEN_EXEC;
    return r->nreq++;
}

int ef_hrana_batch(ef_hrana_req *r)
{
    close_open(r);
    ef_buf_puts(&r->b, r->nreq ? ",{\"type\":\"batch\",\"batch\":{\"steps\":["
                               : "{\"type\":\"batch\",\"batch\":{\"steps\":[");
    r->open = OPEN_BATCH;
    r->nsteps = 0;
    return r->nreq++;
}

int ef_hrana_step(ef_hrana_req *r, const char *cond, const char *sql)
{
    if (r->open == OPEN_STEP) ef_buf_puts(&r->b, "]}}");
    if (r->open != OPEN_BATCH && r->open != OPEN_STEP) ef_hrana_batch(r);
    ef_buf_puts(&r->b, r->nsteps ? ",{\"condition\":" : "{\"condition\":");
    ef_buf_puts(&r->b, cond ? cond : "null");
    ef_buf_puts(&r->b, ",\"stmt\":");
    stmt_open(r, sql);
    r->open = OPEN_STEP;
    return r->nsteps++;
}

static void arg_sep(ef_hrana_req *r)
{
    if (!r->first_arg) ef_buf_putc(&r->b, ',');
    r->first_arg = false;
}

void ef_hrana_arg_null(ef_hrana_req *r)
{
    arg_sep(r);
    ef_buf_puts(&r->b, "{\"type\":\"null\"}");
}

void ef_hrana_arg_int(ef_hrana_req *r, int64_t v)
{
    /* Hrana integers are decimal strings: JSON numbers lose precision past 2^53 */
    arg_sep(r);
    ef_buf_printf(&r->b, "{\"type\":\"integer\",\"value\":\"%lld\"}", (long long)v);
}

void ef_hrana_arg_float(ef_hrana_req *r, double v)
{
    if (!isfinite(v)) { /* Hrana floats must be finite JSON numbers */
        ef_hrana_arg_null(r);
        return;
    }
    arg_sep(r);
    ef_buf_puts(&r->b, "{\"type\":\"float\",\"value\":");
    ef_json_put_double(&r->b, v);
    ef_buf_putc(&r->b, '}');
}

void ef_hrana_arg_text(ef_hrana_req *r, ef_bytes v)
{
    arg_sep(r);
    ef_buf_puts(&r->b, "{\"type\":\"text\",\"value\":");
    ef_json_put_str(&r->b, v);
    ef_buf_putc(&r->b, '}');
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(ef_buf *b, ef_bytes v)
{
    /* unpadded, as sqld and tursodb write blobs */
    const unsigned char *in = (const unsigned char *)v.p;
    for (size_t i = 0; i < v.n; i += 3) {
        uint32_t x = (uint32_t)in[i] << 16;
        if (i + 1 < v.n) x |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < v.n) x |= in[i + 2];
        ef_buf_putc(b, B64[x >> 18 & 63]);
        ef_buf_putc(b, B64[x >> 12 & 63]);
        if (i + 1 < v.n) ef_buf_putc(b, B64[x >> 6 & 63]);
        if (i + 2 < v.n) ef_buf_putc(b, B64[x & 63]);
    }
}

void ef_hrana_arg_blob(ef_hrana_req *r, ef_bytes v)
{
    arg_sep(r);
    ef_buf_puts(&r->b, "{\"type\":\"blob\",\"base64\":\"");
    put_base64(&r->b, v);
    ef_buf_puts(&r->b, "\"}");
}

/* Decimal integer text (an optional '-' and digits, nothing else) to int64: -1 when it is empty,
 * has any other byte, or does not fit (strtoll would saturate, or accept spaces and '+'). */
static int parse_i64(ef_bytes s, int64_t *out)
{
    size_t i = 0;
    bool neg = s.n && s.p[0] == '-';
    if (neg) i++;
    if (i == s.n) return -1;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return -1;
        unsigned d = (unsigned)(s.p[i] - '0');
        if (v > (limit - d) / 10) return -1;
        v = v * 10 + d;
    }
    /* -(2^63) is representable but its negation is not: build it from the unsigned value */
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

/* A double to int64 only when it is integral and inside int64's range: converting anything else
 * (1e19, -1e300, NaN) is undefined behaviour in C, not a saturation. */
static bool f_to_i64(double f, int64_t *out)
{
    /* -2^63 is exact as a double; 2^63 is the first value past the range (NaN fails both) */
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0)) return false;
    int64_t i = (int64_t)f;
    if ((double)i != f) return false;
    *out = i;
    return true;
}

static bool json_integral(const ef_json *v)
{
    return !memchr(v->str.p, '.', v->str.n) && !memchr(v->str.p, 'e', v->str.n) &&
           !memchr(v->str.p, 'E', v->str.n);
}

void ef_hrana_arg_json(ef_hrana_req *r, const ef_json *v)
{
    int64_t i;
    if (!v || v->type == EF_JSON_NULL)
        ef_hrana_arg_null(r);
    else if (v->type == EF_JSON_TRUE || v->type == EF_JSON_FALSE)
        ef_hrana_arg_int(r, v->type == EF_JSON_TRUE);
    else if (v->type == EF_JSON_NUMBER && json_integral(v) && parse_i64(v->str, &i) == 0)
        ef_hrana_arg_int(r, i);
    else if (v->type == EF_JSON_NUMBER) /* fractional, or an integer past int64: a REAL, as SQLite
                                         * itself stores an integer literal that does not fit */
        ef_hrana_arg_float(r, v->num);
    else if (v->type == EF_JSON_STRING)
        ef_hrana_arg_text(r, v->str);
    else
        ef_hrana_arg_null(r);
}

const char *ef_hrana_cond_ok(char *buf, size_t n, int step)
{
    snprintf(buf, n, "{\"type\":\"ok\",\"step\":%d}", step);
    return buf;
}

const char *ef_hrana_cond_not_ok(char *buf, size_t n, int step)
{
    snprintf(buf, n, "{\"type\":\"not\",\"cond\":{\"type\":\"ok\",\"step\":%d}}", step);
    return buf;
}

const char *ef_hrana_cond_ok_not_ok(char *buf, size_t n, int a, int b)
{
    snprintf(buf, n,
             "{\"type\":\"and\",\"conds\":[{\"type\":\"ok\",\"step\":%d},"
             "{\"type\":\"not\",\"cond\":{\"type\":\"ok\",\"step\":%d}}]}",
             a, b);
    return buf;
}

/* ---- transport ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    ef_hrana *h = ctx;
    size_t n = size * nmemb;
    if (n > h->max_answer - h->resp.len) { /* a runaway answer is cut, not buffered */
        h->too_large = true;
        return 0;
    }
    ef_buf_append(&h->resp, p, n);
    return ef_buf_ok(&h->resp) ? n : 0;
}

/* One HTTP exchange. Returns the status (0 on transport failure, *err filled). */
static long http_do(ef_hrana *h, const char *url, const char *body, size_t len,
                    ef_store_err *err)
{
    ef_buf_clear(&h->resp);
    h->too_large = false;
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    }
    h->requests++;
    CURLcode rc = curl_easy_perform(h->curl);
    if (rc != CURLE_OK) {
        if (h->too_large)
            ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: answer larger than %zu bytes",
                          h->base, h->max_answer);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s: no answer within %d ms", h->base,
                    h->timeout_ms);
        else { /* names the server; a refused certificate says why */
            char why[600];
            ef_tls_client_error((int)rc, h->curl_err, h->base, why, sizeof(why));
            ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql %s", why);
        }
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static void probe(ef_hrana *h)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s/v3", h->base);
    ef_store_err ignored;
    long st = http_do(h, url, NULL, 0, &ignored);
    if (st) h->version = st >= 200 && st < 300 ? 3 : 2;
}

ef_hrana *ef_hrana_open(const char *base_url, const char *token, int timeout_ms,
                        ef_store_err *err)
{
    return ef_hrana_open_ca(base_url, token, timeout_ms, NULL, err);
}

ef_hrana *ef_hrana_open_ca(const char *base_url, const char *token, int timeout_ms,
                           const char *ca_file, ef_store_err *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ef_store_fail(err, EF_STORE_INTERNAL, "libcurl cannot initialise");
        return NULL;
    }
    ef_hrana *h = calloc(1, sizeof(*h));
    if (!h) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    ef_buf_init(&h->resp);
    h->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    h->max_answer = EF_HRANA_MAX_ANSWER;
    size_t n = strlen(base_url);
    while (n && base_url[n - 1] == '/') n--;
    h->base = strndup(base_url, n);
    h->curl = curl_easy_init();
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (token && *token) {
        size_t tl = strlen(token) + 32;
        char *hdr = malloc(tl);
        if (hdr) {
            snprintf(hdr, tl, "Authorization: Bearer %s", token);
            h->headers = curl_slist_append(h->headers, hdr);
            free(hdr);
        }
    }
    if (!h->base || !h->curl || !h->headers) {
        ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
        ef_hrana_close(h);
        return NULL;
    }
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    /* https: the system's CAs or ca_file, host name checked */
    ef_tls_client tls = {.ca_file = ca_file};
    ef_tls_client_apply(h->curl, &tls, h->curl_err);
    /* a redirect is not followed (libcurl's default, said out loud): the token stays on the
     * configured origin, like base_url below */
    curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
    probe(h);
    return h;
}

void ef_hrana_close(ef_hrana *h)
{
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->headers);
    free(h->base);
    free(h->base_url);
    free(h->baton);
    ef_buf_free(&h->resp);
    pthread_mutex_destroy(&h->mu);
    free(h);
    curl_global_cleanup();
}

int ef_hrana_version(ef_hrana *h)
{
    pthread_mutex_lock(&h->mu);
    int v = h->version;
    pthread_mutex_unlock(&h->mu);
    return v;
}

void ef_hrana_set_max_answer(ef_hrana *h, size_t bytes)
{
    pthread_mutex_lock(&h->mu);
    h->max_answer = bytes ? bytes : EF_HRANA_MAX_ANSWER;
    pthread_mutex_unlock(&h->mu);
}

void ef_hrana_stats(ef_hrana *h, uint64_t *requests, uint64_t *connects)
{
    pthread_mutex_lock(&h->mu);
    if (requests) *requests = h->requests;
    if (connects) {
        long c = 0;
        curl_easy_getinfo(h->curl, CURLINFO_NUM_CONNECTS, &c);
        *connects = (uint64_t)c; /* of the last transfer: 0 when it reused a connection */
    }
    pthread_mutex_unlock(&h->mu);
}

static void drop_stream(ef_hrana *h)
{
    free(h->baton);
    h->baton = NULL;
    free(h->base_url);
    h->base_url = NULL;
}

/* The server's message (and code) from an error body, JSON or plain text. */
static void body_message(ef_hrana *h, ef_arena *a, char *msg, size_t n, char *code, size_t ncode)
{
    msg[0] = code[0] = '\0';
    ef_json_error je;
    const ef_json *j = h->resp.len ? ef_json_parse(h->resp.data, h->resp.len, a, NULL, &je) : NULL;
    const ef_json *m = j && j->type == EF_JSON_OBJECT ? ef_json_get(j, "message") : NULL;
    if (!m && j && j->type == EF_JSON_OBJECT) m = ef_json_get(j, "error");
    const ef_json *c = j && j->type == EF_JSON_OBJECT ? ef_json_get(j, "code") : NULL;
    if (m && m->type == EF_JSON_STRING)
        snprintf(msg, n, "%.*s", (int)m->str.n, m->str.p);
    else
        snprintf(msg, n, "%.*s", (int)(h->resp.len > 300 ? 300 : h->resp.len),
                 h->resp.len ? h->resp.data : "");
    if (c && c->type == EF_JSON_STRING) snprintf(code, ncode, "%.*s", (int)c->str.n, c->str.p);
    /* proxies answer with HTML or text: keep one line */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

static bool stream_gone(const char *msg, const char *code)
{
    return !strcmp(code, "STREAM_EXPIRED") || strstr(msg, "invalid baton") ||
           strstr(msg, "already been used") || strstr(msg, "was closed");
}

int ef_hrana_parse_answer(const char *data, size_t len, int nreq, ef_arena *a,
                          const ef_json **root, const ef_json **results, ef_store_err *err)
{
    ef_json_error je;
    ef_json_opts jo = {.max_depth = 64};
    /* the arena owns a copy: the answer buffer is reused by the next request */
    char *copy = ef_arena_memdup(a, data ? data : "", len);
    if (!copy) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    const ef_json *j = ef_json_parse(copy, len, a, &jo, &je);
    if (!j) return ef_store_fail(err, EF_STORE_UNAVAILABLE, "malformed pipeline answer: %s", je.message);
    const ef_json *res = j->type == EF_JSON_OBJECT ? ef_json_get(j, "results") : NULL;
    if (!res || res->type != EF_JSON_ARRAY || nreq < 0 || res->len != (size_t)nreq)
        return ef_store_fail(err, EF_STORE_UNAVAILABLE,
                             "malformed pipeline answer: no results array of %d entries", nreq);
    *root = j;
    *results = res;
    return 0;
}

/* Splits http(s)://HOST[:PORT]REST into its origin (scheme, host, port with the scheme's default)
 * and the rest. Refuses user information ('@': "http://good@evil/" is evil's), empty hosts and
 * ports that are not 1..65535. */
typedef struct origin {
    bool tls;
    ef_bytes host;
    unsigned port;
} origin;

static int origin_parse(ef_bytes u, origin *o, ef_bytes *rest)
{
    size_t i;
    if (u.n >= 7 && strncasecmp(u.p, "http://", 7) == 0) {
        *o = (origin){.tls = false, .port = 80};
        i = 7;
    } else if (u.n >= 8 && strncasecmp(u.p, "https://", 8) == 0) {
        *o = (origin){.tls = true, .port = 443};
        i = 8;
    } else {
        return -1;
    }
    size_t start = i;
    while (i < u.n && u.p[i] != '/' && u.p[i] != '?' && u.p[i] != '#') i++;
    ef_bytes auth = {u.p + start, i - start};
    if (!auth.n || memchr(auth.p, '@', auth.n)) return -1;
    size_t hn;
    if (auth.p[0] == '[') { /* an IPv6 literal */
        const char *e = memchr(auth.p, ']', auth.n);
        if (!e) return -1;
        hn = (size_t)(e - auth.p) + 1;
    } else {
        const char *c = memchr(auth.p, ':', auth.n);
        hn = c ? (size_t)(c - auth.p) : auth.n;
    }
    if (hn == 0) return -1;
    o->host = (ef_bytes){auth.p, hn};
    if (hn < auth.n) {
        if (auth.p[hn] != ':' || auth.n - hn - 1 == 0 || auth.n - hn - 1 > 5) return -1;
        unsigned port = 0;
        for (size_t k = hn + 1; k < auth.n; k++) {
            if (auth.p[k] < '0' || auth.p[k] > '9') return -1;
            port = port * 10 + (unsigned)(auth.p[k] - '0');
        }
        if (port == 0 || port > 65535) return -1;
        o->port = port;
    }
    *rest = (ef_bytes){u.p + i, u.n - i};
    return 0;
}

bool ef_hrana_same_origin(const char *base, ef_bytes url)
{
    for (size_t i = 0; i < url.n; i++) /* nothing curl would read differently from us */
        if ((unsigned char)url.p[i] <= ' ' || url.p[i] == 0x7f || url.p[i] == '\\') return false;
    origin a, b;
    ef_bytes ra, rb;
    if (origin_parse(ef_bytes_of(base), &a, &ra) || origin_parse(url, &b, &rb)) return false;
    /* pipeline paths are appended to it: a query or fragment would swallow them */
    if (memchr(rb.p, '?', rb.n) || memchr(rb.p, '#', rb.n)) return false;
    return a.tls == b.tls && a.port == b.port && a.host.n == b.host.n &&
           strncasecmp(a.host.p, b.host.p, a.host.n) == 0;
}

/* The server's base_url for the rest of the stream (sqld uses it to pin a stream to one
 * instance). The bearer token goes wherever the client sends, so a base_url is followed only on
 * the configured server's own origin; any other is ignored (and logged once). */
static void follow_base_url(ef_hrana *h, ef_bytes bu)
{
    size_t n = bu.n;
    while (n && bu.p[n - 1] == '/') n--;
    bu.n = n;
    if (!ef_hrana_same_origin(h->base, bu) || bu.n > 900) {
        if (!h->warned_base) {
            char shown[128];
            snprintf(shown, sizeof(shown), "%.*s", (int)(bu.n > 100 ? 100 : bu.n), bu.p);
            for (char *p = shown; *p; p++)
                if ((unsigned char)*p < ' ' || *p == 0x7f) *p = '?';
            ef_log(EF_LOG_WARN, "libsql: ignoring a base_url on another server than configured",
                   "server", h->base, "base_url", shown, NULL);
        }
        h->warned_base = true;
        return;
    }
    free(h->base_url);
    h->base_url = strndup(bu.p, bu.n);
}

int ef_hrana_send(ef_hrana *h, ef_hrana_req *r, ef_arena *a, const ef_json **results,
                  ef_store_err *err)
{
    close_open(r);
    if (!ef_buf_ok(&r->b)) return ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
    pthread_mutex_lock(&h->mu);
    int rc = -1;
    ef_buf body;
    ef_buf_init(&body);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!h->version) probe(h);
        char url[1200];
        snprintf(url, sizeof(url), "%s/v%d/pipeline", h->base_url ? h->base_url : h->base,
                 h->version == 3 ? 3 : 2);
        ef_buf_clear(&body);
        ef_buf_puts(&body, "{\"baton\":");
        if (h->baton)
            ef_json_put_cstr(&body, h->baton);
        else
            ef_buf_puts(&body, "null");
        ef_buf_puts(&body, ",\"requests\":[");
        ef_buf_append(&body, r->b.data, r->b.len);
        ef_buf_puts(&body, "]}");
        ef_buf_putc(&body, '\0');
        if (!ef_buf_ok(&body)) {
            ef_store_fail(err, EF_STORE_INTERNAL, "out of memory");
            break;
        }
        long status = http_do(h, url, body.data, body.len - 1, err);
        if (status == 0) {
            if (h->too_large) rc = EF_HRANA_TOO_LARGE;
            drop_stream(h); /* the server may have restarted: its batons are void */
            break;
        }
        if (status < 200 || status >= 300) {
            char msg[320], code[64];
            body_message(h, a, msg, sizeof(msg), code, sizeof(code));
            bool had_stream = h->baton != NULL;
            drop_stream(h);
            if (status == 400 && had_stream && stream_gone(msg, code) && attempt == 0)
                continue; /* the server ran nothing: reopen the stream and send again */
            ef_store_code ec = status == 400 ? EF_STORE_INTERNAL : EF_STORE_UNAVAILABLE;
            ef_store_fail(err, ec, "libsql %s: HTTP %ld: %s%s%s%s", h->base, status, msg,
                    code[0] ? " (" : "", code, code[0] ? ")" : "");
            break;
        }
        const ef_json *root;
        if (ef_hrana_parse_answer(h->resp.data, h->resp.len, r->nreq, a, &root, results, err)) {
            drop_stream(h);
            char m[sizeof(err->message)];
            snprintf(m, sizeof(m), "libsql %s: %s", h->base, err->message);
            ef_store_fail(err, EF_STORE_UNAVAILABLE, "%s", m);
            break;
        }
        const ef_json *bt = ef_json_get(root, "baton"), *bu = ef_json_get(root, "base_url");
        free(h->baton);
        h->baton = bt && bt->type == EF_JSON_STRING ? strndup(bt->str.p, bt->str.n) : NULL;
        if (bu && bu->type == EF_JSON_STRING) follow_base_url(h, bu->str);
        rc = 0;
        break;
    }
    ef_buf_free(&body);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static int error_of(const ef_json *e, char *code, size_t ncode, ef_store_err *err)
{
    const ef_json *m = e ? ef_json_get(e, "message") : NULL;
    const ef_json *c = e ? ef_json_get(e, "code") : NULL;
    bool has_code = c && c->type == EF_JSON_STRING;
    if (code && ncode) snprintf(code, ncode, "%.*s", has_code ? (int)c->str.n : 0, has_code ? c->str.p : "");
    bool busy = has_code && (ef_bytes_eq(c->str, EF_BYTES_LIT("SQLITE_BUSY")) ||
                             ef_bytes_eq(c->str, EF_BYTES_LIT("TRANSACTION_BUSY")) ||
                             ef_bytes_eq(c->str, EF_BYTES_LIT("TRANSACTION_TIMEOUT")));
    return ef_store_fail(err, busy ? EF_STORE_UNAVAILABLE : EF_STORE_INTERNAL, "libsql: %.*s%s%.*s%s",
                   m && m->type == EF_JSON_STRING ? (int)m->str.n : 13,
                   m && m->type == EF_JSON_STRING ? m->str.p : "unknown error",
                   has_code ? " (" : "", has_code ? (int)c->str.n : 0, has_code ? c->str.p : "",
                   has_code ? ")" : "");
}

int ef_hrana_result(const ef_json *results, int i, const ef_json **result, ef_store_err *err)
{
    const ef_json *r = results->child;
    for (int k = 0; r && k < i; k++) r = r->next;
    const ef_json *type = r ? ef_json_get(r, "type") : NULL;
    if (!type || type->type != EF_JSON_STRING)
        return ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql: pipeline answer %d is missing", i);
    if (ef_bytes_eq(type->str, EF_BYTES_LIT("error")))
        return error_of(ef_json_get(r, "error"), NULL, 0, err);
    const ef_json *resp = ef_json_get(r, "response");
    const ef_json *res = resp ? ef_json_get(resp, "result") : NULL;
    *result = res;
    if (!res || res->type != EF_JSON_OBJECT)
        return ef_store_fail(err, EF_STORE_UNAVAILABLE, "libsql: pipeline answer %d has no result", i);
    return 0;
}

static const ef_json *nth(const ef_json *arr, size_t i)
{
    if (!arr || arr->type != EF_JSON_ARRAY) return NULL;
    const ef_json *c = arr->child;
    for (size_t k = 0; c && k < i; k++) c = c->next;
    return c;
}

int ef_hrana_step_result(const ef_json *batch, int i, const ef_json **result, char *code,
                         size_t ncode, ef_store_err *err)
{
    if (code && ncode) code[0] = '\0';
    const ef_json *e = nth(ef_json_get(batch, "step_errors"), (size_t)i);
    if (e && e->type == EF_JSON_OBJECT) return error_of(e, code, ncode, err);
    const ef_json *r = nth(ef_json_get(batch, "step_results"), (size_t)i);
    if (!r || r->type != EF_JSON_OBJECT) return 1;
    *result = r;
    return 0;
}

/* ---- values ---- */

static int b64_val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

static int base64_decode(ef_bytes in, ef_arena *a, ef_bytes *out)
{
    /* padded or not, standard or URL alphabet: servers differ */
    while (in.n && in.p[in.n - 1] == '=') in.n--;
    if (in.n % 4 == 1) return -1;
    char *o = ef_arena_alloc(a, in.n / 4 * 3 + 3);
    if (!o) return -1;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < in.n; i++) {
        int v = b64_val((unsigned char)in.p[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (char)(acc >> bits & 0xff);
        }
    }
    *out = (ef_bytes){o, n};
    return 0;
}

int ef_hrana_value_get(const ef_json *v, ef_arena *a, ef_hrana_value *out)
{
    memset(out, 0, sizeof(*out));
    const ef_json *t = v && v->type == EF_JSON_OBJECT ? ef_json_get(v, "type") : NULL;
    if (!t || t->type != EF_JSON_STRING) return -1;
    const ef_json *val = ef_json_get(v, "value");
    if (ef_bytes_eq(t->str, EF_BYTES_LIT("null"))) {
        out->type = EF_HRANA_NULL;
    } else if (ef_bytes_eq(t->str, EF_BYTES_LIT("integer"))) {
        /* a string by the spec; some servers send a number, which we accept when integral */
        if (!val || (val->type != EF_JSON_STRING && val->type != EF_JSON_NUMBER)) return -1;
        if (parse_i64(val->str, &out->i)) return -1; /* out of range or not plain digits */
        out->type = EF_HRANA_INTEGER;
    } else if (ef_bytes_eq(t->str, EF_BYTES_LIT("float"))) {
        if (!val || val->type != EF_JSON_NUMBER) return -1;
        out->f = val->num;
        out->type = EF_HRANA_FLOAT;
    } else if (ef_bytes_eq(t->str, EF_BYTES_LIT("text"))) {
        if (!val || val->type != EF_JSON_STRING) return -1;
        out->s = val->str;
        out->type = EF_HRANA_TEXT;
    } else if (ef_bytes_eq(t->str, EF_BYTES_LIT("blob"))) {
        const ef_json *b = ef_json_get(v, "base64");
        if (!b || b->type != EF_JSON_STRING || base64_decode(b->str, a, &out->s)) return -1;
        out->type = EF_HRANA_BLOB;
    } else {
        return -1;
    }
    return 0;
}

const ef_json *ef_hrana_first_row(const ef_json *result)
{
    const ef_json *rows = result ? ef_json_get(result, "rows") : NULL;
    return rows && rows->type == EF_JSON_ARRAY ? rows->child : NULL;
}

const ef_json *ef_hrana_first_cell(const ef_json *row)
{
    return row && row->type == EF_JSON_ARRAY ? row->child : NULL;
}

size_t ef_hrana_decltypes(const ef_json *result, ef_bytes *out, size_t max)
{
    const ef_json *cols = result ? ef_json_get(result, "cols") : NULL;
    size_t n = 0;
    for (const ef_json *c = cols && cols->type == EF_JSON_ARRAY ? cols->child : NULL; c && n < max;
         c = c->next, n++) {
        const ef_json *d = c->type == EF_JSON_OBJECT ? ef_json_get(c, "decltype") : NULL;
        out[n] = d && d->type == EF_JSON_STRING ? d->str : (ef_bytes){"", 0};
    }
    for (size_t i = n; i < max; i++) out[i] = (ef_bytes){"", 0};
    return n;
}

size_t ef_hrana_nrows(const ef_json *result)
{
    const ef_json *rows = result ? ef_json_get(result, "rows") : NULL;
    return rows && rows->type == EF_JSON_ARRAY ? rows->len : 0;
}

const ef_json *ef_hrana_cell(const ef_json *result, size_t r, size_t c)
{
    return nth(nth(ef_json_get(result, "rows"), r), c);
}

ef_bytes ef_hrana_decltype(const ef_json *result, size_t c)
{
    const ef_json *col = nth(ef_json_get(result, "cols"), c);
    const ef_json *d = col ? ef_json_get(col, "decltype") : NULL;
    return d && d->type == EF_JSON_STRING ? d->str : (ef_bytes){"", 0};
}

static bool has_ci(ef_bytes hay, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= hay.n; i++)
        if (strncasecmp(hay.p + i, needle, n) == 0) return true;
    return false;
}

/* SQLite's affinity rules by declared type (section 3.1 of its datatype page), plus the boolean
 * and time names Go's database/sql drivers look for. */
typedef enum { K_ANY, K_INT, K_BOOL, K_TIME, K_REAL, K_TEXT } kind;

static kind kind_of(ef_bytes d)
{
    if (has_ci(d, "BOOL")) return K_BOOL;
    if (has_ci(d, "TIMESTAMP") || has_ci(d, "DATETIME") || has_ci(d, "DATE")) return K_TIME;
    if (has_ci(d, "INT")) return K_INT;
    if (has_ci(d, "CHAR") || has_ci(d, "CLOB") || has_ci(d, "TEXT")) return K_TEXT;
    if (has_ci(d, "REAL") || has_ci(d, "FLOA") || has_ci(d, "DOUB")) return K_REAL;
    return K_ANY;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* n decimal digits at *p (exactly n, no sign or space, unlike sscanf's %d), advancing *p. */
static int digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (*p >= end || **p < '0' || **p > '9') return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* "YYYY-MM-DD[ T]HH:MM:SS[.fff...][Z|±HH:MM]" (or a date alone) to Unix nanoseconds. Every field
 * is range-checked, and a time int64 nanoseconds cannot hold (before 1677-09-21 or after
 * 2262-04-11) is an error, never an overflow. */
static int parse_time(ef_bytes s, int64_t *ns)
{
    const char *p = s.p, *end = s.p + s.n;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (digits(&p, end, 4, &y) || p >= end || *p++ != '-' || digits(&p, end, 2, &mo) ||
        p >= end || *p++ != '-' || digits(&p, end, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return -1;
    int64_t frac = 0;
    if (p < end && (*p == 'T' || *p == 't' || *p == ' ')) {
        p++;
        if (digits(&p, end, 2, &h) || p >= end || *p++ != ':' || digits(&p, end, 2, &mi) ||
            p >= end || *p++ != ':' || digits(&p, end, 2, &sec))
            return -1;
        if (h > 23 || mi > 59 || sec > 59) return -1;
        if (p < end && *p == '.') {
            int nd = 0;
            for (p++; p < end && *p >= '0' && *p <= '9'; p++)
                if (nd++ < 9) frac = frac * 10 + (*p - '0');
            if (nd == 0) return -1;
            for (; nd < 9; nd++) frac *= 10;
        }
    }
    int64_t off = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, end, 2, &oh) || p >= end || *p++ != ':' || digits(&p, end, 2, &om) ||
            oh > 23 || om > 59)
            return -1;
        off = (int64_t)(oh * 3600 + om * 60) * sign;
    } else if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    }
    if (p != end) return -1;
    /* years 0..9999: seconds fit easily; nanoseconds do not */
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
                off;
    if (t < 0 && frac > 0) { /* borrow a second so that the product stays inside int64 */
        t += 1;
        frac -= 1000000000;
    }
    int64_t v;
    if (__builtin_mul_overflow(t, (int64_t)1000000000, &v) || __builtin_add_overflow(v, frac, &v))
        return -1;
    *ns = v;
    return 0;
}

int ef_hrana_cell_json(ef_buf *out, const ef_json *cell, ef_bytes decltype, ef_arena *a)
{
    ef_hrana_value v;
    if (ef_hrana_value_get(cell, a, &v)) return -1;
    kind k = kind_of(decltype);
    int64_t fi;
    if (v.type == EF_HRANA_NULL) {
        ef_buf_puts(out, "null");
        return 0;
    }
    switch (k) {
    case K_BOOL:
    case K_INT:
        if (v.type == EF_HRANA_INTEGER) {
            ef_json_put_int(out, k == K_BOOL ? v.i != 0 : v.i);
            return 0;
        }
        if (v.type == EF_HRANA_FLOAT && f_to_i64(v.f, &fi)) {
            ef_json_put_int(out, k == K_BOOL ? fi != 0 : fi);
            return 0;
        }
        if (v.type == EF_HRANA_TEXT && k == K_BOOL) {
            if (ef_bytes_eq(v.s, EF_BYTES_LIT("true")) || ef_bytes_eq(v.s, EF_BYTES_LIT("1"))) {
                ef_buf_putc(out, '1');
                return 0;
            }
            if (ef_bytes_eq(v.s, EF_BYTES_LIT("false")) || ef_bytes_eq(v.s, EF_BYTES_LIT("0"))) {
                ef_buf_putc(out, '0');
                return 0;
            }
        }
        return -1;
    case K_TIME: {
        int64_t ns;
        if (v.type == EF_HRANA_INTEGER) {
            ef_json_put_int(out, v.i);
            return 0;
        }
        if (v.type == EF_HRANA_FLOAT && f_to_i64(v.f, &fi)) {
            ef_json_put_int(out, fi);
            return 0;
        }
        if (v.type == EF_HRANA_TEXT && parse_time(v.s, &ns) == 0) {
            ef_json_put_int(out, ns);
            return 0;
        }
        return -1;
    }
    case K_REAL:
        if (v.type == EF_HRANA_FLOAT || v.type == EF_HRANA_INTEGER) {
            ef_json_put_double(out, v.type == EF_HRANA_FLOAT ? v.f : (double)v.i);
            return 0;
        }
        return -1;
    case K_TEXT:
    case K_ANY:
        break;
    }
    switch (v.type) {
    case EF_HRANA_INTEGER:
        ef_json_put_int(out, v.i);
        break;
    case EF_HRANA_FLOAT:
        ef_json_put_double(out, v.f);
        break;
    case EF_HRANA_TEXT:
        ef_json_put_str(out, v.s);
        break;
    case EF_HRANA_BLOB:
        ef_buf_putc(out, '"');
        put_base64(out, v.s);
        ef_buf_putc(out, '"');
        break;
    case EF_HRANA_NULL:
        ef_buf_puts(out, "null");
        break;
    }
    return 0;
}
